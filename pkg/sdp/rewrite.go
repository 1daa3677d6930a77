package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// writer copies the input text to out, with edits in between. pos is the
// first input byte not yet copied or skipped.
type writer struct {
	t   string
	out []byte
	pos int
}

// copyTo copies the input up to off.
func (w *writer) copyTo(off int) {
	if off > w.pos {
		w.out = append(w.out, w.t[w.pos:off]...)
		w.pos = off
	}
}

// skipTo drops the input up to off.
func (w *writer) skipTo(off int) {
	if off > w.pos {
		w.pos = off
	}
}

// replace writes v instead of the input in [from, to).
func (w *writer) replace(from, to int, v string) {
	w.copyTo(from)
	w.out = append(w.out, v...)
	w.skipTo(to)
}

// drop removes a whole line, terminator included.
func (w *writer) drop(ln *line) {
	w.copyTo(ln.off)
	w.skipTo(ln.next)
}

// addr writes "IP4 a" or "IP6 a"; with zero, the unspecified address of
// a's family.
func (w *writer) addr(a netip.Addr, zero bool) {
	a = a.WithZone("")
	if a.Is4() {
		w.out = append(w.out, "IP4 "...)
		if zero {
			w.out = append(w.out, "0.0.0.0"...)
			return
		}
	} else {
		w.out = append(w.out, "IP6 "...)
		if zero {
			w.out = append(w.out, "::"...)
			return
		}
	}
	w.out = a.AppendTo(w.out)
}

// attr writes "a=" name value CRLF.
func (w *writer) attr(name, value string) {
	w.out = append(w.out, "a="...)
	w.out = append(w.out, name...)
	w.out = append(w.out, value...)
	w.out = append(w.out, "\r\n"...)
}

// ptAttr writes "a=" name PT " " value CRLF.
func (w *writer) ptAttr(name string, pt int, value string) {
	w.out = append(w.out, "a="...)
	w.out = append(w.out, name...)
	w.out = strconv.AppendInt(w.out, int64(pt), 10)
	w.out = append(w.out, ' ')
	w.out = append(w.out, value...)
	w.out = append(w.out, "\r\n"...)
}

// Rewrite returns the SDP for the receiver: the input body edited in place
// as rtpengine's sdp_replace does.
//
// Every line Rewrite does not own stays where it was with its own line
// ending; generated lines end in CRLF. When the last input line has no
// terminator, generated text follows it directly (as in rtpengine).
//
// Session section: the o= address (ReplaceOrigin), username, version and
// s= value are replaced on request; the session c= as Plan describes.
// Removed: ICE attributes (a=ice-ufrag, ice-pwd, ice-options, ice-lite,
// ice-mismatch, remote-candidates), recognised a=candidate lines,
// a=fingerprint, a=setup, a=group:BUNDLE, a=rtcp with a bad port,
// direction attributes (unless OriginalSendrecv) and a=extmap
// (StripExtmap). The loop marker and SessionAttrs follow the last
// session line.
//
// Media sections: the m= port, protocol and (RTP) format list are
// rewritten, the c= line always (keeping a zero address as Plan says).
// Removed: ICE attributes and candidates, a=end-of-candidates, a=rtcp,
// a=rtcp-mux, a=mid, direction attributes (unless OriginalSendrecv),
// a=crypto, a=fingerprint, a=setup, a=ptime (when Ptime is set), a=extmap
// (StripExtmap) and, when codecs are given, every recognised a=rtpmap,
// a=fmtp and a=rtcp-fb:<pt> line (a=rtcp-fb:* and lines rtpengine cannot
// parse stay). Everything else stays in place. The generated tail goes
// at the end of the section: a=mid, a=label, per codec a=rtpmap / a=fmtp /
// a=rtcp-fb, ExtraAttrs, the direction, a=rtcp and a=rtcp-mux,
// SecurityAttrs, a=ptime, ICEAttrs, a=end-of-candidates; a rejected
// section gets only a=mid, a=label and a=end-of-candidates, a non-RTP one
// no codec, RTCP or ptime lines.
//
// An m=message section (MSRP) is passed through untouched, as rtpengine
// does; without a c= of its own it gets a copy of the input's session c=
// line (ending in LF, as rtpengine writes it) before its first a=, b= or
// k= line.
//
// Lines are edited in the order they appear. (rtpengine edits the o=, s=
// and c= lines before the attributes and fails with "Error rewriting
// SDP" when a removed attribute comes before a c= line of its section;
// Rewrite handles that order too.)
//
// Errors wrap ErrPlan, or ErrIncomplete for an m=message section with no
// c= line at either level.
func Rewrite(s *Session, p Plan) ([]byte, error) {
	if len(p.Media) != len(s.media) {
		return nil, fmt.Errorf("%w: %d media plans for %d m= lines", ErrPlan, len(p.Media), len(s.media))
	}
	if err := p.check(s); err != nil {
		return nil, err
	}
	w := writer{t: s.text, out: make([]byte, 0, p.sizeHint(s))}
	if err := w.session(s, &p); err != nil {
		return nil, err
	}
	for i, m := range s.media {
		if err := w.media(m, &p, &p.Media[i]); err != nil {
			return nil, err
		}
	}
	w.copyTo(s.end)
	return w.out, nil
}

