package fwd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestForwardBothWays(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	c.set(t, e, "call-1", 1, 2, Stream{LastSignal: time.Now()}, Stream{LastSignal: time.Now()})

	var bytesA, bytesB uint64
	for i := range 50 {
		pa := rtpPacket(uint16(1000+i), 0xA1A1A1A1, []byte(fmt.Sprintf("from A #%d", i)))
		send(t, c.A, c.paA, pa)
		expect(t, c.B, pa, c.pbA)
		bytesA += uint64(len(pa))

		pb := rtpPacket(uint16(7000+i), 0xB2B2B2B2, []byte(fmt.Sprintf("from B, packet %d", i)))
		send(t, c.B, c.pbA, pb)
		expect(t, c.A, pb, c.paA)
		bytesB += uint64(len(pb))
	}
	eventually(t, "counters", func() bool {
		return stats(t, e, 1).Packets == 50 && stats(t, e, 2).Packets == 50
	})
	sa, sb := stats(t, e, 1), stats(t, e, 2)
	if sa.Bytes != bytesA || sb.Bytes != bytesB {
		t.Errorf("bytes %d/%d, want %d/%d", sa.Bytes, sb.Bytes, bytesA, bytesB)
	}
	if sa.SSRC != 0xA1A1A1A1 || sb.SSRC != 0xB2B2B2B2 {
		t.Errorf("SSRC %#x/%#x", sa.SSRC, sb.SSRC)
	}
	if sa.Errors != 0 || sb.Errors != 0 || sa.FloodDrops != 0 {
		t.Errorf("errors %d/%d, drops %d", sa.Errors, sb.Errors, sa.FloodDrops)
	}
	if sa.Endpoint != addrOf(c.A) || sb.Endpoint != addrOf(c.B) {
		t.Errorf("endpoints %s/%s", sa.Endpoint, sb.Endpoint)
	}
	if time.Since(sa.LastPacket) > 5*time.Second {
		t.Errorf("last packet %v", sa.LastPacket)
	}
}

// A party whose answer has not come yet (no usable signalled endpoint)
// gets nothing, and its own packets are relayed but not learned from.
func TestUnknownSinkDropsWithoutError(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	now := time.Now()
	for _, sig := range []netip.AddrPort{{}, netip.MustParseAddrPort("0.0.0.0:4000"), netip.AddrPortFrom(addrOf(c.B).Addr(), 0)} {
		mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Signalled: addrOf(c.A), LastSignal: now})
		mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, Signalled: sig, LastSignal: now})
		before := stats(t, e, 1)
		send(t, c.A, c.paA, rtpPacket(1, 1, nil))
		expectNothing(t, c.B, 50*time.Millisecond)
		eventually(t, "packet counted", func() bool { return stats(t, e, 1).Packets == before.Packets+1 })
		if got := stats(t, e, 1).Errors; got != 0 {
			t.Errorf("signalled %s: errors %d", sig, got)
		}
		// B's early media still reaches A, but B is not learned.
		p := rtpPacket(2, 2, []byte("early"))
		send(t, c.B, c.pbA, p)
		expect(t, c.A, p, c.paA)
		if got := stats(t, e, 2); got.Endpoint.IsValid() || got.Confirmed {
			t.Errorf("signalled %s: B learned %s (confirmed %v)", sig, got.Endpoint, got.Confirmed)
		}
	}
}

func TestRTCPSeparateSockets(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	aR, bR := party(t), party(t)
	paR, paRA := proxySock(t)
	pbR, pbRA := proxySock(t)
	now := time.Now()
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, RTCP: 3, Signalled: addrOf(c.A), LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, RTCP: 4, Signalled: addrOf(c.B), LastSignal: now})
	mustSet(t, e, 3, Stream{Call: "c", FD: paR, Peer: 4, Flags: RTCP, Signalled: addrOf(aR), LastSignal: now})
	mustSet(t, e, 4, Stream{Call: "c", FD: pbR, Peer: 3, Flags: RTCP, Signalled: addrOf(bR), LastSignal: now})

	p := rtcpPacket(0xA1)
	send(t, aR, paRA, p)
	expect(t, bR, p, pbRA)
	p = rtcpPacket(0xB2)
	send(t, bR, pbRA, p)
	expect(t, aR, p, paRA)
	p = rtpPacket(5, 0xA1, []byte("rtp"))
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
	expectNothing(t, bR, 20*time.Millisecond)

	eventually(t, "counters", func() bool { return stats(t, e, 3).Packets == 1 && stats(t, e, 1).Packets == 1 })
	if s := stats(t, e, 3); s.SSRC != 0 {
		t.Errorf("RTCP stream SSRC %#x, want 0", s.SSRC)
	}
}

