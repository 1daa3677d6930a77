package fwd

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// latchCall is a call where party A signals one address (aSig) but sends
// from another (aReal), as behind a NAT.
type latchCall struct {
	*call
	aSig, aReal *net.UDPConn
}

func newLatchCall(t *testing.T) *latchCall {
	c := newCall(t)
	return &latchCall{call: c, aSig: party(t), aReal: c.A}
}

// fromA sends an RTP packet from conn to A's proxy socket and checks that B
// gets it (or, with dropped, that B gets nothing).
func (c *latchCall) fromA(t *testing.T, conn *net.UDPConn, seq uint16, dropped bool) {
	t.Helper()
	p := rtpPacket(seq, 0xA, []byte("a"))
	send(t, conn, c.paA, p)
	if dropped {
		expectNothing(t, c.B, 50*time.Millisecond)
		return
	}
	expect(t, c.B, p, c.pbA)
}

// fromB sends an RTP packet from B and checks that it reaches want only.
func (c *latchCall) fromB(t *testing.T, seq uint16, want *net.UDPConn) {
	t.Helper()
	p := rtpPacket(seq, 0xB, []byte("b"))
	send(t, c.B, c.pbA, p)
	expect(t, want, p, c.paA)
	for _, other := range []*net.UDPConn{c.aSig, c.aReal} {
		if other != want {
			expectNothing(t, other, 20*time.Millisecond)
		}
	}
}

func checkEndpoint(t *testing.T, e *Engine, id StreamID, want netip.AddrPort, confirmed bool) {
	t.Helper()
	var s Counters
	deadline := time.Now().Add(2 * time.Second)
	for {
		s = stats(t, e, id)
		if (s.Endpoint == want && s.Confirmed == confirmed) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if s.Endpoint != want || s.Confirmed != confirmed {
		t.Fatalf("stream %d: endpoint %s confirmed %v, want %s confirmed %v", id, s.Endpoint, s.Confirmed, want, confirmed)
	}
}

func TestDelayedLearning(t *testing.T) {
	const window = 700 * time.Millisecond
	e := newTestEngine(t, Config{Workers: 1, LearnWindow: window})
	c := newLatchCall(t)
	signal := time.Now()
	a := Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.aSig), LastSignal: signal}
	mustSet(t, e, 1, a)
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: signal})

	// Before A sends, B's media goes to A's signalled endpoint.
	c.fromB(t, 1, c.aSig)
	checkEndpoint(t, e, 1, addrOf(c.aSig), false)

	// Within the window A's real source is learned, not confirmed.
	c.fromA(t, c.aReal, 1, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), false)
	c.fromB(t, 2, c.aReal)

	// After the window the next packet confirms its source.
	time.Sleep(time.Until(signal.Add(window + 50*time.Millisecond)))
	c.fromA(t, c.aReal, 2, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)

	// Confirmed, no strict source: other sources are forwarded but not
	// learned.
	c.fromA(t, c.aSig, 3, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)
	c.fromB(t, 3, c.aReal)

	// Strict source: the same update keeps the confirmation; a packet from
	// elsewhere is dropped and counted as an error only (not as media).
	a.Flags = StrictSource
	mustSet(t, e, 1, a)
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)
	before := stats(t, e, 1)
	c.fromA(t, c.aSig, 4, true)
	eventually(t, "strict-source error", func() bool { return stats(t, e, 1).Errors == before.Errors+1 })
	if s := stats(t, e, 1); s.Packets != before.Packets || s.Bytes != before.Bytes {
		t.Errorf("strict drop counted as media: %+v -> %+v", before, s)
	}
	c.fromA(t, c.aReal, 5, false)

	// Media handover: a new source takes over at once.
	a.Flags = MediaHandover | StrictSource
	mustSet(t, e, 1, a)
	c.fromA(t, c.aSig, 6, false)
	checkEndpoint(t, e, 1, addrOf(c.aSig), true)
	c.fromB(t, 4, c.aSig)

	// New signalling (same endpoint) unconfirms but keeps what was learned.
	a.Flags = 0
	a.LastSignal = time.Now()
	mustSet(t, e, 1, a)
	checkEndpoint(t, e, 1, addrOf(c.aSig), false)
	c.fromB(t, 5, c.aSig)
	c.fromA(t, c.aReal, 7, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), false)

	// The same configuration again keeps everything; a changed signalled
	// endpoint replaces the learned one.
	mustSet(t, e, 1, a)
	checkEndpoint(t, e, 1, addrOf(c.aReal), false)
	a.Signalled = netip.MustParseAddrPort("127.0.0.1:9") // discard port: nobody listens
	mustSet(t, e, 1, a)
	checkEndpoint(t, e, 1, a.Signalled, false)
	a.Signalled = addrOf(c.aSig)
	mustSet(t, e, 1, a)
	checkEndpoint(t, e, 1, addrOf(c.aSig), false)
	c.fromB(t, 6, c.aSig)
}

