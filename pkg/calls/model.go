package calls

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/sdes"
)

// call is one call in memory. Its fields are guarded by mu; the engine's
// map lock is never taken while mu is held.
type call struct {
	id      string
	owner   string
	foreign bool
	// partition is the Redis partition redis-sync restored the call from
	// (carried through ng-ctl's writes unchanged).
	partition  string
	created    time.Time
	lastSignal time.Time
	deleteAt   time.Time
	legs       []*leg
	nextLegID  int
	gone       bool // removed from the engine
}

// leg is one party (rtpengine's monologue).
type leg struct {
	id        int
	tag       string
	viaBranch string
	label     string
	peer      *leg
	family    int
	iface     string
	sdp       bool
	created   time.Time
	deleteAt  time.Time
	medias    []*media
	// origin is what this party is told in the o= and s= lines under
	// replace: username, session-name and SDP-version (pinned per
	// receiving party, as rtpengine does). Kept in memory only: after an
	// ng-ctl restart the next SDP seeds them again.
	origin originPins
}

// originPins are the o=/s= values a party receives: what the replace
// options pinned, and the session version and content last sent.
type originPins struct {
	username, sessionName, sessionID   string
	hasUsername, hasName, hasSessionID bool
	version                            uint64 // the o= version last sent
	hasVersion                         bool
	content                            uint64 // ContentHash of the SDP last sent
	// managed: a replace option that pins or manages these values was
	// used for this party; only then are they kept in the call record
	// (records stay small in the common case).
	managed bool
}

// media is one m= line of one party.
type media struct {
	index int
	typ   string
	// proto is the transport protocol this party uses (as in its SDP, or as
	// we told it); protoChanged: its last SDP changed it (not kept in the
	// record: it matters within one request).
	proto        string
	protoChanged bool
	// rtcpMux: this party offered or accepted rtcp-mux.
	rtcpMux bool
	// rtcpMuxAccepted: this party offered rtcp-mux and the offer's rtcp-mux
	// flags (demux, accept) accept it towards this party whatever the
	// answerer says (rtpengine's RTCP_MUX_OVERRIDE on the answerer's media).
	// Its sockets are then a single port.
	rtcpMuxAccepted bool
	// peerMuxAccepted (known once the offer to this party set it): the
	// offer that reached this party accepted rtcp-mux towards the offerer
	// (demux, accept). An answer from this party decides by it, so that
	// branches offered with different rtcp-mux flags each answer by their
	// own (rtpengine's gh #793 b1 and b2).
	peerMuxAccepted, peerMuxKnown bool
	// local are our sockets that receive from this party (zero: none).
	local portdapi.Pair
	// alt are our sockets for this party on the interface's address of the
	// other family, its second ICE host candidates (zero: none; only with
	// ICE towards the party).
	alt portdapi.Pair
	// key is the peer endpoint local was chosen for.
	key netip.AddrPort
	// signalled is this party's RTP endpoint from its SDP.
	signalled netip.AddrPort
	rtcp      netip.AddrPort
	// learned and rtcpLearned are the party's RTP and RTCP addresses as
	// learned on the node that owned the call before (from a restored
	// record); they are dropped when the party signals another endpoint.
	learned     netip.AddrPort
	rtcpLearned netip.AddrPort
	pts         []nodestate.PayloadType
	// transcode is the codec this party is sent by transcoding (nil:
	// none), Media.Transcode.
	transcode *nodestate.PayloadType
	// inbandDTMF: this party, if it answers without telephone-event, gets
	// the offerer's events as tones (always-transcode or transcoding to
	// telephone-event asked in the offer to it).
	inbandDTMF bool
	// blockDTMF: this party's RFC 4733 events are not forwarded (block
	// DTMF).
	blockDTMF bool
	// injectDTMF: the call was set up for play DTMF (inject-DTMF): both
	// directions go through a transcoder, in the same codec if need be.
	injectDTMF bool
	// answerWith are the payload types of this offerer's codecs named by
	// accept or consume: it is answered with them, transcoded, when the
	// answerer takes none of them.
	answerWith []uint8
	// codecSet are the offer's codec set entries (name/clock/channels/
	// bitrate) for the codec this offerer is sent by transcoding.
	codecSet []string
	// detectDTMF: this party's audio is listened to for DTMF tones
	// (detect-DTMF), which needs its media through a transcoder.
	detectDTMF bool
	// repack: this party's media is repacketized to its ptime (the offer
	// gave it one with ptime or ptime-reverse).
	repack    bool
	direction string
	flags     []string
	// echo is the media-echo mode of this party's packets:
	// nodestate.FlagEcho, FlagBlackhole or "" (forwarded to the peer).
	// Unlike the latching flags it stays until a message sets another.
	echo string
	// sdesIn are the SDES cryptos this party gave (it sends with the
	// first), sdesOut those we gave it (it receives with the first).
	sdesIn, sdesOut []sdes.Crypto
	// osrtp: this party offered, or was offered, opportunistic SRTP
	// (RTP/AVP with a=crypto, RFC 8643).
	osrtp bool
	// rocIn and rocOut are the SRTP rollover counters the workers reached
	// on this party's RTP stream (what it sends, what it is sent).
	rocIn, rocOut uint32
	mid           string
	ptime         int
	// ice is rtpkit's ICE agent towards this party (nil: no ICE with it).
	ice *nodestate.ICE
	// icePass: ICE passes through rtpkit between this party and its peer
	// (rtpengine's PASSTHRU: both speak ICE and ICE=force was not asked
	// for): no agent, the sender's ICE lines reach the receiver with
	// rtpkit's candidates added.
	icePass bool
	// bundle: this party's own SDP put the media in an a=group:BUNDLE
	// (a WebRTC party): offers to it group its media ids again.
	bundle bool
	// dtls is rtpkit's DTLS-SRTP towards this party (nil: none);
	// dtlsOnly: it was offered DTLS without SDES (SDES off), which later
	// offers keep.
	dtls     *nodestate.DTLS
	dtlsOnly bool
}

