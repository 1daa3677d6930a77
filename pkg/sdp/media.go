package sdp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Media is one media section: an m= line and the lines up to the next m=
// line or the end of the body.
type Media struct {
	s        *Session
	index    int
	first    int // index of the m= line in s.lines
	last     int // one past the last line of the section
	typ      string
	portOff  int // the port token (with any "/count")
	portEnd  int
	port     int
	nports   int
	protoOff int
	protoEnd int
	fmtOff   int // the format list runs to the end of the m= line
	fmtEnd   int
	fmtSep   bool // a space separates the protocol and the format list
	conn     conn
}

// Direction is an SDP direction attribute value.
type Direction string

// The four directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// PayloadType describes one format of an RTP m= line.
type PayloadType struct {
	// PT is the payload type number (0-127).
	PT int
	// RTPMap is the a=rtpmap value after the payload type, as rtpengine
	// prints it: ENCODING/CLOCK, plus /CHANNELS when there is more than
	// one channel. The encoding name keeps its case ("pcmu/8000" stays);
	// a channel count of 1 is dropped ("AMR/8000/1" becomes "AMR/8000").
	// Without an a=rtpmap it comes from the static RFC 3551 table; it is
	// "" when the payload type is unknown, and then Rewrite prints no
	// a=rtpmap, a=fmtp or a=rtcp-fb line for it.
	RTPMap string
	// Encoding, Clock and Params are RTPMap's fields; Params is the
	// channel count ("" for one channel).
	Encoding string
	Clock    int
	Params   string
	// Fmtp is the a=fmtp value after the payload type as written, "" if none.
	Fmtp string
	// RTCPFB holds the a=rtcp-fb values after the payload type, in order.
	RTCPFB []string
}

// staticRTPMap is rtpengine's table of static payload types (RFC 3551),
// printed as rtpengine prints them (PT 11 is the one stereo entry).
var staticRTPMap = [...]string{
	0: "PCMU/8000", 3: "GSM/8000", 4: "G723/8000", 5: "DVI4/8000",
	6: "DVI4/16000", 7: "LPC/8000", 8: "PCMA/8000", 9: "G722/8000",
	10: "L16/44100", 11: "L16/44100/2", 12: "QCELP/8000", 13: "CN/8000",
	14: "MPA/90000", 15: "G728/8000", 16: "DVI4/11025", 17: "DVI4/22050",
	18: "G729/8000", 25: "CelB/90000", 26: "JPEG/90000", 28: "nv/90000",
	31: "H261/90000", 32: "MPV/90000", 33: "MP2T/90000", 34: "H263/90000",
}

// knownProtos are the transport protocols rtpengine knows, by canonical
// name; the match is case-insensitive.
var knownProtos = [...]struct {
	name string
	rtp  bool
}{
	{"RTP/AVP", true}, {"RTP/SAVP", true}, {"RTP/AVPF", true}, {"RTP/SAVPF", true},
	{"UDP/TLS/RTP/SAVP", true}, {"UDP/TLS/RTP/SAVPF", true}, {"udptl", false},
}

// canonicalProto returns the canonical name of a known protocol and
// whether it is an RTP protocol; name is "" for an unknown protocol.
func canonicalProto(p string) (name string, rtp bool) {
	for _, k := range knownProtos {
		if strings.EqualFold(p, k.name) {
			return k.name, k.rtp
		}
	}
	return "", false
}

// Index returns the 1-based position of the m= line.
func (m *Media) Index() int { return m.index }

// Type returns the media type (audio, video, image, application, ...).
func (m *Media) Type() string { return m.typ }

// Port returns the port of the m= line.
func (m *Media) Port() int { return m.port }

// NumPorts returns the port count of the m= line ("5000/2" gives 2); 1
// when none is written.
func (m *Media) NumPorts() int { return m.nports }

// Proto returns the transport protocol as written.
func (m *Media) Proto() string { return m.s.text[m.protoOff:m.protoEnd] }

