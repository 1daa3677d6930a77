package fastpath

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestAttachModeString(t *testing.T) {
	for m, want := range map[AttachMode]string{
		AttachAuto:     "auto",
		AttachTCX:      "tcx",
		AttachClsact:   "clsact",
		AttachMode(42): "AttachMode(42)",
	} {
		if got := m.String(); got != want {
			t.Errorf("AttachMode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestOpenRefusesUnknownMode(t *testing.T) {
	if fp, err := Open(Options{Attach: AttachMode(9)}); err == nil {
		fp.Close()
		t.Fatal("Open accepted attach mode 9")
	}
}

// ingressFilters returns the bpf filters on the ingress hook of device
// ifindex in ns (none if it has no clsact qdisc).
func ingressFilters(t *testing.T, ns *testutil.NetNS, ifindex int) []*netlink.BpfFilter {
	t.Helper()
	var out []*netlink.BpfFilter
	if err := ns.Do(func() error {
		h, err := newNetlink()
		if err != nil {
			return err
		}
		defer h.Close()
		if has, err := hasClsact(h, ifindex); err != nil || !has {
			return err
		}
		fs, err := h.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			return err
		}
		for _, f := range fs {
			if bf, ok := f.(*netlink.BpfFilter); ok {
				out = append(out, bf)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("list ingress filters of ifindex %d: %v", ifindex, err)
	}
	return out
}

// tcxPrograms returns the IDs of the programs attached with TCX to the
// ingress of device ifindex in ns.
func tcxPrograms(t *testing.T, ns *testutil.NetNS, ifindex int) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	if err := ns.Do(func() error {
		r, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		for _, p := range r.Programs {
			ids = append(ids, p.ID)
		}
		return nil
	}); err != nil {
		t.Fatalf("query TCX programs of ifindex %d: %v", ifindex, err)
	}
	return ids
}

// progID is the ID of fp's program.
func progID(t *testing.T, fp *FastPath) ebpf.ProgramID {
	t.Helper()
	info, err := fp.objs.FastpathIngress.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Skip("this kernel does not report program IDs")
	}
	return id
}

// checkHooks checks that the program with ID want (0: none) is the only
// one hooked into the ingress of device ifindex in ns, in the given mode,
// and that nothing is hooked there in the other mode.
func checkHooks(t *testing.T, ns *testutil.NetNS, ifindex int, mode AttachMode, want ebpf.ProgramID) {
	t.Helper()
	filters := ingressFilters(t, ns, ifindex)
	tcx := tcxPrograms(t, ns, ifindex)
	switch {
	case want == 0:
		if len(filters) != 0 || len(tcx) != 0 {
			t.Errorf("ifindex %d: %d filters, TCX programs %v; want none", ifindex, len(filters), tcx)
		}
	case mode == AttachClsact:
		if len(tcx) != 0 {
			t.Errorf("ifindex %d: TCX programs %v besides the filter", ifindex, tcx)
		}
		if len(filters) != 1 {
			t.Fatalf("ifindex %d: %d bpf filters on ingress, want exactly one: %+v", ifindex, len(filters), filters)
		}
		f := filters[0]
		if f.Name != ClsactFilterName || f.Priority != ClsactFilterPriority || f.Handle != ClsactFilterHandle ||
			!f.DirectAction || f.Protocol != unix.ETH_P_ALL || ebpf.ProgramID(f.Id) != want {
			t.Errorf("ifindex %d: filter %+v (%s), want %s prio %d handle %#x direct-action protocol all program %d",
				ifindex, f, f.Name, ClsactFilterName, ClsactFilterPriority, ClsactFilterHandle, want)
		}
	default:
		if len(filters) != 0 {
			t.Errorf("ifindex %d: bpf filters %+v besides TCX", ifindex, filters)
		}
		if !slices.Equal(tcx, []ebpf.ProgramID{want}) {
			t.Errorf("ifindex %d: TCX programs %v, want [%d]", ifindex, tcx, want)
		}
	}
}

// TestAttachModes forwards through the program attached in each mode
// (AttachAuto is TCX on this kernel if it has TCX), checks the hook, and
// that Detach, Attach again and Close (without PinDir) leave nothing.
func TestAttachModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode AttachMode
	}{
		{"auto", AttachAuto},
		{"tcx", AttachTCX},
		{"clsact", AttachClsact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := openOrSkip(t, Options{MaxStreams: 64, Attach: tc.mode})
			defer fp.Close()
			mode := fp.Mode()
			switch {
			case tc.mode != AttachAuto && mode != tc.mode:
				t.Fatalf("Mode() = %s, want %s", mode, tc.mode)
			case tc.mode == AttachAuto && mode != AttachTCX && mode != AttachClsact:
				t.Fatalf("Mode() = %s after auto", mode)
			}
			t.Logf("mode %s", mode)
			bd := newBed(t)
			localSock := listen(t, bd.p, local)
			aSock := listen(t, bd.a, callerA)
			strangerSock := listen(t, bd.a, stranger)
			bSock := listen(t, bd.b, callerB)
			bd.attach(t, fp, bd.paIdx)
			bd.attach(t, fp, bd.paIdx) // no-op
			id := progID(t, fp)
			checkHooks(t, bd.p, bd.paIdx, mode, id)

			// Not strict, but with the latched source: kept for Streams.
			entry := Entry{Source: egress, Dest: callerB, Expect: callerA, IfIndex: bd.pbIdx}
			if err := fp.Put(local, entry); err != nil {
				t.Fatal(err)
			}
			seq := uint16(0)
			next := func() []byte { seq++; return rtp(seq, 0x5eed0001) }
			for range 10 {
				p := next()
				send(t, aSock, local, p)
				expect(t, bSock, p, egress)
			}
			p := next()
			send(t, strangerSock, local, p) // any source: not strict
			expect(t, bSock, p, egress)
			expectNothing(t, localSock)
			if streams, err := fp.Streams(); err != nil || streams[local] != entry {
				t.Errorf("streams %+v (%v), want %s → %+v", streams, err, local, entry)
			}

			// Fully checksummed datagrams (see TestForwardInNamespaces):
			// B's kernel verifies the rewritten checksums.
			sendChecksummed(t, bd, callerA.Port(), local, bSock, egress, next)
			if c, _ := fp.Counters(local); c.Packets != 13 || c.Bytes != 13*172 {
				t.Errorf("counters %s, want 13 packets of 172 bytes", c)
			}

			toStack := func() {
				t.Helper()
				p := next()
				send(t, aSock, local, p)
				expect(t, localSock, p, callerA)
				expectNothing(t, bSock)
			}
			if err := fp.Detach(bd.paIdx); err != nil {
				t.Fatal(err)
			}
			checkHooks(t, bd.p, bd.paIdx, mode, 0)
			toStack()
			if err := fp.Detach(bd.paIdx); err != nil {
				t.Errorf("second Detach: %v", err)
			}

			// Attach again, then Close without PinDir: detached too.
			bd.attach(t, fp, bd.paIdx)
			checkHooks(t, bd.p, bd.paIdx, mode, id)
			p = next()
			send(t, aSock, local, p)
			expect(t, bSock, p, egress)
			if err := fp.Close(); err != nil {
				t.Fatal(err)
			}
			checkHooks(t, bd.p, bd.paIdx, mode, 0)
			toStack()
			if err := fp.Attach(bd.paIdx); err == nil {
				t.Error("Attach after Close succeeded")
			}
		})
	}
}

