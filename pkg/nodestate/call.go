package nodestate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CallKind is the table kind of call records.
const CallKind = "call"

// CallSchema is the version of the Call record layout; a reader refuses
// records with a newer major version than it knows.
const CallSchema = 1

// SourceRedis is Call.Source of records redis-sync wrote.
const SourceRedis = "redis"

// Call is the node-state record of one call: what ng-ctl negotiated and
// which local sockets carry it. ng-ctl writes own calls and redis-sync
// writes foreign ones; every other process only reads them. What changes
// per packet (learned endpoints, counters) is not in this record.
type Call struct {
	Schema int    `json:"schema"`
	ID     string `json:"id"`
	// Owner is the node that owns the call: it answers its signalling and
	// writes it to its Redis partition.
	Owner string `json:"owner"`
	// Foreign marks a call restored from another node's partition: it
	// forwards media, but only final-timeout ends it.
	Foreign bool `json:"foreign,omitempty"`
	// Partition is the Redis partition the call is stored in when
	// redis-sync restored it (for a foreign call: its owner's partition).
	Partition string `json:"partition,omitempty"`
	// Source says who wrote the record when it was not the owner's ng-ctl:
	// SourceRedis for a call restored or taken over by redis-sync. ng-ctl
	// loads such records; its own writes clear the field.
	Source  string    `json:"source,omitempty"`
	Created time.Time `json:"created"`
	// LastSignal is the time of the last offer/answer that changed the call.
	LastSignal time.Time `json:"last_signal"`
	// DeleteAt is set when a delete with delete-delay is pending.
	DeleteAt time.Time `json:"delete_at,omitzero"`
	// Legs are the call's monologues (one per SIP tag), in creation order.
	Legs []Leg `json:"legs"`
}

// Leg is one party of the call: rtpengine's monologue, named by its tag
// (empty until the answer names it).
type Leg struct {
	// ID tells legs apart within the call, tagged or not.
	ID        int    `json:"id"`
	Tag       string `json:"tag,omitempty"`
	Label     string `json:"label,omitempty"`
	ViaBranch string `json:"via_branch,omitempty"`
	// Peer is the ID of the leg this one is in dialogue with (-1: none).
	Peer int `json:"peer"`
	// Family (4 or 6) is the address family of the SDP this party receives;
	// Interface the logical interface its sockets are on. Both are sticky.
	Family    int    `json:"family,omitempty"`
	Interface string `json:"interface,omitempty"`
	// SDP says whether this party has sent its own SDP.
	SDP     bool      `json:"sdp,omitempty"`
	Created time.Time `json:"created"`
	// Origin is what this party has been told in the o= and s= lines, for
	// the replace options that keep them stable (nil: nothing yet).
	Origin *Origin `json:"origin,omitempty"`
	Medias []Media `json:"medias"`
}

// Origin is what a party has been told in the o= and s= lines: the values
// that replace username, session-name and origin-full pin (Pinned says
// which, as an empty value can be pinned too), and the session version
// and SDP content hash last sent, from which SDP-version, origin-full and
// force-increment-sdp-ver go on.
type Origin struct {
	Username    string `json:"username,omitempty"`
	SessionID   string `json:"session_id,omitempty"`
	SessionName string `json:"session_name,omitempty"`
	Pinned      int    `json:"pinned,omitempty"`
	// Version is the o= session version last sent (0: none known).
	Version uint64 `json:"version,omitempty"`
	// Content is the content hash of the SDP last sent (its lines but the
	// o= line).
	Content uint64 `json:"content,omitempty"`
}

// MaxOriginField is the longest username, session id or session name an
// Origin holds (bytes); ng-ctl pins none longer (they pass through), and
// a record with a longer one is refused from Redis.
const MaxOriginField = 1024

// Bits of Origin.Pinned.
const (
	PinnedUsername = 1 << iota
	PinnedSessionID
	PinnedSessionName
)

