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
// changed (an empty report when none did, so that a worker's silence means
// no news rather than no change); every FullEvery intervals it publishes
// all of them.
const (
	ActivityInterval = time.Second
	FullEvery        = 10
)

// MaxStreamsPerMessage bounds the streams of one Activity message: a
// report with more is spread over several messages (Part of Parts). A
// stream encodes in at most MaxStreamBytes, so a message stays under
// 128 KiB, far below the bus's max_payload (1 MiB by default).
const (
	MaxStreamsPerMessage = 256
	MaxStreamBytes       = 512
)

// StaleAfter is how long a reader may go without any message from a
// worker before it treats the worker's streams as unknown ("no news"),
// not as silent: three intervals.
const StaleAfter = 3 * ActivityInterval

// Activity is a worker's report of its streams' counters, published off the
// packet path: ng-ctl's timers and query use it. One report (one interval)
// may take several messages: they share Seq and carry Part 1 to Parts;
// the report is complete with Part == Parts. Full is set on every message
// of a full report.
type Activity struct {
	Worker  string           `json:"worker"`
	Full    bool             `json:"full,omitempty"`
	Streams []StreamActivity `json:"streams"`
	// Seq numbers the worker's reports, one per interval, from 1 at the
	// worker's start (0: a sender that does not number them).
	Seq uint64 `json:"seq,omitempty"`
	// Part (from 1) and Parts: this message's place in report Seq
	// (0: the report is this one message).
	Part  int `json:"part,omitempty"`
	Parts int `json:"parts,omitempty"`
}

// Complete reports whether a is the last message of its report.
func (a Activity) Complete() bool { return a.Part == a.Parts }

// StreamActivity is one stream: packets received on our socket Local.
type StreamActivity struct {
	Local netip.AddrPort `json:"local"`
	// Call is the call the worker has the socket under: a port handed on
	// to a new call before the worker heard the old call end must not
	// lend the old stream's counters to the new call.
	Call       string    `json:"call,omitempty"`
	LastPacket time.Time `json:"last_packet,omitzero"`
	Packets    uint64    `json:"packets"`
	Bytes      uint64    `json:"bytes"`
	Errors     uint64    `json:"errors"`
	// Endpoint is the learned (or signalled) address of the party.
	Endpoint  netip.AddrPort `json:"endpoint,omitzero"`
	Confirmed bool           `json:"confirmed,omitempty"`
	SSRC      uint32         `json:"ssrc,omitempty"`
	// KernelDrops counts datagrams the kernel dropped on the socket's full
	// receive queue (SO_RXQ_OVFL), over the socket's life.
	KernelDrops uint64 `json:"kernel_drops,omitempty"`
	// SRTPFailures counts packets from the party that failed SRTP or
	// SRTCP authentication (dropped).
	SRTPFailures uint64 `json:"srtp_failures,omitempty"`
	// SRTPInROC and SRTPOutROC are the stream's SRTP rollover counters
	// (what the party sends, what it is sent), for a call to continue
	// elsewhere without re-keying.
	SRTPInROC  uint32 `json:"srtp_in_roc,omitempty"`
	SRTPOutROC uint32 `json:"srtp_out_roc,omitempty"`
	// DTLSIn and DTLSOut are the SRTP keys the stream's DTLS-SRTP
	// handshake made (what the party sends with, what it is sent with), as
	// a=crypto values, for the call record: a restarted worker or a
	// standby node continues with them. Key material: sent when they are
	// new and in full reports, never shown by the node's endpoints.
	DTLSIn  string `json:"dtls_in,omitempty"`
	DTLSOut string `json:"dtls_out,omitempty"`
	// Offloaded reports whether the stream is forwarded by the in-kernel
	// fast path now.
	Offloaded bool `json:"offloaded,omitempty"`
	// FastPathPackets counts the packets the fast path forwarded for this
	// stream (included in Packets; Packets minus FastPathPackets went
	// through rtp-fwd's socket).
	FastPathPackets uint64 `json:"fast_path_packets,omitempty"`
}
