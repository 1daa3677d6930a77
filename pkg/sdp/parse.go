package sdp

import (
	"net/netip"
	"strings"
)

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

// Split cuts a body holding several sessions (each starting with a v=
// line, as rtpengine accepts them one after the other in one body) into
// one body per session; a body of one session comes back whole.
func Split(body []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i+2 < len(body); i++ {
		if body[i] == '\n' && body[i+1] == 'v' && body[i+2] == '=' {
			out = append(out, body[start:i+1])
			start = i + 1
		}
	}
	return append(out, body[start:])
}
