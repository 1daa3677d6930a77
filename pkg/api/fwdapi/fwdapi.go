// Package fwdapi is rtp-fwd's contract on the bus: the activity report
// each forwarding worker publishes about its streams (counters, learned
// endpoints), which ng-ctl's timers and query and redis-sync read.
package fwdapi

import (
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
)

// Daemon is rtp-fwd's name on the bus.
const Daemon = "rtp-fwd"

// ActivityEvent is where workers publish stream activity
// (rtpkit.v1.<node>.rtp-fwd.activity).
var ActivityEvent = api.Event[Activity]{Daemon: Daemon, Verb: "activity"}

// ActivityInterval is how often a worker publishes the streams that
// changed; every FullEvery intervals it publishes all of them.
const (
	ActivityInterval = time.Second
	FullEvery        = 10
)

// Activity is a worker's report of its streams' counters, published off the
// packet path: ng-ctl's timers and query use it.
type Activity struct {
	Worker  string           `json:"worker"`
	Full    bool             `json:"full,omitempty"`
	Streams []StreamActivity `json:"streams"`
}

// StreamActivity is one stream: packets received on our socket Local.
type StreamActivity struct {
	Local      netip.AddrPort `json:"local"`
	LastPacket time.Time      `json:"last_packet,omitzero"`
	Packets    uint64         `json:"packets"`
	Bytes      uint64         `json:"bytes"`
	Errors     uint64         `json:"errors"`
	// Endpoint is the learned (or signalled) address of the party.
	Endpoint  netip.AddrPort `json:"endpoint,omitzero"`
	Confirmed bool           `json:"confirmed,omitempty"`
	SSRC      uint32         `json:"ssrc,omitempty"`
	// KernelDrops counts datagrams the kernel dropped on the socket's full
	// receive queue (SO_RXQ_OVFL), over the socket's life.
	KernelDrops uint64 `json:"kernel_drops,omitempty"`
	// Offloaded reports whether the stream is forwarded by the in-kernel
	// fast path now.
	Offloaded bool `json:"offloaded,omitempty"`
	// FastPathPackets counts the packets the fast path forwarded for this
	// stream (included in Packets; Packets minus FastPathPackets went
	// through rtp-fwd's socket).
	FastPathPackets uint64 `json:"fast_path_packets,omitempty"`
}
