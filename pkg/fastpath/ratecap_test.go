package fastpath

import (
	"testing"
	"time"
)

// TestKernelRateCap: a non-strict entry forwards packets from any source,
// so the program caps each entry's rate as userspace does: a flood from a
// stranger is forwarded up to the cap and the rest is dropped in the
// kernel and counted; once the flood stops, the stream flows again.
func TestKernelRateCap(t *testing.T) {
	for _, ad := range families {
		t.Run(ad.name, func(t *testing.T) { testKernelRateCap(t, ad) })
	}
}

func testKernelRateCap(t *testing.T, ad netAddrs) {
	local, egress, callerA, stranger, callerB := ad.local, ad.egress, ad.callerA, ad.stranger, ad.callerB
	fp := openOrSkip(t, Options{MaxStreams: 1024})
	defer fp.Close()
	bd := newBed(t)
	listen(t, bd.p, local)
	listen(t, bd.p, egress)
	aSock := listen(t, bd.a, callerA)
	strangerSock := listen(t, bd.a, stranger)
	bSock := listen(t, bd.b, callerB)
	bd.attach(t, fp, bd.paIdx)

	// 100 packets a second: 10 per 100 ms window.
	const pps, flood = 100, 500
	if err := fp.Put(local, withCap(Entry{Source: egress, Dest: callerB, Expect: callerA, IfIndex: bd.pbIdx}, pps)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range flood {
		send(t, strangerSock, local, rtp(uint16(i), 0x5))
	}
	elapsed := time.Since(start)
	got := 0
	buf := make([]byte, 2048)
	for {
		bSock.SetReadDeadline(time.Now().Add(quiet))
		if _, _, err := bSock.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
		got++
	}
	c, err := fp.Counters(local)
	if err != nil {
		t.Fatal(err)
	}
	// The bound counts whole windows the flood could have touched, and
	// one window's worth for CPUs racing on a window's start.
	limit := (int(elapsed/(100*time.Millisecond))+2)*pps/10 + pps/10
	t.Logf("flood of %d in %v: forwarded %d (limit %d), counters %s", flood, elapsed, got, limit, c)
	if got > limit {
		t.Errorf("the kernel forwarded %d of a flood of %d packets in %v, want at most %d", got, flood, elapsed, limit)
	}
	if int(c.Packets) != got || int(c.Packets+floodDrops(c)) != flood {
		t.Errorf("counters %s: want %d forwarded and %d flood drops", c, got, flood-got)
	}

	// The next window lets the party through again.
	time.Sleep(150 * time.Millisecond)
	p := rtp(1000, 0xA)
	send(t, aSock, local, p)
	expect(t, bSock, p, egress)
}
