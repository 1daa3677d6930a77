package handoff

import (
	"encoding/json"
	"net/netip"
	"strconv"
)

// Every socket a call uses crosses the hand-off socket with its metadata,
// so the metadata of the common messages is encoded and decoded by hand:
// appendMsg writes exactly the bytes encoding/json writes for a Msg whose
// strings are plain printable ASCII, and parseMsg reads exactly that shape
// (keys in field order, no spaces, no escapes). Anything else takes
// encoding/json, so both ends give the same result for every input and the
// wire format stays the JSON that earlier releases exchange.

// appendMsg appends m's JSON; ok is false when a string needs escaping.
func appendMsg(b []byte, m *Msg) (_ []byte, ok bool) {
	var local []byte
	if m.Local.IsValid() {
		var arr [64]byte
		local = m.Local.AppendTo(arr[:0])
	}
	if !plain(m.Op) || !plain(m.Worker) || !plain(m.Network) || !plain(m.Call) || !plain(string(local)) {
		return b, false
	}
	b = append(append(append(b, `{"op":"`...), m.Op...), '"')
	if m.Worker != "" {
		b = append(append(append(b, `,"worker":"`...), m.Worker...), '"')
	}
	if m.PID != 0 {
		b = strconv.AppendInt(append(b, `,"pid":`...), int64(m.PID), 10)
	}
	if local != nil {
		b = append(append(append(b, `,"local":"`...), local...), '"')
	}
	if m.Network != "" {
		b = append(append(append(b, `,"net":"`...), m.Network...), '"')
	}
	if m.Call != "" {
		b = append(append(append(b, `,"call":"`...), m.Call...), '"')
	}
	return append(b, '}'), true
}

// plain reports whether encoding/json writes s as it is: printable ASCII
// without the characters it escapes (quote, backslash, and <, >, & for
// HTML safety).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// parseMsg decodes the shape appendMsg writes; ok is false for anything
// else (including a Local that does not parse), which the caller hands to
// encoding/json.
func parseMsg(b []byte) (m Msg, ok bool) {
	p := msgParser{b: b}
	if !p.lit(`{"op":`) {
		return m, false
	}
	if m.Op, ok = p.str(); !ok {
		return m, false
	}
	if p.lit(`,"worker":`) {
		if m.Worker, ok = p.str(); !ok {
			return m, false
		}
	}
	if p.lit(`,"pid":`) {
		if m.PID, ok = p.int(); !ok {
			return m, false
		}
	}
	if p.lit(`,"local":`) {
		s, ok := p.str()
		if !ok {
			return m, false
		}
		if s != "" {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return m, false
			}
			m.Local = ap
		}
	}
	if p.lit(`,"net":`) {
		if m.Network, ok = p.str(); !ok {
			return m, false
		}
	}
	if p.lit(`,"call":`) {
		if m.Call, ok = p.str(); !ok {
			return m, false
		}
	}
	return m, p.lit("}") && p.i == len(p.b)
}

type msgParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *msgParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str reads a string of plain characters (see plain).
func (p *msgParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return string(p.b[start:j]), true
		case c < 0x20 || c > 0x7e, c == '\\':
			return "", false
		}
	}
	return "", false
}

// int reads a plain integer: optional minus, no leading zero, at most 18
// digits (so that it cannot overflow).
func (p *msgParser) int() (int, bool) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	v := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		v = v*10 + int(p.b[p.i]-'0')
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 18 || (n > 1 && p.b[digits] == '0') {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	if digits != start {
		v = -v
	}
	return v, true
}

// encodeMsg is Msg.Encode's body.
func encodeMsg(m *Msg) ([]byte, error) {
	if b, ok := appendMsg(make([]byte, 0, 96), m); ok {
		return b, nil
	}
	return json.Marshal(m)
}

// decodeMsg is json.Unmarshal(b, &m) for a zero m, through parseMsg when
// it can.
func decodeMsg(b []byte) (Msg, error) {
	if m, ok := parseMsg(b); ok {
		return m, nil
	}
	var m Msg
	err := json.Unmarshal(b, &m)
	return m, err
}
