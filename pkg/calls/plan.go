package calls

// The SDP's rewrite plan: what the receiver of an offer or answer is
// told of the session and of each media.

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

// sessionPlan starts the SDP's rewrite plan with the request's
// session-wide options; the medias come next.
func (e *Engine) sessionPlan(req *Request) sdp.Plan {
	plan := sdp.Plan{
		ReplaceOrigin:            req.Replace["origin"],
		ReplaceSessionConnection: req.Replace["session-connection"],
		ReplaceZeroAddress:       req.Replace["zero-address"],
		OriginalSendrecv:         req.flag("original-sendrecv"),
		StripExtmap:              req.flag("strip-extmap"),
	}
	if req.flag("loop-protect") {
		plan.LoopProtect = e.cfg.InstanceID
	}
	return plan
}

// mediaPlan is how media m is rewritten for the receiver: our socket (or
// an address of the receiver's interface), direction, ptime, mid,
// protocol, codecs and RTCP lines. On the way it settles the receiver's
// protocol (in an offer) and whether the offerer muxes RTCP (in an
// answer).
func (e *Engine) mediaPlan(x *exchange, sm, rm *media, m *sdp.Media, dir sdp.Direction, pts []sdp.PayloadType) sdp.MediaPlan {
	req, offer, receiver := x.req, x.offer, x.receiver
	mp := sdp.MediaPlan{Direction: dir, Ptime: rm.ptime, Mid: rm.mid}
	if rm.local.RTP.IsValid() {
		mp.Port = int(rm.local.RTP.Port())
		mp.Addr = rm.local.Advertised
		if !mp.Addr.IsValid() {
			mp.Addr = rm.local.RTP.Addr()
		}
	} else {
		mp.Addr = e.interfaceAddr(receiver, receiver.family)
	}
	if req.MediaAddress.IsValid() {
		mp.Addr = req.MediaAddress
	}
	// Protocol: an offer passes the sender's (or the requested one) on; an
	// answer gives the offerer back what it offered, unless "accept", or
	// a protocol requested in the answer (rtpengine's override), as long
	// as it keeps the offerer's SRTP or plain RTP (AVP⇄AVPF,
	// SAVP⇄SAVPF: the keys were settled in the offer).
	switch {
	case offer && req.TransportProtocol != "" && req.TransportProtocol != "accept":
		mp.Proto = req.TransportProtocol
	case offer && rm.proto != "" && !sm.protoChanged && req.TransportProtocol == "":
		// A re-offer: the receiver keeps the protocol it was given.
		mp.Proto = rm.proto
	case !offer && req.TransportProtocol != "" && req.TransportProtocol != "accept" && rm.proto != "" &&
		(rtpProto(req.TransportProtocol) && rtpProto(rm.proto) || srtpProto(req.TransportProtocol) && srtpProto(rm.proto)):
		mp.Proto = req.TransportProtocol
	case !offer && req.TransportProtocol != "accept" && rm.proto != "":
		mp.Proto = rm.proto
	}
	if offer {
		rm.proto = mp.Proto
		if rm.proto == "" {
			rm.proto = m.Proto()
		}
	}
	if m.IsRTP() {
		mp.Codecs = pts
		var toOfferer []sdp.PayloadType
		if !offer && len(rm.pts) > 0 {
			toOfferer, rm.transcode, sm.transcode = planAnswerCodecs(pts, rm.pts, sm.inbandDTMF, rm.answerWith)
		}
		if x.req.flag("inject-DTMF") {
			sm.injectDTMF, rm.injectDTMF = true, true
		}
		if x.req.flag("detect-DTMF") {
			sm.detectDTMF, rm.detectDTMF = true, true
		}
		if !offer && len(rm.pts) > 0 {
			repackTo(rm, sm, pts)
			rm.transcode = withCodecSet(rm.transcode, rm.codecSet)
		}
		if toOfferer != nil {
			mp.Codecs = toOfferer
		} else if !offer && len(rm.pts) > 0 {
			mp.Codecs = slices.DeleteFunc(slices.Clone(pts), func(p sdp.PayloadType) bool {
				return !slices.ContainsFunc(rm.pts, func(o nodestate.PayloadType) bool { return int(o.PT) == p.PT })
			})
			if len(mp.Codecs) == 0 && m.Port() == 0 {
				// A rejected stream whose formats match none offered: an
				// m= line needs one, and rtpengine prints the offer's
				// first (its GH 1499 control case).
				mp.Codecs = []sdp.PayloadType{offered(rm.pts[0])}
			}
		}
		mp.Codecs = applyCodecOptions(mp.Codecs, req.Codec)
		if offer {
			sm.answerWith = answerWith(sm.pts, req.Codec)
			sm.codecSet = slices.Clone(req.Codec.Set)
			mp.Codecs = addTranscodeCodecs(mp.Codecs, req.Codec.Transcode)
			// The receiver gets the sender's events in-band if it
			// answers without telephone-event (transcode.go).
			rm.inbandDTMF = req.flag("always-transcode") ||
				slices.ContainsFunc(req.Codec.Transcode, func(c string) bool { return strings.EqualFold(strings.Split(c, "/")[0], "telephone-event") })
		}
		if !offer && req.flag("single-codec") {
			mp.Codecs = singleCodec(mp.Codecs)
		}
		if !offer {
			// The offerer muxes if it offered mux and the answerer
			// accepted it, or the offer accepted it already (demux,
			// accept). An offerer that did not offer mux never muxes,
			// even if the answerer does (rtpengine: RTCP_MUX_OVERRIDE).
			// The answerer's branch knows what its offer accepted; a call
			// restored from its record falls back to the offerer's flag.
			accepted := rm.rtcpMuxAccepted
			if sm.peerMuxKnown {
				accepted = sm.peerMuxAccepted
			}
			rm.rtcpMux = rm.rtcpMux && (accepted || sm.rtcpMux)
		}
		if mp.Port != 0 {
			e.rtcpPlan(&mp, req, offer, m, rm)
		}
	}
	return mp
}

