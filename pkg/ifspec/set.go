package ifspec

import (
	"fmt"
	"net/netip"
	"slices"
)

// Config is what the --interface, per-interface port range and
// --port-min/--port-max options say, as given.
type Config struct {
	// Interfaces are the --interface values, [NAME/]ADDR[!ADVERTISED], in
	// configuration order.
	Interfaces []string
	// PortRanges are per-interface port ranges, NAME/MIN-MAX (an rtpkit
	// extension), in any order; at most one per logical interface.
	PortRanges []string
	// PortMin and PortMax are the global media port range, used by every
	// logical interface that has no range of its own. Flags default them to
	// DefaultPortMin and DefaultPortMax; zero is not a default here but an
	// invalid value.
	PortMin, PortMax int
	// Resolver expands system interface names; nil means SystemResolver.
	Resolver Resolver
}

// Interface is one logical interface: the local addresses given under one
// NAME, and the port range their sockets use.
type Interface struct {
	// Name is the logical interface name.
	Name string
	// Addresses are the local addresses in configuration order; IPv4 and IPv6
	// may be mixed.
	Addresses []Address
	// PortMin and PortMax are the effective media port range: the
	// interface's own, or else the global one.
	PortMin, PortMax int
}

// Has reports whether the interface has an address of family f.
func (ifc Interface) Has(f Family) bool {
	_, ok := ifc.Primary(f)
	return ok
}

// Primary returns the first address of family f, which is the one media of
// that family uses; later addresses of the family are alternates (extra ICE
// candidates).
func (ifc Interface) Primary(f Family) (Address, bool) {
	for _, a := range ifc.Addresses {
		if a.Family() == f {
			return a, true
		}
	}
	return Address{}, false
}

// Of returns the addresses of family f, primary first, in configuration order.
func (ifc Interface) Of(f Family) []Address {
	var out []Address
	for _, a := range ifc.Addresses {
		if a.Family() == f {
			out = append(out, a)
		}
	}
	return out
}

// Set is the configured logical interfaces. It is immutable once built by New
// and safe for concurrent use; lookups return copies.
//
// The same local address may belong to several logical interfaces (with the
// same or another advertised address). Ports are allocated per local address,
// so such interfaces share one port pool, and New requires them to have the
// same effective port range.
type Set struct {
	ifaces []Interface
	byName map[string]int
	locals []netip.Addr
}

// New builds the Set that cfg describes, validating every value. Specs with
// the same NAME form one logical interface, whose addresses keep the order
// of the specs; a local address given twice for one NAME is an error.
func New(cfg Config) (*Set, error) {
	if err := checkRange("port-min/port-max", cfg.PortMin, cfg.PortMax); err != nil {
		return nil, err
	}
	if len(cfg.Interfaces) == 0 {
		return nil, fmt.Errorf("%w: give at least one --interface", errNoInterfaces)
	}
	s := &Set{byName: make(map[string]int)}
	for _, spec := range cfg.Interfaces {
		addrs, err := ParseWith(spec, cfg.Resolver)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			i, ok := s.byName[a.Name]
			if !ok {
				i = len(s.ifaces)
				s.byName[a.Name] = i
				s.ifaces = append(s.ifaces, Interface{Name: a.Name})
			}
			ifc := &s.ifaces[i]
			for _, o := range ifc.Addresses {
				if o.Local == a.Local {
					return nil, fmt.Errorf("interface %q: %w %s: interface %q already has it", spec, errDuplicate, a.Local, a.Name)
				}
			}
			ifc.Addresses = append(ifc.Addresses, a)
			if !slices.Contains(s.locals, a.Local) {
				s.locals = append(s.locals, a.Local)
			}
		}
	}

	own := make(map[string]bool)
	for _, pr := range cfg.PortRanges {
		name, lo, hi, err := ParsePortRange(pr)
		if err != nil {
			return nil, err
		}
		i, ok := s.byName[name]
		if !ok {
			return nil, fmt.Errorf("port range %q: %w %q (not given with --interface)", pr, errUnknownInterface, name)
		}
		if own[name] {
			return nil, fmt.Errorf("port range %q: %w: interface %q has a port range already", pr, errBadPortRange, name)
		}
		own[name] = true
		s.ifaces[i].PortMin, s.ifaces[i].PortMax = lo, hi
	}
	for i := range s.ifaces {
		if !own[s.ifaces[i].Name] {
			s.ifaces[i].PortMin, s.ifaces[i].PortMax = cfg.PortMin, cfg.PortMax
		}
	}

	// One pool per local address: the interfaces sharing it must agree.
	for _, l := range s.locals {
		var first *Interface
		for i := range s.ifaces {
			ifc := &s.ifaces[i]
			if !slices.ContainsFunc(ifc.Addresses, func(a Address) bool { return a.Local == l }) {
				continue
			}
			if first == nil {
				first = ifc
			} else if ifc.PortMin != first.PortMin || ifc.PortMax != first.PortMax {
				return nil, fmt.Errorf("%w: interfaces %q (%d-%d) and %q (%d-%d) share local address %s, which has one port pool",
					errPortRangeConflict, first.Name, first.PortMin, first.PortMax, ifc.Name, ifc.PortMin, ifc.PortMax, l)
			}
		}
	}
	return s, nil
}

// Interfaces returns the logical interfaces in configuration order (the order
// in which each NAME first appeared).
func (s *Set) Interfaces() []Interface {
	out := make([]Interface, len(s.ifaces))
	for i, ifc := range s.ifaces {
		out[i] = clone(ifc)
	}
	return out
}

// Lookup returns the logical interface called name.
func (s *Set) Lookup(name string) (Interface, bool) {
	i, ok := s.byName[name]
	if !ok {
		return Interface{}, false
	}
	return clone(s.ifaces[i]), true
}

// Primary returns the primary address of family f of the logical interface
// called name: its first address of that family.
func (s *Set) Primary(name string, f Family) (Address, bool) {
	i, ok := s.byName[name]
	if !ok {
		return Address{}, false
	}
	return s.ifaces[i].Primary(f)
}

// Default returns the interface media of family f uses when nothing selects
// one: the first logical interface, in configuration order, that has an
// address of family f.
func (s *Set) Default(f Family) (Interface, bool) {
	for _, ifc := range s.ifaces {
		if ifc.Has(f) {
			return clone(ifc), true
		}
	}
	return Interface{}, false
}

// LocalAddrs returns every distinct local address, in configuration order.
// Each needs one port pool.
func (s *Set) LocalAddrs() []netip.Addr {
	return slices.Clone(s.locals)
}

// PortRange returns the port range of the pool of local address addr.
func (s *Set) PortRange(addr netip.Addr) (min, max int, ok bool) {
	addr = addr.Unmap()
	for _, ifc := range s.ifaces {
		for _, a := range ifc.Addresses {
			if a.Local == addr {
				return ifc.PortMin, ifc.PortMax, true
			}
		}
	}
	return 0, 0, false
}

func clone(ifc Interface) Interface {
	ifc.Addresses = slices.Clone(ifc.Addresses)
	return ifc
}
