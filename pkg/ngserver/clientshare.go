package ngserver

import (
	"net"
	"net/netip"
	"sync"
)

// clientShare counts the open connections of each client address on one
// stream transport and refuses one more past the share. A client address
// past its share is logged once, until it is below the share again.
type clientShare struct {
	mu     sync.Mutex
	open   map[netip.Addr]int
	warned map[netip.Addr]bool
}

// clientAddr is the address a connection comes from (unmapped), or the
// zero Addr if it has none (a Unix socket, tests).
func clientAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// take counts a new connection of a and reports whether it is within max;
// first is true the first time a goes past it.
func (cs *clientShare) take(a netip.Addr, max int) (ok, first bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.open == nil {
		cs.open, cs.warned = map[netip.Addr]int{}, map[netip.Addr]bool{}
	}
	if cs.open[a] >= max {
		first = !cs.warned[a]
		cs.warned[a] = true
		return false, first
	}
	cs.open[a]++
	return true, false
}

// give uncounts a connection of a that take accepted.
func (cs *clientShare) give(a netip.Addr) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.open[a] <= 1 {
		delete(cs.open, a)
		delete(cs.warned, a)
		return
	}
	cs.open[a]--
	delete(cs.warned, a)
}
