package calls

import (
	"github.com/rtpkit/rtpkit/pkg/sdes"
	"net/netip"
	"slices"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// Counters are packet, byte and error counts.
type Counters struct {
	Packets, Bytes, Errors uint64
	// KernelDrops counts datagrams the kernel dropped on our sockets' full
	// receive queues (an rtpkit addition to rtpengine's counters).
	KernelDrops uint64
	// SRTPFailures counts packets dropped for failing SRTP or SRTCP
	// authentication (rtpkit's too).
	SRTPFailures uint64
}

// StreamStats describes one stream (RTP or RTCP) of a media.
type StreamStats struct {
	// LocalPort, LocalAddr and Family describe our socket; LocalPort 0
	// means the stream has none (query leaves the three keys out).
	LocalPort  int
	LocalAddr  netip.Addr
	Family     string // IPv4 or IPv6
	Endpoint   netip.AddrPort
	Advertised netip.AddrPort
	// LastPacket is when the stream last received a packet or, as in
	// rtpengine, was last set up by signalling (Unix seconds).
	LastPacket int64
	// CryptoSuite is the SRTP suite the party's packets on this stream
	// are protected with ("" for plain RTP; never a key). SRTP streams
	// stay in userspace (no "kernelized" flag).
	CryptoSuite string
	Flags       []string
	// SSRC is the SSRC last received on the stream; HasSSRC is false
	// until a worker reported one.
	SSRC    uint32
	HasSSRC bool
	Stats   Counters
}

// MediaStats describes one media of a party.
type MediaStats struct {
	Index    int
	Type     string
	Protocol string
	Streams  []StreamStats
	Flags    []string
}

// TagStats describes one party.
type TagStats struct {
	Tag       string // "" for an untagged party
	ID        int
	ViaBranch string
	Label     string
	Created   time.Time
	// Subscriptions are the tags this party receives media from.
	Subscriptions []string
	// Subscribers are the tags that receive this party's media.
	Subscribers []string
	Medias      []MediaStats
}

// Key is the name of the party in the tags dictionary.
func (t TagStats) Key() string {
	if t.Tag == "" {
		return "<untagged " + itoa(t.ID) + ">"
	}
	return t.Tag
}

// CallStats is the answer of query (reference §1.9).
type CallStats struct {
	Created    time.Time
	LastSignal time.Time
	Tags       []TagStats
	TotalRTP   Counters
	TotalRTCP  Counters
}

// Query handles an ng query.
func (e *Engine) Query(req *Request) (*CallStats, error) {
	if req.CallID == "" {
		return nil, ErrNoCallID
	}
	en := e.lock(req.CallID)
	if en == nil {
		return nil, ErrUnknownCall
	}
	defer en.mu.Unlock()
	return e.stats0(en.c, req.FromTag, req.ToTag), nil
}

// stats0 builds the statistics of a locked call. With a tag (the to-tag
// if given, else the from-tag) they are restricted, as rtpengine does, to
// that party and then the one it receives media from; an unknown tag
// leaves the tags empty.
func (e *Engine) stats0(c *call, fromTag, toTag string) *CallStats {
	st := &CallStats{Created: c.created, LastSignal: c.lastSignal}
	act := e.callActivity(c)
	match := fromTag
	if toTag != "" {
		match = toTag
	}
	legs := c.legs
	if match != "" {
		only := c.legByTag(match)
		switch {
		case only == nil:
			return st
		case only.peer != nil:
			legs = []*leg{only, only.peer}
		default:
			legs = []*leg{only}
		}
	}
	for _, l := range legs {
		ts := TagStats{Tag: l.tag, ID: l.id, ViaBranch: l.viaBranch, Label: l.label, Created: l.created}
		if l.peer != nil {
			name := l.peer.tag
			if name == "" {
				name = "<untagged " + itoa(l.peer.id) + ">"
			}
			ts.Subscriptions = []string{name}
			ts.Subscribers = []string{name}
		}
		for _, m := range l.medias {
			ts.Medias = append(ts.Medias, mediaStats(st, l, m, act))
		}
		st.Tags = append(st.Tags, ts)
	}
	return st
}

// mediaStats describes one media of party l and adds its streams to the
// call's totals. Flags come in rtpengine's order.
func mediaStats(st *CallStats, l *leg, m *media, act Activity) MediaStats {
	ms := MediaStats{Index: m.index, Type: m.typ, Protocol: m.proto}
	var sf streamFlags
	for _, f := range m.flags {
		switch f {
		case "strict-source":
			sf.strict = true
		case "media-handover":
			sf.handover = true
		}
	}
	sf.mux = m.rtcpMux
	sf.noKernel = len(m.sdesIn) > 0 || len(m.sdesOut) > 0 || srtpProto(m.proto) || m.echo == nodestate.FlagEcho
	signalled := st.LastSignal.Unix()
	if m.local.RTP.IsValid() {
		s := streamStats(m.local.RTP, m.local.Advertised, m.signalled, m.learned, true, sf, act)
		s.LastPacket = max(s.LastPacket, signalled)
		s.CryptoSuite = cryptoSuite(m)
		add(&st.TotalRTP, s.Stats)
		ms.Streams = append(ms.Streams, s)
		if m.local.RTCP.IsValid() {
			s := streamStats(m.local.RTCP, m.local.Advertised, m.rtcp, m.rtcpLearned, false, sf, act)
			s.LastPacket = max(s.LastPacket, signalled)
			s.CryptoSuite = cryptoSuite(m)
			add(&st.TotalRTCP, s.Stats)
			ms.Streams = append(ms.Streams, s)
		}
	}
	if l.sdp {
		ms.Flags = append(ms.Flags, "initialized")
	}
	if slices.Contains(m.flags, "asymmetric") {
		ms.Flags = append(ms.Flags, "asymmetric")
	}
	switch m.direction {
	case "sendrecv", "":
		ms.Flags = append(ms.Flags, "send", "recv")
	case "sendonly":
		ms.Flags = append(ms.Flags, "send")
	case "recvonly":
		ms.Flags = append(ms.Flags, "recv")
	}
	if m.rtcpMux {
		ms.Flags = append(ms.Flags, "rtcp-mux")
	}
	// rtpengine's crypto and ICE media flags, in its order.
	if m.dtls != nil {
		ms.Flags = append(ms.Flags, "DTLS-SRTP")
		switch m.dtls.Setup {
		case "active":
			ms.Flags = append(ms.Flags, "DTLS role active")
		case "passive", "actpass":
			ms.Flags = append(ms.Flags, "DTLS role passive")
		}
	}
	if len(m.sdesIn) > 0 || len(m.sdesOut) > 0 {
		ms.Flags = append(ms.Flags, "SDES")
	}
	if m.ice != nil {
		ms.Flags = append(ms.Flags, "ICE")
		if m.ice.Controlling {
			ms.Flags = append(ms.Flags, "ICE controlling")
		}
	}
	if slices.Contains(m.flags, "unidirectional") {
		ms.Flags = append(ms.Flags, "unidirectional")
	}
	return ms
}

// streamFlags are the media's settings that show in its streams' flags.
type streamFlags struct {
	mux, strict, handover bool
	// noKernel: the stream stays in userspace whatever happens (SRTP, echo):
	// rtpengine's "no kernel support".
	noKernel bool
}

// cryptoSuite names the suite of the key the party sends with.
func cryptoSuite(m *media) string {
	if m.dtls != nil && m.dtls.KeyIn != "" {
		// DTLS-SRTP, once the worker reported the handshake's keys.
		if c, err := sdes.Parse(m.dtls.KeyIn); err == nil {
			return c.Suite.Name
		}
	}
	if len(m.sdesIn) == 0 {
		return ""
	}
	return m.sdesIn[0].Suite.Name
}

func add(t *Counters, c Counters) {
	t.Packets += c.Packets
	t.Bytes += c.Bytes
	t.Errors += c.Errors
	t.KernelDrops += c.KernelDrops
	t.SRTPFailures += c.SRTPFailures
}

// streamStats describes one of our sockets (the RTP one if rtp); the
// endpoint shown is the workers' report, else what an earlier owner
// learned, else the signalled one. Flags come in rtpengine's order.
func streamStats(local netip.AddrPort, adv netip.Addr, signalled, learned netip.AddrPort, rtp bool, sf streamFlags, act Activity) StreamStats {
	s := StreamStats{LocalPort: int(local.Port()), LocalAddr: local.Addr(), Family: "IPv4", Endpoint: signalled}
	var confirmed, kernelized bool
	if learned.IsValid() {
		s.Endpoint = learned
	}
	if act != nil {
		if o, ok := act(local); ok {
			s.Stats = Counters{Packets: o.Packets, Bytes: o.Bytes, Errors: o.Errors, KernelDrops: o.KernelDrops, SRTPFailures: o.SRTPFailures}
			if !o.LastPacket.IsZero() {
				s.LastPacket = o.LastPacket.Unix()
			}
			if o.Endpoint.IsValid() {
				s.Endpoint = o.Endpoint
			}
			if o.SSRC != 0 && rtp {
				s.SSRC, s.HasSSRC = o.SSRC, true
			}
			confirmed, kernelized = o.Confirmed, o.Offloaded
		}
	}
	if local.Addr().Is6() {
		s.Family = "IPv6"
	}
	a := adv
	if !a.IsValid() {
		a = local.Addr()
	}
	s.Advertised = netip.AddrPortFrom(a, local.Port())
	// The RTP socket of a muxed media carries RTCP too; its RTCP socket
	// is then the fallback one.
	switch {
	case rtp && sf.mux:
		s.Flags = append(s.Flags, "RTP", "RTCP")
	case rtp:
		s.Flags = append(s.Flags, "RTP")
	case sf.mux:
		s.Flags = append(s.Flags, "RTCP", "fallback RTCP")
	default:
		s.Flags = append(s.Flags, "RTCP")
	}
	if signalled.IsValid() && signalled.Port() != 0 {
		s.Flags = append(s.Flags, "filled")
	}
	// rtpengine's stream flags: the worker latched the endpoint; the
	// kernel (here the eBPF fast path) forwards the stream.
	if confirmed {
		s.Flags = append(s.Flags, "confirmed")
	}
	if kernelized {
		s.Flags = append(s.Flags, "kernelized")
	}
	if sf.noKernel {
		s.Flags = append(s.Flags, "no kernel support")
	}
	if rtp && sf.strict {
		s.Flags = append(s.Flags, "strict source address")
	}
	if rtp && sf.handover {
		s.Flags = append(s.Flags, "media handover")
	}
	return s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
