package fwd

import (
	"testing"
	"time"
)

// TestEcho: a stream with Echo sends its party's packets back to it out
// of the same socket, RTP with the SSRC EchoSSRC gives and everything else
// of the packet unchanged, muxed RTCP untouched; its peer gets none of
// them, while the peer's own packets still reach the echoed party.
func TestEcho(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "echo", 1, 2, Stream{Flags: Echo | RTCPMux}, Stream{})

	p := rtpPacket(7, 0xA1, []byte("hello"))
	want := append([]byte(nil), p...)
	want[8], want[9], want[10], want[11] = byte(EchoSSRC(0xA1)>>24), byte(EchoSSRC(0xA1)>>16), byte(EchoSSRC(0xA1)>>8), byte(EchoSSRC(0xA1))
	send(t, c.A, c.paA, p)
	expect(t, c.A, want, c.paA)
	expectNothing(t, c.B, 50*time.Millisecond)
	if got := EchoSSRC(0xA1); got == 0xA1 || EchoSSRC(got) != 0xA1 {
		t.Errorf("EchoSSRC(0xA1) = %#x: want another SSRC that maps back", got)
	}

	r := rtcpPacket(0xA1)
	send(t, c.A, c.paA, r)
	expect(t, c.A, r, c.paA)
	expectNothing(t, c.B, 50*time.Millisecond)

	q := rtpPacket(1, 0xB2, []byte("from b"))
	send(t, c.B, c.pbA, q)
	expect(t, c.A, q, c.paA)

	eventually(t, "A's counters", func() bool {
		s := stats(t, e, 1)
		return s.Packets == 2 && s.SSRC == 0xA1
	})
}
