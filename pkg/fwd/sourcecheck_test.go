package fwd

import (
	"testing"
	"time"
)

// strictCall is a call whose A stream is strict and confirmed on A's real
// socket (immediate learning, one packet sent), with a third socket, the
// spoofer, sending from another source.
func strictCall(t *testing.T, cfg Config) (*Engine, *latchCall) {
	t.Helper()
	cfg.Workers = 1
	e := newTestEngine(t, cfg)
	c := newLatchCall(t)
	now := time.Now()
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.aReal), Flags: StrictSource, Learning: Immediate, LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: addrOf(c.B), LastSignal: now})
	c.fromA(t, c.aReal, 1, false)
	checkEndpoint(t, e, 1, addrOf(c.aReal), true)
	eventually(t, "first packet counted", func() bool { return !stats(t, e, 1).LastPacket.IsZero() })
	return e, c
}

// TestDroppedPacketsAreNotActivity: a packet the engine drops (strict
// source, truncated, over the flood cap) counts as an error or a drop, but
// neither as a packet nor as the stream's last packet, which the no-media
// timers read: one spoofed packet per timeout must not keep a call alive.
func TestDroppedPacketsAreNotActivity(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		send func(t *testing.T, c *latchCall)
		// dropped reports whether the packet was counted as dropped.
		dropped func(Counters) bool
	}{
		{
			name:    "strict source",
			send:    func(t *testing.T, c *latchCall) { c.fromA(t, c.aSig, 2, true) },
			dropped: func(s Counters) bool { return s.Errors == 1 },
		},
		{
			name: "truncated",
			send: func(t *testing.T, c *latchCall) {
				send(t, c.aReal, c.paA, rtpPacket(2, 0xA, make([]byte, bufSize+100)))
				expectNothing(t, c.B, 50*time.Millisecond)
			},
			dropped: func(s Counters) bool { return s.Errors == 1 },
		},
		{
			// One packet a second, no burst: the second packet within a
			// second is over the cap.
			name:    "flood cap",
			cfg:     Config{MaxStreamPPS: 1, Batch: 1},
			send:    func(t *testing.T, c *latchCall) { c.fromA(t, c.aReal, 2, true) },
			dropped: func(s Counters) bool { return s.FloodDrops == 1 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, c := strictCall(t, tc.cfg)
			before := stats(t, e, 1)
			time.Sleep(20 * time.Millisecond) // a later wakeup: a later LastPacket
			tc.send(t, c)
			eventually(t, "the drop counted", func() bool { return tc.dropped(stats(t, e, 1)) })
			after := stats(t, e, 1)
			if after.Packets != before.Packets || after.Bytes != before.Bytes || !after.LastPacket.Equal(before.LastPacket) {
				t.Errorf("after a dropped packet: packets %d bytes %d last %v; before: packets %d bytes %d last %v",
					after.Packets, after.Bytes, after.LastPacket.Format(time.StampMicro),
					before.Packets, before.Bytes, before.LastPacket.Format(time.StampMicro))
			}
		})
	}
}

// TestSpoofedFloodKeepsPartyBudget: packets from a source that strict
// source refuses do not use up the real party's flood budget.
func TestSpoofedFloodKeepsPartyBudget(t *testing.T) {
	// 10 packets a second, bursts of 10 (Batch): the spoofer's 30 packets
	// would use up a second's budget.
	e, c := strictCall(t, Config{MaxStreamPPS: 10, Batch: 10})
	time.Sleep(1100 * time.Millisecond) // the first packet's share is back
	for i := range 30 {
		send(t, c.aSig, c.paA, rtpPacket(uint16(100+i), 0x5, []byte("spoof")))
	}
	eventually(t, "spoofed packets dropped", func() bool { s := stats(t, e, 1); return s.Errors+s.FloodDrops == 30 })
	expectNothing(t, c.B, 20*time.Millisecond)
	if s := stats(t, e, 1); s.FloodDrops != 0 {
		t.Errorf("spoofed packets: %d strict-source errors, %d flood drops: they used the party's budget", s.Errors, s.FloodDrops)
	}
	c.fromA(t, c.aReal, 2, false)
}
