// Package syncapi is redis-sync's contract on the bus: the keyspace,
// active, standby and status endpoints with their messages.
package syncapi

import "github.com/rtpkit/rtpkit/pkg/api"

// Daemon is redis-sync's name on the bus.
const Daemon = "redis-sync"

// redis-sync's endpoints (rtpkit.v1.<node>.redis-sync.<verb>).
var (
	// KeyspaceEndpoint changes or lists the followed partitions.
	KeyspaceEndpoint = api.Endpoint[KeyspaceRequest, KeyspaceReply]{Daemon: Daemon, Verb: "keyspace"}
	// ActiveEndpoint makes this node own the foreign calls it holds.
	ActiveEndpoint = api.Endpoint[api.Empty, OwnershipReply]{Daemon: Daemon, Verb: "active"}
	// StandbyEndpoint makes this node's own calls foreign again: another
	// node of the group owns them now.
	StandbyEndpoint = api.Endpoint[api.Empty, OwnershipReply]{Daemon: Daemon, Verb: "standby"}
	// StatusEndpoint reads redis-sync's state.
	StatusEndpoint = api.Endpoint[api.Empty, Status]{Daemon: Daemon, Verb: "status"}
)

// KeyspaceRequest changes or lists the followed partitions (rtpengine's
// ksadd / ksrm / kslist).
type KeyspaceRequest struct {
	// Op is add, remove or list.
	Op string `json:"op"`
	DB int    `json:"db,omitempty"`
}

// KeyspaceReply lists the followed databases after the request, and how
// many foreign calls a remove dropped.
type KeyspaceReply struct {
	DBs     []int `json:"dbs"`
	Changed bool  `json:"changed"`
	Removed int   `json:"removed,omitempty"`
}

// OwnershipReply says how many calls changed hands.
type OwnershipReply struct {
	Calls int `json:"calls"`
}

// Status is redis-sync's state.
type Status struct {
	Enabled  bool     `json:"enabled"`
	Redis    string   `json:"redis,omitempty"`
	Own      int      `json:"own_db"`
	Followed []int    `json:"followed_dbs"`
	Counters Counters `json:"counters"`
}

// Counters are redis-sync's totals since it started.
type Counters struct {
	Writes      uint64 `json:"writes"`
	WriteErrors uint64 `json:"write_errors"`
	Restores    uint64 `json:"restores"`
	Removals    uint64 `json:"removals"`
	Resyncs     uint64 `json:"resyncs"`
	Dropped     uint64 `json:"dropped"`
	Queued      int    `json:"queued"`
	// Rejected counts records of Redis that were not restored: over a
	// cap, not on this node's addresses and ports, or refused by portd.
	Rejected uint64 `json:"rejected"`
	// AuditFixes counts foreign calls the periodic audit of a followed
	// partition found out of line with Redis (a keyspace notification
	// that never arrived) and read again.
	AuditFixes uint64 `json:"audit_fixes"`
}
