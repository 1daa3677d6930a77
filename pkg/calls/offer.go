package calls

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdp"
)

var timeZero time.Time

// latchFlags are the flags that belong to the party that sends a message.
var latchFlags = []string{"asymmetric", "unidirectional", "strict-source", "media-handover"}

// Offer handles an ng offer: it creates the call if needed and returns the
// SDP for the receiver of the offer, advertising our sockets.
func (e *Engine) Offer(ctx context.Context, req *Request) ([]byte, error) {
	return e.offerAnswer(ctx, req, true)
}

// Answer handles an ng answer and returns the SDP for the offerer.
func (e *Engine) Answer(ctx context.Context, req *Request) ([]byte, error) {
	return e.offerAnswer(ctx, req, false)
}

func (e *Engine) offerAnswer(ctx context.Context, req *Request, offer bool) ([]byte, error) {
	switch {
	case len(req.SDP) == 0:
		return nil, ErrNoSDP
	case req.CallID == "":
		return nil, ErrNoCallID
	case req.FromTag == "":
		return nil, ErrNoFromTag
	case !offer && req.ToTag == "":
		return nil, ErrNoToTag
	}
	if offer && req.flag("fragment") {
		return nil, e.fragment(req)
	}
	if err := checkTranscode(req.Codec.Transcode); err != nil {
		return nil, err
	}
	var sessions []*sdp.Session
	for _, body := range sdp.Split(req.SDP) {
		sess, err := sdp.Parse(body)
		if err != nil {
			return nil, ErrParseSDP
		}
		sessions = append(sessions, sess)
	}
	if req.flag("loop-protect") && sessions[0].HasLoopMarker(e.cfg.InstanceID) {
		return req.SDP, nil // our own SDP came back: leave it and the call alone
	}

	var en *entry
	var err error
	created := false
	if offer {
		en, created, err = e.lockOrCreate(req.CallID, req.Supports["load limit"])
		if err != nil {
			return nil, err
		}
	} else if en = e.lock(req.CallID); en == nil {
		return nil, ErrUnknownCall
	}
	defer en.mu.Unlock()
	c := en.c
	before := c.clone()
	var taken []portdapi.Pair

	out, err := e.process(ctx, c, sessions, req, offer, &taken)
	if err == nil {
		// Pairs the call stopped using (new ports for a new endpoint, a
		// rejected media) go back once the record no longer names them.
		if dropped := droppedPairs(before, c); len(dropped) > 0 {
			defer e.cfg.Ports.Free(dropped)
		}
	}
	if err != nil {
		for _, p := range taken {
			e.cfg.Ports.Put(p)
		}
		if created {
			e.remove(en)
		} else {
			c.restoreFrom(before)
		}
		return nil, err
	}
	if c.foreign && e.cfg.ActiveSwitchover {
		// rtpengine's active-switchover: signalling on a foreign call makes
		// it ours (redis-sync moves it to our partition when it sees the
		// record). Without it the call is changed but stays foreign.
		c.foreign, c.owner = false, e.cfg.Node
		e.log.Info("foreign call taken over by signalling (active-switchover)", "call", c.id, "previous_owner", before.owner)
	}
	e.save(c)
	senderTag := req.FromTag
	if !offer {
		senderTag = req.ToTag
	}
	if l := c.legByTag(senderTag); l != nil {
		e.dequeueFragments(c, l)
	}
	return out, nil
}

// droppedPairs lists the pairs before held that after no longer does.
func droppedPairs(before, after *call) []portdapi.Pair {
	keep := map[netip.AddrPort]bool{}
	for _, p := range after.pairs() {
		keep[p.RTP] = true
	}
	var out []portdapi.Pair
	for _, p := range before.pairs() {
		if !keep[p.RTP] {
			out = append(out, p)
		}
	}
	return out
}

// exchange is one offer or answer being applied to a call: the request,
// which of the two it is, the parties that send and receive it, and the
// pairs taken from portd for it so far (given back if it fails).
type exchange struct {
	req              *Request
	offer            bool
	sender, receiver *leg
	taken            *[]portdapi.Pair
	rand             io.Reader // Config.Rand
	e                *Engine
}