// Media is one m= line of a leg's SDP.
type Media struct {
	// Index is the position of the m= line, from 1.
	Index     int    `json:"index"`
	Type      string `json:"type"`
	Protocol  string `json:"protocol"`
	Interface string `json:"interface"`
	// Direction is sendrecv, sendonly, recvonly or inactive.
	Direction    string        `json:"direction,omitempty"`
	RTCPMux      bool          `json:"rtcp_mux,omitempty"`
	PayloadTypes []PayloadType `json:"payload_types,omitempty"`
	Streams      []Stream      `json:"streams"`
	// Alt are rtpkit's sockets of this party's media on the interface's
	// address of the other family (component 1, and 2 without
	// rtcp-mux), its second ICE host candidates: only with ICE towards
	// the party, and only on an interface with both families. Packets to
	// them are the party's as on Streams; packets to an endpoint of that
	// family leave from them.
	Alt []Stream `json:"alt,omitempty"`
	// Flags are the latching flags of this party (asymmetric,
	// strict-source, media-handover, unidirectional) and its media-echo
	// mode (FlagEcho, FlagBlackhole).
	Flags []string `json:"flags,omitempty"`
	// Mid and Ptime are the a=mid and a=ptime this party is given.
	Mid   string `json:"mid,omitempty"`
	Ptime int    `json:"ptime,omitempty"`
	// Key is the peer endpoint the local sockets were chosen for: the same
	// endpoint in a later message keeps the same ports.
	Key netip.AddrPort `json:"key,omitzero"`
	// SDESIn are the SDES crypto attributes this party gave (its keys: it
	// sends with the first), SDESOut those rtpkit gave it (it receives
	// with the first), as a=crypto values (pkg/sdes). They hold key
	// material: node state and Redis are secrets (docs/security.md).
	SDESIn  []string `json:"sdes_in,omitempty"`
	SDESOut []string `json:"sdes_out,omitempty"`
	// SRTPInROC and SRTPOutROC are the SRTP rollover counters of the RTP
	// stream the workers reported (what this party sends, what it is
	// sent): a continued call starts from them.
	SRTPInROC  uint32 `json:"srtp_in_roc,omitempty"`
	SRTPOutROC uint32 `json:"srtp_out_roc,omitempty"`
	// ICE is rtpkit's ICE agent towards this party when rtpkit terminates
	// ICE for it (ICE=force, or a party that speaks ICE); nil: none. It
	// holds the ICE passwords: node state and Redis are secrets.
	ICE *ICE `json:"ice,omitempty"`
	// DTLS is rtpkit's DTLS-SRTP towards this party (nil: none).
	DTLS *DTLS `json:"dtls,omitempty"`
	// Transcode is the codec rtpkit sends this party what the other party
	// sends in a codec this party did not accept (nil: no transcoding
	// towards this party): one of this party's PayloadTypes.
	Transcode *PayloadType `json:"transcode,omitempty"`
}

// DTLS is rtpkit's DTLS-SRTP towards one party's media.
type DTLS struct {
	// Setup is rtpkit's a=setup towards the party: "active" (rtpkit is
	// the DTLS client), "passive" (the server) or "actpass" (offered, the
	// answer not in yet: rtpkit waits as the server).
	Setup string `json:"setup"`
	// Fingerprint is the party's certificate fingerprint from its SDP
	// ("sha-256 AB:CD:…"); empty until it sent one.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Hash is the hash of rtpkit's a=fingerprint towards the party.
	Hash string `json:"hash,omitempty"`
	// KeyIn and KeyOut are the SRTP keys the handshake made (what the
	// party sends with, what it is sent with) as a=crypto values, so that
	// a restarted worker or a standby node continues without a new
	// handshake. Key material: node state and Redis are secrets.
	KeyIn  string `json:"key_in,omitempty"`
	KeyOut string `json:"key_out,omitempty"`
}

// ICE is the state of rtpkit's ICE agent towards one party's media: our
// credentials (in the SDP the party got), the party's (from its SDP;
// empty until it sent one with ICE) and our role.
type ICE struct {
	Ufrag       string `json:"ufrag"`
	Pwd         string `json:"pwd"`
	RemoteUfrag string `json:"remote_ufrag,omitempty"`
	RemotePwd   string `json:"remote_pwd,omitempty"`
	// Controlling: rtpkit is the controlling agent (it offered to the
	// party, RFC 8445 §6.1.1).
	Controlling bool `json:"controlling,omitempty"`
	// Lite: rtpkit is an ICE-lite agent towards the party (ICE-lite
	// option): it sends no checks and is never controlling.
	Lite bool `json:"lite,omitempty"`
	// Selected is the party's address of the nominated pair as the worker
	// reported it: a restarted worker or a standby node sends there (the
	// SDP's address may be a placeholder such as 0.0.0.0:9).
	Selected netip.AddrPort `json:"selected,omitzero"`
	// Trickle: the party trickles its candidates (RFC 8838; its SDP said
	// so, or the offer to it had the trickle-ICE flag): its SDP from
	// rtpkit says a=ice-options:trickle and a=end-of-candidates.
	Trickle bool `json:"trickle,omitempty"`
	// Candidates and RTCPCandidates are the party's UDP candidates of
	// components 1 and 2 (from its SDP and trickle ICE fragments, at
	// most MaxICECandidates each): rtpkit's agent checks them.
	Candidates     []netip.AddrPort `json:"candidates,omitempty"`
	RTCPCandidates []netip.AddrPort `json:"rtcp_candidates,omitempty"`
}

