package nodestate

import (
	"fmt"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// EscapeID turns an arbitrary id into one key token: letters, digits, '-'
// and '_' stay; every other byte becomes '=' and two hex digits. The result
// is never empty ("=" stands for the empty id).
func EscapeID(id string) string {
	if id == "" {
		return "="
	}
	var b strings.Builder
	b.Grow(len(id))
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

// UnescapeID reverses EscapeID.
func UnescapeID(tok string) (string, error) {
	if tok == "=" {
		return "", nil
	}
	if !strings.Contains(tok, "=") {
		return tok, nil
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		if tok[i] != '=' {
			b = append(b, tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("bad escaped id %q: truncated escape", tok)
		}
		hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("bad escaped id %q: bad hex", tok)
		}
		b = append(b, byte(hi<<4|lo))
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
