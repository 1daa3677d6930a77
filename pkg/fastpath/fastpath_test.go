package fastpath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
	"golang.org/x/sys/unix"
)

func TestKeyEntryRoundTrip(t *testing.T) {
	local := netip.MustParseAddrPort("192.0.2.1:30000")
	k, err := makeKey(local)
	if err != nil {
		t.Fatal(err)
	}
	// The key's bytes in memory are the packet's: address then port, in
	// network byte order.
	var mem [8]byte
	binary.NativeEndian.PutUint32(mem[0:], k.Addr)
	binary.NativeEndian.PutUint16(mem[4:], k.Port)
	if want := []byte{192, 0, 2, 1, 0x75, 0x30, 0, 0}; !bytes.Equal(mem[:], want) {
		t.Errorf("key bytes %x, want %x", mem, want)
	}
	if got := keyAddrPort(k); got != local {
		t.Errorf("key round trip: %s, want %s", got, local)
	}
	e := Entry{
		Source:   netip.MustParseAddrPort("198.51.100.1:30002"),
		Dest:     netip.MustParseAddrPort("203.0.113.9:40000"),
		Strict:   true,
		Expect:   netip.MustParseAddrPort("192.0.2.200:5004"),
		PassRTCP: true,
		IfIndex:  7,
		SetTOS:   true,
		TOS:      184,
		SetTTL:   true,
		TTL:      64,
		MaxPPS:   30000,
	}
	v, err := makeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryFromMap(v); got != e {
		t.Errorf("entry round trip:\n got %+v\nwant %+v", got, e)
	}
	for _, bad := range []Entry{
		{Source: netip.MustParseAddrPort("[2001:db8::1]:1"), Dest: e.Dest},
		{Source: e.Source, Dest: netip.MustParseAddrPort("0.0.0.0:40000")},
		{Source: e.Source, Dest: netip.MustParseAddrPort("203.0.113.9:0")},
		{Source: e.Source, Dest: e.Dest, Strict: true},
		{Source: e.Source, Dest: e.Dest, SetTTL: true},
		{Source: e.Source, Dest: e.Dest, IfIndex: -1},
	} {
		if _, err := makeEntry(bad); err == nil {
			t.Errorf("makeEntry(%+v) accepted", bad)
		}
	}
	if _, err := makeKey(netip.MustParseAddrPort("[::ffff:192.0.2.1]:30000")); err != nil {
		t.Errorf("IPv4-mapped key refused: %v", err)
	}
	if k, err := makeAnyKey(netip.MustParseAddrPort("[::ffff:192.0.2.1]:30000")); err != nil || k.v6 {
		t.Errorf("IPv4-mapped key: %+v, %v; want an IPv4 key", k, err)
	}
}