// TestClsactRefusesForeignFilter checks that Attach does not replace a
// filter of someone else's at our priority and handle, and leaves it.
func TestClsactRefusesForeignFilter(t *testing.T) {
	fp := openOrSkip(t, Options{MaxStreams: 64, Attach: AttachClsact})
	defer fp.Close()
	bd := newBed(t)
	foreign := ourFilter(bd.paIdx, fp.objs.FastpathIngress.FD())
	foreign.Name = "someone_else"
	if err := bd.p.Do(func() error {
		h, err := newNetlink()
		if err != nil {
			return err
		}
		defer h.Close()
		if err := ensureClsact(h, bd.paIdx); err != nil {
			return err
		}
		return h.FilterAdd(foreign)
	}); err != nil {
		t.Fatal(err)
	}
	err := bd.p.Do(func() error { return fp.Attach(bd.paIdx) })
	if err == nil {
		t.Fatal("Attach replaced a foreign filter")
	}
	t.Logf("Attach: %v", err)
	if fs := ingressFilters(t, bd.p, bd.paIdx); len(fs) != 1 || fs[0].Name != "someone_else" {
		t.Errorf("filters after a refused Attach: %+v", fs)
	}
}

// stream sends n packets (seq 1..n, SSRC ssrc) from c to dst, one every
// interval, on its own goroutine, and returns a channel closed when done,
// with the first send error if any.
func stream(c *net.UDPConn, dst netip.AddrPort, n int, ssrc uint32, interval time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer close(done)
		next := time.Now()
		for i := 1; i <= n; i++ {
			if _, err := c.WriteToUDPAddrPort(rtp(uint16(i), ssrc), dst); err != nil {
				done <- err
				return
			}
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	return done
}

// collector counts the distinct, intact packets of a stream (see stream)
// that c receives from src, until it has n or until the deadline.
type collector struct {
	got, bad atomic.Int64
	done     chan struct{}
}

func collect(c *net.UDPConn, src netip.AddrPort, n int, ssrc uint32, deadline time.Time) *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		seen := make([]bool, n+1)
		buf := make([]byte, 2048)
		c.SetReadDeadline(deadline)
		for col.got.Load() < int64(n) {
			m, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			h, _, ok := rtppacket.Read(buf[:m])
			if !ok || from.Port() != src.Port() || from.Addr().Unmap() != src.Addr() {
				col.bad.Add(1)
				continue
			}
			seq := int(h.Seq)
			if seq < 1 || seq > n || seen[seq] || !bytes.Equal(buf[:m], rtp(uint16(seq), ssrc)) {
				col.bad.Add(1)
				continue
			}
			seen[seq] = true
			col.got.Add(1)
		}
	}()
	return col
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// pinDirFor returns a PinDir in the test's temporary directory and
// unmounts the bpffs that Open mounts there at the end.
func pinDirFor(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "bpf")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestClsactPinnedAdoption: with a PinDir, Close leaves the clsact filter
// forwarding; a new Open and Attach (a restarted process) replace it with
// the new program while a steady stream flows, without losing a packet or
// adding a filter; Detach removes it; and Unpin then Close leave nothing.
func TestClsactPinnedAdoption(t *testing.T) {
	pinDir := pinDirFor(t)
	opts := Options{PinDir: pinDir, MaxStreams: 64, Attach: AttachClsact}
	fp := openOrSkip(t, opts)
	closed := false
	defer func() {
		if !closed {
			fp.Close()
		}
	}()
	bd := newBed(t)
	localSock := listen(t, bd.p, local)
	aSock := listen(t, bd.a, callerA)
	bSock := listen(t, bd.b, callerB)
	bSock.SetReadBuffer(4 << 20)
	bd.attach(t, fp, bd.paIdx)
	id1 := progID(t, fp)
	entry := Entry{Source: egress, Dest: callerB, Strict: true, Expect: callerA, IfIndex: bd.pbIdx}
	if err := fp.Put(local, entry); err != nil {
		t.Fatal(err)
	}
	warm := rtp(0, 1) // resolves B's neighbour entry before the count
	send(t, aSock, local, warm)
	expect(t, bSock, warm, egress)

	const (
		n        = 3000
		ssrc     = 0x00ad0a7e
		interval = 500 * time.Microsecond
	)
	col := collect(bSock, egress, n, ssrc, time.Now().Add(15*time.Second))
	sent := stream(aSock, local, n, ssrc, interval)
	if !waitFor(5*time.Second, func() bool { return col.got.Load() >= n/5 }) {
		t.Fatalf("only %d packets forwarded before the restart", col.got.Load())
	}

	// The "process" ends: its program lives on in the filter.
	if err := fp.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, id1)
	atClose := col.got.Load()
	if !waitFor(2*time.Second, func() bool { return col.got.Load() >= atClose+100 }) {
		t.Fatalf("forwarding stopped after Close: %d packets, then %d", atClose, col.got.Load())
	}

	// The restart: adopt maps and filter while the stream flows.
	fp2 := openOrSkip(t, opts)
	defer fp2.Close()
	if fp2.Mode() != AttachClsact {
		t.Fatalf("Mode() = %s", fp2.Mode())
	}
	bd.attach(t, fp2, bd.paIdx)
	id2 := progID(t, fp2)
	if id2 == id1 {
		t.Fatalf("the second Open has the same program %d", id1)
	}
	adopted := col.got.Load()
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, id2)

	if err := <-sent; err != nil {
		t.Fatalf("sender: %v", err)
	}
	<-col.done
	t.Logf("%d packets: %d forwarded before the restart, %d when the filter was replaced, %d in all; %d bad",
		n, atClose, adopted, col.got.Load(), col.bad.Load())
	if got := col.got.Load(); got != n || col.bad.Load() != 0 {
		t.Fatalf("B received %d intact packets of %d (%d bad ones)", got, n, col.bad.Load())
	}
	if adopted >= n {
		t.Errorf("the stream ended (%d packets) before the filter was replaced: the swap was not under load", adopted)
	}
	expectNothing(t, localSock)
	if c, _ := fp2.Counters(local); c.Packets != n+1 || c.SSRC != ssrc {
		t.Errorf("adopted counters %s, want %d packets, SSRC %#x", c, n+1, ssrc)
	}
	if streams, err := fp2.Streams(); err != nil || streams[local] != entry {
		t.Errorf("adopted streams %+v (%v), want %s → %+v", streams, err, local, entry)
	}

	// Detach removes the filter even with a PinDir.
	if err := fp2.Detach(bd.paIdx); err != nil {
		t.Fatal(err)
	}
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, 0)
	p := rtp(1, 2)
	send(t, aSock, local, p)
	expect(t, localSock, p, callerA)
	expectNothing(t, bSock)

	// Attach, Unpin, Close: nothing left.
	bd.attach(t, fp2, bd.paIdx)
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, id2)
	if err := fp2.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := fp2.Close(); err != nil {
		t.Fatal(err)
	}
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, 0)
	if left := pinned(t, pinDir); len(left) != 0 {
		t.Errorf("pins left after Unpin: %v", left)
	}
	p = rtp(2, 2)
	send(t, aSock, local, p)
	expect(t, localSock, p, callerA)
	expectNothing(t, bSock)
}

