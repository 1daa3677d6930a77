package nodetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// churnConfig shapes the soak's calls.
type churnConfig struct {
	Rate       float64       // new calls per second
	MinLife    time.Duration // a call lives between MinLife and MaxLife
	MaxLife    time.Duration //
	PPS        int           // packets per second per direction
	GapBound   time.Duration // a media silence longer than this loses the call
	MaxPending int           // setups in flight at once
}

// soakFlow is one direction of a soak call.
type soakFlow struct {
	name     string
	src, dst *net.UDPConn
	to       *net.UDPAddr
	ssrc     uint32
	seq      uint16 // sender only
	sent     atomic.Int64
	recv     atomic.Int64
	lastArr  atomic.Int64 // unix ns of the last arrival (0: none yet)
	maxGap   atomic.Int64 // ns: longest silence between arrivals
	mediaAt  time.Time    // when sending started
	lastSend atomic.Int64 // unix ns of the last packet sent
}

// soakCall is one call of the churn.
type soakCall struct {
	id      string
	a, b    *net.UDPConn
	flows   [2]*soakFlow
	planEnd time.Time
	done    chan struct{} // closed when the client ends the call
	recvWG  sync.WaitGroup
}

// lostCall is a call the soak counts as lost, and why.
type lostCall struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// churn sets calls up at a steady rate over ng, sends RTP both ways on
// every live one, ends each at its planned time with a delete, and
// watches for media silences.
type churn struct {
	cfg      churnConfig
	callers  *testutil.NetNS
	addrA    netip.Addr // caller A's address
	addrB    netip.Addr
	service  netip.Addr
	ng       *ngclient.Client
	rnd      *rand.Rand
	started  time.Time
	pending  chan struct{}
	wg       sync.WaitGroup
	nextID   atomic.Int64
	setUp    atomic.Int64
	ended    atomic.Int64 // deleted by the client, never lost
	attempts atomic.Int64
	pktSent  atomic.Int64
	pktRecv  atomic.Int64

	mu    sync.Mutex
	live  map[string]*soakCall
	lost  map[string]lostCall
	gaps  []time.Duration // per ended flow: its longest silence
	stopS chan struct{}   // stops the sender and watchdog
}

func newChurn(cfg churnConfig, callers *testutil.NetNS, addrA, addrB, service netip.Addr, ng *ngclient.Client) *churn {
	return &churn{cfg: cfg, callers: callers, addrA: addrA, addrB: addrB, service: service, ng: ng,
		rnd: rand.New(rand.NewPCG(24, 24)), pending: make(chan struct{}, cfg.MaxPending),
		live: map[string]*soakCall{}, lost: map[string]lostCall{}, stopS: make(chan struct{})}
}

// run sets calls up until ctx ends (it returns then), leaving the calls
// already up to end at their planned times; wait waits for those.
func (c *churn) run(ctx context.Context) {
	c.started = time.Now()
	c.wg.Add(2)
	go c.sender()
	go c.watchdog()
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.cfg.Rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case c.pending <- struct{}{}:
		default:
			continue // setups are stuck: skip this slot, the figures show it
		}
		n := c.nextID.Add(1)
		life := c.cfg.MinLife + time.Duration(c.rnd.Int64N(int64(c.cfg.MaxLife-c.cfg.MinLife)+1))
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			call := c.setup(fmt.Sprintf("soak-%06d", n), life)
			<-c.pending
			if call != nil {
				c.live1(call)
			}
		}()
	}
}