// sessionAddr gives the session's c= and o= lines an address.
func sessionAddr(plan *sdp.Plan) {
	// The session c= and o= carry the first media's receiver-side address.
	for _, mp := range plan.Media {
		if mp.Addr.IsValid() {
			plan.SessionAddr, plan.OriginAddr = mp.Addr, mp.Addr
			break
		}
	}
}

// rtcpPlan fills the RTCP lines the receiver gets (reference §2.3). In an
// answer the offerer is told to mux exactly when it muxes (rm.rtcpMux, as
// the answer left it), so the SDP and the forwarding agree.
func (e *Engine) rtcpPlan(mp *sdp.MediaPlan, req *Request, offer bool, m *sdp.Media, rm *media) {
	reject := req.RTCPMux["reject"]
	muxToReceiver := (!offer && rm.rtcpMux) || (offer && !reject && (req.RTCPMux["require"] || rm.rtcpMux))
	switch {
	case muxToReceiver:
		mp.RTCPPort, mp.RTCPMux = mp.Port, true
	default:
		mp.RTCPPort = mp.Port
		if rm.local.RTCP.IsValid() {
			mp.RTCPPort = int(rm.local.RTCP.Port())
		}
		mp.RTCPMux = offer && !reject && !req.RTCPMux["demux"] && (m.RTCPMux() || req.RTCPMux["offer"])
	}
	if req.flag("no-rtcp-attribute") {
		mp.RTCPPort = 0
	}
	mp.FullRTCP = req.flag("full-rtcp-attribute")
}

// originOut is what the o= and s= lines say under the replace options
// (empty: as the SDP has it).
type originOut struct{ username, sessionName, sessionID, version string }

