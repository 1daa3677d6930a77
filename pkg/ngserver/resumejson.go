package ngserver

// jsonMaxDepth is encoding/json's nesting limit.
const jsonMaxDepth = 10000

// JSON scanner states.
const (
	jValue    = iota // a value
	jArrFirst        // a value or ']'
	jObjFirst        // a key or '}'
	jKey             // a key
	jColon           // ':'
	jAfter           // ',' or the closing bracket
	jStr             // inside a string
	jEsc             // after a backslash
	jHex             // inside \uXXXX (hex counts the digits left)
	jMinus           // after '-'
	jZero            // after a leading 0
	jInt             // in integer digits
	jDot             // after '.'
	jFrac            // in fraction digits
	jE               // after 'e'
	jESign           // after the exponent's sign
	jExp             // in exponent digits
	jLit             // inside true, false or null (lit holds the rest)
)

// jsonScan checks the syntax of a JSON document across reads with the
// rules of encoding/json's scanner, keeping its state between calls so each
// byte is examined once.
type jsonScan struct {
	stack []byte // '{' or '['
	st    int
	key   bool   // the string being scanned is an object key
	hex   int    // hex digits left in \u
	lit   string // rest of a literal
	p     int    // next byte
}

// scan continues over doc, which extends the doc of the previous call. It
// returns scanMore only when the bytes are a valid prefix of a JSON value.
func (s *jsonScan) scan(doc []byte, examined *int) verdict {
	for ; s.p < len(doc); s.p++ {
		*examined++
		if !s.step(doc[s.p]) {
			return decide
		}
		if s.st == jAfter && len(s.stack) == 0 {
			return decide // the document ended
		}
	}
	return scanMore
}

// step consumes c and reports whether scanning goes on (false: an error).
func (s *jsonScan) step(c byte) bool {
	ws := c == ' ' || c == '\t' || c == '\r' || c == '\n'
	switch s.st {
	case jValue, jArrFirst:
		if ws {
			return true
		}
		if s.st == jArrFirst && c == ']' {
			return s.pop('[')
		}
		return s.value(c)
	case jObjFirst, jKey:
		switch {
		case ws:
		case c == '"':
			s.st, s.key = jStr, true
		case c == '}' && s.st == jObjFirst:
			return s.pop('{')
		default:
			return false
		}
	case jColon:
		switch {
		case ws:
		case c == ':':
			s.st = jValue
		default:
			return false
		}
	case jAfter:
		return s.after(c, ws)
	case jStr:
		switch {
		case c == '"':
			s.st = jAfter
			if s.key {
				s.st, s.key = jColon, false
			}
		case c == '\\':
			s.st = jEsc
		case c < 0x20:
			return false
		}
	case jEsc:
		switch c {
		case 'b', 'f', 'n', 'r', 't', '\\', '/', '"':
			s.st = jStr
		case 'u':
			s.st, s.hex = jHex, 4
		default:
			return false
		}
	case jHex:
		if !isHex(c) {
			return false
		}
		if s.hex--; s.hex == 0 {
			s.st = jStr
		}
	case jLit:
		if c != s.lit[0] {
			return false
		}
		if s.lit = s.lit[1:]; s.lit == "" {
			s.st = jAfter
		}
	default:
		return s.number(c, ws)
	}
	return true
}

func isHex(c byte) bool { return isDigitByte(c) || c|0x20-'a' < 6 }

// value starts a value with c.
func (s *jsonScan) value(c byte) bool {
	switch {
	case c == '{' || c == '[':
		s.stack = append(s.stack, c)
		if len(s.stack) > jsonMaxDepth {
			return false
		}
		s.st = jObjFirst
		if c == '[' {
			s.st = jArrFirst
		}
	case c == '"':
		s.st = jStr
	case c == '-':
		s.st = jMinus
	case c == '0':
		s.st = jZero
	case isDigitByte(c):
		s.st = jInt
	case c == 't':
		s.st, s.lit = jLit, "rue"
	case c == 'f':
		s.st, s.lit = jLit, "alse"
	case c == 'n':
		s.st, s.lit = jLit, "ull"
	default:
		return false
	}
	return true
}

// after handles c after a complete value inside a container.
func (s *jsonScan) after(c byte, ws bool) bool {
	if ws {
		return true
	}
	if len(s.stack) == 0 {
		return false
	}
	top := s.stack[len(s.stack)-1]
	switch {
	case c == ',' && top == '{':
		s.st = jKey
	case c == ',':
		s.st = jValue
	case c == '}' || c == ']':
		return s.pop(c - 2) // '}' - 2 is '{', ']' - 2 is '['
	default:
		return false
	}
	return true
}

// pop closes the innermost container, which must be open.
func (s *jsonScan) pop(open byte) bool {
	if len(s.stack) == 0 || s.stack[len(s.stack)-1] != open {
		return false
	}
	s.stack = s.stack[:len(s.stack)-1]
	s.st = jAfter
	return true
}

// number continues a number with c; a byte that cannot continue it ends
// the number and is handled as what follows the value.
func (s *jsonScan) number(c byte, ws bool) bool {
	d := isDigitByte(c)
	switch s.st {
	case jMinus:
		switch {
		case c == '0':
			s.st = jZero
		case d:
			s.st = jInt
		default:
			return false
		}
		return true
	case jInt, jZero:
		switch {
		case d && s.st == jInt:
			return true
		case c == '.':
			s.st = jDot
			return true
		case c == 'e' || c == 'E':
			s.st = jE
			return true
		}
	case jDot:
		if !d {
			return false
		}
		s.st = jFrac
		return true
	case jFrac:
		switch {
		case d:
			return true
		case c == 'e' || c == 'E':
			s.st = jE
			return true
		}
	case jE:
		switch {
		case c == '+' || c == '-':
			s.st = jESign
		case d:
			s.st = jExp
		default:
			return false
		}
		return true
	case jESign:
		if !d {
			return false
		}
		s.st = jExp
		return true
	case jExp:
		if d {
			return true
		}
	}
	s.st = jAfter
	return s.after(c, ws)
}