func (c *call) newLeg(now time.Time) *leg {
	l := &leg{id: c.nextLegID, created: now}
	c.nextLegID++
	c.legs = append(c.legs, l)
	return l
}

func (c *call) legByTag(tag string) *leg {
	if tag == "" {
		return nil
	}
	for _, l := range c.legs {
		if l.tag == tag {
			return l
		}
	}
	return nil
}

func (c *call) removeLeg(l *leg) {
	c.legs = slices.DeleteFunc(c.legs, func(x *leg) bool { return x == l })
	for _, o := range c.legs {
		if o.peer == l {
			o.peer = nil
		}
	}
}

// mediaAt returns the party's media of m= index i (from 1), creating it.
func (l *leg) mediaAt(i int, typ string) *media {
	for len(l.medias) < i {
		l.medias = append(l.medias, &media{index: len(l.medias) + 1})
	}
	m := l.medias[i-1]
	if typ != "" {
		m.typ = typ
	}
	return m
}

// clone copies the call deeply (for rollback of a failed request).
func (c *call) clone() *call {
	n := *c
	n.legs = make([]*leg, len(c.legs))
	idx := map[*leg]*leg{}
	for i, l := range c.legs {
		nl := *l
		nl.medias = make([]*media, len(l.medias))
		for j, m := range l.medias {
			nm := *m
			nm.pts = slices.Clone(m.pts)
			nm.flags = slices.Clone(m.flags)
			nm.sdesIn, nm.sdesOut = slices.Clone(m.sdesIn), slices.Clone(m.sdesOut)
			if m.ice != nil {
				ice := *m.ice
				nm.ice = &ice
			}
			if m.dtls != nil {
				d := *m.dtls
				nm.dtls = &d
			}
			nl.medias[j] = &nm
		}
		n.legs[i] = &nl
		idx[l] = &nl
	}
	for _, l := range n.legs {
		if l.peer != nil {
			l.peer = idx[l.peer]
		}
	}
	return &n
}

// restoreFrom puts a clone's state back into c.
func (c *call) restoreFrom(o *call) {
	gone := c.gone
	*c = *o
	c.gone = gone
}

// pairs lists every local port block the call holds.
func (c *call) pairs() []portdapi.Pair {
	var out []portdapi.Pair
	for _, l := range c.legs {
		for _, m := range l.medias {
			if m.local.RTP.IsValid() {
				out = append(out, m.local)
			}
			if m.alt.RTP.IsValid() {
				out = append(out, m.alt)
			}
		}
	}
	return out
}