func TestRTCPMux(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	now := time.Now()

	// A muxes, B does not: B has an RTCP socket pair of its own.
	c := newCall(t)
	bR := party(t)
	pbR, pbRA := proxySock(t)
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Flags: RTCPMux, Signalled: addrOf(c.A), LastSignal: now})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, RTCP: 4, Signalled: addrOf(c.B), LastSignal: now})
	mustSet(t, e, 4, Stream{Call: "c", FD: pbR, Peer: 1, Flags: RTCP, Signalled: addrOf(bR), LastSignal: now})

	rtcp := rtcpPacket(0xA1)
	send(t, c.A, c.paA, rtcp)
	expect(t, bR, rtcp, pbRA)
	rtp := rtpPacket(9, 0xA1, []byte("media"))
	send(t, c.A, c.paA, rtp)
	expect(t, c.B, rtp, c.pbA)
	rtcp = rtcpPacket(0xB2)
	send(t, bR, pbRA, rtcp)
	expect(t, c.A, rtcp, c.paA)
	rtp = rtpPacket(10, 0xB2, []byte("back"))
	send(t, c.B, c.pbA, rtp)
	expect(t, c.A, rtp, c.paA)
	// Muxed RTCP is counted on the RTP stream and does not set the SSRC.
	eventually(t, "counters", func() bool { return stats(t, e, 1).Packets == 2 })
	if s := stats(t, e, 1); s.SSRC != 0xA1 {
		t.Errorf("SSRC %#x", s.SSRC)
	}

	// Both mux: RTCP stays on the RTP sockets.
	d := newCall(t)
	d.set(t, e, "d", 11, 12, Stream{Flags: RTCPMux, LastSignal: now}, Stream{Flags: RTCPMux, LastSignal: now})
	rtcp = rtcpPacket(0xC3)
	send(t, d.A, d.paA, rtcp)
	expect(t, d.B, rtcp, d.pbA)
	send(t, d.B, d.pbA, rtcp)
	expect(t, d.A, rtcp, d.paA)
}

// A flood on one stream is capped and counted, and a second call served by
// the same loop loses nothing.
func TestFlood(t *testing.T) {
	const cap = 1000
	e := newTestEngine(t, Config{Workers: 1, MaxStreamPPS: cap})
	flood, quiet := newCall(t), newCall(t)
	flood.set(t, e, "flood", 1, 2, Stream{}, Stream{})
	quiet.set(t, e, "quiet", 3, 4, Stream{}, Stream{})

	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := rtpPacket(0, 0xF1, make([]byte, 160))
		for range 30000 {
			flood.A.WriteToUDPAddrPort(p, flood.paA)
		}
	}()
	const quietN = 100
	for i := range quietN {
		p := rtpPacket(uint16(i), 0x51, []byte("quiet"))
		send(t, quiet.A, quiet.paA, p)
		expect(t, quiet.B, p, quiet.pbA)
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	// Count what B got of the flood.
	got := 0
	buf := make([]byte, 2048)
	for {
		flood.B.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := flood.B.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
		got++
	}
	elapsed := time.Since(start)
	s := stats(t, e, 1)
	limit := int(elapsed.Seconds()*cap) + cap/10 + 64
	t.Logf("flood: forwarded %d, accepted %d, flood drops %d in %v (limit %d)", got, s.Packets, s.FloodDrops, elapsed, limit)
	if s.FloodDrops == 0 || got == 0 || got > limit || int(s.Packets) > limit {
		t.Errorf("flood: forwarded %d, accepted %d, drops %d; want drops > 0 and at most %d forwarded", got, s.Packets, s.FloodDrops, limit)
	}
	if q := stats(t, e, 3); q.Packets != quietN || q.FloodDrops != 0 {
		t.Errorf("quiet stream: %d packets, %d drops", q.Packets, q.FloodDrops)
	}
}