// process applies one offer or answer to the call and renders the SDP:
// its sessions in order (one, but rtpengine takes several in one body),
// their media sections numbered across them.
func (e *Engine) process(ctx context.Context, c *call, sessions []*sdp.Session, req *Request, offer bool, taken *[]portdapi.Pair) ([]byte, error) {
	now := e.now()
	nmedia := 0
	for _, sess := range sessions {
		nmedia += len(sess.Media())
	}
	if nmedia > e.cfg.Limits.MaxMedia {
		return nil, ErrTooManyMedia
	}
	sender, receiver, err := e.dialogue(c, req, offer)
	if err != nil {
		return nil, err
	}
	if len(c.legs) > e.cfg.Limits.MaxLegs {
		return nil, ErrTooManyLegs
	}
	x := &exchange{req: req, offer: offer, sender: sender, receiver: receiver, taken: taken, rand: e.cfg.Rand, e: e}
	e.partyOptions(x)
	pins := pinOrigin(&receiver.origin, sessions, req)
	var out []byte
	index := 0
	for _, sess := range sessions {
		plan := e.sessionPlan(req)
		plan.OriginUsername, plan.SessionName, plan.OriginVersion = pins.username, pins.sessionName, pins.version
		plan.OriginSessionID = pins.sessionID
		plan.ReplaceOrigin = plan.ReplaceOrigin || req.Replace["origin-full"]
		first := index
		for _, m := range sess.Media() {
			mp, err := e.processMedia(ctx, x, index, m)
			if err != nil {
				return nil, err
			}
			plan.Media = append(plan.Media, mp)
			index++
		}
		if offer {
			if g := bundleGroup(receiver, first, plan.Media); g != "" {
				plan.SessionAttrs = append(plan.SessionAttrs, g)
			}
		}
		sessionAddr(&plan)
		if iceLiteSession(receiver) {
			plan.SessionAttrs = append(plan.SessionAttrs, "ice-lite")
		}
		b, err := sdp.Rewrite(sess, plan)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRewriteSDP, err)
		}
		out = append(out, sdp.EditAttributes(b, req.SDPAttr)...)
	}
	sender.sdp = true
	c.lastSignal = now
	c.deleteAt = timeZero
	sender.deleteAt, receiver.deleteAt = timeZero, timeZero
	return out, nil
}

// partyOptions gives the parties the request's labels and interfaces
// (direction).
func (e *Engine) partyOptions(x *exchange) {
	req := x.req
	if req.Label != "" {
		x.sender.label = req.Label
	}
	if req.SetLabel != "" {
		x.receiver.label = req.SetLabel
	}
	if len(req.Direction) > 0 && req.Direction[0] != "" {
		x.sender.iface = e.interfaceName(req.Direction[0])
	}
	if len(req.Direction) > 1 && req.Direction[1] != "" {
		x.receiver.iface = e.interfaceName(req.Direction[1])
	}
}

