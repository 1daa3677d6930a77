package sdp

import (
	"bytes"
	"strings"
)

// AttrEdit is what the ng key sdp-attr asks of the attribute lines of one
// kind of section: lines added, removed and substituted. Values are
// attribute lines without their "a=" ("ptime:20", "sendrecv").
type AttrEdit struct {
	// Add are appended at the end of every section of the kind, each
	// unless the section already has that very line.
	Add []string
	// Remove are patterns: an attribute matches by its whole value, by its
	// name, or by its name and first token ("foo:bar baz" matches
	// "foo:bar baz", "foo" and "foo:bar"); case is ignored.
	Remove []string
	// Substitute pairs a pattern (matched as in Remove) with the value
	// that replaces a matching line; the first pair that matches wins.
	Substitute [][2]string
}

// AttrEdits are sdp-attr edits by section: SessionSection for the session
// level, a media type ("audio", "video", ..., lower case) for every media
// section of that type.
type AttrEdits map[string]*AttrEdit

// SessionSection names the session level in AttrEdits (sdp-attr's "none"
// or "global").
const SessionSection = ""

// Empty reports whether the edits change nothing.
func (e AttrEdits) Empty() bool {
	for _, ed := range e {
		if ed != nil && (len(ed.Add) > 0 || len(ed.Remove) > 0 || len(ed.Substitute) > 0) {
			return false
		}
	}
	return true
}

// EditAttributes applies edits to the attribute lines of an SDP body as
// written (rtpengine's sdp-attr: a textual edit of the outgoing SDP, after
// every rule of its own has run; what it adds, removes or substitutes is
// not read back into the call). The body's line endings are kept; added
// lines take the ending of the section's last line.
func EditAttributes(body []byte, edits AttrEdits) []byte {
	if edits.Empty() {
		return body
	}
	out := make([]byte, 0, len(body)+64)
	var ed *AttrEdit
	var section [][]byte // the lines of the current section, as written
	eol := []byte("\r\n")
	flush := func() {
		if ed != nil {
		adding:
			for _, a := range ed.Add {
				a = strings.TrimPrefix(a, "a=")
				if !OneLine(a) {
					continue
				}
				for _, ln := range section {
					if v, ok := attrValue(ln); ok && v == a {
						continue adding
					}
				}
				if len(out) > 0 && out[len(out)-1] != '\n' {
					out = append(out, eol...) // a body without a final line ending
				}
				out = append(out, "a="...)
				out = append(out, a...)
				out = append(out, eol...)
			}
		}
		section = section[:0]
	}
	sectionEdit := func(kind string) *AttrEdit { return edits[strings.ToLower(kind)] }
	ed = sectionEdit(SessionSection)
	for rest := body; len(rest) > 0; {
		var ln []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			ln, rest = rest[:i+1], rest[i+1:]
		} else {
			ln, rest = rest, nil
		}
		if bytes.HasPrefix(ln, []byte("m=")) {
			flush()
			typ, _, _ := strings.Cut(string(trimEOL(ln[2:])), " ")
			ed = sectionEdit(typ)
		}
		if e := lineEnding(ln); e != nil {
			eol = e
		}
		if v, ok := attrValue(ln); ok && ed != nil {
			if matchAny(v, ed.Remove) {
				continue
			}
			if to, ok := substitute(v, ed.Substitute); ok && OneLine(to) {
				ln = append(append([]byte("a="), strings.TrimPrefix(to, "a=")...), lineEnding(ln)...)
			}
		}
		out = append(out, ln...)
		section = append(section, ln)
	}
	flush()
	return out
}

// attrValue returns the value of an a= line without "a=" and its ending.
func attrValue(ln []byte) (string, bool) {
	if !bytes.HasPrefix(ln, []byte("a=")) {
		return "", false
	}
	return string(trimEOL(ln[2:])), true
}

func trimEOL(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n")
}

// lineEnding is the "\r\n" or "\n" that ends ln, nil if none.
func lineEnding(ln []byte) []byte {
	switch {
	case bytes.HasSuffix(ln, []byte("\r\n")):
		return ln[len(ln)-2:]
	case bytes.HasSuffix(ln, []byte("\n")):
		return ln[len(ln)-1:]
	}
	return nil
}

// attrMatches reports whether attribute value v matches pattern p: the
// whole value, its name, or its name and first token, case ignored.
func attrMatches(v, p string) bool {
	p = strings.TrimPrefix(p, "a=")
	if p == "" {
		return false
	}
	if strings.EqualFold(v, p) {
		return true
	}
	name, _, _ := strings.Cut(v, ":")
	if strings.EqualFold(name, p) {
		return true
	}
	tagged, _, _ := strings.Cut(v, " ")
	return tagged != v && strings.EqualFold(tagged, p)
}

func matchAny(v string, patterns []string) bool {
	for _, p := range patterns {
		if attrMatches(v, p) {
			return true
		}
	}
	return false
}

func substitute(v string, pairs [][2]string) (string, bool) {
	for _, pr := range pairs {
		if attrMatches(v, pr[0]) {
			return pr[1], true
		}
	}
	return "", false
}

// OneLine reports whether an attribute value given for sdp-attr can be
// written as one line: not empty, no CR or LF (which would add lines of
// the caller's choosing to the SDP).
func OneLine(v string) bool {
	return v != "" && !strings.ContainsAny(v, "\r\n")
}
