package sdp

import "net/netip"

// Plan says how Rewrite edits a Session: what to advertise and which
// optional edits apply. It has one MediaPlan per m= line, in m= order.
type Plan struct {
	// ReplaceOrigin replaces the o= address type and address with
	// OriginAddr (falling back to SessionAddr, then to the first media's
	// Addr); rtpengine's replace: origin. The zero address is never kept.
	ReplaceOrigin bool
	OriginAddr    netip.Addr
	// OriginUsername, if not empty, replaces the o= username
	// (replace: username, the first-seen username of the receiver).
	OriginUsername string
	// OriginSessionID, if not empty, replaces the o= session id
	// (replace: origin-full, the first-seen id of the receiver).
	OriginSessionID string
	// OriginVersion, if not empty, replaces the o= session version
	// (replace: SDP-version, origin-full, force-increment-sdp-ver).
	OriginVersion string
	// SessionName, if not empty, replaces the s= value
	// (replace: session-name).
	SessionName string

	// ReplaceSessionConnection forces the session c= to be rewritten
	// (replace: session-connection). Without it the session c= is
	// rewritten only when some m= section has no c= of its own. Only the
	// address type and address change; "IN" is copied.
	ReplaceSessionConnection bool
	// SessionAddr is the address for a rewritten session c= (falling back
	// to the first media's Addr). A rewritten session c= keeps a zero
	// address when the first media does (see ReplaceZeroAddress).
	SessionAddr netip.Addr

	// ReplaceZeroAddress rewrites c= lines whose media has the zero
	// address (0.0.0.0 or ::) like any other (replace: zero-address).
	// Without it such a c= keeps the zero address, printed in the family
	// of the media's Addr. Set it too when the receiver's first media
	// uses ICE: rtpengine keeps no zero address then.
	ReplaceZeroAddress bool

	// LoopProtect, if not empty, adds a=rtpengine:<LoopProtect> at the end
	// of the session section.
	LoopProtect string
	// SessionAttrs are added after the loop marker, one a= line each
	// (text after "a=", e.g. "ice-lite").
	SessionAttrs []string

	// OriginalSendrecv keeps the input's direction attributes in place
	// and generates none (original-sendrecv).
	OriginalSendrecv bool
	// StripExtmap removes a=extmap lines at both levels (strip-extmap).
	StripExtmap bool

	// Media has one entry per m= line, in order.
	Media []MediaPlan
}

// MediaPlan says what to write for one media section.
//
// A section is rejected when its input port is 0 or Port is 0: it keeps a
// rewritten c= and format list but its generated tail is only a=mid (and
// a=label, a=end-of-candidates). An m=message section is passed through
// untouched (see Rewrite).
type MediaPlan struct {
	// Port is our RTP port for the m= line; an input port of 0 stays 0.
	Port int
	// Addr is the address advertised in the media's c= line. Its family
	// is the receiver's: it also decides whether a kept zero address is
	// printed as "IP4 0.0.0.0" or "IP6 ::".
	Addr netip.Addr
	// Proto is the protocol to print; "" prints the canonical name of a
	// known input protocol and leaves an unknown one as written.
	Proto string
	// Codecs are the formats to emit, in this order: the m= format list
	// and, per codec with an RTPMap, its a=rtpmap, a=fmtp and a=rtcp-fb
	// lines. Used only for RTP protocols; a non-RTP section keeps its
	// input format list. With no codecs (as rtpengine with an empty codec
	// store) an RTP section gets an empty format list and its input
	// rtpmap/fmtp/rtcp-fb lines stay in place.
	Codecs []PayloadType
	// Direction is the direction line to generate ("" for none).
	Direction Direction
	// RTCPPort, if not 0, generates a=rtcp:<RTCPPort> (RTP only).
	RTCPPort int
	// RTCPMux generates a=rtcp-mux after the a=rtcp line (RTP only).
	RTCPMux bool
	// FullRTCP appends " IN IP4 <Addr>" (or IP6) to a=rtcp
	// (full-rtcp-attribute).
	FullRTCP bool
	// Ptime, if positive, generates a=ptime (RTP only) and removes the
	// input's a=ptime lines; with 0 an input a=ptime stays in place, as in
	// rtpengine when no ptime is stored for the party.
	Ptime int
	// Mid, if not empty, generates a=mid:<Mid> at the start of the tail.
	Mid string
	// ReplaceZeroAddress is ReplaceZeroAddress for this media only (for
	// example a trickle-ICE placeholder address).
	ReplaceZeroAddress bool
	// Label, if not empty, generates a=label:<Label> after a=mid (SIPREC).
	Label string
	// ExtraAttrs are generated after the codec lines, before the
	// direction (text after "a=").
	ExtraAttrs []string
	// SecurityAttrs are generated after the RTCP lines, before a=ptime:
	// a=crypto, a=setup, a=fingerprint (text after "a=").
	SecurityAttrs []string
	// ICEAttrs are generated after a=ptime: a=ice-ufrag, a=ice-pwd,
	// a=ice-options, a=candidate (text after "a=").
	ICEAttrs []string
	// KeepICE keeps the sender's ICE lines (a=ice-ufrag, a=ice-pwd,
	// a=ice-options, a=candidate, a=end-of-candidates; the session's ICE
	// lines too when the first media keeps them): ICE passthrough, where
	// the ICEAttrs add candidates to the sender's.
	KeepICE bool
	// EndOfCandidates generates a=end-of-candidates at the very end (it
	// is generated anyway when the input section had it).
	EndOfCandidates bool
}
