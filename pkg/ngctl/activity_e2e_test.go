package ngctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// mediaNode is portd, one rtp-fwd worker and ng-ctl, each its own process,
// on Debian's nats-server (max_payload 1 MiB, its default and that of the
// shipped config), with media sockets on a loopback address of its own so
// that its wide port range meets no other test's.
type mediaNode struct {
	nats         *testutil.NATSServer
	portd, fwd   *testutil.Proc
	ngctl        *testutil.Proc
	ngAddr, ip   string
	parties      [2]*net.UDPConn
	partyAddr    [2]netip.AddrPort
	mu           sync.Mutex
	dests        [][2]netip.AddrPort // per call: where party 0 and party 1 send
	sent, rounds int
}

// startMediaNode starts the daemons with ng-ctl's extra options and two
// parties' sockets on ip.
func startMediaNode(t *testing.T, node, ip string, portMin, portMax int, ngExtra ...string) *mediaNode {
	t.Helper()
	n := &mediaNode{nats: testutil.StartNATSServer(t), ip: ip}
	bin := testutil.Binaries(t)
	run := testutil.ShortTempDir(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n.ngAddr = "127.0.0.1:" + strconv.Itoa(ngPort)
	common := []string{"--nats-url=" + n.nats.URL(), "--node-id=" + node}
	n.portd = testutil.StartProc(t, filepath.Join(bin, "portd"), append(common, "--runtime-dir="+run, "--interface="+ip,
		"--port-min="+strconv.Itoa(portMin), "--port-max="+strconv.Itoa(portMax)))
	n.fwd = testutil.StartProc(t, filepath.Join(bin, "rtp-fwd"), append(common, "--runtime-dir="+run, "--loops=1"))
	n.ngctl = testutil.StartProc(t, filepath.Join(bin, "ng-ctl"), append(append(common, "--listen-ng="+n.ngAddr, "--log-level=info"), ngExtra...))
	n.ngctl.WaitMatch(t, testutil.MatchLine(`msg="port leases ready"`), 30*time.Second)
	n.fwd.WaitMatch(t, testutil.MatchLine(`msg="connected to portd"`), 30*time.Second)
	for i := range n.parties {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(1 << 16)
		t.Cleanup(func() { _ = c.Close() })
		n.parties[i] = c
		n.partyAddr[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	t.Cleanup(func() {
		if t.Failed() {
			out := n.fwd.Output()
			t.Logf("rtp-fwd output (last 3000 bytes):\n%s", out[max(0, len(out)-3000):])
		}
	})
	return n
}

// audioSDP is a party's SDP with one audio stream on the party's socket
// (the media it receives is not read).
func audioSDP(p netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", p.Addr(), p.Addr(), p.Port())
}

// setUp makes call id with an offer and an answer and adds its RTP and
// RTCP sockets (both fed, so that all four of the call's streams change
// every round) to the ones the media loop feeds.
func (n *mediaNode) setUp(t *testing.T, ctx context.Context, c *ngclient.Client, id string) {
	toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", id, "", audioSDP(n.partyAddr[0])))
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", id, "B", audioSDP(n.partyAddr[1])))
	a, b := mPort.FindStringSubmatch(toA), mPort.FindStringSubmatch(toB)
	if a == nil || b == nil {
		t.Errorf("call %s: no audio port in\n%s\n%s", id, toA, toB)
		return
	}
	ip := netip.MustParseAddr(n.ip)
	pa, _ := strconv.Atoi(a[1])
	pb, _ := strconv.Atoi(b[1])
	n.mu.Lock()
	defer n.mu.Unlock()
	for rtcp := range 2 {
		n.dests = append(n.dests, [2]netip.AddrPort{netip.AddrPortFrom(ip, uint16(pa+rtcp)), netip.AddrPortFrom(ip, uint16(pb+rtcp))})
	}
}

// feed sends one RTP packet each way on every stream of the calls set up
// (and not stopped) every interval until ctx ends; stopped calls are the
// first skip dests.
func (n *mediaNode) feed(ctx context.Context, interval time.Duration, skip func() int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for seq := uint16(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		dests := n.dests[min(skip(), len(n.dests)):]
		n.mu.Unlock()
		for i, d := range dests {
			for side := range 2 {
				pkt := testutil.RTPPacket(uint32(i*2+side+1), seq, "activity-test-payload")
				if _, err := n.parties[side].WriteToUDPAddrPort(pkt, d[side]); err == nil {
					n.mu.Lock()
					n.sent++
					n.mu.Unlock()
				}
			}
		}
		n.mu.Lock()
		n.rounds++
		n.mu.Unlock()
	}
}

// endedByTimer returns the calls ng-ctl ended for lack of media.
func endedByTimer(out string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)msg="call ended" .*?\bcall=(\S+) reason=(timeout|"silent timeout")`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// needNoFile lifts the soft open-file limit (inherited by the daemons) to
// the hard one and fails unless it reaches n.
func needNoFile(t *testing.T, n uint64) {
	t.Helper()
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur < l.Max {
		old := l
		l.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	if l.Cur < n {
		t.Fatalf("open-file limit %d, the test needs %d (set RTPKIT_ACTIVITY_CALLS lower)", l.Cur, n)
	}
}

// TestActivityBeyondPayloadLimitKeepsCalls: a worker with thousands of
// busy streams (both parties of every call send on RTP and RTCP, so all
// four streams of a call change each second: 12,000 streams of about 170
// bytes of JSON each for 3,000 calls, some 2 MB a report) reports them
// all while the bus's max_payload is 1 MiB; no call with media is ended
// by the timers.
func TestActivityBeyondPayloadLimitKeepsCalls(t *testing.T) {
	calls := testutil.EnvInt(t, "RTPKIT_ACTIVITY_CALLS", 3000)
	const timeout = 10                  // a call stays up while its streams install and report under load (also with -race)
	needNoFile(t, uint64(calls*4+4096)) // two parties, RTP and RTCP: 4 sockets a call
	n := startMediaNode(t, "act-big", "127.24.0.2", 20000, 20000+calls*10, "--timeout="+strconv.Itoa(timeout))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go n.feed(feedCtx, time.Second, func() int { return 0 })
	obs := observeActivity(t, n.nats.URL(), "act-big")

	const clients = 4
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		c, err := ngclient.Dial(n.ngAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < calls; i += clients {
				n.setUp(t, ctx, c, "big-"+strconv.Itoa(i))
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls (%d streams fed) set up in %v", calls, 4*calls, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	// Media keeps flowing for more than two timeouts and one full report.
	time.Sleep(time.Duration(2*timeout+4) * time.Second)
	n.mu.Lock()
	t.Logf("media: %d rounds, %d packets sent", n.rounds, n.sent)
	n.mu.Unlock()
	ended := endedByTimer(n.ngctl.Output())
	t.Logf("activity on the bus: %s", obs.summary())
	t.Logf("rtp-fwd log lines naming 'maximum payload exceeded': %d", strings.Count(n.fwd.Output(), "maximum payload exceeded"))
	if len(ended) > 0 {
		t.Fatalf("%d of %d calls with media flowing ended by the media timers (first: %v)", len(ended), calls, ended[:min(5, len(ended))])
	}
}

// activityObserver counts the activity messages on the bus and the size
// of each report (its messages summed by Seq).
type activityObserver struct {
	mu                 sync.Mutex
	msgs, largest      int
	streams, bytes     map[uint64]int
	maxStreams, maxLen int
}

// observeActivity subscribes to node's activity event on url.
func observeActivity(t *testing.T, url, node string) *activityObserver {
	o := &activityObserver{streams: map[uint64]int{}, bytes: map[uint64]int{}}
	conn := testutil.Connect(t, url, node, "observer")
	_, err := conn.NC.Subscribe(fwdapi.ActivityEvent.Subject(node), func(m *nats.Msg) {
		var a fwdapi.Activity
		if err := json.Unmarshal(m.Data, &a); err != nil {
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.msgs++
		o.largest = max(o.largest, len(m.Data))
		o.streams[a.Seq] += len(a.Streams)
		o.bytes[a.Seq] += len(m.Data)
		o.maxStreams = max(o.maxStreams, o.streams[a.Seq])
		o.maxLen = max(o.maxLen, o.bytes[a.Seq])
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// summary describes what was observed.
func (o *activityObserver) summary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("%d messages, largest %d bytes; largest report received: %d streams, %d bytes", o.msgs, o.largest, o.maxStreams, o.maxLen)
}

// TestBusOutageLongerThanTimeoutKeepsCalls: the bus is down longer than
// --timeout while media keeps flowing; no call is ended for lack of media.
// A call whose media stopped when the bus went down is ended once news
// resumes, a whole timeout after ng-ctl heard from the worker again.
func TestBusOutageLongerThanTimeoutKeepsCalls(t *testing.T) {
	const timeout = 3
	n := startMediaNode(t, "act-outage", "127.24.0.3", 20000, 20999, "--timeout="+strconv.Itoa(timeout))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := ngclient.Dial(n.ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// "stopped" first: its RTP and RTCP are the first two dests.
	ids := []string{"stopped", "live-0", "live-1", "live-2"}
	for _, id := range ids {
		n.setUp(t, ctx, c, id)
	}
	var skip struct {
		sync.Mutex
		n int
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go n.feed(feedCtx, 300*time.Millisecond, func() int { skip.Lock(); defer skip.Unlock(); return skip.n })
	time.Sleep(2 * time.Second) // the worker reports the media

	skip.Lock()
	skip.n = 2 // "stopped" gets no more media from now on
	skip.Unlock()
	n.nats.Stop()
	down := time.Now()
	time.Sleep(time.Duration(2*timeout+3) * time.Second)
	n.nats.Start()
	t.Logf("bus down for %v", time.Since(down).Round(time.Millisecond))
	time.Sleep(time.Duration(2*timeout+3) * time.Second)

	out := n.ngctl.Output()
	var endedLive []string
	for _, id := range endedByTimer(out) {
		if id != "stopped" {
			endedLive = append(endedLive, id)
		}
	}
	if len(endedLive) > 0 {
		t.Fatalf("calls with media flowing ended by the media timers across the bus outage: %v\n%s", endedLive, out)
	}
	resumed := logTime(t, out, `msg="news from worker again" .*\bworker=0\b`)
	ended := logTime(t, out, `msg="call ended" .*\bcall=stopped reason=timeout\b`)
	if ended.IsZero() || resumed.IsZero() {
		t.Fatalf("want news resumed and call stopped ended by timeout after the outage:\n%s", out)
	}
	t.Logf("call stopped ended %v after ng-ctl heard from the worker again", ended.Sub(resumed))
	if d := ended.Sub(resumed); d < (timeout-1)*time.Second {
		t.Fatalf("call stopped ended %v after news resumed, want about --timeout (%ds):\n%s", d, timeout, out)
	}
}

// logTime is the time= of the first line of out that matches expr (zero
// if none).
func logTime(t *testing.T, out, expr string) time.Time {
	t.Helper()
	re := regexp.MustCompile(expr)
	for _, line := range strings.Split(out, "\n") {
		if !re.MatchString(line) {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			t.Fatalf("no time= in %q", line)
		}
		tm, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err != nil {
			t.Fatalf("time in %q: %v", line, err)
		}
		return tm
	}
	return time.Time{}
}
