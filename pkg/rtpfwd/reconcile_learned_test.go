package rtpfwd

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// udpSocket opens a non-blocking UDP socket on 127.0.0.1 (as portd hands
// them over) and returns its address and descriptor, closed at cleanup.
func udpSocket(t *testing.T) (netip.AddrPort, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)), fd
}

// TestLearnedEndpointIsTheDestination: a record stream's learned endpoint
// (from the node that owned the call) is where the party is sent to, as if
// signalled; a new learned or signalled endpoint in the record re-configures
// the stream, the same values again keep what the worker learned itself.
func TestLearnedEndpointIsTheDestination(t *testing.T) {
	eng, err := fwd.New(fwd.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Close() }()
	log := slog.New(slog.DiscardHandler)
	r := newReconciler(eng, newOffloader(FastPathOff, "", log), log)
	localA, fdA := udpSocket(t) // receives from party A, sends to it
	localB, fdB := udpSocket(t)
	r.Add(handoff.Socket{Local: localA, Network: "udp", Call: "c", FD: fdA})
	r.Add(handoff.Socket{Local: localB, Network: "udp", Call: "c", FD: fdB})
	r.Flush()

	ap := netip.MustParseAddrPort
	past := time.Now().Add(-time.Minute) // the learning window is over
	call := func(signalled, learned netip.AddrPort) nodestate.Call {
		media := func(local, signalled, learned netip.AddrPort) []nodestate.Media {
			return []nodestate.Media{{Index: 1, Type: "audio", RTCPMux: true, Streams: []nodestate.Stream{
				{Component: 1, Local: local, Signalled: signalled, Learned: learned}}}}
		}
		return nodestate.Call{Schema: nodestate.CallSchema, ID: "c", Owner: "n", LastSignal: past, Legs: []nodestate.Leg{
			{ID: 0, Tag: "A", Peer: 1, Medias: media(localA, signalled, learned)},
			{ID: 1, Tag: "B", Peer: 0, Medias: media(localB, ap("127.0.0.1:9"), netip.AddrPort{})},
		}}
	}
	endpointA := func() fwd.Counters {
		t.Helper()
		st, ok := eng.Stats(r.ids[localA])
		if !ok {
			t.Fatal("A's stream is not installed")
		}
		return st
	}
	// A packet from A's real address makes the worker learn it itself.
	var learnedHere netip.AddrPort
	sendFromA := func() {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(localA))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		learnedHere = c.LocalAddr().(*net.UDPAddr).AddrPort()
		deadline := time.Now().Add(10 * time.Second)
		for endpointA().Endpoint != learnedHere {
			if time.Now().After(deadline) {
				t.Fatalf("the worker did not learn %s: %+v", learnedHere, endpointA())
			}
			_, _ = c.Write(rtppacket.RTP{Seq: 1, SSRC: 1}.Packet(nil))
			time.Sleep(10 * time.Millisecond)
		}
	}
	var (
		s1, s2 = ap("198.51.100.5:7000"), ap("198.51.100.9:7000")
		l1, l2 = ap("192.0.2.10:40000"), ap("192.0.2.11:41000")
		hold   = ap("0.0.0.0:7000")
	)
	steps := []struct {
		name            string
		signalled       netip.AddrPort
		learned         netip.AddrPort
		before          func()
		want            netip.AddrPort
		wantLearnedHere bool // want the endpoint this worker learned
		wantInvalid     bool
	}{
		{name: "signalled only", signalled: s1, want: s1},
		{name: "learned arrives", signalled: s1, learned: l1, want: l1},
		{name: "learned changes", signalled: s1, learned: l2, want: l2},
		{name: "the worker learns; the same record again keeps it", signalled: s1, learned: l2, before: sendFromA, wantLearnedHere: true},
		{name: "new signalled, stale learned: signalled wins", signalled: s2, learned: l2, want: s2},
		{name: "same again keeps the signalled one", signalled: s2, learned: l2, want: s2},
		{name: "learned anew", signalled: s2, learned: l1, want: l1},
		{name: "learned dropped (ng-ctl wrote the record)", signalled: s2, want: s2},
		{name: "learned again", signalled: s2, learned: l2, want: l2},
		{name: "on hold: nothing is sent", signalled: hold, learned: l2, wantInvalid: true},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		r.put(call(s.signalled, s.learned))
		got := endpointA()
		want := s.want
		if s.wantLearnedHere {
			want = learnedHere
		}
		switch {
		case s.wantInvalid && got.Endpoint.IsValid() && got.Endpoint.Port() != 0 && !got.Endpoint.Addr().IsUnspecified():
			t.Fatalf("%s: A is sent to %s, want nothing", s.name, got.Endpoint)
		case !s.wantInvalid && got.Endpoint != want:
			t.Fatalf("%s: A is sent to %s, want %s", s.name, got.Endpoint, want)
		case !s.wantInvalid && !s.wantLearnedHere && got.Confirmed:
			t.Fatalf("%s: the endpoint is confirmed; a signalled (or earlier learned) one must not be", s.name)
		}
	}
}
