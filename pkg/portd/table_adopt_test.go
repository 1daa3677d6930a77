package portd

import (
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAdoptOwnsFD: adopt keeps the descriptor a worker hands back or closes
// it, on every path, and never keeps two sockets for one port.
func TestAdoptOwnsFD(t *testing.T) {
	tab := newTestTable(t, 17970, 17973)
	rtp, rtcp := netip.MustParseAddrPort("127.0.0.1:17970"), netip.MustParseAddrPort("127.0.0.1:17971")
	// The worker of the previous run holds the pair.
	held := map[netip.AddrPort]int{}
	for _, ap := range []netip.AddrPort{rtp, rtcp} {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
			t.Fatal(err)
		}
		held[ap] = fd
	}
	if _, _, err := tab.bindCall("c", []block{{rtp: rtp}}); err != nil {
		t.Fatalf("bind of a held pair: %v", err)
	}
	pipe := func() int {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Close(p[1]) })
		return p[0]
	}
	dup := func(ap netip.AddrPort) func() int {
		return func() int {
			fd, err := unix.Dup(held[ap])
			if err != nil {
				t.Fatal(err)
			}
			return fd
		}
	}
	steps := []struct {
		name      string
		local     netip.AddrPort
		fd        func() int
		kept      bool
		known     bool
		wantNSock int
	}{
		{"unknown address", netip.MustParseAddrPort("127.0.0.1:17972"), pipe, false, false, 0},
		{"a pipe", rtp, pipe, false, true, 0},
		{"the rtp socket", rtp, dup(rtp), true, true, 1},
		{"the rtp socket again", rtp, dup(rtp), false, true, 1},
		{"the rtcp socket", rtcp, dup(rtcp), true, true, 2},
		{"the rtcp socket after the pair is complete", rtcp, dup(rtcp), false, true, 2},
	}
	for _, s := range steps {
		fd := s.fd()
		kept, known, call := tab.adopt(s.local, fd)
		_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		open := err == nil
		if kept != s.kept || known != s.known || open != s.kept {
			t.Errorf("%s: kept %v known %v fd open %v (%v), want kept %v known %v", s.name, kept, known, open, err, s.kept, s.known)
		}
		if err != nil && !errors.Is(err, unix.EBADF) {
			t.Errorf("%s: fcntl: %v", s.name, err)
		}
		if known && call != "c" {
			t.Errorf("%s: call %q", s.name, call)
		}
		if tab.nsock != s.wantNSock {
			t.Errorf("%s: %d sockets, want %d", s.name, tab.nsock, s.wantNSock)
		}
	}
}