func TestImmediateLearning(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newLatchCall(t)
	now := time.Now()
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.aSig), Learning: Immediate, LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: now})
	checkEndpoint(t, e, 1, addrOf(c.aSig), false)
	c.fromA(t, c.aReal, 1, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)
	c.fromA(t, c.aSig, 2, false) // within the window, but already confirmed
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)
	c.fromB(t, 1, c.aReal)
}

func TestAsymmetric(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Stream
	}{
		{"asymmetric", Stream{Flags: Asymmetric}},
		{"learning off", Stream{Learning: Off}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t, Config{Workers: 1})
			c := newLatchCall(t)
			a := tc.s
			a.Call, a.FD, a.Peer, a.Signalled, a.LastSignal = "c", c.pa, 2, addrOf(c.aSig), time.Now()
			mustSet(t, e, 1, a)
			mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: time.Now()})
			checkEndpoint(t, e, 1, addrOf(c.aSig), true)
			c.fromA(t, c.aReal, 1, false)
			c.fromB(t, 1, c.aSig)
			checkEndpoint(t, e, 1, addrOf(c.aSig), true)

			// With strict source only the signalled endpoint may send.
			a.Flags |= StrictSource
			mustSet(t, e, 1, a)
			c.fromA(t, c.aReal, 2, true)
			c.fromA(t, c.aSig, 3, false)
			eventually(t, "strict error", func() bool { return stats(t, e, 1).Errors == 1 })
		})
	}
}

// Stray RTCP on an RTP socket (no rtcp-mux) is forwarded but never learned.
func TestStrayRTCPNotLearned(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newLatchCall(t)
	now := time.Now()
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.aSig), Learning: Immediate, LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: now})
	p := rtcpPacket(1)
	send(t, c.aReal, c.paA, p)
	expect(t, c.B, p, c.pbA)
	eventually(t, "counted", func() bool { return stats(t, e, 1).Packets == 1 })
	checkEndpoint(t, e, 1, addrOf(c.aSig), false)
}

// TestChangesAndLatch: Config.Changes names the stream whose endpoint a
// packet changed (learning, confirmation); Latch confirms an endpoint that
// no packet showed, and the stream keeps it.
func TestChangesAndLatch(t *testing.T) {
	changes := make(chan StreamID, 8)
	e := newTestEngine(t, Config{Workers: 1, Changes: changes})
	c := newLatchCall(t)
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.aSig), Learning: Immediate})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), Learning: Immediate})

	c.fromA(t, c.aReal, 1, false)
	select {
	case id := <-changes:
		if id != 1 {
			t.Fatalf("change notice for stream %d, want 1", id)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no change notice after A's first packet")
	}
	c.fromA(t, c.aReal, 2, false)
	select {
	case id := <-changes:
		t.Fatalf("change notice for stream %d, but nothing changed", id)
	case <-time.After(50 * time.Millisecond):
	}

	// B never sent: Latch confirms an endpoint no packet showed.
	other := party(t)
	if err := e.Latch(2, addrOf(other)); err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, e, 2, addrOf(other), true)
	p := rtpPacket(3, 0xA, []byte("x"))
	send(t, c.aReal, c.paA, p)
	expect(t, other, p, c.pbA)
	// A record written again with the same signalling keeps the latch.
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), Learning: Immediate})
	checkEndpoint(t, e, 2, addrOf(other), true)

	for _, tc := range []struct {
		name string
		id   StreamID
		ep   netip.AddrPort
	}{
		{"unknown stream", 9, addrOf(other)},
		{"unusable endpoint", 2, netip.MustParseAddrPort("0.0.0.0:0")},
	} {
		if err := e.Latch(tc.id, tc.ep); err == nil {
			t.Errorf("%s: Latch succeeded", tc.name)
		}
	}
	// A fixed stream keeps its signalled endpoint.
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), Flags: Asymmetric})
	if err := e.Latch(2, addrOf(other)); err != nil {
		t.Fatal(err)
	}
	checkEndpoint(t, e, 2, addrOf(c.B), true)
}