// wait waits until every call has ended (at most timeout), then stops the
// sender and the watchdog.
func (c *churn) wait(timeout time.Duration) bool {
	ok := make(chan struct{})
	go func() {
		for {
			c.mu.Lock()
			n := len(c.live)
			c.mu.Unlock()
			if n == 0 && len(c.pending) == 0 {
				close(ok)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var drained bool
	select {
	case <-ok:
		drained = true
	case <-time.After(timeout):
	}
	close(c.stopS)
	c.wg.Wait()
	return drained
}

func (c *churn) markLost(id string, at time.Time, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lost[id]; !ok {
		c.lost[id] = lostCall{ID: id, At: at, Reason: reason}
	}
}

func (c *churn) since(at time.Time) string {
	return at.Sub(c.started).Round(100 * time.Millisecond).String()
}

var soakMPort = regexp.MustCompile(`m=audio (\d+) `)

// setup creates the sockets and does offer and answer; nil if it failed
// (the call is lost then).
func (c *churn) setup(id string, life time.Duration) *soakCall {
	c.attempts.Add(1)
	var a, b *net.UDPConn
	err := c.callers.Do(func() error {
		var err error
		if a, err = net.ListenUDP("udp", &net.UDPAddr{IP: c.addrA.AsSlice()}); err != nil {
			return err
		}
		b, err = net.ListenUDP("udp", &net.UDPAddr{IP: c.addrB.AsSlice()})
		return err
	})
	if err != nil {
		if a != nil {
			_ = a.Close()
		}
		c.markLost(id, time.Now(), "sockets: "+err.Error())
		return nil
	}
	toB, err := c.ng1("offer", id, "", c.addrA, a.LocalAddr().(*net.UDPAddr).Port)
	var toA int
	if err == nil {
		toA, err = c.ng1("answer", id, "B", c.addrB, b.LocalAddr().(*net.UDPAddr).Port)
	}
	if err != nil {
		_, _ = a.Close(), b.Close()
		c.markLost(id, time.Now(), err.Error())
		return nil
	}
	n := uint32(c.nextID.Load())
	svc := c.service.AsSlice()
	call := &soakCall{id: id, a: a, b: b, planEnd: time.Now().Add(life), done: make(chan struct{})}
	call.flows[0] = &soakFlow{name: id + " A→B", src: a, dst: b, to: &net.UDPAddr{IP: svc, Port: toA}, ssrc: n << 1}
	call.flows[1] = &soakFlow{name: id + " B→A", src: b, dst: a, to: &net.UDPAddr{IP: svc, Port: toB}, ssrc: n<<1 | 1}
	c.setUp.Add(1)
	return call
}

// ng1 sends an offer or answer and returns the port of the SDP's m= line.
func (c *churn) ng1(cmd, id, toTag string, addr netip.Addr, port int) (int, error) {
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio %[2]d RTP/AVP 0 8\r\na=sendrecv\r\n", addr, port)
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
	if toTag != "" {
		d.Set("to-tag", bencode.Str(toTag))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.ng.Do(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cmd, err)
	}
	if res, why := ngclient.Result(r); res != "ok" {
		return 0, fmt.Errorf("%s: %s %s", cmd, res, why)
	}
	s, _ := r.GetString("sdp")
	m := soakMPort.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s: no m= line in %q", cmd, s)
	}
	return strconv.Atoi(m[1])
}

// live1 starts the call's media and lets it live to its planned end.
func (c *churn) live1(call *soakCall) {
	now := time.Now()
	for _, f := range call.flows {
		f.mediaAt = now
		call.recvWG.Add(1)
		go c.receive(call, f)
	}
	c.mu.Lock()
	c.live[call.id] = call
	c.mu.Unlock()
	time.Sleep(time.Until(call.planEnd))
	c.end(call)
}

// end stops the call's media, checks its last silence, deletes it over ng
// and closes its sockets.
func (c *churn) end(call *soakCall) {
	c.mu.Lock()
	delete(c.live, call.id)
	c.mu.Unlock()
	stop := time.Now()
	time.Sleep(200 * time.Millisecond) // the last packets in flight
	for _, f := range call.flows {
		last := f.lastArr.Load()
		silent := stop.Sub(f.mediaAt)
		if last != 0 {
			silent = stop.Sub(time.Unix(0, last))
		}
		if silent > c.cfg.GapBound {
			c.markLost(call.id, stop, fmt.Sprintf("%s: nothing arrived in the last %v before its planned end", f.name, silent.Round(time.Millisecond)))
		}
	}
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(call.id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	r, err := c.ng.Do(ctx, d)
	cancel()
	if err != nil {
		c.markLost(call.id, time.Now(), "delete: "+err.Error())
	} else if res, why := ngclient.Result(r); res != "ok" {
		c.markLost(call.id, time.Now(), fmt.Sprintf("delete: %s %s (ended by the proxy before the client deleted it?)", res, why))
	} else {
		c.mu.Lock()
		_, lost := c.lost[call.id]
		c.mu.Unlock()
		if !lost {
			c.ended.Add(1)
		}
	}
	close(call.done)
	call.recvWG.Wait()
	_, _ = call.a.Close(), call.b.Close()
	c.mu.Lock()
	for _, f := range call.flows {
		c.gaps = append(c.gaps, time.Duration(f.maxGap.Load()))
		c.pktSent.Add(f.sent.Load())
		c.pktRecv.Add(f.recv.Load())
	}
	c.mu.Unlock()
}

// receive reads f's packets until the call ends, keeping the arrival
// figures.
func (c *churn) receive(call *soakCall, f *soakFlow) {
	defer call.recvWG.Done()
	buf := make([]byte, 2048)
	for {
		select {
		case <-call.done:
			return
		default:
		}
		_ = f.dst.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := f.dst.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		h, _, ok := rtppacket.Read(buf[:n])
		if !ok || h.SSRC != f.ssrc {
			continue
		}
		now := time.Now().UnixNano()
		prev := f.lastArr.Swap(now)
		if prev == 0 {
			prev = f.mediaAt.UnixNano()
		}
		if g := now - prev; g > f.maxGap.Load() {
			f.maxGap.Store(g)
		}
		f.recv.Add(1)
	}
}

// sender sends one 172-byte packet on every flow of every live call each
// 1/PPS.
func (c *churn) sender() {
	defer c.wg.Done()
	tick := time.NewTicker(time.Second / time.Duration(c.cfg.PPS))
	defer tick.Stop()
	pkt := make([]byte, rtppacket.HeaderLen+160)
	var calls []*soakCall
	for {
		select {
		case <-c.stopS:
			return
		case <-tick.C:
		}
		calls = calls[:0]
		c.mu.Lock()
		for _, call := range c.live {
			calls = append(calls, call)
		}
		c.mu.Unlock()
		now := time.Now().UnixNano()
		for _, call := range calls {
			for _, f := range call.flows {
				h := rtppacket.RTP{Seq: f.seq, Timestamp: uint32(f.seq) * 160, SSRC: f.ssrc}
				f.seq++
				_ = h.WriteHeader(pkt) // cannot fail: pkt is longer than a header
				if _, err := f.src.WriteToUDP(pkt, f.to); err == nil {
					f.sent.Add(1)
					f.lastSend.Store(now)
				}
			}
		}
	}
}

// watchdog marks a live call lost as soon as one of its flows has been
// silent for longer than the bound while packets were being sent.
func (c *churn) watchdog() {
	defer c.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.stopS:
			return
		case <-tick.C:
		}
		now := time.Now()
		type silence struct{ id, why string }
		var silent []silence
		c.mu.Lock()
		for _, call := range c.live {
			for _, f := range call.flows {
				from := f.mediaAt
				if last := f.lastArr.Load(); last != 0 {
					from = time.Unix(0, last)
				}
				if now.Sub(from) > c.cfg.GapBound && f.sent.Load() > 0 {
					silent = append(silent, silence{call.id, fmt.Sprintf("%s: silent for %v (since %s into the run)", f.name,
						now.Sub(from).Round(time.Millisecond), c.since(from))})
				}
			}
		}
		c.mu.Unlock()
		for _, s := range silent {
			c.markLost(s.id, now, s.why)
		}
	}
}

// liveIDs are the calls the client holds up now.
func (c *churn) liveIDs() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.live))
	for id := range c.live {
		out[id] = true
	}
	return out
}

// lostCalls are the lost calls in the order they were lost.
func (c *churn) lostCalls() []lostCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]lostCall, 0, len(c.lost))
	for _, l := range c.lost {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// gapQuantiles are the p50, p99 and max of the ended flows' longest
// silences.
func (c *churn) gapQuantiles() (p50, p99, maxGap time.Duration) {
	c.mu.Lock()
	g := append([]time.Duration(nil), c.gaps...)
	c.mu.Unlock()
	if len(g) == 0 {
		return 0, 0, 0
	}
	sort.Slice(g, func(i, j int) bool { return g[i] < g[j] })
	q := func(p int) time.Duration { return g[min(len(g)-1, len(g)*p/100)].Round(time.Millisecond) }
	return q(50), q(99), g[len(g)-1].Round(time.Millisecond)
}
