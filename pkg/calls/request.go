package calls

import (
	"net/netip"
)

// Request is one ng call command with its options, as the protocol layer
// decoded them (flag and replace values normalised: spaces as hyphens).
type Request struct {
	Command   string
	CallID    string
	FromTag   string
	ToTag     string
	ViaBranch string
	SDP       []byte
	// Flags holds the flags list (trust-address, strict-source, ...).
	Flags map[string]bool
	// Replace holds the replace list (origin, session-connection, ...).
	Replace map[string]bool
	// Direction names the logical interfaces [sender side, receiver side].
	Direction []string
	// ICE is remove, force, default, force-relay or optional ("" = default).
	ICE string
	// RTCPMux holds offer, require, demux, accept, reject.
	RTCPMux           map[string]bool
	TransportProtocol string
	// AddressFamily is 4 or 6 (0: not given).
	AddressFamily int
	// MediaAddress overrides the address written into the outgoing SDP.
	MediaAddress netip.Addr
	// ReceivedFrom is where the SIP message came from (received-from).
	ReceivedFrom netip.Addr
	Label        string
	SetLabel     string
	// Supports holds the supports list ("load limit").
	Supports map[string]bool
	// DeleteDelay is delete's delay in seconds; -1 means the configured one.
	DeleteDelay int
	// Limit is list's limit; -1 means the default (32).
	Limit int
	// Source is where the ng request came from (for statistics and logs).
	Source netip.AddrPort
}

func (r *Request) flag(name string) bool { return r.Flags[name] }
