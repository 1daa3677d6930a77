package redissync_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// load is RTP both ways on many calls at 50 packets/s per direction;
// endAt marks flows of calls deleted during the run (packets sent after
// are not expected).
type load struct {
	testutil.RTPLoad
	mu    sync.Mutex
	endAt map[*testutil.RTPFlow]time.Time
}

func (l *load) end(f *testutil.RTPFlow, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.endAt == nil {
		l.endAt = map[*testutil.RTPFlow]time.Time{}
	}
	l.endAt[f] = at
}

// mediaCallVia sets up a call over ng between two new sockets in the
// callers' namespace and returns its two flows.
func mediaCallVia(t *testing.T, ctx context.Context, tb *testutil.Testbed, ng *ngclient.Client, id string) (*testutil.RTPFlow, *testutil.RTPFlow) {
	t.Helper()
	ua := tb.UDP(t, tb.Callers, tb.CallerAddrs[0].String()+":0")
	ub := tb.UDP(t, tb.Callers, tb.CallerAddrs[1].String()+":0")
	toB := offerAnswer(t, ctx, ng, "offer", id, "", tb.CallerAddrs[0].String(), ua.LocalAddr().(*net.UDPAddr).Port)
	toA := offerAnswer(t, ctx, ng, "answer", id, "B", tb.CallerAddrs[1].String(), ub.LocalAddr().(*net.UDPAddr).Port)
	dst := func(port string) *net.UDPAddr {
		a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(tb.Service.String(), port))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	return testutil.NewRTPFlow(id+" A→B", ua, ub, dst(toA)), testutil.NewRTPFlow(id+" B→A", ub, ua, dst(toB))
}

// offerAnswer sends an offer or answer and returns the port of the m= line
// of the SDP that came back.
func offerAnswer(t *testing.T, ctx context.Context, ng *ngclient.Client, cmd, id, toTag, addr string, port int) string {
	t.Helper()
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(fmt.Sprintf(mediaSDP, addr, port))})
	if toTag != "" {
		d.Set("to-tag", bencode.Str(toTag))
	}
	r, err := ng.Do(ctx, d)
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("%s %s: %s %s %v", cmd, id, res, why, err)
	}
	sdp, _ := r.GetString("sdp")
	m := mPortRe.FindStringSubmatch(sdp)
	if m == nil {
		t.Fatalf("%s %s: no m= line in %q", cmd, id, sdp)
	}
	return m[1]
}

// failoverReport is what the load saw around a failover.
type failoverReport struct {
	gaps        []time.Duration // per flow: last arrival before the kill → first after the move
	lostAfter   int             // packets sent after the move that never arrived
	sentAfter   int
	silent      []string      // flows with nothing after the move
	worstOther  time.Duration // longest gap between arrivals away from the failover
	worstOtherF string
}

func (l *load) report(kill, moved time.Time) failoverReport {
	var r failoverReport
	for _, f := range l.Flows {
		sent, arrived := f.Times()
		l.mu.Lock()
		endAt := l.endAt[f]
		l.mu.Unlock()
		for seq, at := range sent {
			if at.After(moved) && len(sent)-seq > 5 && (endAt.IsZero() || at.Before(endAt)) { // not the last packets still in flight
				r.sentAfter++
				if _, ok := arrived[uint16(seq)]; !ok {
					r.lostAfter++
				}
			}
		}
		times := f.Arrivals()
		var before, after time.Time
		for _, at := range times {
			if !at.After(kill) {
				before = at
			} else if at.After(moved) && after.IsZero() {
				after = at
			}
		}
		if after.IsZero() || before.IsZero() {
			r.silent = append(r.silent, f.Name)
			continue
		}
		r.gaps = append(r.gaps, after.Sub(before))
		for i := 1; i < len(times); i++ {
			if !times[i-1].Before(before) && !times[i].After(after) {
				continue // the failover itself
			}
			if g := times[i].Sub(times[i-1]); g > r.worstOther {
				r.worstOther, r.worstOtherF = g, f.Name
			}
		}
	}
	sort.Slice(r.gaps, func(i, j int) bool { return r.gaps[i] < r.gaps[j] })
	return r
}

func (r failoverReport) String() string {
	if len(r.gaps) == 0 {
		return "no flow resumed"
	}
	q := func(p int) time.Duration {
		return r.gaps[min(len(r.gaps)-1, len(r.gaps)*p/100)].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("media gap per stream over %d streams: min %v p50 %v p90 %v p99 %v max %v; after the move %d of %d packets lost; longest gap at any other time %v (%s)",
		len(r.gaps), r.gaps[0].Round(100*time.Microsecond), q(50), q(90), q(99), r.gaps[len(r.gaps)-1].Round(100*time.Microsecond),
		r.lostAfter, r.sentAfter, r.worstOther.Round(100*time.Microsecond), r.worstOtherF)
}

// TestFailover is the BGP move: node A carries 200 calls with RTP both
// ways; A's whole node is killed with -9 and the router's route for the
// service address moves to B, which already holds the calls (restored
// from A's Redis database with their sockets bound) and forwards from the
// first packet. Signalling for those calls through the service address
// then works on B and makes them B's, in B's database and gone from A's;
// A started again restores them as foreign and takes none back; C and D,
// another redundancy group, never hold A's calls. The keepalived variant
// (the address only on A, added to B at failover) is TestFailoverAddressMove.
func TestFailover(t *testing.T) {
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 4, ServiceOnAll: true, Redis: true})
	runFailover(t, tb, 200, func() { tb.Route(t, 1) })
}

