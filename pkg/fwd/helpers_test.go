package fwd

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
)

// proxySock returns a bound, non-blocking UDP socket on 127.0.0.1 as a raw
// descriptor (what portd hands a worker), closed when the test ends.
func proxySock(t testing.TB) (int, netip.AddrPort) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	return fd, netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port))
}

// party returns a UDP socket playing a call party.
func party(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// rtpPacket builds an RTP packet with rtppacket: version 2, payload type 0,
// timestamp seq×160, no CSRCs.
func rtpPacket(seq uint16, ssrc uint32, payload []byte) []byte {
	return rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}.Packet(payload)
}

// rtcpPacket builds an empty RTCP receiver report (packet type 201, 8
// bytes) with rtppacket.
func rtcpPacket(ssrc uint32) []byte {
	return rtppacket.ReceiverReport(ssrc)
}

func send(t testing.TB, c *net.UDPConn, to netip.AddrPort, p []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
		t.Fatal(err)
	}
}

// expect reads one packet within 2 s and checks its bytes and source.
func expect(t testing.TB, c *net.UDPConn, want []byte, from netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("%s: no packet: %v", addrOf(c), err)
	}
	if !bytes.Equal(buf[:n], want) {
		t.Fatalf("%s: got % x, want % x", addrOf(c), buf[:n], want)
	}
	if src != from {
		t.Fatalf("%s: packet from %s, want from %s", addrOf(c), src, from)
	}
}

// expectNothing checks that no packet arrives on c within d.
func expectNothing(t testing.TB, c *net.UDPConn, d time.Duration) {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(d))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err == nil {
		t.Fatalf("%s: unexpected packet of %d bytes from %s", addrOf(c), n, src)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustSet(t testing.TB, e *Engine, id StreamID, s Stream) {
	t.Helper()
	if err := e.Set(id, s); err != nil {
		t.Fatal(err)
	}
}

func stats(t testing.TB, e *Engine, id StreamID) Counters {
	t.Helper()
	c, ok := e.Stats(id)
	if !ok {
		t.Fatalf("no stats for stream %d", id)
	}
	return c
}

// eventually polls cond for up to 2 s; Stats are published after each
// batch, a moment after the packets went out.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// call is two parties A and B talking through proxy sockets pa and pb.
type call struct {
	A, B     *net.UDPConn
	pa, pb   int
	paA, pbA netip.AddrPort // proxy socket addresses
}

func newCall(t testing.TB) *call {
	c := &call{A: party(t), B: party(t)}
	c.pa, c.paA = proxySock(t)
	c.pb, c.pbA = proxySock(t)
	return c
}

// set installs streams ida (A's leg, on pa) and idb (B's leg, on pb).
func (c *call) set(t testing.TB, e *Engine, key string, ida, idb StreamID, sa, sb Stream) {
	t.Helper()
	sa.Call, sa.FD, sa.Peer = key, c.pa, idb
	sb.Call, sb.FD, sb.Peer = key, c.pb, ida
	if !sa.Signalled.IsValid() {
		sa.Signalled = addrOf(c.A)
	}
	if !sb.Signalled.IsValid() {
		sb.Signalled = addrOf(c.B)
	}
	mustSet(t, e, ida, sa)
	mustSet(t, e, idb, sb)
}

func party6(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no ::1:", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