// TestModeSwitch restarts with PinDir from clsact to TCX and back: each
// Attach takes over forwarding and removes what the other mode left.
func TestModeSwitch(t *testing.T) {
	pinDir := pinDirFor(t)
	bd := newBed(t)
	aSock := listen(t, bd.a, callerA)
	bSock := listen(t, bd.b, callerB)
	localSock := listen(t, bd.p, local)
	entry := Entry{Source: egress, Dest: callerB, IfIndex: bd.pbIdx}
	seq := uint16(0)
	forwards := func() {
		t.Helper()
		seq++
		p := rtp(seq, 0x50c1a1)
		send(t, aSock, local, p)
		expect(t, bSock, p, egress)
	}

	var last *FastPath
	for i, mode := range []AttachMode{AttachClsact, AttachTCX, AttachClsact} {
		fp := openOrSkip(t, Options{PinDir: pinDir, MaxStreams: 64, Attach: mode})
		defer fp.Close()
		if i == 0 {
			if err := fp.Put(local, entry); err != nil {
				t.Fatal(err)
			}
		}
		bd.attach(t, fp, bd.paIdx)
		checkHooks(t, bd.p, bd.paIdx, mode, progID(t, fp))
		forwards()
		if i < 2 {
			if err := fp.Close(); err != nil {
				t.Fatal(err)
			}
			forwards() // left in place
		}
		last = fp
	}
	if err := last.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := last.Close(); err != nil {
		t.Fatal(err)
	}
	checkHooks(t, bd.p, bd.paIdx, AttachClsact, 0)
	if left := pinned(t, pinDir); len(left) != 0 {
		t.Errorf("pins left: %v", left)
	}
	seq++
	p := rtp(seq, 0x50c1a1)
	send(t, aSock, local, p)
	expect(t, localSock, p, callerA)
}

