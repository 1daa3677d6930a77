package fwd

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// listenAt binds a UDP socket to ap (port 0: any).
func listenAt(t *testing.T, ap netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Skipf("cannot bind %s: %v", ap, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHeuristicLearning: in the window the endpoint is the best-ranked
// source seen so far (exact match, then same address, then same port,
// then any), whichever sent last; the first packet after the window
// confirms the best-ranked source; new signalling starts a new ranking.
func TestHeuristicLearning(t *testing.T) {
	const window = 600 * time.Millisecond
	e := newTestEngine(t, Config{Workers: 1, LearnWindow: window})
	c := newCall(t)
	sig := listenAt(t, netip.MustParseAddrPort("127.0.0.1:0"))
	sigAP := addrOf(sig)
	sameAddr := listenAt(t, netip.MustParseAddrPort("127.0.0.1:0"))
	samePort := listenAt(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), sigAP.Port()))
	neither := listenAt(t, netip.MustParseAddrPort("127.0.0.3:0"))
	signal := time.Now()
	a := Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: sigAP, Learning: Heuristic, LastSignal: signal}
	mustSet(t, e, 1, a)
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: signal})

	seq := uint16(0)
	from := func(conn *net.UDPConn) {
		t.Helper()
		seq++
		p := rtpPacket(seq, 0xA, []byte("a"))
		send(t, conn, c.paA, p)
		expect(t, c.B, p, c.pbA) // every source is forwarded while unconfirmed
	}
	for _, step := range []struct {
		name string
		src  *net.UDPConn
		want *net.UDPConn
	}{
		{"any source", neither, neither},
		{"same port beats any", samePort, samePort},
		{"any does not beat same port", neither, samePort},
		{"same address beats same port", sameAddr, sameAddr},
		{"exact match beats same address", sig, sig},
		{"nothing beats the exact match", sameAddr, sig},
	} {
		from(step.src)
		checkEndpoint(t, e, 1, addrOf(step.want), false)
	}
	if time.Since(signal) > window-100*time.Millisecond {
		t.Fatal("inconclusive: the window was over before the ranking was checked")
	}
	time.Sleep(time.Until(signal.Add(window + 50*time.Millisecond)))
	from(neither) // ends the window: the best-ranked source is confirmed
	checkEndpoint(t, e, 1, sigAP, true)

	// New signalling: a new ranking, unconfirmed, from scratch.
	a.LastSignal = time.Now()
	mustSet(t, e, 1, a)
	from(neither)
	checkEndpoint(t, e, 1, addrOf(neither), false)
}
