package calls

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/portd"
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
	sess, err := sdp.Parse(req.SDP)
	if err != nil {
		return nil, ErrParseSDP
	}
	if req.flag("loop-protect") && sess.HasLoopMarker(e.cfg.InstanceID) {
		return req.SDP, nil // our own SDP came back: leave it and the call alone
	}

	var en *entry
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
	var taken []portd.Pair

	out, err := e.process(ctx, c, sess, req, offer, &taken)
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
	return out, nil
}

// droppedPairs lists the pairs before held that after no longer does.
func droppedPairs(before, after *call) []portd.Pair {
	keep := map[netip.AddrPort]bool{}
	for _, p := range after.pairs() {
		keep[p.RTP] = true
	}
	var out []portd.Pair
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
	taken            *[]portd.Pair
}

// process applies one offer or answer to the call and renders the SDP.
func (e *Engine) process(ctx context.Context, c *call, sess *sdp.Session, req *Request, offer bool, taken *[]portd.Pair) ([]byte, error) {
	now := e.now()
	sender, receiver, err := e.dialogue(c, req, offer)
	if err != nil {
		return nil, err
	}
	x := &exchange{req: req, offer: offer, sender: sender, receiver: receiver, taken: taken}
	e.partyOptions(x)
	plan := e.sessionPlan(req)
	for i, m := range sess.Media() {
		mp, err := e.processMedia(ctx, x, i, m)
		if err != nil {
			return nil, err
		}
		plan.Media = append(plan.Media, mp)
	}
	sessionAddr(&plan)
	out, err := sdp.Rewrite(sess, plan)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRewriteSDP, err)
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

// sessionPlan starts the SDP's rewrite plan with the request's
// session-wide options; the medias come next.
func (e *Engine) sessionPlan(req *Request) sdp.Plan {
	plan := sdp.Plan{
		ReplaceOrigin:            req.Replace["origin"],
		ReplaceSessionConnection: req.Replace["session-connection"],
		ReplaceZeroAddress:       req.Replace["zero-address"],
		OriginalSendrecv:         req.flag("original-sendrecv"),
	}
	if req.flag("loop-protect") {
		plan.LoopProtect = e.cfg.InstanceID
	}
	return plan
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
		rm.local = portd.Pair{}
		rm.key = netip.AddrPort{}
	} else if err := e.takeSockets(ctx, x, sm, rm, m, endpoint); err != nil {
		return sdp.MediaPlan{}, err
	}

	mp := e.mediaPlan(x, sm, rm, m, dir, pts)
	if rejected {
		mp.Port = 0
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
	sm.proto = m.Proto()
	sm.pts = storePTs(pts)
	sm.flags = sm.flags[:0]
	for _, f := range latchFlags {
		if req.flag(f) {
			sm.flags = append(sm.flags, f)
		}
	}
	dir := m.SenderDirection()
	if m.ZeroAddress() {
		dir = dropReceive(dir)
	}
	sm.direction = string(dir)
	if p := m.Ptime(); p > 0 {
		sm.ptime, rm.ptime = p, p
	}
	if offer {
		sm.mid = m.Mid()
		rm.mid = m.Mid()
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
	}
	return rtcpEndpoint
}

