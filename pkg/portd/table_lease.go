package portd

// Leases: new pairs allocated from an interface's pool and bound for a
// holder (ng-ctl's stock), and given back unused.

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/ifspec"
)

// address picks the local address leases of iface/family use: the family's
// primary address of the named (or default) interface.
func (t *table) address(iface string, family int) (ifspec.Address, error) {
	f := ifspec.Family(family)
	if f != ifspec.IPv4 && f != ifspec.IPv6 {
		return ifspec.Address{}, fmt.Errorf("%w: family %d (want 4 or 6)", errBadRequest, family)
	}
	if iface == "" {
		ifc, ok := t.set.Default(f)
		if !ok {
			return ifspec.Address{}, fmt.Errorf("%w: no interface has an %s address", errNoFamily, f)
		}
		iface = ifc.Name
	}
	if _, ok := t.set.Lookup(iface); !ok {
		return ifspec.Address{}, fmt.Errorf("%w %q", errUnknownInterface, iface)
	}
	a, ok := t.set.Primary(iface, f)
	if !ok {
		return ifspec.Address{}, fmt.Errorf("%w: %q has no %s address", errNoFamily, iface, f)
	}
	return a, nil
}

// lease binds up to count new pairs (single ports if single) for holder. It
// returns what it could bind; an error only if it bound none.
// The capacity returned is how many pairs (single ports if single) the
// address's range holds in all.
func (t *table) lease(holder, iface string, family, count int, single bool) (out []portdapi.Pair, capacity int, err error) {
	if holder == "" || count <= 0 || count > 1024 {
		return nil, 0, fmt.Errorf("%w: lease needs a holder and a count of 1-1024", errBadRequest)
	}
	a, err := t.address(iface, family)
	if err != nil {
		return nil, 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	capacity = t.pools[a.Local].Size()
	if !single {
		capacity /= 2
	}
	for len(out) < count {
		p, err := t.allocLocked(a, single)
		if err != nil {
			if len(out) > 0 {
				break
			}
			return nil, 0, err
		}
		p.holder = holder
		out = append(out, p.api())
	}
	return out, capacity, nil
}

// allocLocked takes a free pair (or single port) from a's pool and binds
// it. Ports another process holds are left marked used and skipped (a few
// times at most).
func (t *table) allocLocked(a ifspec.Address, single bool) (*pair, error) {
	if t.nsock+2 > t.maxSockets {
		return nil, fmt.Errorf("%w: %d sockets open, limit %d (raise LimitNOFILE / ulimit -n)", errFDLimit, t.nsock, t.maxSockets)
	}
	pool := t.pools[a.Local]
	// Ports found busy stay taken until the search ends, so that it does
	// not pick them again, and then go back to the pool (into quarantine):
	// another program holds them, or a worker that has not yet closed its
	// copy of a socket portd just released. Marking them used for good
	// would lose them for the life of portd (under load one port per such
	// race, until the range ran dry); this way they are tried again later.
	var busy []*pair
	defer func() {
		for _, b := range busy {
			_ = pool.Release(int(b.base.Port()), b.ports())
		}
	}()
	for attempt := 0; ; attempt++ {
		var port int
		var err error
		if single {
			port, err = pool.AllocSingle()
		} else {
			port, err = pool.AllocPair()
		}
		if err != nil {
			return nil, fmt.Errorf("interface %s address %s: %w", a.Name, a.Local, err)
		}
		base := netip.AddrPortFrom(a.Local, uint16(port))
		p := &pair{base: base, single: single, iface: a.Name, adv: a.Advertised, gen: t.nextGen()}
		if err := t.bindLocked(p); err != nil {
			if errors.Is(err, unix.EADDRINUSE) && attempt < 16 {
				busy = append(busy, p)
				t.busyPorts++
				if now := time.Now(); now.Sub(t.busyLogged) >= 5*time.Second {
					t.log.Warn("port busy (another program, or a worker still closing it); trying another", "addr", base, "busy_so_far", t.busyPorts, "err", err)
					t.busyLogged = now
				}
				continue
			}
			_ = pool.Release(port, p.ports())
			return nil, err
		}
		t.pairs[base] = p
		return p, nil
	}
}

// returnLeases releases holder's leases (all, or those with the given RTP
// addresses) that no call uses; it returns the released bases.
func (t *table) returnLeases(holder string, rtp []netip.AddrPort, all bool) []netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []netip.AddrPort
	drop := func(p *pair) {
		if p != nil && p.holder == holder && p.call == "" {
			out = append(out, p.base)
			t.releaseLocked(p)
		}
	}
	if all {
		for _, p := range t.pairs {
			drop(p)
		}
		return out
	}
	for _, ap := range rtp {
		drop(t.lookupLocked(ap))
	}
	return out
}
