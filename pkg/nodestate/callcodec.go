package nodestate

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"time"
)

// The call record is written on every offer, answer and delete and read by
// every process that watches the node's calls, so its JSON is encoded and
// decoded by hand here rather than through reflection. The encoder writes
// exactly the bytes encoding/json writes for a Call; the decoder handles
// the records this encoder writes and hands anything else (unknown or
// differently cased keys, null, escapes, non-ASCII text, numbers that are
// not plain integers) to encoding/json, so both give the same result for
// every input.

// errSlowPath makes the fast decoder hand the record to encoding/json.
var errSlowPath = errors.New("nodestate: record needs encoding/json")

// marshalCall returns c's JSON, identical to json.Marshal(c).
func marshalCall(c *Call) ([]byte, error) {
	b, ok := appendCall(make([]byte, 0, 2048), c)
	if !ok {
		return json.Marshal(c)
	}
	return b, nil
}

// unmarshalCall decodes data into c as json.Unmarshal(data, c) would, with c
// the zero Call.
func unmarshalCall(data []byte, c *Call) error {
	d := decoder{b: data, s: string(data)}
	var v Call
	if err := d.call(&v); err == nil {
		d.space()
		if d.i == len(d.b) {
			*c = v
			return nil
		}
	}
	return json.Unmarshal(data, c)
}

