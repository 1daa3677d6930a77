package mediasock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Socket is one media socket bound to an exact local address. It owns one
// file descriptor. All methods are safe for concurrent use.
type Socket struct {
	network string
	local   netip.AddrPort

	mu sync.RWMutex // held for reading while fd is in use, for writing by Close
	fd int          // -1 once closed
}

// Bind creates a UDP socket for network "udp", "udp4" or "udp6", sets opts
// and binds it to exactly local. An IPv4-mapped address is unmapped and
// bound as IPv4; an IPv6 zone (interface name or index) sets the scope of a
// link-local address, and a zone name is resolved in the calling thread's
// network namespace. Wildcard addresses and port 0 are refused. The socket
// is non-blocking and close-on-exec; IPv6 sockets are IPv6-only.
//
// Errors name the address and, where one failed, the option; the kernel's
// error is wrapped (errors.Is(err, unix.EADDRINUSE) works). On error no
// descriptor is left open.
func Bind(network string, local netip.AddrPort, opts Options) (*Socket, error) {
	checked, family, err := checkLocal(network, local)
	if err != nil {
		return nil, fmt.Errorf("mediasock: bind %s %s: %w", network, local, err)
	}
	local = checked
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("mediasock: bind udp %s: %w", local, err)
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("mediasock: bind udp %s: %w", local, os.NewSyscallError("socket", err))
	}
	if err := bindFD(fd, family, local, opts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mediasock: bind udp %s: %w", local, err)
	}
	return &Socket{network: "udp", local: local, fd: fd}, nil
}

func bindFD(fd, family int, local netip.AddrPort, opts Options) error {
	if err := opts.apply(fd, family); err != nil {
		return err
	}
	sa, err := sockaddr(local)
	if err != nil {
		return err
	}
	// local has a port and a specific address (checkLocal), so a bind that
	// succeeds bound exactly that: no getsockname to confirm it (portd
	// binds four sockets per call).
	err = unix.Bind(fd, sa)
	if err == unix.EADDRNOTAVAIL && opts.FreeBind {
		// A failed bind leaves the socket unbound: try again with FREEBIND.
		if err := setFreeBind(fd, family); err != nil {
			return err
		}
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// BindPair binds an RTP socket on local:rtpPort and an RTCP socket on
// local:rtpPort+1, both with opts. If either bind fails, nothing stays open.
func BindPair(local netip.Addr, rtpPort int, opts Options) (rtp, rtcp *Socket, err error) {
	if rtpPort < 1 || rtpPort > 65534 {
		return nil, nil, fmt.Errorf("mediasock: bind pair %s: RTP port %d not in 1..65534: %w", local, rtpPort, ErrInvalidAddr)
	}
	rtp, err = Bind("udp", netip.AddrPortFrom(local, uint16(rtpPort)), opts)
	if err != nil {
		return nil, nil, err
	}
	rtcp, err = Bind("udp", netip.AddrPortFrom(local, uint16(rtpPort+1)), opts)
	if err != nil {
		rtp.Close()
		return nil, nil, err
	}
	return rtp, rtcp, nil
}

// FromFD makes a Socket from a descriptor received from portd, together with
// the network and local address that came with it as metadata. It checks that
// fd is a UDP socket of that address family bound to exactly local (IPv6
// zones are not compared); if local is the zero AddrPort, the bound address
// is taken from the kernel instead (an IPv6 zone then is the numeric
// interface index). It also makes sure the socket is non-blocking.
//
// FromFD always takes ownership of fd: on error it closes fd.
func FromFD(fd int, network string, local netip.AddrPort) (*Socket, error) {
	s, err := fromFD(fd, network, local)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mediasock: socket from fd %d (%s %s): %w", fd, network, local, err)
	}
	return s, nil
}

func fromFD(fd int, network string, local netip.AddrPort) (*Socket, error) {
	if fd < 0 {
		return nil, fmt.Errorf("%w: negative descriptor", ErrNotMediaSocket)
	}
	if network != "udp" {
		return nil, fmt.Errorf("%w %q (want udp)", ErrUnsupportedNetwork, network)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotMediaSocket, os.NewSyscallError("getsockopt SO_TYPE", err))
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotMediaSocket, os.NewSyscallError("getsockopt SO_PROTOCOL", err))
	}
	if typ != unix.SOCK_DGRAM || proto != unix.IPPROTO_UDP {
		return nil, fmt.Errorf("%w: socket type %d protocol %d is not UDP", ErrNotMediaSocket, typ, proto)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotMediaSocket, os.NewSyscallError("getsockname", err))
	}
	bound, ok := addrPort(sa)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: not an IPv4 or IPv6 socket", ErrNotMediaSocket)
	case bound.Addr().IsUnspecified() || bound.Port() == 0:
		return nil, fmt.Errorf("%w: bound to %s, not to a specific address and port", ErrNotMediaSocket, bound)
	case local.IsValid() && !sameEndpoint(bound, local):
		return nil, fmt.Errorf("%w: bound to %s", ErrNotMediaSocket, bound)
	}
	if !local.IsValid() {
		local = bound
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("set non-blocking", err)
	}
	return &Socket{network: network, local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), fd: fd}, nil
}

// Network returns the transport, "udp". ("tcp" is reserved for RTP over
// TCP.)
func (s *Socket) Network() string { return s.network }

// Local returns the exact local address and port the socket is bound to.
func (s *Socket) Local() netip.AddrPort { return s.local }

// String describes the socket for logs, e.g. "udp 192.0.2.1:30000".
func (s *Socket) String() string { return s.network + " " + s.local.String() }

// Dup returns a new close-on-exec descriptor for the same socket, owned by
// the caller, e.g. to pass to a worker. It shares the socket (and its
// non-blocking flag) with s but is closed independently.
func (s *Socket) Dup() (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return -1, fmt.Errorf("mediasock: dup %s: %w", s, ErrClosed)
	}
	fd, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("mediasock: dup %s: %w", s, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err))
	}
	return fd, nil
}

// Control calls f with the socket's descriptor, for getsockopt/setsockopt
// or a one-off system call. The descriptor is valid only during f and must
// not be closed or retained; Close waits until f returns, so f must not
// call Close.
func (s *Socket) Control(f func(fd int) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fd < 0 {
		return fmt.Errorf("mediasock: control %s: %w", s, ErrClosed)
	}
	return f(s.fd)
}

// PacketConn returns a [net.PacketConn] (a *net.UDPConn) on a duplicate of
// the socket, integrated with the Go runtime's poller so that deadlines
// work. The caller owns and closes it; s stays open and usable.
func (s *Socket) PacketConn() (net.PacketConn, error) {
	fd, err := s.Dup()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), s.network+":"+s.local.String())
	defer f.Close() // FilePacketConn works on its own duplicate
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("mediasock: packet conn for %s: %w", s, err)
	}
	return pc, nil
}

// Close closes the socket's descriptor. Duplicates made with Dup or
// PacketConn stay open. Closing twice returns an error wrapping ErrClosed.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return fmt.Errorf("mediasock: close %s: %w", s, ErrClosed)
	}
	err := unix.Close(s.fd)
	s.fd = -1
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("mediasock: close %s: %w", s, os.NewSyscallError("close", err))
	}
	return nil
}