// MaxICECandidates is the most candidates of a party's component the
// record keeps.
const MaxICECandidates = 8

// Media flags of media-echo (rtpengine's ECHO and BLACKHOLE media flags):
// this party's packets go back to it, or nowhere.
const (
	FlagEcho      = "echo"
	FlagBlackhole = "blackhole"
	// FlagRepacketize: what this party is sent is repacketized to its
	// Ptime (rtp-fwd decodes and encodes it even in the same codec).
	FlagRepacketize = "repacketize"
	// FlagBlockDTMF: this party's RFC 4733 events are not forwarded
	// (block DTMF).
	FlagBlockDTMF = "block-dtmf"
	// FlagDetectDTMF: this party's audio is listened to for DTMF tones
	// (detect-DTMF).
	FlagDetectDTMF = "detect-dtmf"
)

// Stream is one flow of a media: RTP (component 1) or RTCP (component 2).
type Stream struct {
	Component int `json:"component"`
	// Local is the socket of ours that receives this leg's packets.
	Local netip.AddrPort `json:"local"`
	// Advertised is the address written into SDP, if not Local's.
	Advertised netip.Addr `json:"advertised,omitzero"`
	// Signalled is the peer address the SDP announced (may be unusable
	// behind NAT; latching learns the real one).
	Signalled netip.AddrPort `json:"signalled,omitzero"`
	// Gen is portd's generation of the local socket's allocation (a record
	// naming another generation than portd's is stale).
	Gen uint64 `json:"gen,omitempty"`
	// Learned is the party's address learned from its packets on the node
	// that owned the call, when it was restored from Redis: media goes
	// there until this node learns its own.
	Learned netip.AddrPort `json:"learned,omitzero"`
}

// AllStreams lists the media's sockets: Streams, then Alt.
func (m Media) AllStreams() []Stream {
	if len(m.Alt) == 0 {
		return m.Streams
	}
	return append(slices.Clip(m.Streams), m.Alt...)
}

// PayloadType is one payload type of a media, in m= line order.
type PayloadType struct {
	PT       uint8  `json:"pt"`
	Encoding string `json:"encoding"`
	Clock    int    `json:"clock"`
	Params   string `json:"params,omitempty"`
	Fmtp     string `json:"fmtp,omitempty"`
}

// String gives the Redis hash value form pt/encoding/clock[/params[/fmtp]].
func (p PayloadType) String() string {
	s := strconv.Itoa(int(p.PT)) + "/" + p.Encoding + "/" + strconv.Itoa(p.Clock)
	if p.Params != "" || p.Fmtp != "" {
		s += "/" + p.Params
	}
	if p.Fmtp != "" {
		s += "/" + p.Fmtp
	}
	return s
}

// ParsePayloadType parses the form PayloadType.String writes. The fmtp part
// may itself contain '/'.
func ParsePayloadType(s string) (PayloadType, error) {
	var p PayloadType
	parts := strings.SplitN(s, "/", 5)
	if len(parts) < 3 {
		return p, fmt.Errorf("payload type %q: want pt/encoding/clock[/params[/fmtp]]", s)
	}
	pt, err := strconv.ParseUint(parts[0], 10, 8)
	if err != nil || pt > 127 {
		return p, fmt.Errorf("payload type %q: bad number %q", s, parts[0])
	}
	clock, err := strconv.Atoi(parts[2])
	if err != nil || clock < 0 {
		return p, fmt.Errorf("payload type %q: bad clock rate %q", s, parts[2])
	}
	p.PT, p.Encoding, p.Clock = uint8(pt), parts[1], clock
	if len(parts) > 3 {
		p.Params = parts[3]
	}
	if len(parts) > 4 {
		p.Fmtp = parts[4]
	}
	return p, nil
}

// Validate checks what readers rely on.
func (c *Call) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("call record without id")
	}
	if c.Schema > CallSchema {
		return fmt.Errorf("call %q: schema %d is newer than this build's %d", c.ID, c.Schema, CallSchema)
	}
	if c.Owner == "" {
		return fmt.Errorf("call %q: no owner", c.ID)
	}
	return nil
}

// Calls opens the table of call records.
func Calls(s *Store) *Table[Call] { return NewTable[Call](s, CallKind) }
