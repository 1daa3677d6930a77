package fwd

import (
	"testing"
)

// TestRetireReturnsFinalCounters: Retire hands back every packet the
// stream received, without waiting for a Stats poll to catch up, so that
// totals over streams that come and go (rtp-fwd's metrics) never go down.
func TestRetireReturnsFinalCounters(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	var bytes uint64
	for i := range 3 {
		p := rtpPacket(uint16(i), 1, []byte("retire"))
		send(t, c.A, c.paA, p)
		expect(t, c.B, p, c.pbA)
		bytes += uint64(len(p))
	}
	got, ok := e.Retire(1)
	if !ok || got.Packets != 3 || got.Bytes != bytes {
		t.Fatalf("Retire = %+v, %v; want 3 packets, %d bytes", got, ok, bytes)
	}
	if _, ok := e.Stats(1); ok {
		t.Error("stats of a retired stream")
	}
	if _, ok := e.Retire(1); ok {
		t.Error("a retired stream retired again")
	}
	// After Close the final counters are still there.
	p := rtpPacket(9, 2, []byte("from B"))
	send(t, c.B, c.pbA, p)
	eventually(t, "B's packet counted", func() bool { return stats(t, e, 2).Packets == 1 })
	_ = e.Close()
	if got, ok := e.Retire(2); !ok || got.Packets != 1 {
		t.Fatalf("Retire after Close = %+v, %v; want 1 packet", got, ok)
	}
}