// takeSockets takes from portd the sockets a media that is not rejected
// lacks: the receiver's, chosen for the sender's endpoint, and the
// sender's.
func (e *Engine) takeSockets(ctx context.Context, x *exchange, sm, rm *media, m *sdp.Media, endpoint netip.AddrPort) error {
	req, offer := x.req, x.offer
	// Our sockets for the receiver, chosen for the sender's endpoint.
	rSingle := offer && req.RTCPMux["require"] && m.IsRTP()
	if !rm.local.RTP.IsValid() || (rm.key.IsValid() && !sameEndpoint(rm.key, endpoint) && !req.flag("port-latching")) {
		p, err := e.take(ctx, x.receiver.iface, x.receiver.family, rSingle, x.taken)
		if err != nil {
			return err
		}
		rm.local = p
	}
	rm.key = endpoint
	// Our sockets for the sender, advertised to it in the reply to come.
	if !sm.local.RTP.IsValid() {
		sSingle := offer && sm.rtcpMuxAccepted
		p, err := e.take(ctx, x.sender.iface, x.sender.family, sSingle, x.taken)
		if err != nil {
			return err
		}
		sm.local = p
	}
	return nil
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

// dialogue finds the sender and receiver parties of a message.
func (e *Engine) dialogue(c *call, req *Request, offer bool) (sender, receiver *leg, err error) {
	now := e.now()
	fromTag, toTag := req.FromTag, req.ToTag
	if !offer {
		// The answer's sender is the to-tag party.
		a := c.legByTag(fromTag)
		if a == nil {
			return nil, nil, ErrUnknownCall
		}
		b := c.legByTag(toTag)
		if b == nil {
			b = untaggedPeer(c, a, req.ViaBranch)
			if b == nil {
				// Another fork answers: a new party in dialogue with the offerer.
				b = c.newLeg(now)
				b.viaBranch = req.ViaBranch
				b.family = a.family
				if a.peer != nil {
					b.iface = a.peer.iface
				}
			}
			b.tag = toTag
		}
		a.peer, b.peer = b, a
		return b, a, nil
	}
	a := c.legByTag(fromTag)
	if a == nil {
		a = c.newLeg(now)
		a.tag = fromTag
	}
	var b *leg
	switch {
	case toTag != "":
		if b = c.legByTag(toTag); b == nil {
			b = untaggedPeer(c, a, req.ViaBranch)
			if b == nil {
				b = c.newLeg(now)
			}
			b.tag = toTag
		}
	default:
		b = untaggedPeer(c, a, req.ViaBranch)
		if b == nil && a.peer != nil && (req.ViaBranch == "" || a.peer.viaBranch == req.ViaBranch || a.peer.viaBranch == "") {
			b = a.peer
		}
		if b == nil {
			b = c.newLeg(now)
		}
	}
	if b.viaBranch == "" {
		b.viaBranch = req.ViaBranch
	}
	a.peer, b.peer = b, a
	return a, b, nil
}

// untaggedPeer finds the party that an offer from a created and that has
// no tag yet, on the given via-branch (any, if empty).
func untaggedPeer(c *call, a *leg, via string) *leg {
	for _, l := range c.legs {
		if l.tag != "" || l == a {
			continue
		}
		if l.peer != a && l.peer != nil {
			continue
		}
		if via == "" || l.viaBranch == "" || l.viaBranch == via {
			return l
		}
	}
	return nil
}

// take gets a pair from the stock, falling back to the default interface
// when the named one is unknown.
func (e *Engine) take(ctx context.Context, iface string, family int, single bool, taken *[]portd.Pair) (portd.Pair, error) {
	p, err := e.cfg.Ports.Take(ctx, iface, family, single)
	if err != nil {
		e.log.Warn("no ports for a call", "interface", iface, "family", family, "err", err)
		return portd.Pair{}, ErrOutOfPorts
	}
	*taken = append(*taken, p)
	return p, nil
}

// interfaceName maps a direction value to a configured interface, or ""
// (the default) with a warning.
func (e *Engine) interfaceName(name string) string {
	e.mu.Lock()
	ifaces := e.cfg.Interfaces
	e.mu.Unlock()
	for _, i := range ifaces {
		if i.Name == name {
			return name
		}
	}
	if len(ifaces) > 0 {
		e.log.Warn("unknown interface in direction; using the default", "interface", name)
	}
	return ""
}

// interfaceAddr is the address to print for a media without sockets
// (rejected): that of any socket the party has, else unknown.
func (e *Engine) interfaceAddr(l *leg, family int) netip.Addr {
	for _, m := range l.medias {
		if m.local.RTP.IsValid() && familyOf(m.local.RTP.Addr()) == family {
			if m.local.Advertised.IsValid() {
				return m.local.Advertised
			}
			return m.local.RTP.Addr()
		}
	}
	if family == 6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// sameEndpoint compares endpoints; an all-zero address compares by port.
func sameEndpoint(a, b netip.AddrPort) bool {
	if a.Addr().IsUnspecified() || b.Addr().IsUnspecified() {
		return a.Port() == b.Port()
	}
	return a == b
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

// Reason is the error-reason text of err for an ng reply: rtpengine's
// string for the errors clients match, the error's own text otherwise.
func Reason(err error) string {
	var r *Reasoned
	if errors.As(err, &r) {
		return r.reason
	}
	return strings.TrimSpace(err.Error())
}