// processMedia applies the SDP's media m, the i-th (from 0), to the
// parties and plans how it is rewritten for the receiver.
func (e *Engine) processMedia(ctx context.Context, x *exchange, i int, m *sdp.Media) (sdp.MediaPlan, error) {
	addr, pts, err := mediaSource(m, x.req)
	if err != nil {
		return sdp.MediaPlan{}, err
	}
	x.families(addr)
	sm := x.sender.mediaAt(i+1, m.Type())
	rm := x.receiver.mediaAt(i+1, m.Type())
	endpoint, dir := x.senderMedia(sm, rm, m, addr, pts)

	rejected := m.Port() == 0
	if rejected {
		rm.local, rm.alt = portdapi.Pair{}, portdapi.Pair{}
		rm.key = netip.AddrPort{}
	} else if err := e.takeSockets(ctx, x, sm, rm, m, endpoint); err != nil {
		return sdp.MediaPlan{}, err
	}

	mp := e.mediaPlan(x, sm, rm, m, dir, pts)
	if rejected {
		mp.Port = 0
	}
	if m.IsRTP() && !rejected {
		x.dtlsSender(sm, m)
		x.dtlsReceiver(rm)
		if err := x.cryptos(sm, rm, m); err != nil {
			return sdp.MediaPlan{}, err
		}
		mp.SecurityAttrs = append(cryptoAttrs(rm, x.req), x.dtlsAttrs(rm)...)
		if err := x.iceSender(sm, m, x.rand); err != nil {
			return sdp.MediaPlan{}, err
		}
		if err := x.iceReceiver(sm, rm, m, x.rand); err != nil {
			return sdp.MediaPlan{}, err
		}
		x.iceLite(sm, rm)
		if err := e.altSockets(ctx, x, rm); err != nil {
			return sdp.MediaPlan{}, err
		}
		mp.ICEAttrs = iceAttrs(rm, &mp, m, x.req.MediaAddress)
		// A zero address is kept for the receiver (hold) unless rtpkit is
		// its ICE agent or the sender's is trickle ICE's placeholder
		// (port 9), as rtpengine.
		mp.ReplaceZeroAddress = rm.ice != nil || m.TrickleICE() && m.Port() == 9
	}
	return mp, nil
}

// mediaSource is the address the sender's SDP gives for media m (the
// request's source address instead with SIP-source-address), and the
// payload types of an RTP media, each once.
func mediaSource(m *sdp.Media, req *Request) (netip.Addr, []sdp.PayloadType, error) {
	addr, ok := m.Connection()
	if !ok {
		return netip.Addr{}, nil, ErrIncompleteSDP
	}
	addr = addr.Unmap()
	if req.flag("SIP-source-address") || req.flag("sip-source-address") {
		if !req.ReceivedFrom.IsValid() {
			return netip.Addr{}, nil, ErrIncompleteSDP
		}
		if !addr.IsUnspecified() {
			addr = req.ReceivedFrom
		}
	}
	var pts []sdp.PayloadType
	if m.IsRTP() {
		var err error
		if pts, err = m.PayloadTypes(); err != nil {
			return netip.Addr{}, nil, ErrIncompleteSDP
		}
		pts = uniquePTs(pts)
	}
	return addr, pts, nil
}

// cryptos settles the SDES keys of both parties of media m (sdes.go):
// the sender's from its SDP, the receiver's from the offer or answer.
func (x *exchange) cryptos(sm, rm *media, m *sdp.Media) error {
	sm.sdesIn = readCryptos(m, x.req)
	if sm.dtls != nil && !x.offer {
		sm.sdesIn = nil // an answer with DTLS: DTLS wins over SDES beside it
	}
	if srtpProto(m.Proto()) && len(sm.sdesIn) == 0 && sm.dtls == nil {
		return ErrNoSDES
	}
	if dtlsProto(m.Proto()) && sm.dtls == nil || x.offer && dtlsProto(rm.proto) && rm.dtls == nil {
		return ErrNoDTLS
	}
	if x.offer {
		sm.osrtp = rtpProto(m.Proto()) && len(sm.sdesIn) > 0
	}
	if x.offer {
		if err := offerCryptos(sm, rm, x.req, x.rand); err != nil {
			return err
		}
		if srtpProto(rm.proto) && len(rm.sdesOut) == 0 && rm.dtls == nil {
			return ErrNoSDES
		}
		return nil
	}
	if len(sm.sdesIn) > 0 {
		if err := acceptCryptos(sm); err != nil {
			return err
		}
	} else {
		sm.sdesOut = nil // the answerer stays plain
	}
	if rm.dtls != nil {
		// The offerer gave both DTLS and SDES: DTLS wins, unless the
		// answer's request turns DTLS off (rtpengine's __generate_crypto).
		if x.req.dtlsOff() && len(rm.sdesIn) > 0 {
			rm.dtls = nil
		} else {
			rm.sdesIn = nil
		}
	}
	return answerCryptos(sm, rm, x.req, x.rand)
}