// TestKeyEntryRoundTrip6 is TestKeyEntryRoundTrip for the IPv6 maps.
func TestKeyEntryRoundTrip6(t *testing.T) {
	local := netip.MustParseAddrPort("[2001:db8::1]:30000")
	k, err := makeKey6(local)
	if err != nil {
		t.Fatal(err)
	}
	var mem [20]byte
	for i, w := range k.Addr {
		binary.NativeEndian.PutUint32(mem[4*i:], w)
	}
	binary.NativeEndian.PutUint16(mem[16:], k.Port)
	want := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x75, 0x30, 0, 0}
	if !bytes.Equal(mem[:], want) {
		t.Errorf("key bytes %x, want %x", mem, want)
	}
	if got := keyAddrPort6(k); got != local {
		t.Errorf("key round trip: %s, want %s", got, local)
	}
	if ak, err := makeAnyKey(local); err != nil || !ak.v6 || ak.k6 != k {
		t.Errorf("makeAnyKey(%s): %+v, %v; want the IPv6 key", local, ak, err)
	}
	e := Entry{
		Source:   netip.MustParseAddrPort("[2001:db8:1::1]:30002"),
		Dest:     netip.MustParseAddrPort("[2001:db8:2::9]:40000"),
		Strict:   true,
		Expect:   netip.MustParseAddrPort("[2001:db8:3::200]:5004"),
		PassRTCP: true,
		IfIndex:  7,
		SetTOS:   true,
		TOS:      184,
		SetTTL:   true,
		TTL:      64,
		MaxPPS:   30000,
	}
	v, err := makeEntry6(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryFromMap6(v); got != e {
		t.Errorf("entry round trip:\n got %+v\nwant %+v", got, e)
	}
	for _, bad := range []Entry{
		{Source: netip.MustParseAddrPort("192.0.2.1:1"), Dest: e.Dest},
		{Source: netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"), Dest: e.Dest},
		{Source: e.Source, Dest: netip.MustParseAddrPort("203.0.113.9:40000")},
		{Source: e.Source, Dest: netip.MustParseAddrPort("[::]:40000")},
		{Source: e.Source, Dest: netip.MustParseAddrPort("[2001:db8:2::9]:0")},
		{Source: e.Source, Dest: netip.MustParseAddrPort("[fe80::1%eth0]:40000")},
		{Source: e.Source, Dest: e.Dest, Strict: true},
		{Source: e.Source, Dest: e.Dest, Strict: true, Expect: netip.MustParseAddrPort("192.0.2.200:5004")},
		{Source: e.Source, Dest: e.Dest, SetTTL: true},
		{Source: e.Source, Dest: e.Dest, IfIndex: -1},
	} {
		if _, err := makeEntry6(bad); err == nil {
			t.Errorf("makeEntry6(%+v) accepted", bad)
		}
	}
	for _, bad := range []string{"[2001:db8::1]:0", "[fe80::1%eth0]:30000"} {
		if _, err := makeAnyKey(netip.MustParseAddrPort(bad)); err == nil {
			t.Errorf("key %s accepted", bad)
		}
	}
}

// TestEntryExpect checks that the expected source is kept with or without
// Strict (a restarted daemon reads the latched source back), and that only
// Strict sets the flag the program checks.
func TestEntryExpect(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.1:30002")
	dst := netip.MustParseAddrPort("203.0.113.9:40000")
	latched := netip.MustParseAddrPort("192.0.2.200:5004")
	src6 := netip.MustParseAddrPort("[2001:db8:1::1]:30002")
	dst6 := netip.MustParseAddrPort("[2001:db8:2::9]:40000")
	latched6 := netip.MustParseAddrPort("[2001:db8:3::200]:5004")
	for _, tc := range []struct {
		name string
		in   Entry
		want Entry // after the round trip
	}{
		{"strict", Entry{Source: src, Dest: dst, Strict: true, Expect: latched}, Entry{Source: src, Dest: dst, Strict: true, Expect: latched}},
		{"not strict, latched", Entry{Source: src, Dest: dst, Expect: latched}, Entry{Source: src, Dest: dst, Expect: latched}},
		{"not strict, none", Entry{Source: src, Dest: dst}, Entry{Source: src, Dest: dst}},
		{"not strict, mapped", Entry{Source: src, Dest: dst, Expect: netip.MustParseAddrPort("[::ffff:192.0.2.200]:5004")}, Entry{Source: src, Dest: dst, Expect: latched}},
		{"not strict, unspecified", Entry{Source: src, Dest: dst, Expect: netip.MustParseAddrPort("0.0.0.0:0")}, Entry{Source: src, Dest: dst}},
		{"strict, unspecified", Entry{Source: src, Dest: dst, Strict: true, Expect: netip.MustParseAddrPort("0.0.0.0:0")}, Entry{Source: src, Dest: dst, Strict: true, Expect: netip.MustParseAddrPort("0.0.0.0:0")}},
		{"IPv6 strict", Entry{Source: src6, Dest: dst6, Strict: true, Expect: latched6}, Entry{Source: src6, Dest: dst6, Strict: true, Expect: latched6}},
		{"IPv6 not strict, latched", Entry{Source: src6, Dest: dst6, Expect: latched6}, Entry{Source: src6, Dest: dst6, Expect: latched6}},
		{"IPv6 not strict, none", Entry{Source: src6, Dest: dst6}, Entry{Source: src6, Dest: dst6}},
		{"IPv6 not strict, unspecified", Entry{Source: src6, Dest: dst6, Expect: netip.MustParseAddrPort("[::]:0")}, Entry{Source: src6, Dest: dst6}},
		{"IPv6 strict, unspecified", Entry{Source: src6, Dest: dst6, Strict: true, Expect: netip.MustParseAddrPort("[::]:0")}, Entry{Source: src6, Dest: dst6, Strict: true, Expect: netip.MustParseAddrPort("[::]:0")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				flags uint16
				got   Entry
			)
			if tc.in.Source.Addr().Is4() {
				v, err := makeEntry(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				flags, got = v.Flags, entryFromMap(v)
			} else {
				v, err := makeEntry6(tc.in)
				if err != nil {
					t.Fatal(err)
				}
				flags, got = v.Flags, entryFromMap6(v)
			}
			if strict := flags&flagStrict != 0; strict != tc.in.Strict {
				t.Errorf("strict flag %v, want %v", strict, tc.in.Strict)
			}
			if got != tc.want {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := makeEntry(Entry{Source: src, Dest: dst, Expect: netip.MustParseAddrPort("[2001:db8::1]:5004")}); err == nil {
		t.Error("makeEntry accepted an IPv6 expected source")
	}
}

// openOrSkip opens the fast path, skipping the test when this machine
// cannot load BPF programs.
func openOrSkip(t *testing.T, opts Options) *FastPath {
	t.Helper()
	testutil.RequireRoot(t)
	fp, err := Open(opts)
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("BPF unavailable here: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return fp
}

// bed is the test network:
//
//	caller A (10.61.1.2, .3) a0 --- pa (10.61.1.1) proxy (10.61.2.1) pb --- b0 caller B (10.61.2.2)
//
// with the same in IPv6 on the same devices: fd61:1::2 and ::3 for A,
// fd61:1::1 and fd61:2::1 for the proxy, fd61:2::2 for B.
type bed struct {
	a, b, p      *testutil.NetNS
	paIdx, pbIdx int
}

var (
	addrA       = netip.MustParseAddr("10.61.1.2")
	addrA2      = netip.MustParseAddr("10.61.1.3")
	addrPA      = netip.MustParseAddr("10.61.1.1")
	addrPB      = netip.MustParseAddr("10.61.2.1")
	addrB       = netip.MustParseAddr("10.61.2.2")
	local       = netip.AddrPortFrom(addrPA, 30000) // the offloaded socket
	other       = netip.AddrPortFrom(addrPA, 30004) // a socket that is not offloaded
	egress      = netip.AddrPortFrom(addrPB, 30002) // our socket towards B
	hairpinOut  = netip.AddrPortFrom(addrPA, 30006) // our socket towards A2
	callerA     = netip.AddrPortFrom(addrA, 5004)
	stranger    = netip.AddrPortFrom(addrA, 5006)
	callerB     = netip.AddrPortFrom(addrB, 40000)
	callerA2    = netip.AddrPortFrom(addrA2, 40002)
	readTimeout = 2 * time.Second
	quiet       = 300 * time.Millisecond

	addrA6  = netip.MustParseAddr("fd61:1::2")
	addrA26 = netip.MustParseAddr("fd61:1::3")
	addrPA6 = netip.MustParseAddr("fd61:1::1")
	addrPB6 = netip.MustParseAddr("fd61:2::1")
	addrB6  = netip.MustParseAddr("fd61:2::2")
)

// netAddrs are the test's sockets in one family.
type netAddrs struct {
	name string
	// local is the offloaded socket, other a socket that is not, egress
	// our socket towards B and hairpinOut our socket towards A2.
	local, other, egress, hairpinOut netip.AddrPort
	callerA, stranger, callerB       netip.AddrPort
	callerA2                         netip.AddrPort
}

func (ad netAddrs) v6() bool { return ad.local.Addr().Is6() }

// families are the test's sockets in IPv4 (the package variables) and
// IPv6, at the same ports.
var families = []netAddrs{
	{"IPv4", local, other, egress, hairpinOut, callerA, stranger, callerB, callerA2},
	{"IPv6",
		netip.AddrPortFrom(addrPA6, local.Port()), netip.AddrPortFrom(addrPA6, other.Port()),
		netip.AddrPortFrom(addrPB6, egress.Port()), netip.AddrPortFrom(addrPA6, hairpinOut.Port()),
		netip.AddrPortFrom(addrA6, callerA.Port()), netip.AddrPortFrom(addrA6, stranger.Port()),
		netip.AddrPortFrom(addrB6, callerB.Port()), netip.AddrPortFrom(addrA26, callerA2.Port())},
}

func newBed(t *testing.T) *bed {
	t.Helper()
	bd := &bed{
		a: testutil.NewNetNS(t, "fp-a"),
		b: testutil.NewNetNS(t, "fp-b"),
		p: testutil.NewNetNS(t, "fp-p"),
	}
	testutil.Veth(t, bd.a, "a0", bd.p, "pa")
	testutil.Veth(t, bd.b, "b0", bd.p, "pb")
	testutil.AddAddr(t, bd.a, "a0", addrA.String()+"/24")
	testutil.AddAddr(t, bd.a, "a0", addrA2.String()+"/24")
	testutil.AddAddr(t, bd.p, "pa", addrPA.String()+"/24")
	testutil.AddAddr(t, bd.p, "pb", addrPB.String()+"/24")
	testutil.AddAddr(t, bd.b, "b0", addrB.String()+"/24")
	testutil.AddAddr(t, bd.a, "a0", addrA6.String()+"/64")
	testutil.AddAddr(t, bd.a, "a0", addrA26.String()+"/64")
	testutil.AddAddr(t, bd.p, "pa", addrPA6.String()+"/64")
	testutil.AddAddr(t, bd.p, "pb", addrPB6.String()+"/64")
	testutil.AddAddr(t, bd.b, "b0", addrB6.String()+"/64")
	if err := bd.p.Do(func() error {
		for name, idx := range map[string]*int{"pa": &bd.paIdx, "pb": &bd.pbIdx} {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			*idx = ifi.Index
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return bd
}

// listen binds a UDP socket to ap in ns.
func listen(t *testing.T, ns *testutil.NetNS, ap netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		network := "udp4"
		if ap.Addr().Is6() {
			network = "udp6"
		}
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
		return err
	}); err != nil {
		t.Fatalf("listen %s: %v", ap, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// attach attaches fp to device ifindex in the proxy namespace.
func (bd *bed) attach(t *testing.T, fp *FastPath, ifindex int) {
	t.Helper()
	err := bd.p.Do(func() error { return fp.Attach(ifindex) })
	if errors.Is(err, ebpf.ErrNotSupported) && fp.Mode() == AttachTCX {
		t.Skipf("no TCX on this kernel: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// rtp returns an RTP packet built with rtppacket, with a 160-byte payload
// that depends on seq (172 bytes).
func rtp(seq uint16, ssrc uint32) []byte {
	pay := make([]byte, 160)
	for i := range pay {
		pay[i] = byte(int(seq) + rtppacket.HeaderLen + i)
	}
	return rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}.Packet(pay)
}

// expect reads one datagram from c and checks its payload and source.
func expect(t *testing.T, c *net.UDPConn, want []byte, from netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(readTimeout))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%s: nothing received: %v", c.LocalAddr(), err)
	}
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("%s: payload differs:\n got %d bytes %.40x…\nwant %d bytes %.40x…", c.LocalAddr(), n, buf[:n], len(want), want)
	}
	if src.Addr().Unmap() != from.Addr() || src.Port() != from.Port() {
		t.Fatalf("%s: source %s, want %s", c.LocalAddr(), src, from)
	}
}

// expectNothing checks that c receives nothing for a short while.
func expectNothing(t *testing.T, c *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(quiet))
	if n, src, err := c.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("%s: unexpected datagram of %d bytes from %s", c.LocalAddr(), n, src)
	}
}

func send(t *testing.T, c *net.UDPConn, to netip.AddrPort, p []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
}

// TestForwardInNamespaces runs the whole forwarding test in each family:
// the packets of an IPv6 stream are forwarded by the program exactly like
// those of an IPv4 one.
func TestForwardInNamespaces(t *testing.T) {
	for _, ad := range families {
		t.Run(ad.name, func(t *testing.T) { testForward(t, ad) })
	}
}

func testForward(t *testing.T, ad netAddrs) {
	fp := openOrSkip(t, Options{MaxStreams: 1024})
	defer fp.Close()
	bd := newBed(t)
	local, other, egress, hairpinOut := ad.local, ad.other, ad.egress, ad.hairpinOut
	callerA, stranger, callerB, callerA2 := ad.callerA, ad.stranger, ad.callerB, ad.callerA2

	localSock := listen(t, bd.p, local)
	otherSock := listen(t, bd.p, other)
	egressSock := listen(t, bd.p, egress)
	hairpinSock := listen(t, bd.p, hairpinOut)
	aSock := listen(t, bd.a, callerA)
	strangerSock := listen(t, bd.a, stranger)
	a2Sock := listen(t, bd.a, callerA2)
	bSock := listen(t, bd.b, callerB)

	bd.attach(t, fp, bd.paIdx)
	bd.attach(t, fp, bd.paIdx) // no-op
	entry := Entry{Source: egress, Dest: callerB, Strict: true, Expect: callerA, IfIndex: bd.pbIdx}
	if err := fp.Put(local, entry); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const ssrc = 0x11223344
	seq := uint16(1000)
	next := func() []byte { seq++; return rtp(seq, ssrc) }

	t.Run("offloaded", func(t *testing.T) {
		for range 20 {
			p := next()
			send(t, aSock, local, p)
			expect(t, bSock, p, egress)
		}
		expectNothing(t, localSock)
		expectNothing(t, egressSock)
		c, err := fp.Counters(local)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("counters: %s", c)
		if c.Packets != 20 || c.Bytes != 20*172 || c.SSRC != ssrc || c.SourceMismatch != 0 {
			t.Errorf("counters %s, want 20 packets, %d bytes, ssrc %#x", c, 20*172, ssrc)
		}
		if c.LastPacket.Before(start.Add(-time.Second)) || c.LastPacket.After(time.Now().Add(time.Second)) {
			t.Errorf("last packet %s, want between %s and now", c.LastPacket, start)
		}
	})

	t.Run("checksums", func(t *testing.T) {
		// A raw socket sends fully checksummed datagrams (CHECKSUM_NONE at
		// the proxy, unlike a UDP socket's CHECKSUM_PARTIAL over veth), so
		// B's kernel verifies the rewritten checksums: a wrong one would be
		// dropped and counted in InCsumErrors.
		c0, _ := fp.Counters(local)
		raw := sendChecksummed(t, bd, callerA.Port(), local, bSock, egress, next)
		sent := uint64(2)
		if ad.v6() {
			sent = 1 // IPv6 has no "no checksum": see below
		}
		csumErrors := "Udp:InCsumErrors"
		if ad.v6() {
			csumErrors = "Udp6InCsumErrors"
		}
		after := snmp(t, bd.b)
		// And B does verify: a wrong checksum stays wrong and is dropped.
		raw(callerA.Port(), local, next(), bad)
		expectNothing(t, bSock)
		if final := snmp(t, bd.b); final[csumErrors] != after[csumErrors]+1 {
			t.Errorf("%s in B went from %d to %d after a bad checksum, want +1", csumErrors, after[csumErrors], final[csumErrors])
		}
		if c, _ := fp.Counters(local); c.Packets != c0.Packets+sent+1 {
			t.Errorf("counters %s, want %d packets", c, c0.Packets+sent+1)
		}
		if ad.v6() {
			// A zero checksum is not allowed over IPv6: the program leaves
			// such a datagram to the stack, which drops it.
			c0, _ := fp.Counters(local)
			raw(callerA.Port(), local, next(), none)
			expectNothing(t, bSock)
			expectNothing(t, localSock)
			if c, _ := fp.Counters(local); c.Packets != c0.Packets || c.SourceMismatch != c0.SourceMismatch || c.Passed != c0.Passed || c.FloodDrops != c0.FloodDrops {
				t.Errorf("counters %s after a datagram without a checksum, want %s", c, c0)
			}
		}
	})

	t.Run("strict source mismatch goes to the stack", func(t *testing.T) {
		c0, _ := fp.Counters(local)
		p := next()
		send(t, strangerSock, local, p)
		expect(t, localSock, p, stranger)
		expectNothing(t, bSock)
		c, _ := fp.Counters(local)
		if c.SourceMismatch != c0.SourceMismatch+1 || c.Packets != c0.Packets {
			t.Errorf("counters %s after a strict-source mismatch, before %s", c, c0)
		}
	})

	t.Run("not offloaded goes to the stack", func(t *testing.T) {
		p := next()
		send(t, aSock, other, p)
		expect(t, otherSock, p, callerA)
		expectNothing(t, bSock)
	})

	name := "fragments and IP options go to the stack"
	if ad.v6() {
		name = "fragments and extension headers go to the stack"
	}
	t.Run(name, func(t *testing.T) {
		c0, _ := fp.Counters(local)
		big := make([]byte, 3000) // more than the 1500-byte MTU: fragments
		copy(big, next())
		send(t, aSock, local, big)
		expect(t, localSock, big, callerA)
		expectNothing(t, bSock)

		// From the expected source, so that only the options can keep the
		// datagram out of the fast path.
		rc, err := aSock.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		setOptions := func(opts string) {
			t.Helper()
			var serr error
			rc.Control(func(fd uintptr) {
				if ad.v6() {
					serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DSTOPTS, opts)
				} else {
					serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IP, unix.IP_OPTIONS, opts)
				}
			})
			if serr != nil {
				t.Fatalf("IP options: %v", serr)
			}
		}
		if ad.v6() {
			// A destination options header (next header and length filled
			// in by the kernel) with one PadN option: 8 bytes between the
			// IPv6 header and UDP.
			setOptions("\x00\x00\x01\x04\x00\x00\x00\x00")
		} else {
			// NOP, NOP, NOP, end of options: a 24-byte IP header.
			setOptions("\x01\x01\x01\x00")
		}
		defer setOptions("")
		p := next()
		send(t, aSock, local, p)
		buf := make([]byte, 2048)
		localSock.SetReadDeadline(time.Now().Add(readTimeout))
		if n, _, err := localSock.ReadFromUDPAddrPort(buf); err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("datagram with IP options not received by the local socket: %v", err)
		}
		expectNothing(t, bSock)
		if c, _ := fp.Counters(local); c.Packets != c0.Packets || c.Bytes != c0.Bytes || c.SourceMismatch != c0.SourceMismatch || c.Passed != c0.Passed {
			t.Errorf("counters %s, want them unchanged: %s", c, c0)
		}
	})

	t.Run("muxed RTCP", func(t *testing.T) {
		e := entry
		e.PassRTCP = true
		if err := fp.Put(local, e); err != nil {
			t.Fatal(err)
		}
		defer fp.Put(local, entry)
		c0, _ := fp.Counters(local)
		sr := rtppacket.ReceiverReport(0x11223344) // an empty receiver report: 8 bytes
		send(t, aSock, local, sr)
		expect(t, localSock, sr, callerA)
		p := next() // RTP still goes through the kernel
		send(t, aSock, local, p)
		expect(t, bSock, p, egress)
		c, _ := fp.Counters(local)
		if c.Passed != c0.Passed+1 || c.Packets != c0.Packets+1 {
			t.Errorf("counters %s, before %s: want one passed, one forwarded", c, c0)
		}
		// Without PassRTCP, RTCP is forwarded like RTP.
		if err := fp.Put(local, entry); err != nil {
			t.Fatal(err)
		}
		send(t, aSock, local, sr)
		expect(t, bSock, sr, egress)
	})

	t.Run("TOS and TTL", func(t *testing.T) {
		e := entry
		e.Strict = false // any source now
		e.SetTOS, e.TOS = true, 184
		e.SetTTL, e.TTL = true, 17
		if err := fp.Put(local, e); err != nil {
			t.Fatal(err)
		}
		defer fp.Put(local, entry)
		// IPv4: the TOS byte and the TTL; IPv6: the traffic class and the
		// hop limit.
		level, recvTOS, recvTTL, tos, ttl := unix.IPPROTO_IP, unix.IP_RECVTOS, unix.IP_RECVTTL, unix.IP_TOS, unix.IP_TTL
		if ad.v6() {
			level, recvTOS, recvTTL, tos, ttl = unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, unix.IPV6_RECVHOPLIMIT, unix.IPV6_TCLASS, unix.IPV6_HOPLIMIT
		}
		rc, err := bSock.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), level, recvTOS, 1)
			unix.SetsockoptInt(int(fd), level, recvTTL, 1)
		})
		defer rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), level, recvTOS, 0)
			unix.SetsockoptInt(int(fd), level, recvTTL, 0)
		})
		p := next()
		send(t, strangerSock, local, p) // not strict: forwarded
		buf, oob := make([]byte, 2048), make([]byte, 256)
		bSock.SetReadDeadline(time.Now().Add(readTimeout))
		n, oobn, _, src, err := bSock.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], p) || src.Port() != egress.Port() {
			t.Fatalf("got %d bytes from %s", n, src)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]int{}
		for _, m := range msgs {
			// One byte (IP_TOS) or an int (the others), whose first byte
			// is the value on a little-endian host; read whole ints.
			switch {
			case int(m.Header.Level) != level:
			case len(m.Data) >= 4:
				got[m.Header.Type] = int(binary.NativeEndian.Uint32(m.Data))
			case len(m.Data) > 0:
				got[m.Header.Type] = int(m.Data[0])
			}
		}
		if got[int32(tos)] != 184 || got[int32(ttl)] != 17 {
			t.Errorf("TOS %d TTL %d, want 184 and 17 (control messages %v)", got[int32(tos)], got[int32(ttl)], got)
		}
	})

	t.Run("same device", func(t *testing.T) {
		// IfIndex 0: out of the device the packet came in on, to A2. The
		// update keeps the stream's counters.
		c0, _ := fp.Counters(local)
		if err := fp.Put(local, Entry{Source: hairpinOut, Dest: callerA2}); err != nil {
			t.Fatal(err)
		}
		defer fp.Put(local, entry)
		p := next()
		send(t, aSock, local, p)
		expect(t, a2Sock, p, hairpinOut)
		expectNothing(t, localSock)
		expectNothing(t, hairpinSock)
		if c, _ := fp.Counters(local); c.Packets != c0.Packets+1 || c.Bytes != c0.Bytes+uint64(len(p)) {
			t.Errorf("counters %s after an update and a packet, before %s", c, c0)
		}
	})

	t.Run("other family refused", func(t *testing.T) {
		// An entry is of its local socket's family: no translation.
		o := families[0]
		if !ad.v6() {
			o = families[1]
		}
		for _, e := range []Entry{
			{Source: o.egress, Dest: o.callerB},
			{Source: egress, Dest: o.callerB},
			{Source: o.egress, Dest: callerB},
			{Source: egress, Dest: callerB, Strict: true, Expect: o.callerA},
			{Source: egress, Dest: callerB, Expect: o.callerA},
		} {
			if err := fp.Put(local, e); err == nil {
				t.Errorf("Put(%s, %+v) accepted", local, e)
			} else {
				t.Logf("Put(%s, %+v): %v", local, e, err)
			}
		}
	})

	t.Run("streams", func(t *testing.T) {
		got, err := fp.Streams()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[local] != entry {
			t.Errorf("streams %+v, want %s → %+v", got, local, entry)
		}
	})

	t.Run("delete", func(t *testing.T) {
		c0, _ := fp.Counters(local)
		c, err := fp.Delete(local)
		if err != nil {
			t.Fatal(err)
		}
		if c.Packets != c0.Packets || c.Packets == 0 {
			t.Errorf("final counters %s, want %s", c, c0)
		}
		if c, _ := fp.Counters(local); c != (Counters{}) {
			t.Errorf("counters after delete: %s", c)
		}
		p := next()
		send(t, aSock, local, p)
		expect(t, localSock, p, callerA)
		expectNothing(t, bSock)
		if _, err := fp.Delete(local); err != nil {
			t.Errorf("second delete: %v", err)
		}
	})

	t.Run("detach", func(t *testing.T) {
		if err := fp.Put(local, entry); err != nil {
			t.Fatal(err)
		}
		if err := fp.Detach(bd.paIdx); err != nil {
			t.Fatal(err)
		}
		p := next()
		send(t, aSock, local, p)
		expect(t, localSock, p, callerA)
		expectNothing(t, bSock)
	})
}

