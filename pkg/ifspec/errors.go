package ifspec

import "errors"

// Sentinel errors. They are wrapped with the offending specification, so a
// message names the option value that is wrong; tests match them with
// errors.Is.
var (
	errEmpty             = errors.New("empty")
	errBadName           = errors.New("invalid interface name")
	errBadAddress        = errors.New("invalid address")
	errWildcard          = errors.New("wildcard address")
	errNotUnicast        = errors.New("not a unicast address")
	errLinkLocal         = errors.New("IPv6 link-local address")
	errFamilyMismatch    = errors.New("address family mismatch")
	errNoSuchInterface   = errors.New("no such system interface")
	errNoUsableAddress   = errors.New("no usable address")
	errDuplicate         = errors.New("duplicate local address")
	errNoInterfaces      = errors.New("no interface configured")
	errUnknownInterface  = errors.New("unknown interface")
	errBadPortRange      = errors.New("invalid port range")
	errPortRangeConflict = errors.New("conflicting port ranges")
)
