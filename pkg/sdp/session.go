package sdp

import "net/netip"

// Session is a parsed SDP body. It keeps the text and the position of
// every line so that Rewrite can edit it in place. A Session is not
// modified by Rewrite and may be read from several goroutines.
type Session struct {
	text     string
	lines    []line
	nsess    int // lines[:nsess] form the session-level section
	origin   originPos
	sname    int // start of the s= value
	snameEnd int
	conn     conn
	media    []*Media
	end      int // end of the body (a blank line truncates it)
}

// Origin holds the fields of the o= line as written.
type Origin struct {
	Username  string
	SessionID string
	Version   string
	NetType   string
	AddrType  string
	Addr      string
}

// Media returns the media sections in m= order.
func (s *Session) Media() []*Media {
	return s.media
}

// Origin returns the fields of the o= line; all are empty when the body
// has none.
func (s *Session) Origin() Origin {
	o := &s.origin
	if !o.ok {
		return Origin{}
	}
	t := s.text
	return Origin{
		Username:  t[o.user:o.userEnd],
		SessionID: t[o.id:o.idEnd],
		Version:   t[o.ver:o.verEnd],
		NetType:   t[o.netType:o.netEnd],
		AddrType:  t[o.addrType:o.addrTEnd],
		Addr:      t[o.addr:o.addrEnd],
	}
}

// SessionName returns the value of the s= line ("" without one).
func (s *Session) SessionName() string {
	return s.text[s.sname:s.snameEnd]
}

// Connection returns the address of the session-level c= line, if there
// is one. The unspecified addresses 0.0.0.0 and :: are returned as they
// are; an IP6 address may be IPv4-mapped.
func (s *Session) Connection() (netip.Addr, bool) {
	return s.conn.addr, s.conn.ok
}

// HasLoopMarker reports whether the session section carries
// a=rtpengine:<id>, the marker loop-protect adds.
func (s *Session) HasLoopMarker(id string) bool {
	for i := range s.lines[:s.nsess] {
		ln := &s.lines[i]
		if ln.kind == attrRTPEngine && ln.val >= 0 && s.text[ln.val:ln.end] == id {
			return true
		}
	}
	return false
}

// Attr returns the values of the session-level a=name attributes in
// order: the raw text after "name:", or "" for a flag attribute written
// without ':'. It returns nil when there is none. Names match
// case-sensitively.
func (s *Session) Attr(name string) []string {
	return s.attrs(0, s.nsess, name)
}

// attrs collects the values of the a=name lines in lines[from:to].
func (s *Session) attrs(from, to int, name string) []string {
	var out []string
	for i := from; i < to; i++ {
		ln := &s.lines[i]
		if ln.typ != 'a' || s.text[ln.off+2:ln.name] != name {
			continue
		}
		v := ""
		if ln.val >= 0 {
			v = s.text[ln.val:ln.end]
		}
		out = append(out, v)
	}
	return out
}

// sessionHas reports whether a session-level attribute of kind k exists.
func (s *Session) sessionHas(k attrKind) bool {
	for i := range s.lines[:s.nsess] {
		if s.lines[i].kind == k && s.lines[i].typ == 'a' {
			return true
		}
	}
	return false
}

// ContentHash is a hash (FNV-1a, 64 bits) of the body without its o=
// line: two bodies that differ only in their origin (a new session
// version, say) hash the same. rtpengine's replace: SDP-version bumps its
// own version only when this changes.
func (s *Session) ContentHash() uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, ln := range s.lines {
		if ln.typ == 'o' {
			continue
		}
		for i := ln.off; i < ln.end; i++ {
			h ^= uint64(s.text[i])
			h *= prime
		}
		h ^= '\n'
		h *= prime
	}
	return h
}