// TestPinnedSurvivesRestart closes the fast path with everything pinned and
// checks that forwarding goes on without the process, that a second Open
// adopts the maps (streams, counters) and the link, and that Unpin then
// Close detaches.
func TestPinnedSurvivesRestart(t *testing.T) {
	testutil.RequireRoot(t)
	pinDir := filepath.Join(t.TempDir(), "bpf")
	t.Cleanup(func() {
		if err := unix.Unmount(pinDir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount %s: %v", pinDir, err)
		}
	})
	fp := openOrSkip(t, Options{PinDir: pinDir, MaxStreams: 1024})
	var st unix.Statfs_t
	if err := unix.Statfs(pinDir, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		t.Fatalf("%s is not a bpffs after Open (statfs: %v, type %#x)", pinDir, err, st.Type)
	}
	bd := newBed(t)
	localSock := listen(t, bd.p, local)
	aSock := listen(t, bd.a, callerA)
	bSock := listen(t, bd.b, callerB)
	bd.attach(t, fp, bd.paIdx)
	entry := Entry{Source: egress, Dest: callerB, IfIndex: bd.pbIdx}
	if err := fp.Put(local, entry); err != nil {
		t.Fatal(err)
	}
	seq := uint16(0)
	next := func() []byte { seq++; return rtp(seq, 0xabcdef01) }
	p := next()
	send(t, aSock, local, p)
	expect(t, bSock, p, egress)

	if err := fp.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing of ours is open now: the pins keep it going.
	for range 5 {
		p := next()
		send(t, aSock, local, p)
		expect(t, bSock, p, egress)
	}
	expectNothing(t, localSock)
	if pins := pinned(t, pinDir); len(pins) != 5 {
		t.Errorf("pinned: %v, want four maps (two per family) and a link", pins)
	} else {
		t.Logf("pinned: %s", strings.Join(pins, " "))
	}

	fp2 := openOrSkip(t, Options{PinDir: pinDir, MaxStreams: 1024})
	defer fp2.Close()
	streams, err := fp2.Streams()
	if err != nil {
		t.Fatal(err)
	}
	if streams[local] != entry {
		t.Fatalf("adopted streams %+v, want %s → %+v", streams, local, entry)
	}
	if c, _ := fp2.Counters(local); c.Packets != 6 {
		t.Errorf("adopted counters %s, want 6 packets", c)
	}
	bd.attach(t, fp2, bd.paIdx) // adopts the pinned link
	p = next()
	send(t, aSock, local, p)
	expect(t, bSock, p, egress)
	if c, _ := fp2.Counters(local); c.Packets != 7 {
		t.Errorf("counters %s, want 7 packets", c)
	}

	if err := fp2.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := fp2.Close(); err != nil {
		t.Fatal(err)
	}
	if left := pinned(t, pinDir); len(left) != 0 {
		t.Errorf("pins left after Unpin: %v", left)
	}
	p = next()
	send(t, aSock, local, p)
	expect(t, localSock, p, callerA)
	expectNothing(t, bSock)
}

