package fwd

import (
	"testing"
	"time"
)

// The packet path allocates nothing: one step (epoll wait, recvmmsg,
// latching, counters, sendmmsg) over real sockets, driven by the test.
func TestStepAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e, err := newEngine(Config{Workers: 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := newCall(t)
	c.set(t, e, "c", 1, 2, Stream{LastSignal: time.Now()}, Stream{LastSignal: time.Now()})
	l := e.loops[0]

	p := rtpPacket(1, 0xA, make([]byte, 160))
	buf := make([]byte, 2048)
	c.B.SetReadDeadline(time.Now().Add(time.Minute))
	c.A.SetReadDeadline(time.Now().Add(time.Minute))
	failed := false
	one := func() {
		// A to B through pa and pb, then B to A.
		c.A.WriteToUDPAddrPort(p, c.paA)
		l.step(1000)
		if n, _, err := c.B.ReadFromUDPAddrPort(buf); err != nil || n != len(p) {
			failed = true
		}
		c.B.WriteToUDPAddrPort(p, c.pbA)
		l.step(1000)
		if n, _, err := c.A.ReadFromUDPAddrPort(buf); err != nil || n != len(p) {
			failed = true
		}
	}
	one() // first packets: learning publishes the endpoints
	if allocs := testing.AllocsPerRun(500, one); allocs != 0 {
		t.Errorf("%v allocations per step", allocs)
	}
	if failed {
		t.Fatal("a packet was not forwarded")
	}
	if s := stats(t, e, 1); s.Packets != 502 { // AllocsPerRun runs one extra warm-up
		t.Errorf("stream 1: %d packets, want 502", s.Packets)
	}
}