func TestRemoveStopsAtOnce(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	p := rtpPacket(1, 1, []byte("before"))
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)

	e.Remove(1)
	if _, ok := e.Stats(1); ok {
		t.Error("stats of a removed stream")
	}
	p = rtpPacket(2, 1, []byte("after"))
	send(t, c.A, c.paA, p)
	expectNothing(t, c.B, 50*time.Millisecond)
	// The packet is still queued on our socket: the engine no longer reads it.
	buf := make([]byte, 100)
	n, _, err := unix.Recvfrom(c.pa, buf, unix.MSG_DONTWAIT)
	if err != nil || string(buf[:n]) != string(p) {
		t.Fatalf("packet not left on the removed socket: %d bytes, %v", n, err)
	}
	// B's packets have no sink now.
	send(t, c.B, c.pbA, rtpPacket(3, 2, nil))
	expectNothing(t, c.A, 50*time.Millisecond)
	e.Remove(1) // unknown ids are ignored

	// Set again: forwarding resumes.
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	p = rtpPacket(4, 1, []byte("again"))
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestCloseLeavesNoGoroutineAndKeepsSockets(t *testing.T) {
	c := newCall(t)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	e, err := New(Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	p := rtpPacket(1, 1, []byte("x"))
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	eventually(t, "loop goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
	if n := openFDs(t); n != fds {
		t.Errorf("%d descriptors open after Close, %d before New", n, fds)
	}
	// Our sockets are still open and usable.
	for _, fd := range []int{c.pa, c.pb} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			t.Errorf("fd %d closed by the engine: %v", fd, err)
		}
	}
	if err := unix.Sendto(c.pb, []byte("still open"), 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: int(addrOf(c.B).Port())}); err != nil {
		t.Fatal(err)
	}
	expect(t, c.B, []byte("still open"), c.pbA)
	if err := e.Set(3, Stream{FD: c.pa}); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
	e.Remove(1)
}

// Calls spread over loops; every call works on its own loop.
func TestWorkers(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 2})
	if runtime.GOMAXPROCS(0) < 3 {
		t.Errorf("GOMAXPROCS %d with 2 workers", runtime.GOMAXPROCS(0))
	}
	var keys []string
	seen := map[*loop]bool{}
	for i := 0; len(seen) < 2; i++ {
		k := fmt.Sprintf("call-%d", i)
		if l := e.loopFor(k); !seen[l] {
			seen[l] = true
			keys = append(keys, k)
		}
	}
	for i, k := range keys {
		c := newCall(t)
		id := StreamID(10 * (i + 1))
		c.set(t, e, k, id, id+1, Stream{}, Stream{})
		for j := range 10 {
			p := rtpPacket(uint16(j), uint32(id), []byte(k))
			send(t, c.A, c.paA, p)
			expect(t, c.B, p, c.pbA)
			send(t, c.B, c.pbA, p)
			expect(t, c.A, p, c.paA)
		}
	}
}

