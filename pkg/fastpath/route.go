package fastpath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// RouteIfIndex returns the index of the device that the kernel routes
// packets to dst out of ("ip route get DST"), in the network namespace of
// the calling thread: the device for [Entry.IfIndex], and one to pass to
// [FastPath.Attach] for the packets coming back. A local address gives the
// loopback device. IPv4 or IPv6 (IPv4-mapped IPv6 addresses are unmapped,
// so they are IPv4); an unreachable destination, or a route without a
// device (blackhole, prohibit), is an error.
func RouteIfIndex(dst netip.Addr) (int, error) {
	return RouteIfIndexFrom(netip.Addr{}, dst)
}

// RouteIfIndexFrom is [RouteIfIndex] for packets with source address src
// ("ip route get DST from SRC"), so that source-based policy routing
// applies as it does to the packets the fast path sends from src. src
// must be a local address of dst's family, or the zero Addr for any
// source.
func RouteIfIndexFrom(src, dst netip.Addr) (int, error) {
	dst = dst.Unmap()
	if !dst.IsValid() {
		return 0, errors.New("fastpath: route to an invalid address")
	}
	var opts *netlink.RouteGetOptions
	if src.IsValid() {
		src = src.Unmap()
		if src.Is4() != dst.Is4() {
			return 0, fmt.Errorf("fastpath: route to %s from %s: source and destination of different families", dst, src)
		}
		opts = &netlink.RouteGetOptions{SrcAddr: net.IP(src.AsSlice())}
	}
	h, err := newNetlink()
	if err != nil {
		return 0, fmt.Errorf("fastpath: route to %s: %w", dst, err)
	}
	defer h.Close()
	routes, err := h.RouteGetWithOptions(net.IP(dst.AsSlice()), opts)
	if err == nil && (len(routes) == 0 || routes[0].LinkIndex <= 0) {
		err = errors.New("no output device")
	}
	if err != nil {
		if src.IsValid() {
			return 0, fmt.Errorf("fastpath: route to %s from %s: %w", dst, src, err)
		}
		return 0, fmt.Errorf("fastpath: route to %s: %w", dst, err)
	}
	return routes[0].LinkIndex, nil
}
