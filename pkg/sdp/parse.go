package sdp

import (
	"net/netip"
	"strings"
)

// attrKind is what an a= line is recognised as, following rtpengine's
// attribute parser. An attribute rtpengine fails to parse is attrOther and
// is never stripped.
type attrKind uint8

const (
	attrOther           attrKind = iota
	attrIgnore                   // a=rtcp with a bad port: stripped wherever it is
	attrMid                      // a=mid
	attrRTCP                     // a=rtcp:PORT [IN IP4 addr]
	attrRTCPMux                  // a=rtcp-mux
	attrICEUfrag                 // a=ice-ufrag
	attrICE                      // a=ice-pwd, ice-options, ice-lite, ice-mismatch, remote-candidates
	attrCandidate                // a=candidate that parses
	attrEndOfCandidates          // a=end-of-candidates
	attrSendRecv                 // a=sendrecv
	attrSendOnly                 // a=sendonly
	attrRecvOnly                 // a=recvonly
	attrInactive                 // a=inactive
	attrRTPMap                   // a=rtpmap that parses
	attrFmtp                     // a=fmtp with a numeric payload type
	attrRTCPFB                   // a=rtcp-fb with a numeric payload type
	attrPtime                    // a=ptime
	attrCrypto                   // a=crypto with at least three fields
	attrFingerprint              // a=fingerprint that parses
	attrSetup                    // a=setup
	attrGroupBundle              // a=group:BUNDLE ...
	attrExtmap                   // a=extmap
	attrRTPEngine                // a=rtpengine (loop-protect marker)
)

// isDirection reports whether k is one of the four direction attributes.
func (k attrKind) isDirection() bool {
	return k >= attrSendRecv && k <= attrInactive
}

// line is one line of the body, located by byte offsets into the text.
type line struct {
	off  int // the type letter
	end  int // end of the content, before CR LF or LF (or the end of the body)
	next int // start of the next line; equals end when there is no terminator
	typ  byte
	kind attrKind
	pt   int // payload type of an attrRTPMap, attrFmtp or attrRTCPFB line
	name int // a= lines: end of the attribute name
	val  int // a= lines: start of the value after ':', or -1 without ':'
}

// conn is a parsed c= line.
type conn struct {
	ok      bool
	raw     string // the text after "c=" (used to synthesise c= for m=message)
	typOff  int    // start of the address type token; rewriting starts here
	addrEnd int    // end of the address token; rewriting ends here
	addr    netip.Addr
}

// originPos locates the fields of the o= line.
type originPos struct {
	ok                 bool
	user, userEnd      int
	id, idEnd          int
	ver, verEnd        int
	netType, netEnd    int
	addrType, addrTEnd int
	addr, addrEnd      int
}

// tokenizer splits space-separated fields the way rtpengine's
// str_token_sep does: a single space separates (so two spaces yield an
// empty field) and the last field runs to the end of the range.
type tokenizer struct {
	t    string
	p, q int
}

// next returns the bounds of the next field; ok is false when the rest of
// the range is empty.
func (k *tokenizer) next() (start, end int, ok bool) {
	if k.p >= k.q {
		return 0, 0, false
	}
	if i := strings.IndexByte(k.t[k.p:k.q], ' '); i >= 0 {
		start, end = k.p, k.p+i
		k.p = end + 1
		return start, end, true
	}
	start, end = k.p, k.q
	k.p = k.q
	return start, end, true
}