// record converts the call to its node-state record.
func (c *call) record() nodestate.Call {
	r := nodestate.Call{Schema: nodestate.CallSchema, ID: c.id, Owner: c.owner, Foreign: c.foreign,
		Partition: c.partition, Created: c.created, LastSignal: c.lastSignal, DeleteAt: c.deleteAt}
	for _, l := range c.legs {
		rl := nodestate.Leg{ID: l.id, Tag: l.tag, Label: l.label, ViaBranch: l.viaBranch, Peer: -1,
			Family: l.family, Interface: l.iface, SDP: l.sdp, Created: l.created}
		if l.peer != nil {
			rl.Peer = l.peer.id
		}
		rl.Origin = l.origin.record()
		for _, m := range l.medias {
			rm := nodestate.Media{Index: m.index, Type: m.typ, Protocol: m.proto, Interface: m.local.Interface,
				Direction: m.direction, RTCPMux: m.rtcpMux, PayloadTypes: m.pts, Flags: m.recordFlags(),
				Mid: m.mid, Ptime: m.ptime, Key: m.key, SDESIn: cryptoRecord(m.sdesIn), SDESOut: cryptoRecord(m.sdesOut),
				SRTPInROC: m.rocIn, SRTPOutROC: m.rocOut}
			if m.transcode != nil {
				t := *m.transcode
				rm.Transcode = &t
			}
			if m.ice != nil {
				ice := *m.ice
				rm.ICE = &ice
			}
			if m.dtls != nil {
				d := *m.dtls
				rm.DTLS = &d
			}
			if m.local.RTP.IsValid() {
				rm.Streams = append(rm.Streams, nodestate.Stream{Component: 1, Local: m.local.RTP, Advertised: m.local.Advertised, Signalled: m.signalled, Gen: m.local.Gen, Learned: m.learned})
				if m.local.RTCP.IsValid() {
					rm.Streams = append(rm.Streams, nodestate.Stream{Component: 2, Local: m.local.RTCP, Advertised: m.local.Advertised, Signalled: m.rtcp, Gen: m.local.Gen, Learned: m.rtcpLearned})
				}
			}
			if m.alt.RTP.IsValid() {
				rm.Alt = append(rm.Alt, nodestate.Stream{Component: 1, Local: m.alt.RTP, Advertised: m.alt.Advertised, Gen: m.alt.Gen})
				if m.alt.RTCP.IsValid() {
					rm.Alt = append(rm.Alt, nodestate.Stream{Component: 2, Local: m.alt.RTCP, Advertised: m.alt.Advertised, Gen: m.alt.Gen})
				}
			}
			rl.Medias = append(rl.Medias, rm)
		}
		r.Legs = append(r.Legs, rl)
	}
	return r
}

// fromRecord rebuilds a call from its node-state record (after a restart,
// or a call restored from another node).
func fromRecord(r nodestate.Call) *call {
	c := &call{id: r.ID, owner: r.Owner, foreign: r.Foreign, partition: r.Partition, created: r.Created, lastSignal: r.LastSignal, deleteAt: r.DeleteAt}
	byID := map[int]*leg{}
	peers := map[*leg]int{}
	for _, rl := range r.Legs {
		l := &leg{id: rl.ID, tag: rl.Tag, label: rl.Label, viaBranch: rl.ViaBranch, family: rl.Family,
			iface: rl.Interface, sdp: rl.SDP, created: rl.Created, origin: originFromRecord(rl.Origin)}
		if rl.ID >= c.nextLegID {
			c.nextLegID = rl.ID + 1
		}
		for _, rm := range rl.Medias {
			m := &media{index: rm.Index, typ: rm.Type, proto: rm.Protocol, rtcpMux: rm.RTCPMux, key: rm.Key,
				pts: rm.PayloadTypes, direction: rm.Direction, mid: rm.Mid, ptime: rm.Ptime,
				sdesIn: cryptosFromRecord(rm.SDESIn), sdesOut: cryptosFromRecord(rm.SDESOut),
				rocIn: rm.SRTPInROC, rocOut: rm.SRTPOutROC}
			if rm.Transcode != nil {
				t := *rm.Transcode
				m.transcode = &t
			}
			if rm.ICE != nil {
				ice := *rm.ICE
				m.ice = &ice
			}
			if rm.DTLS != nil {
				d := *rm.DTLS
				m.dtls = &d
			}
			m.setRecordFlags(rm.Flags)
			for _, s := range rm.Streams {
				switch s.Component {
				case 1:
					m.local.RTP, m.local.Advertised, m.signalled, m.local.Gen = s.Local, s.Advertised, s.Signalled, s.Gen
					m.local.Interface = rm.Interface
					m.learned = s.Learned
				case 2:
					m.local.RTCP, m.rtcp, m.rtcpLearned = s.Local, s.Signalled, s.Learned
				}
			}
			for _, s := range rm.Alt {
				switch s.Component {
				case 1:
					m.alt.RTP, m.alt.Advertised, m.alt.Gen, m.alt.Interface = s.Local, s.Advertised, s.Gen, rm.Interface
				case 2:
					m.alt.RTCP = s.Local
				}
			}
			// The record does not carry rtcpMuxAccepted: a muxing party
			// with a single port is one (its answer can only be muxed).
			m.rtcpMuxAccepted = m.rtcpMux && m.local.RTP.IsValid() && !m.local.RTCP.IsValid()
			l.medias = append(l.medias, m)
		}
		c.legs = append(c.legs, l)
		byID[l.id] = l
		peers[l] = rl.Peer
	}
	for l, p := range peers {
		if p >= 0 {
			l.peer = byID[p]
		}
	}
	return c
}