// check rejects plan values that cannot be printed.
func (p *Plan) check(s *Session) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
	}
	if strings.ContainsAny(p.OriginUsername, " \r\n") || strings.ContainsAny(p.OriginVersion, " \r\n") || strings.ContainsAny(p.OriginSessionID, " \r\n") ||
		strings.ContainsAny(p.SessionName, "\r\n") || strings.ContainsAny(p.LoopProtect, "\r\n") {
		return bad("bad o=, s= or loop-protect value")
	}
	for _, v := range p.SessionAttrs {
		if strings.ContainsAny(v, "\r\n") {
			return bad("bad session attribute %q", v)
		}
	}
	for i := range p.Media {
		mp := &p.Media[i]
		if mp.Port < 0 || mp.Port > 0xffff || mp.RTCPPort < 0 || mp.RTCPPort > 0xffff {
			return bad("media %d: port out of range", i+1)
		}
		switch mp.Direction {
		case "", SendRecv, SendOnly, RecvOnly, Inactive:
		default:
			return bad("media %d: bad direction %q", i+1, mp.Direction)
		}
		if strings.ContainsAny(mp.Proto, " \r\n") || strings.ContainsAny(mp.Mid, "\n") || strings.ContainsAny(mp.Label, "\r\n") {
			return bad("media %d: bad protocol, mid or label", i+1)
		}
		for _, c := range mp.Codecs {
			if c.PT < 0 || c.PT > 127 || strings.ContainsAny(c.RTPMap, "\n") || strings.ContainsAny(c.Fmtp, "\n") {
				return bad("media %d: bad codec %d", i+1, c.PT)
			}
			for _, fb := range c.RTCPFB {
				if strings.ContainsAny(fb, "\n") {
					return bad("media %d: bad rtcp-fb for %d", i+1, c.PT)
				}
			}
		}
		for _, list := range [...][]string{mp.ExtraAttrs, mp.SecurityAttrs, mp.ICEAttrs} {
			for _, v := range list {
				if strings.ContainsAny(v, "\r\n") {
					return bad("media %d: bad attribute %q", i+1, v)
				}
			}
		}
		m := s.media[i]
		if m.isMessage() {
			continue
		}
		if m.conn.ok && !mp.Addr.IsValid() {
			return bad("media %d: no address for c=", i+1)
		}
		if mp.FullRTCP && mp.RTCPPort != 0 && !mp.Addr.IsValid() {
			return bad("media %d: no address for a=rtcp", i+1)
		}
	}
	return nil
}

// sizeHint estimates the output size, so that Rewrite allocates once.
func (p *Plan) sizeHint(s *Session) int {
	n := len(s.text) + 64 + len(p.LoopProtect)
	for _, v := range p.SessionAttrs {
		n += len(v) + 4
	}
	for i := range p.Media {
		mp := &p.Media[i]
		n += 96 + len(mp.Mid) + len(mp.Label)
		for _, c := range mp.Codecs {
			n += 32 + len(c.RTPMap) + len(c.Fmtp)
			for _, fb := range c.RTCPFB {
				n += 16 + len(fb)
			}
		}
		for _, list := range [...][]string{mp.ExtraAttrs, mp.SecurityAttrs, mp.ICEAttrs} {
			for _, v := range list {
				n += len(v) + 4
			}
		}
	}
	return n
}