// pinned lists the pins in dir, leaving out the kernel's own *.debug
// iterators that every bpffs mount has.
func pinned(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pins []string
	for _, n := range names {
		if !strings.HasSuffix(n.Name(), ".debug") {
			pins = append(pins, n.Name())
		}
	}
	return pins
}

// checksum is what rawSender puts in the UDP checksum field.
type checksum int

const (
	good checksum = iota // the correct checksum
	none                 // zero: no checksum
	bad                  // the correct one plus one
)

// rawSender returns a function that sends one UDP datagram from src:sport
// to dst through a raw socket in ns, with the checksum field as sum says,
// so that the packet is not CHECKSUM_PARTIAL. src and dst are of one
// family, IPv4 or IPv6 (an IPv6 raw socket of another protocol than ICMPv6
// leaves the checksum to the sender too).
func rawSender(t *testing.T, ns *testutil.NetNS, src netip.Addr) func(sport uint16, dst netip.AddrPort, payload []byte, sum checksum) {
	t.Helper()
	var fd int
	if err := ns.Do(func() error {
		var err error
		family := unix.AF_INET
		if src.Is6() {
			family = unix.AF_INET6
		}
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		// Receive nothing: the socket would otherwise queue a copy of
		// every UDP datagram arriving in ns.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
			return err
		}
		if src.Is6() {
			return unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16()})
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()})
	}); err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func(sport uint16, dst netip.AddrPort, payload []byte, sum checksum) {
		t.Helper()
		d := make([]byte, 8+len(payload))
		binary.BigEndian.PutUint16(d[0:], sport)
		binary.BigEndian.PutUint16(d[2:], dst.Port())
		binary.BigEndian.PutUint16(d[4:], uint16(len(d)))
		copy(d[8:], payload)
		switch c := udpChecksum(src, dst.Addr(), d); sum {
		case good:
			binary.BigEndian.PutUint16(d[6:], c)
		case bad:
			binary.BigEndian.PutUint16(d[6:], c+1)
		}
		var to unix.Sockaddr
		if src.Is6() {
			to = &unix.SockaddrInet6{Addr: dst.Addr().As16()}
		} else {
			to = &unix.SockaddrInet4{Addr: dst.Addr().As4()}
		}
		if err := unix.Sendto(fd, d, 0, to); err != nil {
			t.Fatalf("raw send: %v", err)
		}
	}
}