func TestSetErrors(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 2})
	c := newCall(t)
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	other, _ := proxySock(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tcp)
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5000")

	for _, tc := range []struct {
		name string
		id   StreamID
		s    Stream
		want error
	}{
		{"id 0", 0, Stream{FD: other}, ErrInvalidStream},
		{"negative fd", 3, Stream{FD: -1}, ErrInvalidStream},
		{"self peer", 3, Stream{FD: other, Peer: 3}, ErrInvalidStream},
		{"bad learning", 3, Stream{FD: other, Learning: 7}, ErrInvalidStream},
		{"pipe", 3, Stream{FD: int(r.Fd())}, unix.ENOTSOCK},
		{"tcp", 3, Stream{FD: tcp}, ErrInvalidStream},
		{"fd in use", 3, Stream{Call: "c", FD: c.pa}, ErrFDInUse},
		{"call changed", 1, Stream{Call: "d", FD: c.pa, Peer: 2}, ErrCallChanged},
		{"peer in other call", 3, Stream{Call: "d", FD: other, Peer: 1}, ErrOtherCall},
		{"v6 on v4 socket", 3, Stream{Call: "c", FD: other, Signalled: v6}, ErrFamily},
	} {
		if err := e.Set(tc.id, tc.s); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, ok := e.Stats(3); ok {
		t.Error("a failed Set left a stream behind")
	}
	// The call still works, and its FD can move to another socket.
	p := rtpPacket(1, 1, nil)
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
	mustSet(t, e, 1, Stream{Call: "c", FD: other, Peer: 2, Signalled: addrOf(c.A)})
	sa, _ := unix.Getsockname(other)
	otherA := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	send(t, c.A, otherA, p)
	expect(t, c.B, p, c.pbA)
	send(t, c.B, c.pbA, p)
	expect(t, c.A, p, otherA)
	send(t, c.A, c.paA, p) // the old socket is out of the set
	expectNothing(t, c.B, 50*time.Millisecond)
	// The old FD is free for another stream.
	mustSet(t, e, 3, Stream{Call: "c", FD: c.pa})
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{{Workers: -1}, {Batch: 2000}, {Batch: -1}, {Wait: time.Microsecond}, {LearnWindow: -time.Second}} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	cfg, err := Config{}.withDefaults()
	if err != nil || cfg.Batch != 64 || cfg.MaxStreamPPS != 30000 || cfg.LearnWindow != 3*time.Second || cfg.Wait != 5*time.Millisecond || cfg.Workers != runtime.NumCPU() {
		t.Errorf("defaults %+v, %v", cfg, err)
	}
}

func TestStatsEndpointRoundTrip(t *testing.T) {
	var p published
	for _, ap := range []netip.AddrPort{{}, netip.MustParseAddrPort("192.0.2.7:40000"), netip.MustParseAddrPort("[2001:db8::5]:6")} {
		for _, conf := range []bool{false, true} {
			p.setEndpoint(ap, conf)
			c := p.read()
			if c.Endpoint != ap || c.Confirmed != conf {
				t.Errorf("%s %v: read %s %v", ap, conf, c.Endpoint, c.Confirmed)
			}
		}
	}
}

func TestIPv6(t *testing.T) {
	sock := func() (int, netip.AddrPort) {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip("no IPv6:", err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
			t.Skip("no ::1:", err)
		}
		sa, _ := unix.Getsockname(fd)
		return fd, netip.AddrPortFrom(netip.IPv6Loopback(), uint16(sa.(*unix.SockaddrInet6).Port))
	}
	pa, paA := sock()
	pb, pbA := sock()
	A, B := party6(t), party6(t)
	e := newTestEngine(t, Config{Workers: 1})
	mustSet(t, e, 1, Stream{Call: "v6", FD: pa, Peer: 2, Signalled: addrOf(A), Learning: Immediate})
	mustSet(t, e, 2, Stream{Call: "v6", FD: pb, Peer: 1, Signalled: addrOf(B), Learning: Immediate})
	p := rtpPacket(1, 6, []byte("six"))
	send(t, A, paA, p)
	expect(t, B, p, pbA)
	send(t, B, pbA, p)
	expect(t, A, p, paA)
	checkEndpoint(t, e, 1, addrOf(A), true)
}

// Garbage collection must be able to stop the loops, which wait in raw
// system calls holding their Ps.
func TestGCStopsLoops(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 2})
	c := newCall(t)
	c.set(t, e, "c", 1, 2, Stream{}, Stream{})
	start := time.Now()
	for range 20 {
		runtime.GC()
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 collections took %v", d)
	}
	p := rtpPacket(1, 1, nil)
	send(t, c.A, c.paA, p)
	expect(t, c.B, p, c.pbA)
}

func TestSendErrorsCountOnSink(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	// Broadcast without SO_BROADCAST: the kernel refuses (EACCES).
	c.set(t, e, "c", 1, 2, Stream{}, Stream{Signalled: netip.MustParseAddrPort("255.255.255.255:5004"), Learning: Off})
	send(t, c.A, c.paA, rtpPacket(1, 1, nil))
	send(t, c.A, c.paA, rtpPacket(2, 1, nil))
	eventually(t, "sink errors", func() bool { return stats(t, e, 2).Errors == 2 })
	if s := stats(t, e, 1); s.Errors != 0 || s.Packets != 2 {
		t.Errorf("ingress stream: %d packets, %d errors", s.Packets, s.Errors)
	}
}

