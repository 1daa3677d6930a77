package fwd

import (
	"fmt"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The hot syscalls go through unix.RawSyscall6: none of them blocks except
// epoll_pwait, whose timeout is short, and the raw path skips the runtime's
// syscall entry and exit (which would let sysmon hand the P away while the
// loop waits). epoll_pwait with a nil signal mask is epoll_wait, and unlike
// epoll_wait it exists on every Linux architecture.

// epollWait waits up to msec milliseconds for events on epfd.
func epollWait(epfd int, ev []unix.EpollEvent, msec int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&ev[0])), uintptr(len(ev)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// recvmmsg receives up to len(h) datagrams from fd without blocking.
func recvmmsg(fd int, h []unix.Mmsghdr) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&h[0])), uintptr(len(h)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// sendmmsg sends the datagrams of h from fd without blocking and returns
// how many were sent.
func sendmmsg(fd int, h []unix.Mmsghdr) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd),
		uintptr(unsafe.Pointer(&h[0])), uintptr(len(h)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}

// ctlSize is the control buffer of one received message: room for the
// SO_RXQ_OVFL message (a uint32) and one more small one.
var ctlSize = unix.CmsgSpace(4) + unix.CmsgSpace(16)

// rxqOverflow returns the socket's cumulative kernel drop count carried by
// an SO_RXQ_OVFL control message in b (the kernel adds one to a datagram
// once the socket has dropped any). It walks the messages in place,
// without allocating.
func rxqOverflow(b []byte) (uint32, bool) {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(b) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && n >= unix.CmsgLen(4) {
			d := b[unix.CmsgLen(0):]
			return *(*uint32)(unsafe.Pointer(&d[0])), true
		}
		sp := unix.CmsgSpace(n - unix.CmsgLen(0))
		if sp >= len(b) {
			break
		}
		b = b[sp:]
	}
	return 0, false
}

// sockaddr is a destination in the kernel's layout for one socket family:
// a sockaddr_in or a sockaddr_in6 laid over the same storage.
type sockaddr struct {
	raw unix.RawSockaddrInet6
	len uint32 // bytes of raw in use; 0: no destination
}

// set stores ap for a socket of the given family and reports whether it
// can be reached from such a socket. An IPv4 address on an IPv6 socket is
// stored IPv4-mapped.
func (sa *sockaddr) set(family int, ap netip.AddrPort) bool {
	sa.len = 0
	a := ap.Addr().Unmap()
	switch family {
	case unix.AF_INET:
		if !a.Is4() {
			return false
		}
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		*p = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		putPort(&p.Port, ap.Port())
		sa.len = unix.SizeofSockaddrInet4
	case unix.AF_INET6:
		sa.raw = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		putPort(&sa.raw.Port, ap.Port())
		sa.len = unix.SizeofSockaddrInet6
	default:
		return false
	}
	return true
}

// parseSockaddr turns a source address written by the kernel into an
// AddrPort (IPv4-mapped addresses unmapped); the zero AddrPort if it is
// neither IPv4 nor IPv6.
func parseSockaddr(raw *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case raw.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), getPort(&p.Port))
	case raw.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(raw.Addr).Unmap(), getPort(&raw.Port))
	}
	return netip.AddrPort{}
}

// putPort stores a port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a port stored in network byte order.
func getPort(src *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(src))
	return uint16(b[0])<<8 | uint16(b[1])
}

// addrFamily is the family of a socket bound to a: AF_INET for an IPv4
// address, AF_INET6 otherwise.
func addrFamily(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// socketFamily checks that fd is a UDP-style datagram socket and returns
// its address family (AF_INET or AF_INET6).
func socketFamily(fd int) (int, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0, fmt.Errorf("fd %d: %w", fd, os.NewSyscallError("getsockopt SO_TYPE", err))
	}
	if typ != unix.SOCK_DGRAM {
		return 0, fmt.Errorf("fd %d: %w: not a datagram socket", fd, ErrInvalidStream)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("fd %d: %w", fd, os.NewSyscallError("getsockname", err))
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return unix.AF_INET, nil
	case *unix.SockaddrInet6:
		return unix.AF_INET6, nil
	}
	return 0, fmt.Errorf("fd %d: %w: not an IPv4 or IPv6 socket", fd, ErrInvalidStream)
}