// Parse parses an SDP body and keeps every line for in-place rewriting.
//
// The accepted syntax is rtpengine's: the body starts with "v=0"; only the
// line types v o s i u e p c b t r z k a m are allowed; o= and s= may not
// appear in a media section; o=, c= and m= lines must have their fields
// (c= with a valid IP4 or IP6 address). A blank line ends the body and
// whatever follows it is dropped. A last line without line terminator is
// accepted. Only one session (one v= line) is supported. Errors wrap
// ErrParse.
func Parse(body []byte) (*Session, error) {
	text := string(body)
	s := &Session{text: text, nsess: -1}
	s.lines = make([]line, 0, strings.Count(text, "\n")+1)

	end := len(text)
	lineNo := 0
	var cur *Media
	for b := 0; b < end-1; {
		lineNo++
		if c := text[b]; c == '\n' || c == '\r' {
			end = b // a blank line ends the body
			break
		}
		if text[b+1] != '=' {
			return nil, parseError(lineNo, "missing '='")
		}
		value := b + 2
		ln := line{off: b, typ: text[b], val: -1}
		if nl := strings.IndexByte(text[value:end], '\n'); nl < 0 {
			ln.end, ln.next = end, end
		} else {
			ln.end = value + nl
			ln.next = ln.end + 1
			if text[ln.end-1] == '\r' {
				ln.end--
			}
		}
		if len(s.lines) == 0 && ln.typ != 'v' {
			return nil, parseError(lineNo, "SDP does not start with v=")
		}
		idx := len(s.lines)

		switch ln.typ {
		case 'v':
			if idx != 0 {
				return nil, parseError(lineNo, "more than one session (v= line) is not supported")
			}
			if ln.end != value+1 || text[value] != '0' {
				return nil, parseError(lineNo, "bad v= line")
			}
		case 'o':
			if cur != nil {
				return nil, parseError(lineNo, "o= line in a media section")
			}
			if s.origin.ok {
				return nil, parseError(lineNo, "second o= line")
			}
			if !s.parseOrigin(value, ln.end) {
				return nil, parseError(lineNo, "bad o= line")
			}
		case 's':
			if cur != nil {
				return nil, parseError(lineNo, "s= line in a media section")
			}
			s.sname, s.snameEnd = value, ln.end
		case 'm':
			if cur == nil {
				s.nsess = idx
			} else {
				cur.last = idx
			}
			cur = &Media{s: s, index: len(s.media) + 1, first: idx}
			if !cur.parseMLine(value, ln.end) {
				return nil, parseError(lineNo, "bad m= line")
			}
			s.media = append(s.media, cur)
		case 'c':
			c := &s.conn
			if cur != nil {
				c = &cur.conn
			}
			if c.ok {
				return nil, parseError(lineNo, "second c= line in a section")
			}
			if !parseConn(text, value, ln.end, c) {
				return nil, parseError(lineNo, "bad c= line")
			}
		case 'a':
			classify(text, &ln, value)
		case 'b', 'k', 'i', 'u', 'e', 'p', 't', 'r', 'z':
		default:
			return nil, parseError(lineNo, "unknown line type %q", ln.typ)
		}
		s.lines = append(s.lines, ln)
		b = ln.next
		if ln.next == ln.end {
			break // no terminator: this was the last line
		}
	}
	if len(s.lines) == 0 {
		return nil, parseError(1, "SDP does not start with v=")
	}
	if cur != nil {
		cur.last = len(s.lines)
	} else {
		s.nsess = len(s.lines)
	}
	s.end = end
	return s, nil
}

// parseOrigin reads "username sess-id sess-version nettype addrtype addr".
// Like rtpengine, an address that does not parse is tolerated.
func (s *Session) parseOrigin(p, q int) bool {
	k := tokenizer{t: s.text, p: p, q: q}
	o := &s.origin
	var ok bool
	for _, f := range []struct{ a, b *int }{
		{&o.user, &o.userEnd}, {&o.id, &o.idEnd}, {&o.ver, &o.verEnd},
		{&o.netType, &o.netEnd}, {&o.addrType, &o.addrTEnd}, {&o.addr, &o.addrEnd},
	} {
		if *f.a, *f.b, ok = k.next(); !ok {
			return false
		}
	}
	o.ok = true
	return true
}

// parseMLine reads "type port[/count] proto formats...".
func (m *Media) parseMLine(p, q int) bool {
	t := m.s.text
	k := tokenizer{t: t, p: p, q: q}
	ts, te, ok := k.next()
	if !ok {
		return false
	}
	m.typ = t[ts:te]
	if m.portOff, m.portEnd, ok = k.next(); !ok {
		return false
	}
	if m.protoOff, m.protoEnd, ok = k.next(); !ok {
		return false
	}
	m.fmtOff, m.fmtEnd = k.p, q
	m.fmtSep = m.protoEnd < q // a space follows the protocol

	// strtol reads on past the token (up to the end of the line here).
	v, used := cStrtol(t[m.portOff:q])
	if used == 0 || v < 0 || v > 0xffff {
		return false
	}
	m.port = int(v)
	m.nports = 1
	if rest := m.portOff + used; rest < q && t[rest] == '/' {
		n := cAtoi(t[rest+1 : q])
		if n <= 0 || n > 10 {
			return false
		}
		m.nports = n
	}
	return true
}

// parseConn reads "nettype addrtype address" into c.
func parseConn(t string, p, q int, c *conn) bool {
	k := tokenizer{t: t, p: p, q: q}
	ns, ne, ok1 := k.next()
	as, ae, ok2 := k.next()
	ds, de, ok3 := k.next()
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	addr, ok := parseNetAddr(t[ns:ne], t[as:ae], t[ds:de])
	if !ok {
		return false
	}
	*c = conn{ok: true, raw: t[p:q], typOff: as, addrEnd: de, addr: addr}
	return true
}