// udpChecksum is the UDP checksum of datagram d (checksum field zero)
// from src to dst, IPv4 or IPv6 (whose pseudo-header sums the same way:
// addresses, protocol, length).
func udpChecksum(src, dst netip.Addr, d []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += 17 + uint32(len(d))
	add(d)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// sendChecksummed sends two fully checksummed datagrams (a good UDP
// checksum and none; over IPv6, where a UDP checksum is mandatory, only
// the good one) from caller A's port sport to local over a raw socket,
// checks that B receives them from egress, and that B's kernel counted no
// header or checksum error. It returns the raw sender.
func sendChecksummed(t *testing.T, bd *bed, sport uint16, local netip.AddrPort, bSock *net.UDPConn, egress netip.AddrPort, next func() []byte) func(uint16, netip.AddrPort, []byte, checksum) {
	t.Helper()
	src, sums, errs := addrA, []checksum{good, none}, []string{"Ip:InHdrErrors", "Udp:InCsumErrors", "Udp:InErrors"}
	if local.Addr().Is6() {
		src, sums, errs = addrA6, []checksum{good}, []string{"Ip6InHdrErrors", "Udp6InCsumErrors", "Udp6InErrors"}
	}
	raw := rawSender(t, bd.a, src)
	before := snmp(t, bd.b)
	for _, sum := range sums {
		p := next()
		raw(sport, local, p, sum)
		expect(t, bSock, p, egress)
	}
	after := snmp(t, bd.b)
	for _, k := range errs {
		if after[k] != before[k] {
			t.Errorf("%s in B went from %d to %d", k, before[k], after[k])
		}
	}
	return raw
}

// snmp returns the counters of /proc/net/snmp in ns as "Proto:Name", and
// those of /proc/net/snmp6 under their own names ("Udp6InCsumErrors").
func snmp(t *testing.T, ns *testutil.NetNS) map[string]int64 {
	t.Helper()
	out := ns.Run(t, "cat", "/proc/net/snmp")
	m := map[string]int64{}
	for _, line := range strings.Split(ns.Run(t, "cat", "/proc/net/snmp6"), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[f[0]] = v
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) != len(values) || len(names) == 0 {
			continue
		}
		proto := strings.TrimSuffix(names[0], ":")
		for j := 1; j < len(names); j++ {
			v, err := strconv.ParseInt(values[j], 10, 64)
			if err == nil {
				m[proto+":"+names[j]] = v
			}
		}
	}
	return m
}

func ExampleCounters_String() {
	fmt.Println(Counters{Packets: 2, Bytes: 344, SSRC: 0x11223344})
	// Output: packets=2 bytes=344 ssrc=0x11223344 mismatch=0 passed=0 flood_drops=0
}
