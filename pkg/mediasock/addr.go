package mediasock

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// checkLocal validates network and local address for a media socket and
// returns the address with any IPv4 mapping removed and its address family.
func checkLocal(network string, local netip.AddrPort) (netip.AddrPort, int, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return local, 0, fmt.Errorf("%w %q (want udp, udp4 or udp6)", ErrUnsupportedNetwork, network)
	}
	addr := local.Addr()
	if !addr.IsValid() {
		return local, 0, ErrInvalidAddr
	}
	addr = addr.Unmap()
	local = netip.AddrPortFrom(addr, local.Port())
	if addr.IsUnspecified() {
		return local, 0, ErrUnspecifiedAddr
	}
	if local.Port() == 0 {
		return local, 0, ErrZeroPort
	}
	family := unix.AF_INET
	if addr.Is6() {
		family = unix.AF_INET6
	}
	if (network == "udp4" && family != unix.AF_INET) || (network == "udp6" && family != unix.AF_INET6) {
		return local, 0, fmt.Errorf("%w: %s is not an address of network %s", ErrInvalidAddr, addr, network)
	}
	return local, family, nil
}

// sockaddr converts an unmapped address to a kernel socket address,
// resolving an IPv6 zone (interface name or index) to its scope ID.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, error) {
	addr := ap.Addr()
	if addr.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
	if zone := addr.Zone(); zone != "" {
		if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		} else {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return nil, fmt.Errorf("resolve zone %q: %w", zone, err)
			}
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, nil
}

// addrPort converts a kernel IPv4 or IPv6 socket address; ok is false for
// any other kind. A non-zero IPv6 scope becomes a decimal zone (the
// interface index): interface names belong to a network namespace and
// could resolve differently in the caller's.
func addrPort(sa unix.Sockaddr) (ap netip.AddrPort, ok bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		addr := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			addr = addr.WithZone(strconv.FormatUint(uint64(sa.ZoneId), 10))
		}
		return netip.AddrPortFrom(addr, uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// sameEndpoint compares two addresses and ports, ignoring IPv4 mapping and
// IPv6 zones (zone names and indexes are not comparable as strings).
func sameEndpoint(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap().WithZone("") == b.Addr().Unmap().WithZone("")
}
