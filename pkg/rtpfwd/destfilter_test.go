package rtpfwd

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// nsSocket opens a non-blocking UDP socket bound to ap in ns (as portd
// hands them over; the engine keeps using it in ns's network stack).
func nsSocket(t *testing.T, ns *testutil.NetNS, ap netip.AddrPort) (netip.AddrPort, int) {
	t.Helper()
	var fd int
	if err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)), fd
}

// nsListen is a party's socket in ns.
func nsListen(t *testing.T, ns *testutil.NetNS, ap netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSignalledDestinationsFiltered: a node whose media address is not a
// loopback address (10.62.0.1 on a dummy device, in a namespace of the
// test's own) does not send media to a signalled endpoint on loopback
// (unless allowed), multicast, broadcast (255.255.255.255 or the
// broadcast address of one of the host's subnets), or one of the node's own media
// sockets (a forwarding loop); such a party gets no sink, its packets to
// the other party still flow, and the refusal is counted.
func TestSignalledDestinationsFiltered(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "dst")
	testutil.Dummy(t, ns, "m0")
	testutil.AddAddr(t, ns, "m0", "10.62.0.1/24")
	node := netip.MustParseAddr("10.62.0.1")
	ap := netip.MustParseAddrPort

	for _, tc := range []struct {
		name string
		// dest is B's signalled endpoint; loopback: a listener there.
		dest          func(localA, localOther netip.AddrPort) netip.AddrPort
		allowLoopback bool
		refused       bool
		listener      bool // dest is a listener in the namespace
	}{
		{name: "a party's address", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("10.62.0.1:0") }, listener: true},
		{name: "loopback", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("127.0.0.1:0") }, listener: true, refused: true},
		{name: "loopback allowed", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("127.0.0.1:0") }, listener: true, allowLoopback: true},
		{name: "multicast", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("239.1.2.3:5004") }, refused: true},
		{name: "broadcast", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("255.255.255.255:5004") }, refused: true},
		{name: "subnet broadcast", dest: func(_, _ netip.AddrPort) netip.AddrPort { return ap("10.62.0.255:5004") }, refused: true},
		{name: "own socket of the call", dest: func(a, _ netip.AddrPort) netip.AddrPort { return a }, refused: true},
		{name: "another call's socket", dest: func(_, o netip.AddrPort) netip.AddrPort { return o }, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, err := fwd.New(fwd.Config{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = eng.Close() }()
			log := slog.New(slog.DiscardHandler)
			r := newReconciler(eng, newOffloader(FastPathOff, "", log), log)
			setAllowLoopback(r, tc.allowLoopback)
			// The node's interfaces are the namespace's (rtp-fwd runs in
			// the node's network namespace; this test does not).
			r.readBroadcasts = func() map[netip.Addr]bool {
				var b map[netip.Addr]bool
				_ = ns.Do(func() error { b = directedBroadcasts(); return nil })
				return b
			}
			localA, fdA := nsSocket(t, ns, netip.AddrPortFrom(node, 0))
			localB, fdB := nsSocket(t, ns, netip.AddrPortFrom(node, 0))
			localO, fdO := nsSocket(t, ns, netip.AddrPortFrom(node, 0))
			partyA := nsListen(t, ns, netip.AddrPortFrom(node, 0))
			dest := tc.dest(localA, localO)
			var sink *net.UDPConn
			if tc.listener {
				sink = nsListen(t, ns, dest)
				dest = sink.LocalAddr().(*net.UDPAddr).AddrPort()
			}
			for _, s := range []handoff.Socket{{Local: localA, Call: "c", FD: fdA}, {Local: localB, Call: "c", FD: fdB}, {Local: localO, Call: "o", FD: fdO}} {
				s.Network = "udp"
				r.Add(s)
			}
			r.Flush()
			media := func(local, signalled netip.AddrPort) []nodestate.Media {
				return []nodestate.Media{{Index: 1, Type: "audio", RTCPMux: true, Streams: []nodestate.Stream{{Component: 1, Local: local, Signalled: signalled}}}}
			}
			past := time.Now().Add(-time.Minute)
			r.put(nodestate.Call{Schema: nodestate.CallSchema, ID: "o", Owner: "n", LastSignal: past, Legs: []nodestate.Leg{
				{ID: 0, Tag: "X", Medias: media(localO, ap("10.62.0.9:4000"))}}})
			rec := nodestate.Call{Schema: nodestate.CallSchema, ID: "c", Owner: "n", LastSignal: past, Legs: []nodestate.Leg{
				{ID: 0, Tag: "A", Peer: 1, Medias: media(localA, partyA.LocalAddr().(*net.UDPAddr).AddrPort())},
				{ID: 1, Tag: "B", Peer: 0, Medias: media(localB, dest)},
			}}
			r.put(rec)
			r.put(rec) // written again: a refusal is counted (and logged) once

			// A sends three packets; A's stream must count exactly those
			// (a loop through our own socket would count more).
			for i := range 3 {
				if _, err := partyA.WriteToUDPAddrPort(rtppacket.RTP{Seq: uint16(i), SSRC: 0xA}.Packet([]byte("media")), localA); err != nil {
					t.Fatal(err)
				}
			}
			if sink != nil {
				buf := make([]byte, 2048)
				_ = sink.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, _, err := sink.ReadFromUDPAddrPort(buf)
				if got := err == nil; got == tc.refused {
					t.Errorf("the packet reached %s: %v, want %v", dest, got, !tc.refused)
				} else if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal(err)
				}
			}
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if st, _ := eng.Stats(r.ids[localA]); st.Packets >= 3 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond) // what a loop would add
			sa, _ := eng.Stats(r.ids[localA])
			sb, _ := eng.Stats(r.ids[localB])
			t.Logf("A's stream: packets %d errors %d; B's endpoint %v; refused %d", sa.Packets, sa.Errors, sb.Endpoint, refusedCount(r))
			if sa.Packets != 3 {
				t.Errorf("A's stream counted %d packets, want the 3 sent (more: a loop through our own socket)", sa.Packets)
			}
			if tc.refused && (sb.Endpoint.IsValid() || refusedCount(r) != 1) {
				t.Errorf("B is sent to %v (refused %d times), want no sink and one refusal", sb.Endpoint, refusedCount(r))
			}
			if !tc.refused && sb.Endpoint != dest {
				t.Errorf("B is sent to %v, want %v", sb.Endpoint, dest)
			}
		})
	}
}