// parseNetAddr checks a network type, address type and address triple as
// rtpengine does: "IN" (or "in"), "IP4" or "IP6", and an address of that
// family (an IPv6 address may be bracketed).
func parseNetAddr(netType, addrType, addr string) (netip.Addr, bool) {
	if netType != "IN" && netType != "in" {
		return netip.Addr{}, false
	}
	return parseTypedAddr(addrType, addr)
}

// parseTypedAddr parses addr as an address of the family named by
// addrType ("IP4" or "IP6").
func parseTypedAddr(addrType, addr string) (netip.Addr, bool) {
	if len(addr) >= 64 {
		return netip.Addr{}, false
	}
	switch addrType {
	case "IP4":
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	case "IP6":
		if strings.HasPrefix(addr, "[") {
			i := strings.IndexByte(addr, ']')
			if i < 0 {
				return netip.Addr{}, false
			}
			addr = addr[1:i]
		}
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	return netip.Addr{}, false
}

// parseAnyAddr parses an address of either family (candidate addresses).
func parseAnyAddr(addr string) bool {
	if _, ok := parseTypedAddr("IP4", addr); ok {
		return true
	}
	_, ok := parseTypedAddr("IP6", addr)
	return ok
}

// classify sets the kind of an a= line whose content starts at value.
func classify(t string, ln *line, value int) {
	ln.name = ln.end
	if i := strings.IndexByte(t[value:ln.end], ':'); i >= 0 {
		ln.name = value + i
		ln.val = ln.name + 1
	}
	name := t[value:ln.name]
	// v is the value range; empty (and val == -1) without ':'.
	vp, vq := ln.val, ln.end
	if vp < 0 {
		vp = ln.end
	}
	k := tokenizer{t: t, p: vp, q: vq}

	switch name {
	case "mid":
		ln.kind = attrMid
	case "rtcp":
		ln.kind = classifyRTCP(t, ln, &k)
	case "rtcp-mux":
		ln.kind = attrRTCPMux
	case "ice-ufrag":
		ln.kind = attrICEUfrag
	case "ice-pwd", "ice-options", "ice-lite", "ice-mismatch", "remote-candidates":
		ln.kind = attrICE
	case "candidate":
		if candidateParses(t, &k, vq) {
			ln.kind = attrCandidate
		}
	case "end-of-candidates":
		ln.kind = attrEndOfCandidates
	case "sendrecv":
		ln.kind = attrSendRecv
	case "sendonly":
		ln.kind = attrSendOnly
	case "recvonly":
		ln.kind = attrRecvOnly
	case "inactive":
		ln.kind = attrInactive
	case "rtpmap":
		if r, ok := parseRTPMap(t[vp:vq]); ok {
			ln.kind = attrRTPMap
			ln.pt = r.pt
		}
	case "fmtp", "rtcp-fb":
		if ps, pe, ok := k.next(); ok {
			if pt := strToInt(t[ps:pe], -1); pt != -1 {
				ln.kind = attrFmtp
				if name == "rtcp-fb" {
					ln.kind = attrRTCPFB
				}
				ln.pt = pt
			}
		}
	case "ptime":
		ln.kind = attrPtime
	case "crypto":
		_, _, ok1 := k.next()
		_, _, ok2 := k.next()
		_, _, ok3 := k.next()
		if ok1 && ok2 && ok3 {
			ln.kind = attrCrypto
		}
	case "fingerprint":
		if fingerprintParses(t, &k, vq) {
			ln.kind = attrFingerprint
		}
	case "setup":
		ln.kind = attrSetup
	case "group":
		if strings.HasPrefix(t[vp:vq], "BUNDLE ") {
			ln.kind = attrGroupBundle
		}
	case "extmap":
		ln.kind = attrExtmap
	case "rtpengine":
		ln.kind = attrRTPEngine
	}
}

// clampPT maps a parsed payload type number to an int, or -1 when it
// cannot name a payload type.
func clampPT(v uint64) int {
	if v > 0x7fffffff {
		return -1
	}
	return int(v)
}

// classifyRTCP recognises "a=rtcp:PORT [IN IP4 addr]". A bad port makes
// the line attrIgnore (stripped); a bad address part makes it unknown
// (kept verbatim), as in rtpengine.
func classifyRTCP(t string, ln *line, k *tokenizer) attrKind {
	if ln.val < 0 {
		return attrIgnore
	}
	ps, pe, ok := k.next()
	if !ok {
		return attrIgnore
	}
	if port := strToInt(t[ps:pe], 0); port <= 0 || port > 0xffff {
		return attrIgnore
	}
	if k.p < k.q {
		ns, ne, ok1 := k.next()
		as, ae, ok2 := k.next()
		ds, de, ok3 := k.next()
		if !ok1 || !ok2 || !ok3 {
			return attrOther
		}
		if _, ok := parseNetAddr(t[ns:ne], t[as:ae], t[ds:de]); !ok {
			return attrOther
		}
	}
	return attrRTCP
}

// candidateParses reports whether rtpengine's candidate parser accepts the
// value (foundation component transport priority address port typ type
// [raddr A rport P]). Numbers are read strtoul-style up to the line end q.
func candidateParses(t string, k *tokenizer, q int) bool {
	var f [8][2]int
	for i := range f {
		s, e, ok := k.next()
		if !ok {
			return false
		}
		f[i] = [2]int{s, e}
	}
	field := func(i int) string { return t[f[i][0]:f[i][1]] }
	number := func(i int) bool { _, used := cStrtoul(t[f[i][0]:q]); return used > 0 }
	if !number(1) {
		return false
	}
	if tr := field(2); tr != "udp" && tr != "UDP" {
		return true // unknown transport: recognised, not used
	}
	if !number(3) {
		return false
	}
	if !parseAnyAddr(field(4)) {
		return true
	}
	if !number(5) || field(6) != "typ" {
		return false
	}
	switch field(7) {
	case "host":
		return true
	case "srflx", "prflx", "relay":
	default:
		return true // unknown type: recognised, not used
	}
	var r [4][2]int
	for i := range r {
		s, e, ok := k.next()
		if !ok {
			return false
		}
		r[i] = [2]int{s, e}
	}
	if t[r[0][0]:r[0][1]] != "raddr" || t[r[2][0]:r[2][1]] != "rport" {
		return false
	}
	if !parseAnyAddr(t[r[1][0]:r[1][1]]) {
		return true
	}
	_, used := cStrtoul(t[r[3][0]:q])
	return used > 0
}

// fingerprintHashes are the hash functions rtpengine knows, with their
// digest sizes in bytes.
var fingerprintHashes = [...]struct {
	name string
	size int
}{{"sha-256", 32}, {"sha-1", 20}, {"sha-224", 28}, {"sha-384", 48}, {"sha-512", 64}}

// fingerprintParses reports whether "hash XX:XX:..." names a known hash
// and carries exactly its number of hex bytes.
func fingerprintParses(t string, k *tokenizer, q int) bool {
	hs, he, ok1 := k.next()
	fs, _, ok2 := k.next()
	if !ok1 || !ok2 {
		return false
	}
	size := 0
	for _, h := range fingerprintHashes {
		if strings.EqualFold(t[hs:he], h.name) {
			size = h.size
			break
		}
	}
	if size == 0 {
		return false
	}
	c := t[fs:q]
	for i := 0; i < size; i++ {
		if len(c) < 2 || !isHex(c[0]) || !isHex(c[1]) {
			return false
		}
		if len(c) < 3 || c[2] != ':' {
			return i+1 == size
		}
		c = c[3:]
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// rtpMap is a parsed a=rtpmap value.
type rtpMap struct {
	pt       int
	encoding string
	clock    uint32 // as rtpengine stores it (a C unsigned int)
	channels int
}

// parseRTPMap parses "PT ENC/CLOCK[/CHANNELS][ ...]" as rtpengine does:
// the payload type only needs leading digits, the clock rate must be all
// digits, a channel count that is not a positive number counts as 1.
func parseRTPMap(v string) (rtpMap, bool) {
	k := tokenizer{t: v, q: len(v)}
	ps, _, ok := k.next()
	if !ok {
		return rtpMap{}, false
	}
	es, ee, ok := k.next()
	if !ok {
		return rtpMap{}, false
	}
	pt, used := cStrtoul(v[ps:])
	if used == 0 {
		return rtpMap{}, false
	}
	enc := v[es:ee]
	slash := strings.IndexByte(enc, '/')
	if slash < 0 {
		return rtpMap{}, false
	}
	r := rtpMap{pt: clampPT(pt), encoding: enc[:slash], channels: 1}
	clock := enc[slash+1:]
	if i := strings.IndexByte(clock, '/'); i >= 0 {
		params := clock[i+1:]
		clock = clock[:i]
		if params != "" {
			if n, used := cStrtol(params); n != 0 && used == len(params) && n >= -0x80000000 && n <= 0x7fffffff {
				r.channels = int(n)
			}
		}
	}
	if clock == "" {
		return rtpMap{}, false
	}
	c, used := cStrtoul(clock)
	if used != len(clock) {
		return rtpMap{}, false
	}
	r.clock = uint32(c)
	return r, true
}
