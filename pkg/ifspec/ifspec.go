// Package ifspec parses rtpengine's --interface option, [NAME/]ADDR[!ADVERTISED],
// and collects the repeated option into a Set of logical interfaces with their
// local addresses and media port ranges.
//
// ADDR is an IPv4 or IPv6 literal (IPv6 bare, "::1", or in brackets, "[::1]")
// or the name of a system interface ("eth0"), which stands for all addresses of
// that interface except IPv6 link-local ones. ADVERTISED is an IP literal of the
// same family as ADDR; it is the address written into SDP, while sockets bind to
// ADDR. NAME defaults to DefaultName. Wildcard addresses (0.0.0.0, ::) are
// refused: every media socket binds to an exact local address.
//
// Unlike rtpengine, DNS names and the keyword "any" are not accepted as ADDR,
// and an IPv6 link-local literal is refused (it would need a zone to bind).
package ifspec

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultName is the name of the logical interface a specification without a
// NAME/ prefix belongs to.
const DefaultName = "default"

// maxNameLen bounds a logical interface name; names end up in logs, ng replies
// and bus subjects.
const maxNameLen = 64

// maxDeviceLen is the longest system interface name Linux accepts (IFNAMSIZ-1).
const maxDeviceLen = 15

// Family is an IP address family.
type Family uint8

// The address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// FamilyOf returns the family of a, which must be valid. An IPv4-mapped IPv6
// address counts as IPv6; addresses produced by this package are never mapped.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// String returns "IPv4" or "IPv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// Address is one local address of a logical interface.
type Address struct {
	// Name is the logical interface the address belongs to.
	Name string
	// Local is the address sockets bind to; never a wildcard, never
	// IPv4-mapped IPv6, never zoned.
	Local netip.Addr
	// Advertised is the address to put into SDP instead of Local; the zero
	// Addr if none was given. When valid it has the family of Local.
	Advertised netip.Addr
	// Device is the system interface ADDR named, e.g. "eth0"; empty when
	// ADDR was an IP literal.
	Device string
}

// Family returns the family of the local address.
func (a Address) Family() Family { return FamilyOf(a.Local) }

// SDPAddr returns the address to advertise in SDP: Advertised if given,
// otherwise Local.
func (a Address) SDPAddr() netip.Addr {
	if a.Advertised.IsValid() {
		return a.Advertised
	}
	return a.Local
}

// String formats a as a specification, NAME/LOCAL[!ADVERTISED], that Parse
// reads back to the same Name, Local and Advertised.
func (a Address) String() string {
	s := a.Name + "/" + a.Local.String()
	if a.Advertised.IsValid() {
		s += "!" + a.Advertised.String()
	}
	return s
}

// Resolver returns the addresses of the system interface called name, in the
// order the system lists them, or an error if there is no such interface.
// Parse drops the unusable ones (IPv6 link-local and the like) itself.
type Resolver func(name string) ([]netip.Addr, error)

// SystemResolver is the Resolver that asks the operating system, through
// net.InterfaceByName.
func SystemResolver(name string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		default:
			continue
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, na.Unmap())
		}
	}
	return out, nil
}

// Parse parses one --interface value, [NAME/]ADDR[!ADVERTISED], resolving a
// system interface name with SystemResolver. See ParseWith.
func Parse(spec string) ([]Address, error) {
	return ParseWith(spec, SystemResolver)
}

// ParseWith parses one --interface value, [NAME/]ADDR[!ADVERTISED], using r
// (SystemResolver if nil) to expand a system interface name. Surrounding
// white space is ignored.
//
// It returns one Address for an IP literal, or one per usable address of the
// system interface, in the order r lists them. When ADVERTISED is given
// together with a system interface name, only that interface's addresses of
// the advertised address's family are taken ("eth0!203.0.113.7" means eth0's
// IPv4 addresses, advertised as 203.0.113.7).
//
// NAME may hold ASCII letters, digits and "-_.:" (rtpengine's round-robin
// groups are written "pub:1", "pub:2"), and must not itself be an IP address
// (that is a CIDR prefix written by mistake).
func ParseWith(spec string, r Resolver) ([]Address, error) {
	if r == nil {
		r = SystemResolver
	}
	s := strings.TrimSpace(spec)
	if s == "" {
		return nil, fmt.Errorf("interface %q: %w specification", spec, errEmpty)
	}

	name := DefaultName
	if i := strings.IndexByte(s, '/'); i >= 0 {
		name, s = s[:i], s[i+1:]
		if name == "" {
			return nil, fmt.Errorf("interface %q: %w name before \"/\"", spec, errEmpty)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("interface %q: %w", spec, err)
		}
	}

	var adv netip.Addr
	if i := strings.IndexByte(s, '!'); i >= 0 {
		advStr := s[i+1:]
		s = s[:i]
		if advStr == "" {
			return nil, fmt.Errorf("interface %q: %w advertised address after \"!\"", spec, errEmpty)
		}
		a, ok := parseLiteral(advStr)
		if !ok {
			return nil, fmt.Errorf("interface %q: %w: advertised address %q is not an IP address (DNS names are not supported)",
				spec, errBadAddress, advStr)
		}
		if err := checkUsable(spec, true, a); err != nil {
			return nil, err
		}
		adv = a
	}
	if s == "" {
		return nil, fmt.Errorf("interface %q: %w address", spec, errEmpty)
	}

	if a, ok := parseLiteral(s); ok {
		if err := checkUsable(spec, false, a); err != nil {
			return nil, err
		}
		if adv.IsValid() && FamilyOf(adv) != FamilyOf(a) {
			return nil, fmt.Errorf("interface %q: %w: advertised address %s is %v but local address %s is %v",
				spec, errFamilyMismatch, adv, FamilyOf(adv), a, FamilyOf(a))
		}
		return []Address{{Name: name, Local: a, Advertised: adv}}, nil
	}
	if err := checkDevice(spec, s); err != nil {
		return nil, err
	}
	return expand(spec, name, s, adv, r)
}