func TestRouteIfIndex(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "fp-rt")
	testutil.Veth(t, ns, "r1", ns, "r1p")
	testutil.Veth(t, ns, "r2", ns, "r2p")
	testutil.AddAddr(t, ns, "r1", "10.64.1.1/24")
	testutil.AddAddr(t, ns, "r2", "10.64.2.1/24")
	testutil.AddRoute(t, ns, "default", "10.64.2.254")
	ns.Run(t, "ip", "route", "add", "blackhole", "203.0.113.0/24")
	// Source-based routing: from 10.64.1.1, everything leaves by r1.
	ns.Run(t, "ip", "route", "add", "default", "via", "10.64.1.254", "table", "100")
	ns.Run(t, "ip", "rule", "add", "from", "10.64.1.1", "lookup", "100")
	// The same for IPv6.
	testutil.AddAddr(t, ns, "r1", "2001:db8:641::1/64")
	testutil.AddAddr(t, ns, "r2", "2001:db8:642::1/64")
	testutil.AddRoute(t, ns, "default", "2001:db8:642::fe")
	ns.Run(t, "ip", "-6", "route", "add", "blackhole", "2001:db8:dead::/48")
	ns.Run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:641::fe", "table", "100")
	ns.Run(t, "ip", "-6", "rule", "add", "from", "2001:db8:641::1", "lookup", "100")
	idx := map[string]int{}
	if err := ns.Do(func() error {
		for _, name := range []string{"lo", "r1", "r2"} {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			idx[name] = ifi.Index
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		src, dst string // src "": any
		want     string // device; "" for an error
	}{
		{"", "10.64.1.9", "r1"},
		{"", "10.64.2.9", "r2"},
		{"", "::ffff:10.64.1.9", "r1"},
		{"", "198.51.100.7", "r2"},          // default route
		{"10.64.1.1", "198.51.100.7", "r1"}, // policy rule
		{"10.64.2.1", "198.51.100.7", "r2"}, // main table
		{"", "10.64.1.1", "lo"},             // local address
		{"", "203.0.113.5", ""},             // blackhole
		{"2001:db8::1", "198.51.100.7", ""}, // IPv6 source, IPv4 destination
		{"192.0.2.99", "198.51.100.7", ""},  // source not local
		{"::ffff:10.64.1.1", "198.51.100.7", "r1"},
		{"", "2001:db8:641::9", "r1"},
		{"", "2001:db8:642::9", "r2"},
		{"", "2001:db8:ffff::7", "r2"},                // default route
		{"2001:db8:641::1", "2001:db8:ffff::7", "r1"}, // policy rule
		{"2001:db8:642::1", "2001:db8:ffff::7", "r2"}, // main table
		{"", "2001:db8:641::1", "lo"},                 // local address
		{"", "2001:db8:dead::5", ""},                  // blackhole
		{"10.64.1.1", "2001:db8:ffff::7", ""},         // IPv4 source, IPv6 destination
		{"2001:db8:99::1", "2001:db8:ffff::7", "r2"},  // not local: IPv6 does not check it
	} {
		var src netip.Addr
		if tc.src != "" {
			src = netip.MustParseAddr(tc.src)
		}
		dst := netip.MustParseAddr(tc.dst)
		var (
			got int
			err error
		)
		if derr := ns.Do(func() error {
			if tc.src == "" {
				got, err = RouteIfIndex(dst)
			} else {
				got, err = RouteIfIndexFrom(src, dst)
			}
			return nil
		}); derr != nil {
			t.Fatal(derr)
		}
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("route to %s from %q: ifindex %d, want an error", tc.dst, tc.src, got)
		case tc.want != "" && err != nil:
			t.Errorf("route to %s from %q: %v", tc.dst, tc.src, err)
		case tc.want != "" && got != idx[tc.want]:
			t.Errorf("route to %s from %q: ifindex %d, want %d (%s)", tc.dst, tc.src, got, idx[tc.want], tc.want)
		case err != nil:
			t.Logf("route to %s from %q: %v", tc.dst, tc.src, err)
		}
	}
}