// IsRTP reports whether the protocol is one of the RTP profiles rtpengine
// knows: RTP/AVP, RTP/AVPF, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVP and
// UDP/TLS/RTP/SAVPF, in any case.
func (m *Media) IsRTP() bool {
	_, rtp := canonicalProto(m.Proto())
	return rtp
}

// Formats returns the format tokens of the m= line as written.
func (m *Media) Formats() []string {
	var out []string
	k := tokenizer{t: m.s.text, p: m.fmtOff, q: m.fmtEnd}
	for {
		s, e, ok := k.next()
		if !ok {
			return out
		}
		out = append(out, m.s.text[s:e])
	}
}

// Connection returns the address of the media-level c= line, or else that
// of the session-level one; ok is false when neither exists.
func (m *Media) Connection() (netip.Addr, bool) {
	if m.conn.ok {
		return m.conn.addr, true
	}
	return m.s.Connection()
}

// HasConnection reports whether the section has a c= line of its own.
func (m *Media) HasConnection() bool { return m.conn.ok }

// ZeroAddress reports whether the effective connection address (see
// Connection) is 0.0.0.0 or ::.
func (m *Media) ZeroAddress() bool {
	a, ok := m.Connection()
	return ok && a.IsUnspecified()
}

// lines returns the attribute lines of the section (after the m= line).
func (m *Media) lines() []line {
	return m.s.lines[m.first+1 : m.last]
}

// firstAttr returns the first media-level attribute of kind k.
func (m *Media) firstAttr(k attrKind) *line {
	ls := m.lines()
	for i := range ls {
		if ls[i].kind == k && ls[i].typ == 'a' {
			return &ls[i]
		}
	}
	return nil
}

// value returns the text after ':' of an a= line ("" without ':').
func (s *Session) value(ln *line) string {
	if ln.val < 0 {
		return ""
	}
	return s.text[ln.val:ln.end]
}

// RTCP returns the first valid media-level a=rtcp attribute: its port and
// the address given with it (the zero Addr when there is none). ok is
// false when there is no valid a=rtcp.
func (m *Media) RTCP() (port int, addr netip.Addr, ok bool) {
	ln := m.firstAttr(attrRTCP)
	if ln == nil {
		return 0, netip.Addr{}, false
	}
	t := m.s.text
	k := tokenizer{t: t, p: ln.val, q: ln.end}
	ps, pe, _ := k.next()
	port = strToInt(t[ps:pe], 0)
	if k.p < k.q {
		ns, ne, _ := k.next()
		as, ae, _ := k.next()
		ds, de, _ := k.next()
		addr, _ = parseNetAddr(t[ns:ne], t[as:ae], t[ds:de])
	}
	return port, addr, true
}

// RTCPMux reports whether the section has a=rtcp-mux.
func (m *Media) RTCPMux() bool { return m.firstAttr(attrRTCPMux) != nil }

// HasICE reports whether ICE is in use for the section, as rtpengine
// decides it: a=ice-ufrag at media or session level.
func (m *Media) HasICE() bool {
	return m.firstAttr(attrICEUfrag) != nil || m.s.sessionHas(attrICEUfrag)
}

