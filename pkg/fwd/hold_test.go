package fwd

import (
	"net/netip"
	"testing"
	"time"
)

// TestHeldUntilPeerAddress: a packet for a party whose address is not
// known yet (the callee before the answer reaches rtp-fwd) is held and
// sent when the update that brings the address is set, if it is at most
// holdFor old; one for a party on hold (an address known and unusable) is
// dropped, and not sent when the party comes back.
func TestHeldUntilPeerAddress(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	now := time.Now()
	setB := func(sig netip.AddrPort) {
		t.Helper()
		mustSet(t, e, 2, Stream{Call: "h", FD: c.pb, Peer: 1, Signalled: sig, LastSignal: now})
	}
	mustSet(t, e, 1, Stream{Call: "h", FD: c.pa, Peer: 2, Signalled: addrOf(c.A), LastSignal: now})
	setB(netip.AddrPort{})

	first := rtpPacket(1, 7, []byte("sent right after the answer's reply"))
	send(t, c.A, c.paA, first)
	expectNothing(t, c.B, 50*time.Millisecond)
	setB(addrOf(c.B))
	expect(t, c.B, first, c.pbA)
	next := rtpPacket(2, 7, []byte("after the update"))
	send(t, c.A, c.paA, next)
	expect(t, c.B, next, c.pbA)

	// Too old: not sent.
	setB(netip.AddrPort{})
	send(t, c.A, c.paA, rtpPacket(3, 7, []byte("stale")))
	time.Sleep(time.Duration(holdFor) + 100*time.Millisecond)
	setB(addrOf(c.B))
	expectNothing(t, c.B, 100*time.Millisecond)

	// On hold: dropped, not sent when the party comes back.
	setB(netip.MustParseAddrPort("0.0.0.0:4000"))
	send(t, c.A, c.paA, rtpPacket(4, 7, []byte("on hold")))
	eventually(t, "packet counted", func() bool { return stats(t, e, 1).Packets == 4 })
	setB(addrOf(c.B))
	expectNothing(t, c.B, 100*time.Millisecond)

	// A removed stream's held packets go with it.
	setB(netip.AddrPort{})
	send(t, c.A, c.paA, rtpPacket(5, 7, []byte("removed")))
	eventually(t, "packet counted", func() bool { return stats(t, e, 1).Packets == 5 })
	e.Remove(1)
	setB(addrOf(c.B))
	expectNothing(t, c.B, 100*time.Millisecond)
}

// TestHoldRingBounded: more packets than the ring holds keep only the
// latest holdSlots, sent in order of arrival.
func TestHoldRingBounded(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	now := time.Now()
	mustSet(t, e, 1, Stream{Call: "r", FD: c.pa, Peer: 2, Signalled: addrOf(c.A), LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "r", FD: c.pb, Peer: 1, LastSignal: now})
	const sent = holdSlots + 10
	for i := range sent {
		send(t, c.A, c.paA, rtpPacket(uint16(i), 9, nil))
	}
	eventually(t, "packets counted", func() bool { return stats(t, e, 1).Packets == sent })
	mustSet(t, e, 2, Stream{Call: "r", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: now})
	for i := sent - holdSlots; i < sent; i++ {
		expect(t, c.B, rtpPacket(uint16(i), 9, nil), c.pbA)
	}
	expectNothing(t, c.B, 50*time.Millisecond)
}

// TestHeldPacketLearnedUnderNewSignalling: the answer's update gives the
// callee its address and the caller new signalling (which unconfirms the
// caller's source). A packet the caller sent before the update reached the
// loop was sent after the reply: it is learned from under the new
// signalling, so a stranger sending next is not the one confirmed (with
// strict source, it is dropped). The update's changes come in one batch,
// the callee's first.
func TestHeldPacketLearnedUnderNewSignalling(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	offerAt := time.Now().Add(-time.Second)
	a := Stream{Call: "n", FD: c.pa, Peer: 2, Signalled: addrOf(c.A), LastSignal: offerAt, Learning: Immediate, Flags: StrictSource}
	mustSet(t, e, 1, a)
	mustSet(t, e, 2, Stream{Call: "n", FD: c.pb, Peer: 1, LastSignal: offerAt, Learning: Immediate})

	first := rtpPacket(1, 3, []byte("caller, right after the answer's reply"))
	send(t, c.A, c.paA, first)
	eventually(t, "packet counted", func() bool { return stats(t, e, 1).Packets == 1 })

	answerAt := time.Now()
	a.LastSignal = answerAt
	out := e.Apply([]Change{
		{ID: 2, Stream: Stream{Call: "n", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: answerAt, Learning: Immediate}},
		{ID: 1, Stream: a},
	})
	for _, o := range out {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	expect(t, c.B, first, c.pbA)
	if st := stats(t, e, 1); !st.Confirmed || st.Endpoint != addrOf(c.A) {
		t.Fatalf("after the update the caller's stream has %s (confirmed %v), want %s confirmed", st.Endpoint, st.Confirmed, addrOf(c.A))
	}
	stranger := party(t)
	send(t, stranger, c.paA, rtpPacket(9, 9, []byte("stranger")))
	expectNothing(t, c.B, 100*time.Millisecond)
	eventually(t, "stranger counted as an error", func() bool { return stats(t, e, 1).Errors == 1 })
}

// TestNewPeerNotYetInstalled: a stream re-pointed at a peer whose socket
// has not arrived yet (a re-INVITE that moved the other party to new
// ports) keeps its party's packets in the socket, and they go out of the
// new peer's socket once it is installed, instead of being dropped.
func TestNewPeerNotYetInstalled(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "repoint", 1, 2, Stream{}, Stream{})
	send(t, c.A, c.paA, rtpPacket(1, 0xA1, []byte("before")))
	expect(t, c.B, rtpPacket(1, 0xA1, []byte("before")), c.pbA)

	mustSet(t, e, 1, Stream{Call: "repoint", FD: c.pa, Peer: 3, Signalled: addrOf(c.A)})
	send(t, c.A, c.paA, rtpPacket(2, 0xA1, []byte("while the new peer is on its way")))
	expectNothing(t, c.B, 100*time.Millisecond)
	fd3, pb3 := proxySock(t)
	mustSet(t, e, 3, Stream{Call: "repoint", FD: fd3, Peer: 1, Signalled: addrOf(c.B)})
	expect(t, c.B, rtpPacket(2, 0xA1, []byte("while the new peer is on its way")), pb3)
}
