package calls

import (
	"net/netip"

	"github.com/rtpkit/rtpkit/pkg/sdp"
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
	// ICELite is forward, backward, both or off: rtpkit as an ICE-lite
	// agent towards the receiver, the sender or both (offers only).
	ICELite string
	// RTCPMux holds offer, require, demux, accept, reject.
	RTCPMux           map[string]bool
	TransportProtocol string
	// DTLS is off (no, disable), passive or active ("" = default);
	// DTLSReverse is passive to answer an actpass offer passively;
	// DTLSFingerprint the hash of our a=fingerprint (sha-256 default).
	DTLS, DTLSReverse, DTLSFingerprint string
	// AddressFamily is 4 or 6 (0: not given).
	AddressFamily int
	// MediaAddress overrides the address written into the outgoing SDP.
	MediaAddress netip.Addr
	// ReceivedFrom is where the SIP message came from (received-from).
	ReceivedFrom netip.Addr
	Label        string
	SetLabel     string
	// Ptime is the packet time (ms) the receiver of an offer is given and
	// sent, PtimeReverse the one its sender is (rtpengine's ptime and
	// ptime-reverse); 0: as the SDPs say. Media is repacketized to it.
	Ptime, PtimeReverse int
	// Supports holds the supports list ("load limit").
	Supports map[string]bool
	// DeleteDelay is delete's delay in seconds; -1 means the configured one.
	DeleteDelay int
	// Limit is list's limit; -1 means the default (32).
	Limit int
	// SDES holds the SDES options (the SDES list and SDES-X flags without
	// their prefix: off, no-SUITE, pad, lifetime, ...).
	SDES map[string]bool
	// OSRTP holds the OSRTP options (offer, accept), from the OSRTP list
	// and OSRTP-X flags.
	OSRTP map[string]bool
	// SDPAttr are the sdp-attr edits of the SDP this request produces.
	SDPAttr sdp.AttrEdits
	// Codec are the codec options rtpkit carries out (strip, offer,
	// except).
	Codec CodecOptions
	// MediaEcho is the media-echo mode (ParseMediaEcho): "" for none.
	MediaEcho string
	// Source is where the ng request came from (for statistics and logs).
	Source netip.AddrPort
}

func (r *Request) flag(name string) bool { return r.Flags[name] }

// Media-echo modes (rtpengine's media-echo values, normalised).
const (
	EchoBlackhole = "blackhole" // media from either side is dropped
	EchoForward   = "forward"   // the receiver of the message gets its own media back
	EchoBackward  = "backward"  // the sender of the message gets its own media back
	EchoBoth      = "both"      // both parties get their own media back
)

// ParseMediaEcho normalises a media-echo value with rtpengine's spellings
// (sinkhole, fwd, fw, backwards, reverse, back, bkw, bk, ...); false for a
// value rtpengine does not know either.
func ParseMediaEcho(v string) (string, bool) {
	switch v {
	case "blackhole", "sinkhole":
		return EchoBlackhole, true
	case "forward", "fwd", "fw":
		return EchoForward, true
	case "backward", "backwards", "reverse", "back", "bkw", "bk":
		return EchoBackward, true
	case "both":
		return EchoBoth, true
	}
	return "", false
}
