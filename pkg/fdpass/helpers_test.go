package fdpass

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/mediasock"
	"golang.org/x/sys/unix"
)

// connPair returns two connected Conns made from a SOCK_SEQPACKET socketpair.
func connPair(t testing.TB) (*Conn, *Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	var conns [2]*Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatalf("file conn: %v", err)
		}
		c, err := NewConn(nc.(*net.UnixConn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns[0], conns[1]
}

// listenerPair returns a client and a server Conn connected through a
// Listener in a temporary directory.
func listenerPair(t testing.TB) (client, server *Conn) {
	t.Helper()
	ln, err := Listen(t.TempDir()+"/fdpass.sock", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err = Dial(ln.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ln.SetDeadline(time.Now().Add(10 * time.Second))
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// udpSockets opens n UDP sockets bound by the kernel to distinct ports of
// 127.0.0.1 and closes them at cleanup.
func udpSockets(t testing.TB, n int) []int {
	t.Helper()
	fds := make([]int, 0, n)
	t.Cleanup(func() { closeFDs(fds) })
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
	}
	return fds
}

func sockName(t testing.TB, fd int) netip.AddrPort {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname(%d): %v", fd, err)
	}
	sa4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		t.Fatalf("getsockname(%d): %T", fd, sa)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(sa4.Port))
}

// bindMedia binds a media socket on a free port of 127.0.0.1.
func bindMedia(t testing.TB) *mediasock.Socket {
	t.Helper()
	for range 20 {
		probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		ap := probe.LocalAddr().(*net.UDPAddr).AddrPort()
		probe.Close()
		s, err := mediasock.Bind("udp", ap, mediasock.Options{})
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return s
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			t.Fatal(err)
		}
	}
	t.Fatal("no free port in 20 tries")
	return nil
}