// families sets the parties' address families for a media the sender
// gives addr for.
func (x *exchange) families(addr netip.Addr) {
	// The sender's family follows its own SDP; the receiver's is sticky.
	x.sender.family = familyOf(addr)
	switch {
	case x.req.AddressFamily != 0:
		x.receiver.family = x.req.AddressFamily
	case x.receiver.family == 0:
		x.receiver.family = x.sender.family
	}
}

// senderMedia records in sm what the sender's SDP says of media m: its
// endpoints, rtcp-mux, protocol, codecs, latching flags and direction; and
// in rm too what the two sides share (ptime, mid, type). It returns the
// sender's RTP endpoint and the direction it sends in.
func (x *exchange) senderMedia(sm, rm *media, m *sdp.Media, addr netip.Addr, pts []sdp.PayloadType) (netip.AddrPort, sdp.Direction) {
	req, offer := x.req, x.offer
	endpoint := netip.AddrPortFrom(addr, uint16(m.Port()))
	rtcpEndpoint := x.senderRTCP(sm, rm, m, addr)
	// What an earlier owner learned holds until the party signals
	// another endpoint.
	if endpoint != sm.signalled {
		sm.learned = netip.AddrPort{}
	}
	if rtcpEndpoint != sm.rtcp {
		sm.rtcpLearned = netip.AddrPort{}
	}
	sm.signalled, sm.rtcp = endpoint, rtcpEndpoint
	// rtpengine resets the receiver's protocol when the sender changes its
	// own; otherwise a receiver keeps the one an earlier offer gave it
	// (call.c __update_media_protocol).
	sm.protoChanged = sm.proto != "" && !strings.EqualFold(sm.proto, m.Proto())
	sm.proto = m.Proto()
	sm.pts = storePTs(pts)
	sm.flags = sm.flags[:0]
	for _, f := range latchFlags {
		if req.flag(f) {
			sm.flags = append(sm.flags, f)
		}
	}
	// media-echo: the sender's media is the other side of the receiver's
	// (rtpengine sets ECHO and BLACKHOLE on both in every message that
	// names a mode).
	switch req.MediaEcho {
	case EchoForward:
		rm.echo, sm.echo = nodestate.FlagEcho, nodestate.FlagBlackhole
	case EchoBackward:
		rm.echo, sm.echo = nodestate.FlagBlackhole, nodestate.FlagEcho
	case EchoBoth:
		rm.echo, sm.echo = nodestate.FlagEcho, nodestate.FlagEcho
	case EchoBlackhole:
		rm.echo, sm.echo = nodestate.FlagBlackhole, nodestate.FlagBlackhole
	}
	dir := m.SenderDirection()
	if m.ZeroAddress() && !m.TrickleICE() {
		// A zero address is hold, but not from a party that trickles ICE
		// (a placeholder: the candidates say where it is).
		dir = dropReceive(dir)
	}
	sm.direction = string(dir)
	sm.bundle = m.Bundled()
	// ptime: each party is given the sender's a=ptime, unless the offer
	// asked for another (ptime for its receiver, ptime-reverse for its
	// sender; with ptime alone the sender gets its own back): then the
	// party's media is repacketized to it, and what the offer settled
	// outlives the answer's a=ptime (rtpengine's ptime rules).
	prevS, prevR := sm.ptime, rm.ptime
	if p := m.Ptime(); p > 0 {
		sm.ptime, rm.ptime = p, p
	}
	if offer {
		rm.repack, sm.repack = x.req.Ptime > 0, x.req.Ptime > 0 || x.req.PtimeReverse > 0
		if x.req.Ptime > 0 {
			rm.ptime = x.req.Ptime
		}
		if x.req.PtimeReverse > 0 {
			sm.ptime = x.req.PtimeReverse
		}
	} else {
		if sm.repack {
			sm.ptime = prevS
		}
		if rm.repack {
			rm.ptime = prevR
		}
	}
	if offer {
		// Media ids as rtpengine's __update_media_id: the sender's is what
		// its SDP says (a re-offer without one keeps it, RFC 5888 §9.1
		// lets one change it); the receiver's is set once, from the
		// sender's or (generate-mid) the media's index from 1, and kept:
		// a re-offer from the other side does not take it away.
		if mid := m.Mid(); mid != "" {
			sm.mid = mid
		}
		if rm.mid == "" {
			rm.mid = sm.mid
			if rm.mid == "" && x.req.flag("generate-mid") {
				rm.mid = strconv.Itoa(sm.index)
			}
		}
	}
	if rm.typ == "" {
		rm.typ = m.Type()
	}
	return endpoint, dir
}

