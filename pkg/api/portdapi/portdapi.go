// Package portdapi is portd's contract on the bus: the lease, return,
// bind, release and list endpoints, the free messages holders publish, and
// the started and revoked events portd publishes, with their messages.
package portdapi

import (
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
)

// Daemon is portd's name on the bus.
const Daemon = "portd"

// portd's endpoints (rtpkit.v1.<node>.portd.<verb>).
var (
	// LeaseEndpoint leases pre-bound pairs to a holder ahead of demand.
	LeaseEndpoint = api.Endpoint[LeaseRequest, LeaseReply]{Daemon: Daemon, Verb: "lease"}
	// ReturnEndpoint gives unused leases back.
	ReturnEndpoint = api.Endpoint[ReturnRequest, ReturnReply]{Daemon: Daemon, Verb: "return"}
	// BindEndpoint binds exact pairs for a restored call.
	BindEndpoint = api.Endpoint[BindRequest, BindReply]{Daemon: Daemon, Verb: "bind"}
	// ReleaseEndpoint releases the pairs of local addresses.
	ReleaseEndpoint = api.Endpoint[ReleaseRequest, ReleaseReply]{Daemon: Daemon, Verb: "release"}
	// ListEndpoint reads portd's state.
	ListEndpoint = api.Endpoint[api.Empty, ListReply]{Daemon: Daemon, Verb: "list"}
)

// The messages published on portd's subjects, with no reply.
var (
	// FreeEvent takes Free messages from lease holders.
	FreeEvent = api.Event[Free]{Daemon: Daemon, Verb: "free"}
	// StartedEvent carries a Started event each time portd starts.
	StartedEvent = api.Event[Started]{Daemon: Daemon, Verb: "started"}
	// RevokedEvent carries a Revoked event when leased pairs were given to
	// a call by someone other than their holder (a restore).
	RevokedEvent = api.Event[Revoked]{Daemon: Daemon, Verb: "revoked"}
)

// Revoked tells a lease holder that pairs it holds unused now belong to a
// call that someone else bound (redis-sync restoring a call on the exact
// ports): the holder must drop them from its stock and never hand them out.
type Revoked struct {
	// Holder is the holder the pairs were leased to.
	Holder string `json:"holder"`
	// Pairs are the revoked pairs, as leased (same RTP address and
	// generation).
	Pairs []Pair `json:"pairs"`
}

// Free gives pairs back without waiting: the holder dropped them (a call
// ended, or took other ports). Each pair goes only if its generation still
// matches.
type Free struct {
	Pairs []Pair `json:"pairs"`
}

// Started announces a new run of portd: leases of earlier runs are void
// (their sockets died with that run unless a call took them).
type Started struct {
	Instance string `json:"instance"`
}

// Pair is one pre-bound RTP/RTCP port pair: RTP on an even port, RTCP on the
// next one, both bound to the same local address; or, for an rtcp-mux
// stream, a single port (RTCP zero).
type Pair struct {
	Interface string         `json:"interface"`
	RTP       netip.AddrPort `json:"rtp"`
	RTCP      netip.AddrPort `json:"rtcp,omitzero"`
	// Advertised is the address to write into SDP if it is not RTP's.
	Advertised netip.Addr `json:"advertised,omitzero"`
	// Gen numbers this allocation of the ports; call records and free
	// requests carry it, so that stale ones do not touch a later owner.
	Gen uint64 `json:"gen,omitempty"`
}

// LeaseRequest asks for up to Count pre-bound pairs on an interface and
// address family, ahead of demand. The leases are the holder's until it
// returns them or a call record uses them.
type LeaseRequest struct {
	Holder string `json:"holder"`
	// Interface is the logical interface name; empty means the default
	// interface of the family.
	Interface string `json:"interface,omitempty"`
	// Family is 4 or 6.
	Family int `json:"family"`
	Count  int `json:"count"`
	// Single asks for single ports (rtcp-mux) instead of pairs.
	Single bool `json:"single,omitempty"`
}

// LeaseReply carries the pairs granted (possibly fewer than asked for; none
// is an error), and the instance of portd that granted them.
type LeaseReply struct {
	Pairs    []Pair `json:"pairs"`
	Instance string `json:"instance"`
	// Capacity is how many pairs (single ports for a single lease) the
	// address's range holds in all: a holder keeps its stock a small part
	// of it.
	Capacity int `json:"capacity,omitempty"`
}

// ReturnRequest gives leased pairs back (by their RTP address), or all of
// the holder's unused leases with All.
type ReturnRequest struct {
	Holder string           `json:"holder"`
	RTP    []netip.AddrPort `json:"rtp,omitempty"`
	All    bool             `json:"all,omitempty"`
}

// ReturnReply says how many pairs went back to the pools.
type ReturnReply struct {
	Returned int `json:"returned"`
}

// BindRequest binds exactly the given pairs (RTCP zero: a single port) for
// a call, to restore a call that another node owns or owned. Sockets are
// bound with FREEBIND, so the addresses need not be on the host yet.
type BindRequest struct {
	Call  string `json:"call"`
	Pairs []Pair `json:"pairs"`
}

// BindReply lists the pairs now bound for the call.
type BindReply struct {
	Pairs []Pair `json:"pairs"`
}

// ReleaseRequest releases the pairs of the given local addresses.
type ReleaseRequest struct {
	Locals []netip.AddrPort `json:"locals"`
}

// ReleaseReply says how many pairs were released.
type ReleaseReply struct {
	Released int `json:"released"`
}

// ListReply is portd's state: ports per interface address, sockets and
// workers.
type ListReply struct {
	Interfaces []InterfaceStatus `json:"interfaces"`
	Sockets    int               `json:"sockets"`
	FDLimit    int               `json:"fd_limit"`
	Workers    []WorkerStatus    `json:"workers"`
	Instance   string            `json:"instance"`
}

// InterfaceStatus is one logical interface.
type InterfaceStatus struct {
	Name      string          `json:"name"`
	Addresses []AddressStatus `json:"addresses"`
}

// AddressStatus counts the ports of one local address.
type AddressStatus struct {
	Local       netip.Addr `json:"local"`
	Advertised  netip.Addr `json:"advertised,omitzero"`
	PortMin     int        `json:"port_min"`
	PortMax     int        `json:"port_max"`
	Used        int        `json:"used"`
	Free        int        `json:"free"`
	Quarantined int        `json:"quarantined"`
	// Leased and Assigned count pairs (two ports each) held as leases and
	// used by calls.
	Leased   int `json:"leased"`
	Assigned int `json:"assigned"`
	// Present says whether the address is configured on the host now.
	Present bool `json:"present"`
}

// WorkerStatus is one connected forwarding worker.
type WorkerStatus struct {
	ID      string    `json:"id"`
	PID     int32     `json:"pid"`
	Sockets int       `json:"sockets"`
	Since   time.Time `json:"since"`
}