// TestFailoverAddressMove is the keepalived variant: the service address
// exists only on A; B's sockets for A's calls are bound with FREEBIND
// before it has the address; at failover the address is added to B.
func TestFailoverAddressMove(t *testing.T) {
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, Redis: true})
	runFailover(t, tb, 20, func() {
		tb.DelService(t, 0)
		tb.AddService(t, 1)
		tb.Route(t, 1)
	})
}

func runFailover(t *testing.T, tb *testutil.Testbed, calls int, move func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	svc := tb.Service.String()
	ngArgs := []string{"--listen-ng=" + svc + ":2223", "--active-switchover"}
	a := startNodeArgs(t, tb, 0, 1, ngArgs, 2)
	b := startNodeArgs(t, tb, 1, 2, ngArgs, 1)
	var others []*node
	if len(tb.Nodes) >= 4 {
		others = append(others, startNode(t, tb, 2, 3, 4), startNode(t, tb, 3, 4, 3))
	}
	dumpOnFailure(t, a, b)
	viaService := tb.NG(t, tb.Callers, svc+":2223")
	viaService.SetRetransmit(200 * time.Millisecond)

	l := &load{}
	for i := range calls {
		fa, fb := mediaCallVia(t, ctx, tb, viaService, fmt.Sprintf("fo-%03d", i))
		l.Flows = append(l.Flows, fa, fb)
	}
	eventually(t, "B restores A's calls", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })
	// The standby can be asked on its own address before the failover.
	q, err := b.ng.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str("fo-001")}))
	if res, why := ngclient.Result(q); err != nil || res != "ok" {
		t.Errorf("query fo-001 on the standby before failover: %s %s %v", res, why, err)
	}
	l.Start(20 * time.Millisecond)
	time.Sleep(2 * time.Second)

	// Failover: A dies as a whole, the network moves the address.
	kill := time.Now()
	_ = a.proc.Cmd.Process.Kill()
	move()
	moved := time.Now()
	time.Sleep(3 * time.Second)

	// Signalling through the service address now reaches B: a re-INVITE,
	// a query, a delete and a new call. A connected UDP socket only takes
	// replies from the service address.
	reoffer := l.Flows[0]
	offerAnswer(t, ctx, viaService, "offer", "fo-000", "", tb.CallerAddrs[0].String(), reoffer.Src.LocalAddr().(*net.UDPAddr).Port)
	offerAnswer(t, ctx, viaService, "answer", "fo-000", "B", tb.CallerAddrs[1].String(), reoffer.Dst.LocalAddr().(*net.UDPAddr).Port)
	q, err = viaService.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str("fo-001")}))
	if res, why := ngclient.Result(q); err != nil || res != "ok" {
		t.Errorf("query fo-001 on B: %s %s %v", res, why, err)
	}
	for _, f := range l.Flows[4:6] { // fo-002's
		l.end(f, time.Now())
	}
	del, err := viaService.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")},
		bencode.Pair{Key: "call-id", Value: bencode.Str("fo-002")}, bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}))
	if res, why := ngclient.Result(del); err != nil || res != "ok" {
		t.Errorf("delete fo-002 on B: %s %s %v", res, why, err)
	}
	nf, nb := mediaCallVia(t, ctx, tb, viaService, "fo-new")
	time.Sleep(time.Second)
	l.Stop(0)

	r := l.report(kill, moved)
	t.Logf("failover (%d calls, 50 packets/s per direction): %s", calls, r)
	if len(r.silent) > 0 {
		t.Errorf("%d streams never resumed after the move: %v", len(r.silent), r.silent[:min(5, len(r.silent))])
	}
	if r.lostAfter > 0 {
		t.Errorf("%d of %d packets that reached B after the move were not forwarded", r.lostAfter, r.sentAfter)
	}
	// The new call carries media through B.
	nl := &testutil.RTPLoad{Flows: []*testutil.RTPFlow{nf, nb}}
	nl.Start(20 * time.Millisecond)
	nl.Stop(300 * time.Millisecond)
	for _, f := range nl.Flows {
		if len(f.Arrivals()) == 0 {
			t.Errorf("new call on B: nothing arrived on %s", f.Name)
		}
	}

	// The calls are B's now (media and signalling switched them over), in
	// B's database and gone from A's.
	db1, db2 := tb.RedisClient(t, 1, 1), tb.RedisClient(t, 1, 2)
	eventually(t, "the calls move to B's database", 30*time.Second, func() error {
		n1, n2 := countCalls(t, ctx, db1), countCalls(t, ctx, db2)
		if n1 != 0 || n2 != calls { // one deleted, one new
			ex, _ := db2.Exists(ctx, rediscalls.CallKey("fo-002")).Result()
			rec, inKV := b.list(t)["fo-002"]
			return fmt.Errorf("A's DB holds %d calls, B's %d; want 0 and %d (fo-002 in B's: %d, in B's node state: %v %+v)", n1, n2, calls, ex, inKV, rec.Source)
		}
		return nil
	})

	// Fail-back: A comes back with empty node state; it restores B's
	// calls as foreign, takes none back and resurrects none.
	a.start(t, tb)
	eventually(t, "A restores B's calls as foreign", 30*time.Second, func() error { return sameCalls(t, b, a, "node1") })
	if _, ok := a.list(t)["fo-002"]; ok {
		t.Errorf("A resurrected the deleted call fo-002")
	}
	if n := countCalls(t, ctx, db1); n != 0 {
		t.Errorf("A's database holds %d calls after A came back", n)
	}
	for _, o := range others {
		if n := len(o.list(t)); n != 0 {
			t.Errorf("node%d (another redundancy group) holds %d calls", o.i, n)
		}
	}
	if t.Failed() {
		return
	}
	// Keep the figures where the closing note and docs can find them.
	t.Logf("FAILOVER %s calls=%d %s", strings.ReplaceAll(t.Name(), "/", "_"), calls, r)
}
