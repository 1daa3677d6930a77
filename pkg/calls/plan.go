package calls

// The SDP's rewrite plan: what the receiver of an offer or answer is
// told of the session and of each media.

import (
	"slices"

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
	// answer gives the offerer back what it offered, unless "accept".
	switch {
	case offer && req.TransportProtocol != "" && req.TransportProtocol != "accept":
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
		if !offer && len(rm.pts) > 0 {
			mp.Codecs = slices.DeleteFunc(slices.Clone(pts), func(p sdp.PayloadType) bool {
				return !slices.ContainsFunc(rm.pts, func(o nodestate.PayloadType) bool { return int(o.PT) == p.PT })
			})
		}
		if !offer {
			// The offerer muxes if it offered mux and the answerer
			// accepted it, or the offer accepted it already (demux,
			// accept). An offerer that did not offer mux never muxes,
			// even if the answerer does (rtpengine: RTCP_MUX_OVERRIDE).
			rm.rtcpMux = rm.rtcpMux && (rm.rtcpMuxAccepted || sm.rtcpMux)
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
