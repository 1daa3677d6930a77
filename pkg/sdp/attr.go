package sdp

// Attributes: what an a= line is recognised as, with the value parsers
// rtpengine's recognition depends on (rtcp, candidate, fingerprint,
// rtpmap).

import "strings"

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