// senderRTCP returns the sender's RTCP endpoint for media m and settles
// whether the sender muxes RTCP (sm.rtcpMux) and, in an offer, whether
// rtcp-mux is accepted towards either party.
func (x *exchange) senderRTCP(sm, rm *media, m *sdp.Media, addr netip.Addr) netip.AddrPort {
	req := x.req
	rtcpEndpoint := netip.AddrPortFrom(addr, uint16(m.Port()+1))
	sm.rtcpMux = m.RTCPMux()
	// a=rtcp counts only when the m= line has one port; on the RTP port
	// it means rtcp-mux (reference §3.2).
	if p, a, ok := m.RTCP(); ok && m.NumPorts() == 1 {
		if !a.IsValid() {
			a = addr
		}
		rtcpEndpoint = netip.AddrPortFrom(a.Unmap(), uint16(p))
		if p == m.Port() {
			sm.rtcpMux = true
		}
	}
	if x.offer {
		// rtcp-mux towards the offerer (reference §2.3; rtpengine's
		// __rtcp_mux_logic): reject refuses it; demux and accept accept
		// it, whatever the answerer does; otherwise the answer decides.
		if req.RTCPMux["reject"] {
			sm.rtcpMux = false
		}
		sm.rtcpMuxAccepted = m.IsRTP() && sm.rtcpMux && (req.RTCPMux["demux"] || req.RTCPMux["accept"])
		rm.rtcpMuxAccepted = false
		rm.peerMuxAccepted, rm.peerMuxKnown = sm.rtcpMuxAccepted, true
	}
	return rtcpEndpoint
}

func dropReceive(d sdp.Direction) sdp.Direction {
	switch d {
	case sdp.Direction("sendrecv"):
		return sdp.Direction("sendonly")
	case sdp.Direction("recvonly"):
		return sdp.Direction("inactive")
	}
	return d
}

// uniquePTs drops repeated payload types (a hostile m= line could repeat
// one to blow up the output).
func uniquePTs(pts []sdp.PayloadType) []sdp.PayloadType {
	var seen [128]bool
	out := pts[:0:0]
	for _, p := range pts {
		if p.PT >= 0 && p.PT < 128 && !seen[p.PT] {
			seen[p.PT] = true
			out = append(out, p)
		}
	}
	return out
}

func storePTs(pts []sdp.PayloadType) []nodestate.PayloadType {
	out := make([]nodestate.PayloadType, 0, len(pts))
	for _, p := range pts {
		out = append(out, nodestate.PayloadType{PT: uint8(p.PT), Encoding: p.Encoding, Clock: p.Clock, Params: p.Params, Fmtp: p.Fmtp})
	}
	return out
}

// bundleGroup is the a=group:BUNDLE (after "a=") an offer gives a
// receiver whose own SDP bundled its media (a WebRTC party): the media ids
// of its bundled, not rejected medias of this session (those from first
// on, planned as mps), "" if none. rtpengine 10.5 writes none; WebRTC
// stacks may reject an m= line a re-offer leaves out of every bundle
// (pion/webrtc does).
func bundleGroup(receiver *leg, first int, mps []sdp.MediaPlan) string {
	var mids []string
	for k, mp := range mps {
		if first+k >= len(receiver.medias) {
			break
		}
		rm := receiver.medias[first+k]
		if rm.bundle && rm.mid != "" && mp.Port != 0 {
			mids = append(mids, rm.mid)
		}
	}
	if len(mids) == 0 {
		return ""
	}
	return "group:BUNDLE " + strings.Join(mids, " ")
}
