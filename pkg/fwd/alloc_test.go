package fwd

import (
	"testing"
	"time"

	"github.com/pion/srtp/v3"
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

// The SRTP path allocates nothing either: A's packets are decrypted on
// the way in, B's encrypted on the way to A (pion/srtp with buffers of the
// loop), for an HMAC profile and a GCM one.
func TestStepAllocsSRTP(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, p := range []srtp.ProtectionProfile{srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.ProtectionProfileAeadAes128Gcm, ProfileF8128HmacSha1_80} {
		t.Run(SRTP{Profile: p}.String(), func(t *testing.T) {
			e, err := newEngine(Config{Workers: 1}, true)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			c := newCall(t)
			fromA, aEnc, _ := testKey(t, p)
			toA, _, _ := testKey(t, p)
			c.set(t, e, "c", 1, 2, Stream{LastSignal: time.Now(), SRTPIn: fromA, SRTPOut: toA}, Stream{LastSignal: time.Now()})
			l := e.loops[0]

			const runs = 500
			var packets [runs + 2][]byte // encrypted ahead: the test's own work must not count
			for i := range packets {
				packets[i] = encryptRTP(t, aEnc, rtpPacket(uint16(i+1), 0xA, make([]byte, 160)))
			}
			plain := rtpPacket(1, 0xB, make([]byte, 160))
			buf := make([]byte, 2048)
			c.B.SetReadDeadline(time.Now().Add(time.Minute))
			c.A.SetReadDeadline(time.Now().Add(time.Minute))
			failed, next := false, 0
			one := func() {
				c.A.WriteToUDPAddrPort(packets[next], c.paA)
				next++
				l.step(1000)
				if n, _, err := c.B.ReadFromUDPAddrPort(buf); err != nil || n != 12+160 {
					failed = true
				}
				c.B.WriteToUDPAddrPort(plain, c.pbA)
				l.step(1000)
				if n, _, err := c.A.ReadFromUDPAddrPort(buf); err != nil || n <= len(plain) {
					failed = true
				}
			}
			one()
			if allocs := testing.AllocsPerRun(runs, one); allocs != 0 {
				t.Errorf("%v allocations per step", allocs)
			}
			if failed {
				t.Fatal("a packet was not forwarded")
			}
			if s := stats(t, e, 1); s.Packets != runs+2 || s.SRTPFailures != 0 {
				t.Errorf("stream 1: %d packets, %d SRTP failures", s.Packets, s.SRTPFailures)
			}
		})
	}
}