// recordFlags are the record's media flags: the latching flags, then the
// media-echo mode and "osrtp" if any.
func (m *media) recordFlags() []string {
	if m.echo == "" && !m.osrtp && !m.icePass && !m.bundle && !m.inbandDTMF && !m.repack && !m.blockDTMF && !m.injectDTMF && !m.detectDTMF && len(m.answerWith) == 0 && len(m.codecSet) == 0 {
		return m.flags
	}
	out := slices.Clip(m.flags)
	if m.echo != "" {
		out = append(out, m.echo)
	}
	if m.osrtp {
		out = append(out, flagOSRTP)
	}
	if m.icePass {
		out = append(out, flagICEPassthrough)
	}
	if m.bundle {
		out = append(out, flagBundle)
	}
	if m.inbandDTMF {
		out = append(out, flagInbandDTMF)
	}
	if m.repack {
		out = append(out, nodestate.FlagRepacketize)
	}
	if m.blockDTMF {
		out = append(out, nodestate.FlagBlockDTMF)
	}
	if m.injectDTMF {
		out = append(out, flagInjectDTMF)
	}
	if m.detectDTMF {
		out = append(out, nodestate.FlagDetectDTMF)
	}
	for _, pt := range m.answerWith {
		out = append(out, flagAnswerWith+strconv.Itoa(int(pt)))
	}
	for _, c := range m.codecSet {
		out = append(out, flagCodecSet+c)
	}
	return out
}

// flagOSRTP marks an OSRTP media in the record's flags, and
// flagICEPassthrough one whose ICE passes through rtpkit.
const (
	flagOSRTP          = "osrtp"
	flagICEPassthrough = "ice-passthrough"
	flagBundle         = "bundle"
	flagInbandDTMF     = "inband-dtmf"
	flagInjectDTMF     = "inject-dtmf"
	flagAnswerWith     = "answer-pt:"
	flagCodecSet       = "codec-set:"
)

// setRecordFlags is the inverse of recordFlags.
func (m *media) setRecordFlags(flags []string) {
	m.flags, m.echo, m.osrtp, m.icePass, m.bundle, m.inbandDTMF, m.repack, m.blockDTMF, m.injectDTMF, m.detectDTMF, m.answerWith, m.codecSet = nil, "", false, false, false, false, false, false, false, false, nil, nil
	for _, f := range flags {
		switch f {
		case nodestate.FlagEcho, nodestate.FlagBlackhole:
			m.echo = f
		case flagOSRTP:
			m.osrtp = true
		case flagICEPassthrough:
			m.icePass = true
		case flagBundle:
			m.bundle = true
		case flagInbandDTMF:
			m.inbandDTMF = true
		case nodestate.FlagRepacketize:
			m.repack = true
		case nodestate.FlagBlockDTMF:
			m.blockDTMF = true
		case flagInjectDTMF:
			m.injectDTMF = true
		case nodestate.FlagDetectDTMF:
			m.detectDTMF = true
		default:
			if x, ok := strings.CutPrefix(f, flagCodecSet); ok {
				m.codecSet = append(m.codecSet, x)
				continue
			}
			if x, ok := strings.CutPrefix(f, flagAnswerWith); ok {
				if pt, err := strconv.Atoi(x); err == nil && pt >= 0 && pt < 128 {
					m.answerWith = append(m.answerWith, uint8(pt))
				}
				continue
			}
			m.flags = append(m.flags, f)
		}
	}
}

// record gives the pins as the call record keeps them (nil if none).
func (p originPins) record() *nodestate.Origin {
	if !p.managed {
		return nil
	}
	o := nodestate.Origin{Username: p.username, SessionID: p.sessionID, SessionName: p.sessionName, Content: p.content}
	if p.hasVersion {
		o.Version = p.version
	}
	for _, b := range []struct {
		has bool
		bit int
	}{{p.hasUsername, nodestate.PinnedUsername}, {p.hasSessionID, nodestate.PinnedSessionID}, {p.hasName, nodestate.PinnedSessionName}} {
		if b.has {
			o.Pinned |= b.bit
		}
	}
	if o == (nodestate.Origin{}) {
		return nil
	}
	return &o
}

// originFromRecord is the inverse of originPins.record.
func originFromRecord(o *nodestate.Origin) originPins {
	if o == nil {
		return originPins{}
	}
	return originPins{managed: true, username: o.Username, sessionID: o.SessionID, sessionName: o.SessionName,
		hasUsername: o.Pinned&nodestate.PinnedUsername != 0, hasSessionID: o.Pinned&nodestate.PinnedSessionID != 0,
		hasName: o.Pinned&nodestate.PinnedSessionName != 0, version: o.Version, hasVersion: o.Version != 0, content: o.Content}
}
