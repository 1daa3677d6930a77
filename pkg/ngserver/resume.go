package ngserver

import "math"

// verdict is what a resumable document scanner concludes about the bytes
// seen so far.
type verdict int

const (
	// scanMore: the bytes are a valid prefix of a document.
	scanMore verdict = iota
	// decide: the document ended or the bytes are invalid; the
	// authoritative scanner (bencode.Split or jsonEnd) gives the result.
	decide
)

// benScan scans a bencode document across reads. It keeps the container
// stack and the offset of the first token not yet complete, so each call
// examines only the new bytes plus that one token's prefix (a length or an
// integer, at most about 20 bytes).
type benScan struct {
	stack []byte // 'l' list, 'k' dict awaiting key or end, 'v' awaiting value
	p     int    // offset of the next token
}

// scan continues over doc, which extends the doc of the previous call. It
// returns scanMore only when bencode.Split would report an incomplete
// value, and adds the bytes it examined to *examined.
func (s *benScan) scan(doc []byte, examined *int) verdict {
	for s.p < len(doc) {
		top := byte(0)
		if len(s.stack) > 0 {
			top = s.stack[len(s.stack)-1]
		}
		c := doc[s.p]
		switch {
		case c == 'e':
			if top != 'l' && top != 'k' {
				return decide
			}
			s.stack = s.stack[:len(s.stack)-1]
			s.p++
			*examined++
		case top == 'k' && !isDigitByte(c):
			return decide
		case isDigitByte(c):
			end, v := benString(doc, s.p, examined)
			if v != 0 || end < 0 {
				return v
			}
			s.p = end
		case c == 'i':
			end, v := benInt(doc, s.p, examined)
			if v != 0 || end < 0 {
				return v
			}
			s.p = end
		case c == 'l':
			s.stack = append(s.stack, 'l')
			s.p++
			*examined++
			continue
		case c == 'd':
			s.stack = append(s.stack, 'k')
			s.p++
			*examined++
			continue
		default:
			return decide
		}
		if len(s.stack) == 0 {
			return decide // the document ended
		}
		switch top := &s.stack[len(s.stack)-1]; *top {
		case 'k':
			*top = 'v'
		case 'v':
			*top = 'k'
		}
	}
	return scanMore
}

// The token scanners below return the offset after a complete token, or
// -1 with scanMore when doc ends inside it, or decide when it is invalid;
// they follow bencode's scanLen and scanInt rule for rule.

func isDigitByte(c byte) bool { return c-'0' <= 9 }

func benString(doc []byte, p int, examined *int) (int, verdict) {
	start := p
	defer func() { *examined += min(p, len(doc)) - start }()
	if doc[p] == '0' {
		p++
		switch {
		case p >= len(doc):
			return -1, scanMore
		case doc[p] != ':':
			return 0, decide
		}
		p++
		return p, scanMore
	}
	n := 0
	for ; p < len(doc); p++ {
		c := doc[p]
		if c == ':' {
			p++
			if n > len(doc)-p {
				return -1, scanMore // the string's bytes are not examined
			}
			return p + n, scanMore
		}
		if !isDigitByte(c) {
			return 0, decide
		}
		dg := int(c - '0')
		if n > math.MaxInt/10 || n*10 > math.MaxInt-dg {
			return 0, decide
		}
		n = n*10 + dg
	}
	return -1, scanMore
}

func benInt(doc []byte, p int, examined *int) (int, verdict) {
	start := p
	defer func() { *examined += min(p, len(doc)) - start }()
	p++ // 'i'
	neg := p < len(doc) && doc[p] == '-'
	if neg {
		p++
	}
	if p >= len(doc) {
		return -1, scanMore
	}
	switch c := doc[p]; {
	case c == '0':
		if neg {
			return 0, decide
		}
		p++
		switch {
		case p >= len(doc):
			return -1, scanMore
		case doc[p] != 'e':
			return 0, decide
		}
		p++
		return p, scanMore
	case !isDigitByte(c):
		return 0, decide
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var u uint64
	for ; p < len(doc); p++ {
		c := doc[p]
		if c == 'e' {
			p++
			return p, scanMore
		}
		if !isDigitByte(c) {
			return 0, decide
		}
		dg := uint64(c - '0')
		if u > (limit-dg)/10 {
			return 0, decide
		}
		u = u*10 + dg
	}
	return -1, scanMore
}
