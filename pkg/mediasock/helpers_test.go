package mediasock

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bindSamePort binds one socket per address, all on the same port, trying
// a few kernel-suggested ports in case one is taken on another address.
func bindSamePort(t testing.TB, addrs []netip.Addr, opts Options) []*Socket {
	t.Helper()
	for range 20 {
		probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addrs[0], 0)))
		if err != nil {
			t.Fatalf("probe port: %v", err)
		}
		port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		probe.Close()
		socks := make([]*Socket, 0, len(addrs))
		var err2 error
		for _, a := range addrs {
			s, err := Bind("udp", netip.AddrPortFrom(a, port), opts)
			if err != nil {
				err2 = err
				break
			}
			socks = append(socks, s)
		}
		if err2 == nil {
			t.Cleanup(func() {
				for _, s := range socks {
					s.Close()
				}
			})
			return socks
		}
		for _, s := range socks {
			s.Close()
		}
		if !errors.Is(err2, unix.EADDRINUSE) {
			t.Fatalf("bind: %v", err2)
		}
	}
	t.Fatal("no common free port found in 20 tries")
	return nil
}

// sockName returns the address the kernel reports for the socket.
func sockName(t testing.TB, s *Socket) netip.AddrPort {
	t.Helper()
	var ap netip.AddrPort
	err := s.Control(func(fd int) error {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		var ok bool
		if ap, ok = addrPort(sa); !ok {
			return errors.New("not an inet socket")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("getsockname %s: %v", s, err)
	}
	return ap
}

func getInt(t testing.TB, s *Socket, level, opt int) int {
	t.Helper()
	var v int
	if err := s.Control(func(fd int) error {
		var err error
		v, err = unix.GetsockoptInt(fd, level, opt)
		return err
	}); err != nil {
		t.Fatalf("getsockopt %d/%d on %s: %v", level, opt, s, err)
	}
	return v
}

// roundTrip sends a datagram to s from a fresh socket and reads it through
// a PacketConn made from s.
func roundTrip(t testing.TB, s *Socket, payload string) {
	t.Helper()
	pc, err := s.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cli, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Local()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Write([]byte(payload)); err != nil {
		t.Fatalf("send to %s: %v", s, err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read on %s: %v", s, err)
	}
	if string(buf[:n]) != payload {
		t.Fatalf("read %q, want %q", buf[:n], payload)
	}
	if from.String() != cli.LocalAddr().String() {
		t.Errorf("sender %v, want %v", from, cli.LocalAddr())
	}
}
