package nodestate

// The JSON reader under the call record's decoder: whitespace, strings,
// numbers, booleans, times, addresses, objects and arrays, as the encoder
// writes them; anything else is errSlowPath (see callcodec.go).

import (
	"net/netip"
	"time"
)

// decoder reads a record written by appendCall. Anything it does not
// expect is errSlowPath.
type decoder struct {
	b []byte
	// s is b as one string: the record's strings are slices of it, one
	// allocation for all of them.
	s string
	i int
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte (0 at the end).
func (d *decoder) next() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *decoder) expect(c byte) error {
	if d.next() != c {
		return errSlowPath
	}
	d.i++
	return nil
}

// rawString reads a string without escapes or non-ASCII bytes and returns
// its bytes (a view into the input).
func (d *decoder) rawString() ([]byte, error) {
	i, j, err := d.span()
	if err != nil {
		return nil, err
	}
	return d.b[i:j], nil
}

// span reads a string without escapes or non-ASCII bytes and returns where
// its contents are in the input.
func (d *decoder) span() (int, int, error) {
	if d.next() != '"' {
		return 0, 0, errSlowPath
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return start, d.i - 1, nil
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return 0, 0, errSlowPath
		}
		d.i++
	}
	return 0, 0, errSlowPath
}

func (d *decoder) str() (string, error) {
	i, j, err := d.span()
	if err != nil {
		return "", err
	}
	if len(d.s) != len(d.b) { // no shared string (tests)
		return string(d.b[i:j]), nil
	}
	return d.s[i:j], nil
}

// magnitude reads the digits of a plain integer (no sign) of at most max
// digits and returns their value; ok is false for no digits, a leading
// zero, a fraction or exponent after them, or a value beyond uint64.
func (d *decoder) magnitude(max int) (v uint64, ok bool) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	n := d.i - start
	if n == 0 || n > max || (n > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	for _, c := range d.b[start:d.i] {
		digit := uint64(c - '0')
		if v > (1<<64-1-digit)/10 {
			return 0, false // overflow: encoding/json's error
		}
		v = v*10 + digit
	}
	return v, true
}

// integer reads a JSON number that is a plain integer, as a signed value
// within [lo, hi].
func (d *decoder) integer(lo, hi int64) (int64, error) {
	d.space()
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	if neg {
		d.i++
	}
	m, ok := d.magnitude(18) // at most 18 digits: within int64
	if !ok {
		return 0, errSlowPath
	}
	v := int64(m)
	if neg {
		v = -v
	}
	if v < lo || v > hi {
		return 0, errSlowPath
	}
	return v, nil
}

func (d *decoder) intField() (int, error) {
	v, err := d.integer(-1<<53, 1<<53)
	return int(v), err
}

// uint64Field reads a plain unsigned integer over uint64's whole range
// (allocation generations are random 64-bit numbers).
func (d *decoder) uint64Field() (uint64, error) {
	d.space()
	v, ok := d.magnitude(20)
	if !ok {
		return 0, errSlowPath
	}
	return v, nil
}

// uint32Field reads a uint32 (a larger number takes the slow path, where
// encoding/json reports it).
func (d *decoder) uint32Field() (uint32, error) {
	v, err := d.unsigned(1<<32 - 1)
	return uint32(v), err
}

// unsigned is integer for an unsigned field: encoding/json refuses a
// minus sign there, even on zero.
func (d *decoder) unsigned(hi int64) (int64, error) {
	if d.next() == '-' {
		return 0, errSlowPath
	}
	return d.integer(0, hi)
}

func (d *decoder) boolean() (bool, error) {
	d.space()
	rest := d.b[d.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		d.i += 4
		return true, nil
	case len(rest) >= 5 && string(rest[:5]) == "false":
		d.i += 5
		return false, nil
	}
	return false, errSlowPath
}

func (d *decoder) timeField() (time.Time, error) {
	var t time.Time
	s, err := d.rawString()
	if err != nil {
		return t, err
	}
	if t.UnmarshalText(s) != nil {
		return t, errSlowPath
	}
	return t, nil
}

func (d *decoder) addrPort() (netip.AddrPort, error) {
	var ap netip.AddrPort
	s, err := d.rawString()
	if err != nil {
		return ap, err
	}
	if ap.UnmarshalText(s) != nil {
		return ap, errSlowPath
	}
	return ap, nil
}

func (d *decoder) addr() (netip.Addr, error) {
	var a netip.Addr
	s, err := d.rawString()
	if err != nil {
		return a, err
	}
	if a.UnmarshalText(s) != nil {
		return a, errSlowPath
	}
	return a, nil
}

// object reads an object, calling field for each key; field reads the
// value and returns the field's number (0-31). A key seen twice is the
// slow path (encoding/json's merging rules are not worth copying).
func (d *decoder) object(field func(key []byte) (int, error)) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.next() == '}' {
		d.i++
		return nil
	}
	var seen uint32
	for {
		k, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		n, err := field(k)
		if err != nil {
			return err
		}
		if seen&(1<<n) != 0 {
			return errSlowPath
		}
		seen |= 1 << n
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errSlowPath
		}
	}
}

// array reads an array (not null: that is the slow path), calling elem for
// each element.
func (d *decoder) array(elem func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.next() == ']' {
		d.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return errSlowPath
		}
	}
}
