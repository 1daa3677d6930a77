package mediasock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// TOSExpeditedForwarding is the TOS / traffic class byte for DSCP EF (46),
// the usual marking for RTP: 46<<2 = 184.
const TOSExpeditedForwarding = 46 << 2

// Options are the socket options [Bind] sets before binding. The zero value
// sets none of them and leaves kernel defaults.
type Options struct {
	// FreeBind lets the socket bind to an address that is not (yet)
	// configured on the host; the socket starts receiving as soon as the
	// address appears. No capability is needed. The option
	// (IP_FREEBIND / IPV6_FREEBIND) only matters to bind itself, so it is set
	// only when a plain bind finds the address missing (EADDRNOTAVAIL): a
	// socket on an address the host has costs no extra system call.
	FreeBind bool
	// RecvBuf and SendBuf, when > 0, set the socket receive and send buffer
	// sizes in bytes. SO_RCVBUFFORCE/SO_SNDBUFFORCE are tried first (they
	// need CAP_NET_ADMIN and ignore net.core.rmem_max/wmem_max); on failure
	// SO_RCVBUF/SO_SNDBUF are used, which the kernel caps at the sysctl
	// maximum. As with any setsockopt, the kernel doubles the value for its
	// own bookkeeping, so getsockopt reads back about twice as much.
	RecvBuf, SendBuf int
	// TOS, when > 0, sets IP_TOS (IPv4) or IPV6_TCLASS (IPv6) to this byte,
	// for example [TOSExpeditedForwarding]. Valid values are 0 to 255.
	TOS int
	// RxqOvfl sets SO_RXQ_OVFL: every datagram received after the kernel
	// has dropped packets for lack of buffer space then carries a control
	// message (SOL_SOCKET, SO_RXQ_OVFL) with the socket's cumulative drop
	// count as a native-endian uint32.
	RxqOvfl bool
}

func (o Options) validate() error {
	switch {
	case o.RecvBuf < 0:
		return fmt.Errorf("%w: RecvBuf %d < 0", ErrInvalidOption, o.RecvBuf)
	case o.SendBuf < 0:
		return fmt.Errorf("%w: SendBuf %d < 0", ErrInvalidOption, o.SendBuf)
	case o.TOS < 0 || o.TOS > 255:
		return fmt.Errorf("%w: TOS %d not in 0..255", ErrInvalidOption, o.TOS)
	}
	return nil
}

// setsockoptInt is a variable so that tests can simulate a missing
// capability.
var setsockoptInt = unix.SetsockoptInt

// setOpt sets one integer option and names it in the error.
func setOpt(fd, level, opt int, name string, value int) error {
	if err := setsockoptInt(fd, level, opt, value); err != nil {
		return fmt.Errorf("set %s=%d: %w", name, value, os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// setBuf sets a buffer size with the FORCE variant if allowed, falling back
// to the plain one, whose error is the one reported.
func setBuf(fd, force, plain int, name string, value int) error {
	if err := setsockoptInt(fd, unix.SOL_SOCKET, force, value); err == nil {
		return nil
	}
	return setOpt(fd, unix.SOL_SOCKET, plain, name, value)
}

// setFreeBind sets IP_FREEBIND or IPV6_FREEBIND on an unbound socket.
func setFreeBind(fd, family int) error {
	if family == unix.AF_INET6 {
		return setOpt(fd, unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, "IPV6_FREEBIND", 1)
	}
	return setOpt(fd, unix.IPPROTO_IP, unix.IP_FREEBIND, "IP_FREEBIND", 1)
}

// apply sets the options on a fresh, unbound socket of the given family,
// all but FreeBind (see bindFD).
func (o Options) apply(fd, family int) error {
	if family == unix.AF_INET6 {
		if err := setOpt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, "IPV6_V6ONLY", 1); err != nil {
			return err
		}
	}
	if o.RecvBuf > 0 {
		if err := setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, "SO_RCVBUF", o.RecvBuf); err != nil {
			return err
		}
	}
	if o.SendBuf > 0 {
		if err := setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, "SO_SNDBUF", o.SendBuf); err != nil {
			return err
		}
	}
	if o.TOS > 0 {
		var err error
		if family == unix.AF_INET6 {
			err = setOpt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, "IPV6_TCLASS", o.TOS)
		} else {
			err = setOpt(fd, unix.IPPROTO_IP, unix.IP_TOS, "IP_TOS", o.TOS)
		}
		if err != nil {
			return err
		}
	}
	if o.RxqOvfl {
		if err := setOpt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, "SO_RXQ_OVFL", 1); err != nil {
			return err
		}
	}
	return nil
}