// expand turns the system interface dev into its usable addresses.
func expand(spec, name, dev string, adv netip.Addr, r Resolver) ([]Address, error) {
	addrs, err := r(dev)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w %q (%v)", spec, errNoSuchInterface, dev, err)
	}
	var out []Address
	for _, a := range addrs {
		a = a.Unmap()
		if !usable(a) || (adv.IsValid() && FamilyOf(a) != FamilyOf(adv)) {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o.Local == a
		}
		if !dup {
			out = append(out, Address{Name: name, Local: a, Advertised: adv, Device: dev})
		}
	}
	if len(out) == 0 {
		if adv.IsValid() {
			return nil, fmt.Errorf("interface %q: %w: system interface %q has no usable %v address (the advertised address %s is %v)",
				spec, errNoUsableAddress, dev, FamilyOf(adv), adv, FamilyOf(adv))
		}
		return nil, fmt.Errorf("interface %q: %w: system interface %q has no usable address", spec, errNoUsableAddress, dev)
	}
	return out, nil
}

// parseLiteral parses an IP literal, IPv6 optionally in brackets, and unmaps
// IPv4-mapped IPv6. It refuses zones and bracketed IPv4.
func parseLiteral(s string) (netip.Addr, bool) {
	bracketed := false
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") && len(s) >= 2 {
		s = s[1 : len(s)-1]
		bracketed = true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || (bracketed && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// broadcast4 is the IPv4 limited broadcast address.
var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// usable reports whether a may be bound to and advertised.
func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != broadcast4 &&
		!(a.Is6() && a.IsLinkLocalUnicast())
}

// checkUsable explains why a, the local or the advertised address of spec,
// is not usable.
func checkUsable(spec string, advertised bool, a netip.Addr) error {
	role, hint := "", "give the exact local address"
	if advertised {
		role, hint = "advertised ", "give the address peers should send media to"
	}
	switch {
	case a.IsUnspecified():
		return fmt.Errorf("interface %q: %s%w %s is not allowed; %s", spec, role, errWildcard, a, hint)
	case a.IsMulticast():
		return fmt.Errorf("interface %q: %saddress %s is multicast: %w", spec, role, a, errNotUnicast)
	case a == broadcast4:
		return fmt.Errorf("interface %q: %saddress %s is the broadcast address: %w", spec, role, a, errNotUnicast)
	case a.Is6() && a.IsLinkLocalUnicast():
		return fmt.Errorf("interface %q: %saddress %s is an %w (it needs a zone to bind); give a global or unique-local address",
			spec, role, a, errLinkLocal)
	}
	return nil
}

// checkName validates a logical interface name; the caller adds context.
func checkName(name string) error {
	if _, ok := parseLiteral(name); ok {
		return fmt.Errorf("%w %q: it is an address; give NAME/ADDR, an address takes no /prefix length", errBadName, name)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: longer than %d characters", errBadName, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isNameChar(c) {
			return fmt.Errorf("%w %q: character %q not allowed (use letters, digits, \"-_.:\")", errBadName, name, rune(c))
		}
	}
	return nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':'
}

// checkDevice validates s as a system interface name, after it failed to
// parse as an IP literal.
func checkDevice(spec, s string) error {
	looksIP := strings.ContainsAny(s, ":[]%")
	if !looksIP {
		looksIP = strings.Trim(s, "0123456789.") == ""
	}
	if looksIP {
		return fmt.Errorf("interface %q: %w %q: not an IP address", spec, errBadAddress, s)
	}
	if len(s) > maxDeviceLen {
		return fmt.Errorf("interface %q: %w %q: neither an IP address nor a system interface name (at most %d characters)",
			spec, errBadAddress, s, maxDeviceLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '!' {
			return fmt.Errorf("interface %q: %w %q: neither an IP address nor a system interface name",
				spec, errBadAddress, s)
		}
	}
	return nil
}