// sessionAddr is the address for the session c= line.
func (p *Plan) sessionAddr() netip.Addr {
	if p.SessionAddr.IsValid() || len(p.Media) == 0 {
		return p.SessionAddr
	}
	return p.Media[0].Addr
}

// keepZero reports whether media i keeps a zero c= address.
func (p *Plan) keepZero(s *Session, i int) bool {
	return !p.ReplaceZeroAddress && !p.Media[i].ReplaceZeroAddress && s.media[i].ZeroAddress()
}

// session writes the session section.
func (w *writer) session(s *Session, p *Plan) error {
	// rtpengine decides on the session c= by whether any m= section
	// (rejected ones included) lacks a c= of its own.
	replaceConn := p.ReplaceSessionConnection
	for _, m := range s.media {
		if !m.conn.ok {
			replaceConn = true
		}
	}
	for i := range s.lines[:s.nsess] {
		ln := &s.lines[i]
		switch ln.typ {
		case 'o':
			o := &s.origin
			if p.OriginUsername != "" {
				w.replace(o.user, o.userEnd, p.OriginUsername)
			}
			if p.OriginSessionID != "" {
				w.replace(o.id, o.idEnd, p.OriginSessionID)
			}
			if p.OriginVersion != "" {
				w.replace(o.ver, o.verEnd, p.OriginVersion)
			}
			if p.ReplaceOrigin {
				a := p.OriginAddr
				if !a.IsValid() {
					a = p.sessionAddr()
				}
				if !a.IsValid() {
					return fmt.Errorf("%w: no address for o=", ErrPlan)
				}
				w.copyTo(o.addrType)
				w.addr(a, false)
				w.skipTo(o.addrEnd)
			}
		case 's':
			if p.SessionName != "" {
				w.replace(s.sname, s.snameEnd, p.SessionName)
			}
		case 'c':
			if !replaceConn {
				break
			}
			a := p.sessionAddr()
			if !a.IsValid() {
				return fmt.Errorf("%w: no address for the session c=", ErrPlan)
			}
			// The first media decides whether a zero address is kept.
			zero := !p.ReplaceZeroAddress && s.conn.addr.IsUnspecified()
			if len(s.media) > 0 {
				zero = p.keepZero(s, 0)
			}
			w.copyTo(s.conn.typOff)
			w.addr(a, zero)
			w.skipTo(s.conn.addrEnd)
		case 'a':
			strip := false
			switch k := ln.kind; {
			case k == attrICE, k == attrICEUfrag, k == attrCandidate:
				strip = len(p.Media) == 0 || !p.Media[0].KeepICE
			case k == attrFingerprint, k == attrSetup, k == attrIgnore, k == attrGroupBundle:
				strip = true
			case k.isDirection():
				strip = !p.OriginalSendrecv
			case k == attrExtmap:
				strip = p.StripExtmap
			}
			if strip {
				w.drop(ln)
			}
		}
	}
	w.copyTo(s.lines[s.nsess-1].next)
	if p.LoopProtect != "" {
		w.attr("rtpengine:", p.LoopProtect)
	}
	for _, v := range p.SessionAttrs {
		w.attr(v, "")
	}
	return nil
}

