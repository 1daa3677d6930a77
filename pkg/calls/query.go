package calls

import (
	"net/netip"
	"time"
)

// Counters are packet, byte and error counts.
type Counters struct {
	Packets, Bytes, Errors uint64
	// KernelDrops counts datagrams the kernel dropped on our sockets' full
	// receive queues (an rtpkit addition to rtpengine's counters).
	KernelDrops uint64
}

// StreamStats describes one stream (RTP or RTCP) of a media.
type StreamStats struct {
	LocalPort  int
	LocalAddr  netip.Addr
	Family     string // IPv4 or IPv6
	Endpoint   netip.AddrPort
	Advertised netip.AddrPort
	LastPacket int64
	Flags      []string
	Stats      Counters
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

// stats0 builds the statistics of a locked call, restricted to the party
// of fromTag (or toTag) and its peer when one is given.
func (e *Engine) stats0(c *call, fromTag, toTag string) *CallStats {
	st := &CallStats{Created: c.created, LastSignal: c.lastSignal}
	var act Activity
	if p := e.activity.Load(); p != nil {
		act = *p
	}
	var only *leg
	if t := fromTag; t != "" {
		only = c.legByTag(t)
	} else if toTag != "" {
		only = c.legByTag(toTag)
	}
	for _, l := range c.legs {
		if only != nil && l != only && only.peer != l {
			continue
		}
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
			ms := MediaStats{Index: m.index, Type: m.typ, Protocol: m.proto}
			if m.local.RTP.IsValid() {
				s := streamStats(m.local.RTP, m.local.Advertised, m.signalled, m.learned, "RTP", act)
				add(&st.TotalRTP, s.Stats)
				ms.Streams = append(ms.Streams, s)
				if m.local.RTCP.IsValid() {
					s := streamStats(m.local.RTCP, m.local.Advertised, m.rtcp, m.rtcpLearned, "RTCP", act)
					add(&st.TotalRTCP, s.Stats)
					ms.Streams = append(ms.Streams, s)
				}
			}
			if l.sdp {
				ms.Flags = append(ms.Flags, "initialized")
			}
			for _, f := range m.flags {
				if f == "asymmetric" || f == "unidirectional" {
					ms.Flags = append(ms.Flags, f)
				}
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
			ts.Medias = append(ts.Medias, ms)
		}
		st.Tags = append(st.Tags, ts)
	}
	return st
}

func add(t *Counters, c Counters) {
	t.Packets += c.Packets
	t.Bytes += c.Bytes
	t.Errors += c.Errors
	t.KernelDrops += c.KernelDrops
}

// streamStats describes one of our sockets; the endpoint shown is the
// workers' report, else what an earlier owner learned, else the signalled
// one.
func streamStats(local netip.AddrPort, adv netip.Addr, signalled, learned netip.AddrPort, kind string, act Activity) StreamStats {
	s := StreamStats{LocalPort: int(local.Port()), LocalAddr: local.Addr(), Family: "IPv4", Endpoint: signalled, Flags: []string{kind}}
	var confirmed, kernelized bool
	if learned.IsValid() {
		s.Endpoint = learned
	}
	if act != nil {
		if o, ok := act(local); ok {
			s.Stats = Counters{Packets: o.Packets, Bytes: o.Bytes, Errors: o.Errors, KernelDrops: o.KernelDrops}
			if !o.LastPacket.IsZero() {
				s.LastPacket = o.LastPacket.Unix()
			}
			if o.Endpoint.IsValid() {
				s.Endpoint = o.Endpoint
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