// One wakeup takes at most Batch packets from a socket, and a batch whose
// packets leave from different sockets (muxed RTCP to a non-muxing peer)
// is sent in order, socket by socket.
func TestBatching(t *testing.T) {
	e, err := newEngine(Config{Workers: 1, Batch: 4}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l := e.loops[0]
	c := newCall(t)
	bR := party(t)
	pbR, pbRA := proxySock(t)
	mustSet(t, e, 1, Stream{Call: "c", FD: c.pa, Peer: 2, Flags: RTCPMux, Signalled: addrOf(c.A)})
	mustSet(t, e, 2, Stream{Call: "c", FD: c.pb, Peer: 1, RTCP: 4, Signalled: addrOf(c.B)})
	mustSet(t, e, 4, Stream{Call: "c", FD: pbR, Peer: 1, Flags: RTCP, Signalled: addrOf(bR)})

	var rtp, rtcp [][]byte
	for i := range 5 {
		p := rtpPacket(uint16(i), 1, []byte{byte(i)})
		q := rtcpPacket(uint32(i))
		rtp, rtcp = append(rtp, p), append(rtcp, q)
		send(t, c.A, c.paA, p)
		send(t, c.A, c.paA, q)
	}
	l.step(1000)
	if s := stats(t, e, 1); s.Packets != 4 {
		t.Fatalf("one wakeup took %d packets, want 4", s.Packets)
	}
	for range 2 {
		l.step(1000)
	}
	for i := range 5 {
		expect(t, c.B, rtp[i], c.pbA)
		expect(t, bR, rtcp[i], pbRA)
	}
	if s := stats(t, e, 1); s.Packets != 10 {
		t.Errorf("%d packets, want 10", s.Packets)
	}
}

// TestKernelDrops: datagrams the kernel dropped on a full receive queue
// before the loop could read them are reported from SO_RXQ_OVFL.
func TestKernelDrops(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	for _, o := range []struct{ opt, val int }{{unix.SO_RXQ_OVFL, 1}, {unix.SO_RCVBUF, 1024}} {
		if err := unix.SetsockoptInt(c.pa, unix.SOL_SOCKET, o.opt, o.val); err != nil {
			t.Fatal(err)
		}
	}
	// Fill A's socket while no loop reads it: the kernel drops the excess.
	const burst = 200
	p := rtpPacket(1, 0xD1, make([]byte, 160))
	for range burst {
		send(t, c.A, c.paA, p)
	}
	c.set(t, e, "drops", 1, 2, Stream{}, Stream{})
	// The drop count travels with the next datagram queued after the drops.
	eventually(t, "kernel drops", func() bool {
		send(t, c.A, c.paA, p)
		return stats(t, e, 1).KernelDrops > 0
	})
	s := stats(t, e, 1)
	t.Logf("received %d, kernel drops %d", s.Packets, s.KernelDrops)
	if s.KernelDrops >= burst || s.Packets+s.KernelDrops < burst {
		t.Errorf("received %d, kernel drops %d of a burst of %d", s.Packets, s.KernelDrops, burst)
	}
	if q := stats(t, e, 2); q.KernelDrops != 0 {
		t.Errorf("B's socket reports %d kernel drops", q.KernelDrops)
	}
}

// TestWaitsForPeer: packets that reach a stream before its peer is
// installed (sockets coming back one by one after a restart) wait in the
// socket and are forwarded once the peer is there, instead of being read
// with nowhere to go.
func TestWaitsForPeer(t *testing.T) {
	e := newTestEngine(t, Config{Workers: 1})
	c := newCall(t)
	mustSet(t, e, 1, Stream{Call: "wait", FD: c.pa, Peer: 2, Signalled: addrOf(c.A)})
	var sent [][]byte
	for i := range 5 {
		p := rtpPacket(uint16(i), 0xAA, []byte("queued"))
		send(t, c.A, c.paA, p)
		sent = append(sent, p)
	}
	time.Sleep(50 * time.Millisecond) // the loop must leave them alone
	mustSet(t, e, 2, Stream{Call: "wait", FD: c.pb, Peer: 1, Signalled: addrOf(c.B)})
	for _, p := range sent {
		expect(t, c.B, p, c.pbA)
	}
}