// media writes one media section.
func (w *writer) media(m *Media, p *Plan, mp *MediaPlan) error {
	s := m.s
	end := s.lines[m.last-1].next
	if m.isMessage() {
		// rtpengine leaves MSRP alone; it only makes sure the section has
		// a c= line, a copy of the session's.
		if m.conn.ok {
			return nil
		}
		if !s.conn.ok {
			return fmt.Errorf("%w: media %d: no connection address", ErrIncomplete, m.index)
		}
		at := end // the next m= line, or the end of the last parsed line
		for i := m.first + 1; i < m.last; i++ {
			if c := s.lines[i].typ; c == 'a' || c == 'b' || c == 'k' {
				at = s.lines[i].off
				break
			}
		}
		w.copyTo(at)
		w.out = append(w.out, "c="...)
		w.out = append(w.out, s.conn.raw...)
		w.out = append(w.out, '\n')
		return nil
	}

	proto := mp.Proto
	if proto == "" {
		proto, _ = canonicalProto(m.Proto())
	}
	rtp := false
	if proto != "" {
		_, rtp = canonicalProto(proto)
	} else {
		rtp = m.IsRTP()
	}
	var codecs []PayloadType
	if rtp {
		codecs = mp.Codecs
	}

	// m= line
	if m.port != 0 {
		w.copyTo(m.portOff)
		w.out = strconv.AppendInt(w.out, int64(mp.Port), 10)
		if m.nports > 1 && mp.Port != 0 {
			w.out = append(w.out, '/')
			w.out = strconv.AppendInt(w.out, int64(m.nports), 10)
		}
		w.skipTo(m.portEnd)
	}
	if proto != "" {
		w.replace(m.protoOff, m.protoEnd, proto)
	}
	if rtp {
		w.copyTo(m.fmtOff)
		if !m.fmtSep && len(codecs) > 0 {
			w.out = append(w.out, ' ')
		}
		for i, c := range codecs {
			if i > 0 {
				w.out = append(w.out, ' ')
			}
			w.out = strconv.AppendInt(w.out, int64(c.PT), 10)
		}
		w.skipTo(m.fmtEnd)
	}

	for i := m.first + 1; i < m.last; i++ {
		ln := &s.lines[i]
		switch ln.typ {
		case 'c':
			w.copyTo(m.conn.typOff)
			w.addr(mp.Addr, p.keepZero(s, m.index-1))
			w.skipTo(m.conn.addrEnd)
		case 'a':
			strip := false
			switch k := ln.kind; {
			case k == attrICE, k == attrICEUfrag, k == attrCandidate, k == attrEndOfCandidates:
				strip = !mp.KeepICE
			case k == attrRTCP, k == attrRTCPMux, k == attrIgnore, k == attrMid,
				k == attrCrypto, k == attrFingerprint, k == attrSetup:
				strip = true
			case k.isDirection():
				strip = !p.OriginalSendrecv
			case k == attrRTPMap, k == attrFmtp, k == attrRTCPFB:
				strip = len(codecs) > 0
			case k == attrPtime:
				strip = mp.Ptime > 0
			case k == attrExtmap:
				strip = p.StripExtmap
			}
			if strip {
				w.drop(ln)
			}
		}
	}
	w.copyTo(end)

	// generated tail
	if mp.Mid != "" {
		w.attr("mid:", mp.Mid)
	}
	if mp.Label != "" {
		w.attr("label:", mp.Label)
	}
	if m.port != 0 && mp.Port != 0 {
		for _, c := range codecs {
			if c.RTPMap == "" {
				continue
			}
			w.ptAttr("rtpmap:", c.PT, c.RTPMap)
			if c.Fmtp != "" {
				w.ptAttr("fmtp:", c.PT, c.Fmtp)
			}
			for _, fb := range c.RTCPFB {
				w.ptAttr("rtcp-fb:", c.PT, fb)
			}
		}
		for _, v := range mp.ExtraAttrs {
			w.attr(v, "")
		}
		if !p.OriginalSendrecv && mp.Direction != "" {
			w.attr(string(mp.Direction), "")
		}
		if rtp {
			if mp.RTCPPort != 0 {
				w.out = append(w.out, "a=rtcp:"...)
				w.out = strconv.AppendInt(w.out, int64(mp.RTCPPort), 10)
				if mp.FullRTCP {
					w.out = append(w.out, " IN "...)
					w.addr(mp.Addr, false)
				}
				w.out = append(w.out, "\r\n"...)
			}
			if mp.RTCPMux {
				w.attr("rtcp-mux", "")
			}
		}
		for _, v := range mp.SecurityAttrs {
			w.attr(v, "")
		}
		if rtp && mp.Ptime > 0 {
			w.out = append(w.out, "a=ptime:"...)
			w.out = strconv.AppendInt(w.out, int64(mp.Ptime), 10)
			w.out = append(w.out, "\r\n"...)
		}
		for _, v := range mp.ICEAttrs {
			w.attr(v, "")
		}
	}
	if mp.EndOfCandidates || !mp.KeepICE && m.firstAttr(attrEndOfCandidates) != nil {
		w.attr("end-of-candidates", "")
	}
	return nil
}
