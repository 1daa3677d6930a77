// Package api is the root of rtpkit's contracts between processes: how a
// bus subject is named, the typed descriptors of request/reply endpoints
// and published events, and the messages every daemon shares (Empty,
// Hello). Each daemon's own contract is a package below it (portdapi,
// fwdapi, ngapi, syncapi). Contract packages import only the standard
// library and each other, so any process can speak to any other without
// linking its code; the JSON shape of every message is the wire format.
package api

import (
	"strings"
	"time"
)

// Prefix starts every rtpkit subject; the version token changes when a
// message changes incompatibly.
const Prefix = "rtpkit.v1"

// Subject is the subject rtpkit.v1.<node>.<tokens...>: every subject of a
// node's bus lives under its node id.
func Subject(node string, tokens ...string) string {
	return Prefix + "." + node + "." + strings.Join(tokens, ".")
}

// Endpoint names a request/reply endpoint of a daemon, with the types of
// its request and reply: a server and its clients that use the same
// Endpoint value cannot disagree on the subject or on the messages.
type Endpoint[Req, Resp any] struct {
	// Daemon is the serving daemon's name; empty for a node-wide endpoint
	// that every daemon answers.
	Daemon string
	// Verb is the endpoint's last subject token.
	Verb string
}

// Subject is the endpoint's subject on node's bus.
func (e Endpoint[Req, Resp]) Subject(node string) string {
	if e.Daemon == "" {
		return Subject(node, e.Verb)
	}
	return Subject(node, e.Daemon, e.Verb)
}

// Name is the endpoint's name in its daemon's service description (what
// `nats micro info` lists): the verb, prefixed with "node-" for a
// node-wide endpoint.
func (e Endpoint[Req, Resp]) Name() string {
	if e.Daemon == "" {
		return "node-" + e.Verb
	}
	return e.Verb
}

// Event names a message a daemon publishes without waiting for a reply,
// with its type.
type Event[T any] struct {
	// Daemon is the publishing daemon's name (or, for a message a daemon
	// takes from anyone, the daemon that takes it).
	Daemon string
	Verb   string
}

// Subject is the event's subject on node's bus.
func (e Event[T]) Subject(node string) string { return Subject(node, e.Daemon, e.Verb) }

// Empty is the message of requests that carry nothing.
type Empty struct{}

// Hello is what every daemon answers on its ping endpoint and on the
// node-wide one.
type Hello struct {
	Node    string    `json:"node"`
	Daemon  string    `json:"daemon"`
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Ping is a daemon's ping endpoint: rtpkit.v1.<node>.<daemon>.ping.
func Ping(daemon string) Endpoint[Empty, Hello] {
	return Endpoint[Empty, Hello]{Daemon: daemon, Verb: "ping"}
}

// NodePing is the endpoint every daemon of a node answers
// (rtpkit.v1.<node>.ping): a scatter request collects them all.
var NodePing = Endpoint[Empty, Hello]{Verb: "ping"}
