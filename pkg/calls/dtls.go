package calls

// DTLS-SRTP (RFC 5763) as rtpengine 10.5 negotiates it: towards a party
// whose SDP has a=fingerprint and a=setup, rtpkit does DTLS with it
// (rtpengine's default active role against actpass, passive with
// DTLS-reverse=passive), and DTLS wins over SDES keys the party also
// gave, unless the answer's request says DTLS=off; towards a receiver of an offer whose protocol is SRTP (RTP/SAVP,
// RTP/SAVPF or UDP/TLS) rtpkit offers DTLS (a=setup:actpass and the
// fingerprint of the node's certificate) beside any SDES keys, unless
// DTLS=off; once a receiver settled on DTLS (or was offered DTLS without
// SDES), later offers to it carry DTLS only, as rtpengine's media flags
// do. rtp-fwd does the handshakes (pkg/fwd, dtls.go) with the setup
// and the party's fingerprint from the call record.

import (
	"strings"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// dtlsProto reports whether a transport protocol is DTLS-SRTP
// (UDP/TLS/RTP/SAVP, UDP/TLS/RTP/SAVPF).
func dtlsProto(p string) bool {
	return strings.EqualFold(p, "UDP/TLS/RTP/SAVP") || strings.EqualFold(p, "UDP/TLS/RTP/SAVPF")
}

// dtlsOff reports whether the request turns DTLS off.
func (r *Request) dtlsOff() bool {
	switch strings.ToLower(r.DTLS) {
	case "off", "no", "disable":
		return true
	}
	return false
}

// attrOf is a media's a=name value, else the session's ("" if neither).
func attrOf(m *sdp.Media, name string) string {
	if v := m.Attr(name); len(v) > 0 {
		return v[0]
	}
	if v := m.SessionAttr(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// dtlsSender applies the sender's DTLS to its media: with a fingerprint
// and a setup rtpkit does DTLS with it, taking the other role (and its
// SDES keys are dropped: DTLS wins); without, none.
func (x *exchange) dtlsSender(sm *media, m *sdp.Media) {
	fp, setup := attrOf(m, "fingerprint"), strings.ToLower(strings.TrimSpace(attrOf(m, "setup")))
	if x.req.dtlsOff() || !m.IsRTP() || fp == "" || setup == "" || m.Port() == 0 {
		sm.dtls = nil
		return
	}
	ours := ""
	switch setup {
	case "actpass":
		ours = "active"
		if strings.EqualFold(x.req.DTLSReverse, "passive") {
			ours = "passive"
		}
	case "active":
		ours = "passive"
	case "passive":
		ours = "active"
	default: // holdconn: no connection wanted
		sm.dtls = nil
		return
	}
	hash := x.dtlsHash()
	if sm.dtls != nil && sm.dtls.Hash != "" && x.req.DTLSFingerprint == "" {
		hash = sm.dtls.Hash
	}
	d := &nodestate.DTLS{Setup: ours, Fingerprint: strings.TrimSpace(fp), Hash: hash}
	if old := sm.dtls; old != nil && old.Setup == d.Setup && old.Fingerprint == d.Fingerprint {
		d.KeyIn, d.KeyOut = old.KeyIn, old.KeyOut // the same association: its keys stay
	}
	sm.dtls = d
}

// dtlsReceiver offers DTLS to the receiver of an offer whose protocol is
// SRTP (unless DTLS=off); an answer leaves the receiver's DTLS as its own
// offer set it.
func (x *exchange) dtlsReceiver(rm *media) {
	if !x.offer {
		return
	}
	if x.req.dtlsOff() || !(dtlsProto(rm.proto) || srtpProto(rm.proto)) || x.e.cfg.DTLSFingerprint == nil {
		rm.dtls = nil
		return
	}
	if rm.dtls != nil && rm.dtls.Fingerprint != "" {
		return // a re-offer: the association negotiated stays (role, keys)
	}
	rm.dtls = &nodestate.DTLS{Setup: "actpass", Hash: x.dtlsHash()}
}

// dtlsHash is the hash of our a=fingerprint: DTLS-fingerprint, else
// sha-256.
func (x *exchange) dtlsHash() string {
	if h := strings.ToLower(x.req.DTLSFingerprint); h != "" {
		return h
	}
	return "sha-256"
}

// dtlsAttrs are the receiver's a=setup and a=fingerprint lines.
func (x *exchange) dtlsAttrs(rm *media) []string {
	if rm.dtls == nil || x.e.cfg.DTLSFingerprint == nil {
		return nil
	}
	fp, err := x.e.cfg.DTLSFingerprint(rm.dtls.Hash)
	if err != nil {
		return nil
	}
	setup := rm.dtls.Setup
	if x.offer {
		// An offer is always actpass (rtpengine's __generate_crypto); the
		// role negotiated before stays until the answer says otherwise.
		setup = "actpass"
	}
	return []string{"setup:" + setup, "fingerprint:" + fp}
}

// ErrNoDTLS is a DTLS-SRTP media (UDP/TLS) without DTLS: a sender's with
// no a=fingerprint or a=setup, or a receiver's when the node has no
// certificate or the request turned DTLS off. Going on would promise
// media no party could key.
var ErrNoDTLS = &Reasoned{"Unsupported: UDP/TLS media without DTLS (no a=fingerprint and a=setup, no node certificate, or DTLS=off)"}