// appendCall appends c's JSON; ok is false when a value needs
// encoding/json's general path (a time outside years 0-9999).
func appendCall(b []byte, c *Call) (_ []byte, ok bool) {
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(c.Schema), 10)
	b = appendKeyString(b, `,"id":`, c.ID)
	b = appendKeyString(b, `,"owner":`, c.Owner)
	if c.Foreign {
		b = append(b, `,"foreign":true`...)
	}
	if c.Partition != "" {
		b = appendKeyString(b, `,"partition":`, c.Partition)
	}
	if c.Source != "" {
		b = appendKeyString(b, `,"source":`, c.Source)
	}
	if b, ok = appendKeyTime(b, `,"created":`, c.Created); !ok {
		return b, false
	}
	if b, ok = appendKeyTime(b, `,"last_signal":`, c.LastSignal); !ok {
		return b, false
	}
	if !c.DeleteAt.IsZero() {
		if b, ok = appendKeyTime(b, `,"delete_at":`, c.DeleteAt); !ok {
			return b, false
		}
	}
	b = append(b, `,"legs":`...)
	if c.Legs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendLeg(b, &c.Legs[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendLeg(b []byte, l *Leg) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(l.ID), 10)
	if l.Tag != "" {
		b = appendKeyString(b, `,"tag":`, l.Tag)
	}
	if l.Label != "" {
		b = appendKeyString(b, `,"label":`, l.Label)
	}
	if l.ViaBranch != "" {
		b = appendKeyString(b, `,"via_branch":`, l.ViaBranch)
	}
	b = append(b, `,"peer":`...)
	b = strconv.AppendInt(b, int64(l.Peer), 10)
	if l.Family != 0 {
		b = append(b, `,"family":`...)
		b = strconv.AppendInt(b, int64(l.Family), 10)
	}
	if l.Interface != "" {
		b = appendKeyString(b, `,"interface":`, l.Interface)
	}
	if l.SDP {
		b = append(b, `,"sdp":true`...)
	}
	if b, ok = appendKeyTime(b, `,"created":`, l.Created); !ok {
		return b, false
	}
	b = append(b, `,"medias":`...)
	if l.Medias == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Medias {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMedia(b, &l.Medias[i])
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendMedia(b []byte, m *Media) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(m.Index), 10)
	b = appendKeyString(b, `,"type":`, m.Type)
	b = appendKeyString(b, `,"protocol":`, m.Protocol)
	b = appendKeyString(b, `,"interface":`, m.Interface)
	if m.Direction != "" {
		b = appendKeyString(b, `,"direction":`, m.Direction)
	}
	if m.RTCPMux {
		b = append(b, `,"rtcp_mux":true`...)
	}
	if len(m.PayloadTypes) > 0 {
		b = append(b, `,"payload_types":[`...)
		for i := range m.PayloadTypes {
			if i > 0 {
				b = append(b, ',')
			}
			p := &m.PayloadTypes[i]
			b = append(b, `{"pt":`...)
			b = strconv.AppendUint(b, uint64(p.PT), 10)
			b = appendKeyString(b, `,"encoding":`, p.Encoding)
			b = append(b, `,"clock":`...)
			b = strconv.AppendInt(b, int64(p.Clock), 10)
			if p.Params != "" {
				b = appendKeyString(b, `,"params":`, p.Params)
			}
			if p.Fmtp != "" {
				b = appendKeyString(b, `,"fmtp":`, p.Fmtp)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"streams":`...)
	if m.Streams == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range m.Streams {
			if i > 0 {
				b = append(b, ',')
			}
			s := &m.Streams[i]
			b = append(b, `{"component":`...)
			b = strconv.AppendInt(b, int64(s.Component), 10)
			b = appendKeyAddrPort(b, `,"local":`, s.Local)
			if s.Advertised != (netip.Addr{}) {
				b = append(b, `,"advertised":`...)
				if s.Advertised.Zone() != "" {
					b = appendString(b, s.Advertised.String())
				} else {
					b = append(b, '"')
					b = s.Advertised.AppendTo(b)
					b = append(b, '"')
				}
			}
			if s.Signalled != (netip.AddrPort{}) {
				b = appendKeyAddrPort(b, `,"signalled":`, s.Signalled)
			}
			if s.Gen != 0 {
				b = append(b, `,"gen":`...)
				b = strconv.AppendUint(b, s.Gen, 10)
			}
			if s.Learned != (netip.AddrPort{}) {
				b = appendKeyAddrPort(b, `,"learned":`, s.Learned)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(m.Flags) > 0 {
		b = append(b, `,"flags":[`...)
		for i, f := range m.Flags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f)
		}
		b = append(b, ']')
	}
	if m.Mid != "" {
		b = appendKeyString(b, `,"mid":`, m.Mid)
	}
	if m.Ptime != 0 {
		b = append(b, `,"ptime":`...)
		b = strconv.AppendInt(b, int64(m.Ptime), 10)
	}
	if m.Key != (netip.AddrPort{}) {
		b = appendKeyAddrPort(b, `,"key":`, m.Key)
	}
	return append(b, '}')
}

func appendKeyString(b []byte, key, s string) []byte {
	return appendString(append(b, key...), s)
}

// appendString appends s as a JSON string the way encoding/json does:
// strings of plain printable ASCII go as they are, anything else (escapes,
// HTML characters, non-ASCII, invalid UTF-8) through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainByte reports whether c stands for itself inside a JSON string as
// encoding/json writes it.
func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

func appendKeyTime(b []byte, key string, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, key...)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func appendKeyAddrPort(b []byte, key string, ap netip.AddrPort) []byte {
	b = append(b, key...)
	if ap.Addr().Zone() != "" {
		t, _ := ap.MarshalText() // never fails
		return appendString(b, string(t))
	}
	b = append(b, '"')
	if ap.Addr().IsValid() {
		b = ap.AppendTo(b)
	}
	return append(b, '"')
}

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

func (d *decoder) call(c *Call) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "schema":
			n = 0
			c.Schema, err = d.intField()
		case "id":
			n = 1
			c.ID, err = d.str()
		case "owner":
			n = 2
			c.Owner, err = d.str()
		case "foreign":
			n = 3
			c.Foreign, err = d.boolean()
		case "partition":
			n = 4
			c.Partition, err = d.str()
		case "source":
			n = 5
			c.Source, err = d.str()
		case "created":
			n = 6
			c.Created, err = d.timeField()
		case "last_signal":
			n = 7
			c.LastSignal, err = d.timeField()
		case "delete_at":
			n = 8
			c.DeleteAt, err = d.timeField()
		case "legs":
			n = 9
			c.Legs = make([]Leg, 0, 2)
			err = d.array(func() error {
				c.Legs = append(c.Legs, Leg{})
				return d.leg(&c.Legs[len(c.Legs)-1])
			})
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) leg(l *Leg) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "id":
			n = 0
			l.ID, err = d.intField()
		case "tag":
			n = 1
			l.Tag, err = d.str()
		case "label":
			n = 2
			l.Label, err = d.str()
		case "via_branch":
			n = 3
			l.ViaBranch, err = d.str()
		case "peer":
			n = 4
			l.Peer, err = d.intField()
		case "family":
			n = 5
			l.Family, err = d.intField()
		case "interface":
			n = 6
			l.Interface, err = d.str()
		case "sdp":
			n = 7
			l.SDP, err = d.boolean()
		case "created":
			n = 8
			l.Created, err = d.timeField()
		case "medias":
			n = 9
			l.Medias = make([]Media, 0, 1)
			err = d.array(func() error {
				l.Medias = append(l.Medias, Media{})
				return d.media(&l.Medias[len(l.Medias)-1])
			})
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) media(m *Media) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "index":
			n = 0
			m.Index, err = d.intField()
		case "type":
			n = 1
			m.Type, err = d.str()
		case "protocol":
			n = 2
			m.Protocol, err = d.str()
		case "interface":
			n = 3
			m.Interface, err = d.str()
		case "direction":
			n = 4
			m.Direction, err = d.str()
		case "rtcp_mux":
			n = 5
			m.RTCPMux, err = d.boolean()
		case "payload_types":
			n = 6
			m.PayloadTypes = make([]PayloadType, 0, 4)
			err = d.array(func() error {
				m.PayloadTypes = append(m.PayloadTypes, PayloadType{})
				return d.payloadType(&m.PayloadTypes[len(m.PayloadTypes)-1])
			})
		case "streams":
			n = 7
			m.Streams = make([]Stream, 0, 2)
			err = d.array(func() error {
				m.Streams = append(m.Streams, Stream{})
				return d.stream(&m.Streams[len(m.Streams)-1])
			})
		case "flags":
			n = 8
			m.Flags = []string{}
			err = d.array(func() error {
				s, err := d.str()
				m.Flags = append(m.Flags, s)
				return err
			})
		case "mid":
			n = 9
			m.Mid, err = d.str()
		case "ptime":
			n = 10
			m.Ptime, err = d.intField()
		case "key":
			n = 11
			m.Key, err = d.addrPort()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) payloadType(p *PayloadType) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "pt":
			n = 0
			var v int64
			v, err = d.unsigned(255)
			p.PT = uint8(v)
		case "encoding":
			n = 1
			p.Encoding, err = d.str()
		case "clock":
			n = 2
			p.Clock, err = d.intField()
		case "params":
			n = 3
			p.Params, err = d.str()
		case "fmtp":
			n = 4
			p.Fmtp, err = d.str()
		default:
			err = errSlowPath
		}
		return n, err
	})
}

func (d *decoder) stream(s *Stream) error {
	return d.object(func(k []byte) (n int, err error) {
		switch string(k) {
		case "component":
			n = 0
			s.Component, err = d.intField()
		case "local":
			n = 1
			s.Local, err = d.addrPort()
		case "advertised":
			n = 2
			s.Advertised, err = d.addr()
		case "signalled":
			n = 3
			s.Signalled, err = d.addrPort()
		case "gen":
			n = 4
			s.Gen, err = d.uint64Field()
		case "learned":
			n = 5
			s.Learned, err = d.addrPort()
		default:
			err = errSlowPath
		}
		return n, err
	})
}
