package fwd

import (
	"sync/atomic"
	"testing"
	"time"
)

// slowProc is a media processor that takes a long time per packet (a
// codec far too slow) and then passes the packet on.
type slowProc struct{ n *atomic.Int64 }

func (p slowProc) Process(pkt []byte, emit func([]byte)) {
	time.Sleep(20 * time.Millisecond)
	p.n.Add(1)
	emit(pkt)
}

// TestMediaNeverBlocksTheLoop: with one loop, a transcoded call whose
// processor is far slower than its packets arrive, and a plain call on the
// same loop: every packet of the plain call is forwarded at once, the
// transcoded call's excess is dropped and counted (MediaDrops), and what
// its processor makes still reaches the peer.
func TestMediaNeverBlocksTheLoop(t *testing.T) {
	var processed atomic.Int64
	e := newTestEngine(t, Config{Workers: 1, MediaWorkers: 1, MaxStreamPPS: -1,
		Media: func(string, StreamID, string) (MediaProc, error) { return slowProc{&processed}, nil }})
	slow, plain := newCall(t), newCall(t)
	slow.set(t, e, "slow", 1, 2, Stream{Media: "slow"}, Stream{})
	plain.set(t, e, "plain", 3, 4, Stream{}, Stream{})

	// 3000 packets at once into the slow call: its processor takes
	// 20 ms each, so the queue (1024) fills and the rest is dropped.
	for i := range 3000 {
		send(t, slow.A, slow.paA, rtpPacket(uint16(i), 0x51, []byte("slow")))
	}
	// Meanwhile the plain call's packets go through at once.
	for i := range 20 {
		p := rtpPacket(uint16(i), 0x91, []byte("plain"))
		start := time.Now()
		send(t, plain.A, plain.paA, p)
		expect(t, plain.B, p, plain.pbA)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("plain packet %d took %v behind the slow call", i, d)
		}
	}
	eventually(t, "media drops counted", func() bool { return stats(t, e, 1).MediaDrops > 0 })
	// What the processor makes reaches the slow call's peer.
	buf := make([]byte, 2048)
	_ = slow.B.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := slow.B.Read(buf); err != nil || string(buf[12:n]) != "slow" {
		t.Fatalf("the slow call's peer got %q, %v", buf[:max(n, 0)], err)
	}
	st := stats(t, e, 1)
	t.Logf("slow call: %d packets accepted, %d dropped by its full media queue, %d processed so far", st.Packets, st.MediaDrops, processed.Load())
}
