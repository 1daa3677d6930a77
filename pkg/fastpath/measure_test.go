package fastpath

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/testutil"
	xipv4 "golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// TestMeasureCPU compares the whole machine's CPU per forwarded packet
// (/proc/stat, all CPUs: in-kernel forwarding is charged to whatever runs
// the softirq) with the fast path and with rtp-fwd's userspace engine
// (pkg/fwd), same streams and rate, one after the other; and, as a floor,
// with the kernel's IP forwarding (the proxy namespace as a router). The
// sender (caller A) and the receiver (caller B) are Go sockets in this
// process, the same in every mode, so the differences are the forwarding.
//
// It is a measurement, not a check: it runs only with
// RTPKIT_FASTPATH_MEASURE=1 (RTPKIT_FASTPATH_PPS, default 20000;
// RTPKIT_FASTPATH_STREAMS, default 100; RTPKIT_FASTPATH_SECONDS per run,
// default 3; RTPKIT_FASTPATH_ROUNDS of the three modes, default 3, medians
// reported) and fails only on loss or corrupted payloads.
func TestMeasureCPU(t *testing.T) {
	if os.Getenv("RTPKIT_FASTPATH_MEASURE") == "" {
		t.Skip("a measurement: set RTPKIT_FASTPATH_MEASURE=1 to run it")
	}
	pps := testutil.EnvInt(t, "RTPKIT_FASTPATH_PPS", 20000)
	streams := testutil.EnvInt(t, "RTPKIT_FASTPATH_STREAMS", 100)
	secs := testutil.EnvInt(t, "RTPKIT_FASTPATH_SECONDS", 3)
	rounds := testutil.EnvInt(t, "RTPKIT_FASTPATH_ROUNDS", 3)

	fp := openOrSkip(t, Options{})
	defer fp.Close()
	bd := newBed(t)
	bd.attach(t, fp, bd.paIdx)

	// Per stream: a local socket on pa (A sends there) and an egress
	// socket on pb; all streams go to B's one socket.
	type stream struct {
		local, egress     netip.AddrPort
		localFD, egressFD int
	}
	ss := make([]stream, streams)
	for i := range ss {
		s := &ss[i]
		s.local = netip.AddrPortFrom(addrPA, uint16(20000+2*i))
		s.egress = netip.AddrPortFrom(addrPB, uint16(20000+2*i))
		s.localFD = rawUDP(t, bd.p, s.local)
		s.egressFD = rawUDP(t, bd.p, s.egress)
	}
	aSock := listen(t, bd.a, callerA)
	bSock := listen(t, bd.b, callerB)
	bSock.SetReadBuffer(8 << 20)

	// The sender and the receiver use sendmmsg/recvmmsg (batches of a
	// millisecond's packets), so that their own cost, the same in every
	// mode, does not drown the forwarding's.
	aConn, bConn := xipv4.NewPacketConn(aSock), xipv4.NewPacketConn(bSock)
	results := map[string][]float64{}
	run := func(name string, dst func(i int) netip.AddrPort) {
		t.Helper()
		var got, bad atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			msgs := make([]xipv4.Message, 64)
			for i := range msgs {
				msgs[i].Buffers = [][]byte{make([]byte, 2048)}
			}
			want := rtp(0, 0)[12:]
			for {
				bSock.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, err := bConn.ReadBatch(msgs, 0)
				if err != nil {
					return
				}
				for _, m := range msgs[:n] {
					if m.N != 172 || !bytes.Equal(m.Buffers[0][12:m.N], want) {
						bad.Add(1)
					}
				}
				got.Add(int64(n))
			}
		}()
		total := pps * secs
		payload := rtp(0, 0)
		addrs := make([]net.Addr, streams)
		for i := range addrs {
			addrs[i] = net.UDPAddrFromAddrPort(dst(i))
		}
		batch := make([]xipv4.Message, 0, 1024)
		t0, busy0 := time.Now(), machineBusy(t)
		tick := time.NewTicker(time.Millisecond)
		sent := 0
		for sent < total {
			<-tick.C
			due := min(int(time.Since(t0).Seconds()*float64(pps))-sent, total-sent, cap(batch))
			batch = batch[:0]
			for i := range due {
				batch = append(batch, xipv4.Message{Buffers: [][]byte{payload}, Addr: addrs[(sent+i)%streams]})
			}
			for off := 0; off < len(batch); {
				n, err := aConn.WriteBatch(batch[off:], 0)
				if err != nil {
					t.Fatalf("%s: send: %v", name, err)
				}
				off, sent = off+n, sent+n
			}
		}
		tick.Stop()
		<-done // 500 ms without a packet
		elapsed, busy := time.Since(t0), machineBusy(t)-busy0
		perPkt := busy.Seconds() / float64(sent) * 1e6
		t.Logf("%-9s %d streams, %d pps: sent %d, received %d (bad %d) in %s; machine CPU %.2fs = %.2f µs/packet",
			name, streams, pps, sent, got.Load(), bad.Load(), elapsed.Round(time.Millisecond), busy.Seconds(), perPkt)
		if got.Load() != int64(sent) || bad.Load() != 0 {
			t.Errorf("%s: %d sent, %d received, %d bad", name, sent, got.Load(), bad.Load())
		}
		results[name] = append(results[name], perPkt)
	}

	local := func(i int) netip.AddrPort { return ss[i].local }
	kernel := func() {
		for _, s := range ss {
			if err := fp.Put(s.local, Entry{Source: s.egress, Dest: callerB, IfIndex: bd.pbIdx}); err != nil {
				t.Fatal(err)
			}
		}
		run("kernel", local)
		for _, s := range ss {
			if _, err := fp.Delete(s.local); err != nil {
				t.Fatal(err)
			}
		}
	}
	userspace := func() { // rtp-fwd's engine
		eng, err := fwd.New(fwd.Config{MaxStreamPPS: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		for i, s := range ss {
			a, b := fwd.StreamID(2*i+1), fwd.StreamID(2*i+2)
			call := "call-" + strconv.Itoa(i)
			if err := eng.Set(b, fwd.Stream{Call: call, FD: s.egressFD, Peer: a, Signalled: callerB, Flags: fwd.Asymmetric}); err != nil {
				t.Fatal(err)
			}
			if err := eng.Set(a, fwd.Stream{Call: call, FD: s.localFD, Peer: b, Signalled: callerA, Flags: fwd.Asymmetric}); err != nil {
				t.Fatal(err)
			}
		}
		run("userspace", local)
	}
	// Kernel IP forwarding, as a floor: A sends to B's address itself,
	// the proxy namespace routes.
	bd.p.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	testutil.AddRoute(t, bd.a, "10.61.2.0/24", addrPA.String())
	testutil.AddRoute(t, bd.b, "10.61.1.0/24", addrPB.String())
	routed := func() { run("routed", func(int) netip.AddrPort { return callerB }) }

	for range rounds {
		kernel()
		userspace()
		routed()
	}
	med := func(name string) float64 {
		v := slices.Clone(results[name])
		slices.Sort(v)
		return v[len(v)/2]
	}
	k, u, r := med("kernel"), med("userspace"), med("routed")
	t.Logf("medians of %d rounds: kernel %.2f, userspace %.2f, routed %.2f µs/packet", rounds, k, u, r)
	t.Logf("fast path / userspace, whole machine: %.0f %%; above the routed floor: %.2f vs %.2f µs/packet = %.0f %%",
		100*k/u, k-r, u-r, 100*(k-r)/(u-r))
}

// machineBusy returns the CPU time all CPUs spent not idle (nor waiting
// for I/O) since boot, from the first line of /proc/stat.
func machineBusy(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		t.Fatalf("/proc/stat: %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q: %v", line, err)
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// already in user and nice).
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// rawUDP returns a non-blocking UDP socket bound to ap in ns, closed at
// test end.
func rawUDP(t *testing.T, ns *testutil.NetNS, ap netip.AddrPort) int {
	t.Helper()
	var fd int
	if err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
	}); err != nil {
		t.Fatalf("socket %s: %v", ap, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}