// pinOrigin applies the replace options of the o= and s= lines for the
// receiver (pins): username, session-name, SDP-version, origin-full
// (username, session id and version pinned, the address replaced as with
// origin) and force-increment-sdp-ver. A pinned username, session id or
// session name stays the first one the receiver was told. A managed
// version starts at the last one the receiver was told (the SDP's own
// for the first SDP, a random one if that is 0 or not a number) and goes
// up by one when the SDP differs from the last one sent in more than its
// o= lines; force-increment-sdp-ver raises it by one whatever the SDP.
// With several sessions in one body, the first one's values count and
// every session gets them. The version and content sent are remembered
// with every SDP, managed or not, so that a later request can manage it.
func pinOrigin(pins *originPins, sessions []*sdp.Session, req *Request) originOut {
	var out originOut
	first := sessions[0]
	o := first.Origin()
	full := req.Replace["origin-full"]
	fits := func(v string) bool { return len(v) <= nodestate.MaxOriginField }
	if (req.Replace["username"] || full) && fits(o.Username) {
		if !pins.hasUsername {
			pins.username, pins.hasUsername = o.Username, true
		}
		out.username = pins.username
	}
	if full && fits(o.SessionID) {
		if !pins.hasSessionID {
			pins.sessionID, pins.hasSessionID = o.SessionID, true
		}
		out.sessionID = pins.sessionID
	}
	if req.Replace["session-name"] && fits(first.SessionName()) {
		if !pins.hasName {
			pins.sessionName, pins.hasName = first.SessionName(), true
		}
		out.sessionName = pins.sessionName
	}
	if full || req.Replace["username"] || req.Replace["session-name"] || req.Replace["SDP-version"] ||
		req.Replace["sdp-version"] || req.Replace["force-increment-sdp-ver"] {
		pins.managed = true
	}
	var content uint64
	for _, s := range sessions {
		content = content*1099511628211 ^ s.ContentHash()
	}
	own, err := strconv.ParseUint(o.Version, 10, 64)
	if err != nil {
		own = 0
	}
	version := own
	switch {
	case req.Replace["force-increment-sdp-ver"] && pins.hasVersion:
		version = pins.version + 1
	case req.Replace["SDP-version"] || req.Replace["sdp-version"] || full || req.Replace["force-increment-sdp-ver"]:
		switch {
		case !pins.hasVersion && own == 0:
			version = uint64(rand.Uint32N(1<<31)) + 1
		case !pins.hasVersion:
		case content != pins.content:
			version = pins.version + 1
		default:
			version = pins.version
		}
	default:
		// Not managed: the sender's version goes out as it is.
		if own != 0 {
			pins.version, pins.hasVersion = own, true
		}
		pins.content = content
		return out
	}
	pins.version, pins.hasVersion, pins.content = version, true, content
	out.version = strconv.FormatUint(version, 10)
	return out
}

// singleCodec keeps, of an answer's codecs, the first that carries media
// and every supplementary one (telephone-event, CN), in their order: the
// single-codec flag.
func singleCodec(pts []sdp.PayloadType) []sdp.PayloadType {
	out := make([]sdp.PayloadType, 0, len(pts))
	media := false
	for _, p := range pts {
		supplementary := strings.EqualFold(p.Encoding, "telephone-event") || strings.EqualFold(p.Encoding, "CN")
		if !supplementary {
			if media {
				continue
			}
			media = true
		}
		out = append(out, p)
	}
	return out
}

// offered is a stored payload type as the SDP writer takes it.
func offered(p nodestate.PayloadType) sdp.PayloadType {
	rtpmap := p.Encoding + "/" + strconv.Itoa(p.Clock)
	if p.Params != "" {
		rtpmap += "/" + p.Params
	}
	return sdp.PayloadType{PT: int(p.PT), RTPMap: rtpmap, Encoding: p.Encoding, Clock: p.Clock, Params: p.Params, Fmtp: p.Fmtp}
}