// ICECredentials returns the section's a=ice-ufrag and a=ice-pwd, each
// from the media level or else the session level ("" if absent).
func (m *Media) ICECredentials() (ufrag, pwd string) {
	get := func(name string) string {
		if v := m.Attr(name); len(v) > 0 {
			return v[0]
		}
		if v := m.s.Attr(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return get("ice-ufrag"), get("ice-pwd")
}

// SessionAttr returns the values of the session-level a=name attributes
// of the media's session.
func (m *Media) SessionAttr(name string) []string { return m.s.Attr(name) }

// ICELite reports whether the sender is an ICE-lite agent (a=ice-lite at
// session or media level).
func (m *Media) ICELite() bool { return m.Attr("ice-lite") != nil || m.s.Attr("ice-lite") != nil }

// HasCandidates reports whether the section has a=candidate lines that
// rtpengine recognises.
func (m *Media) HasCandidates() bool { return m.firstAttr(attrCandidate) != nil }

// TrickleICE reports whether the sender uses trickle ICE for the section
// as rtpengine decides it: ICE is in use and either the media-level
// a=ice-options mentions "trickle" or, without a=ice-options, the media
// advertises the trickle placeholder address (port 9, zero address).
func (m *Media) TrickleICE() bool {
	if !m.HasICE() {
		return false
	}
	ls := m.lines()
	for i := range ls {
		if ls[i].kind == attrICE && m.s.text[ls[i].off+2:ls[i].name] == "ice-options" {
			return strings.Contains(m.s.value(&ls[i]), "trickle")
		}
	}
	return m.port == 9 && m.ZeroAddress()
}

// HasEndOfCandidates reports whether the section has a=end-of-candidates
// (Rewrite re-emits it at the end of the section).
func (m *Media) HasEndOfCandidates() bool { return m.firstAttr(attrEndOfCandidates) != nil }

// Ptime returns the value of the first media-level a=ptime, 0 if there is
// none or it is not a positive number.
func (m *Media) Ptime() int {
	ln := m.firstAttr(attrPtime)
	if ln == nil || ln.val < 0 {
		return 0
	}
	if v := strToInt(m.s.value(ln), 0); v > 0 {
		return v
	}
	return 0
}

// Mid returns the value of the first media-level a=mid ("" if none).
func (m *Media) Mid() string {
	if ln := m.firstAttr(attrMid); ln != nil {
		return m.s.value(ln)
	}
	return ""
}

// Bundled reports whether the section's a=mid is in a session-level
// a=group:BUNDLE (RFC 9143).
func (m *Media) Bundled() bool {
	mid := m.Mid()
	if mid == "" {
		return false
	}
	for _, g := range m.s.Attr("group") {
		f := strings.Fields(g)
		if len(f) > 1 && f[0] == "BUNDLE" && slices.Contains(f[1:], mid) {
			return true
		}
	}
	return false
}

// Attr returns the values of the media-level a=name attributes, like
// Session.Attr.
func (m *Media) Attr(name string) []string {
	return m.s.attrs(m.first+1, m.last, name)
}

// SenderDirection returns the direction the sender declares for the
// section. Media- and session-level attributes count alike, with
// precedence by attribute: a=recvonly wins, then a=sendonly, then
// a=inactive; a=sendrecv is not consulted and no attribute means sendrecv.
// A zero connection address is not taken into account here.
func (m *Media) SenderDirection() Direction {
	has := func(k attrKind) bool { return m.firstAttr(k) != nil || m.s.sessionHas(k) }
	switch {
	case has(attrRecvOnly):
		return RecvOnly
	case has(attrSendOnly):
		return SendOnly
	case has(attrInactive):
		return Inactive
	}
	return SendRecv
}

// isMessage reports whether the section is m=message (MSRP), which
// rtpengine passes through untouched.
func (m *Media) isMessage() bool { return m.typ == "message" }

// PayloadTypes returns one PayloadType per format of an RTP m= line, in
// m= order, with its rtpmap (the last valid a=rtpmap for the number, else
// the static table), fmtp (the last a=fmtp for the number) and rtcp-fb
// values. It returns nil for a non-RTP section. A format that is not a
// number from 0 to 127 is an error wrapping ErrIncomplete.
func (m *Media) PayloadTypes() ([]PayloadType, error) {
	if !m.IsRTP() {
		return nil, nil
	}
	t := m.s.text
	var out []PayloadType
	var idx *ptIndex
	k := tokenizer{t: t, p: m.fmtOff, q: m.fmtEnd}
	for {
		s, e, ok := k.next()
		if !ok {
			return out, nil
		}
		// strtoul, reading on past the token as rtpengine does.
		v, used := cStrtoul(t[s:m.fmtEnd])
		if used == 0 || v > 127 {
			return nil, fmt.Errorf("%w: media %d: invalid payload type %q", ErrIncomplete, m.index, t[s:e])
		}
		if out == nil {
			n := strings.Count(t[m.fmtOff:m.fmtEnd], " ") + 1
			out = make([]PayloadType, 0, n)
			// Scanning the section per payload type is cheapest for
			// ordinary SDP; an index keeps huge ones linear.
			if n*(m.last-m.first) > indexThreshold {
				idx = m.indexPTs()
			}
		}
		if idx != nil {
			out = append(out, m.payloadType(&idx[v], int(v)))
		} else {
			x := m.scanPT(int(v))
			out = append(out, m.payloadType(&x, int(v)))
		}
	}
}

// indexThreshold is the formats × lines product above which PayloadTypes
// indexes the section instead of scanning it per payload type.
var indexThreshold = 4096

// scanPT collects the lines about one payload type into a sparse index.
func (m *Media) scanPT(pt int) ptLines {
	var x ptLines
	t := m.s.text
	ls := m.lines()
	for i := range ls {
		ln := &ls[i]
		if ln.typ != 'a' || ln.pt != pt {
			continue
		}
		switch ln.kind {
		case attrRTPMap:
			x.rtpmap = ln
		case attrFmtp:
			x.fmtp = ln
		case attrRTCPFB:
			x.fb = append(x.fb, afterToken(t, ln))
		}
	}
	return x
}

// ptLines are the section's lines about one payload type.
type ptLines struct {
	rtpmap *line // the last valid a=rtpmap
	fmtp   *line // the last a=fmtp
	fb     []string
}

// ptIndex maps payload types 0-127 to their lines.
type ptIndex [128]ptLines

// indexPTs collects the rtpmap, fmtp and rtcp-fb lines in one pass.
func (m *Media) indexPTs() *ptIndex {
	x := new(ptIndex)
	t := m.s.text
	ls := m.lines()
	for i := range ls {
		ln := &ls[i]
		if ln.typ != 'a' || ln.pt < 0 || ln.pt > 127 {
			continue
		}
		switch ln.kind {
		case attrRTPMap:
			x[ln.pt].rtpmap = ln
		case attrFmtp:
			x[ln.pt].fmtp = ln
		case attrRTCPFB:
			x[ln.pt].fb = append(x[ln.pt].fb, afterToken(t, ln))
		}
	}
	for i := range x {
		x[i].fb = slices.Clip(x[i].fb)
	}
	return x
}

// payloadType describes payload type pt from its lines.
func (m *Media) payloadType(x *ptLines, pt int) PayloadType {
	t := m.s.text
	p := PayloadType{PT: pt, RTCPFB: x.fb}
	if ln := x.fmtp; ln != nil {
		p.Fmtp = afterToken(t, ln)
	}
	if rm := x.rtpmap; rm != nil {
		r, _ := parseRTPMap(t[rm.val:rm.end])
		if m.typ == "audio" && strings.EqualFold(r.encoding, "opus") {
			r.clock = 48000 // rtpengine's codec setup forces Opus to 48 kHz
		}
		p.Encoding = r.encoding
		p.Clock = int(r.clock)
		var b strings.Builder
		b.Grow(len(r.encoding) + 12)
		b.WriteString(r.encoding)
		b.WriteByte('/')
		b.WriteString(strconv.FormatUint(uint64(r.clock), 10))
		if r.channels > 1 {
			p.Params = strconv.Itoa(r.channels)
			b.WriteByte('/')
			b.WriteString(p.Params)
		}
		p.RTPMap = b.String()
	} else if pt < len(staticRTPMap) && staticRTPMap[pt] != "" {
		p.RTPMap = staticRTPMap[pt]
		enc, rest, _ := strings.Cut(p.RTPMap, "/")
		clock, ch, _ := strings.Cut(rest, "/")
		p.Encoding, p.Params = enc, ch
		p.Clock, _ = strconv.Atoi(clock)
	}
	return p
}

// afterToken returns the value of an a= line after its first
// space-separated field (the payload type of fmtp and rtcp-fb).
func afterToken(t string, ln *line) string {
	k := tokenizer{t: t, p: ln.val, q: ln.end}
	k.next()
	return t[k.p:k.q]
}
