package ngctl

// rtpp-flags: every option of a request in one string, as current Kamailio
// and OpenSIPS send it ("rtpp-flags", "rtpp_flags" or "rtpp flags"). The
// grammar is rtpengine's (docs/ng_control_protocol.md and its flags
// parser): tokens separated by spaces, each a bare flag or KEY=VALUE,
// where a value may be a bracketed list ("[PCMA PCMU]") or, when its first
// element is KEY=VALUE, a dictionary ("codec=[transcode=[PCMA] strip=[EVS]]"),
// nested as deep as needed. Some bare tokens stand for keys:
//
//   - transport names (RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF,
//     UDP/TLS/RTP/SAVP, UDP/TLS/RTP/SAVPF) and the parts RTP, AVP, SRTP,
//     AVPF and DTLS, combined: transport-protocol;
//   - internal, external, direction=X: the direction list;
//   - transcode-X, codec-transcode-X, codec-strip-X, codec-offer-X,
//     codec-mask-X, codec-set-X, codec-accept-X, codec-except-X (or =X):
//     the codec dictionary;
//   - to-tag=X: the to-tag.
//
// Every other bare token is a flag (the flags list, where the prefixed
// forms such as replace-origin and SDES-no-X are read as from the list);
// every other KEY=VALUE is that key of the dictionary. The keys are merged
// into the request where the rtpp-flags key sits, as rtpengine applies
// them in the order of the dictionary: a later key overrides an earlier
// one, lists (flags, direction, codec's) accumulate.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// maxRTPPFlagsDepth bounds the nesting of brackets.
const maxRTPPFlagsDepth = 8

var errRTPPFlags = errors.New("rtpp-flags")

// isRTPPFlagsKey reports whether key is rtpp-flags in one of its
// spellings.
func isRTPPFlagsKey(key string) bool {
	return key == "rtpp-flags" || key == "rtpp_flags" || key == "rtpp flags"
}

// codecShorthands maps the prefixes of codec tokens to the codec
// dictionary's keys.
var codecShorthands = []struct{ prefix, key string }{
	{"codec-transcode", "transcode"},
	{"transcode", "transcode"},
	{"codec-strip", "strip"},
	{"codec-offer", "offer"},
	{"codec-mask", "mask"},
	{"codec-set", "set"},
	{"codec-accept", "accept"},
	{"codec-except", "except"},
}

// transportBits are the parts of a transport name.
var transportBits = map[string]func(int) int{
	"RTP":  func(t int) int { return (t | 0x100) &^ 0x001 },
	"AVP":  func(t int) int { return (t | 0x100) &^ 0x002 },
	"SRTP": func(t int) int { return t | 0x101 },
	"AVPF": func(t int) int { return t | 0x102 },
	"DTLS": func(t int) int { return t | 0x104 },
}

var transportNames = map[string]int{
	"RTP/AVP": 0x100, "RTP/SAVP": 0x101, "RTP/AVPF": 0x102, "RTP/SAVPF": 0x103,
	"UDP/TLS/RTP/SAVP": 0x104, "UDP/TLS/RTP/SAVPF": 0x106,
}

var transportOf = map[int]string{
	0: "RTP/AVP", 1: "RTP/SAVP", 2: "RTP/AVPF", 3: "RTP/SAVPF", 4: "UDP/TLS/RTP/SAVP", 6: "UDP/TLS/RTP/SAVPF",
}

// rtppFlags is what an rtpp-flags string stands for.
type rtppFlags struct {
	keys      []bencode.Pair // KEY=VALUE in order (later wins)
	flags     []string
	direction []string
	codec     []bencode.Pair // codec dictionary: key → list
	transport int
}

// parseRTPPFlags reads an rtpp-flags string.
func parseRTPPFlags(s string) (*rtppFlags, error) {
	out := &rtppFlags{}
	p := &rtppScanner{s: s}
	for {
		tok, val, hasVal, err := p.next()
		if err != nil {
			return nil, err
		}
		if tok == "" && !hasVal {
			break
		}
		if err := out.add(tok, val, hasVal); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (f *rtppFlags) add(key string, val bencode.Value, hasVal bool) error {
	for _, c := range codecShorthands {
		if key == c.prefix && hasVal {
			f.addCodec(c.key, val)
			return nil
		}
		if rest, ok := strings.CutPrefix(key, c.prefix+"-"); ok && rest != "" && !hasVal {
			f.addCodec(c.key, bencode.Str(rest))
			return nil
		}
	}
	if !hasVal {
		if set, ok := transportBits[key]; ok {
			f.transport = set(f.transport)
			return nil
		}
		if t, ok := transportNames[key]; ok {
			f.transport = t
			return nil
		}
		if key == "internal" || key == "external" {
			f.direction = append(f.direction, key)
			return nil
		}
		f.flags = append(f.flags, key)
		return nil
	}
	switch {
	case key == "direction" && val.Kind == bencode.KindString:
		f.direction = append(f.direction, val.Str)
		return nil
	case key == "codec" && val.Kind == bencode.KindDict:
		for _, p := range val.Dict {
			f.addCodec(p.Key, p.Value)
		}
		return nil
	case key == "flags" && val.Kind == bencode.KindList:
		for _, x := range val.List {
			if x.Kind == bencode.KindString {
				f.flags = append(f.flags, x.Str)
			}
		}
		return nil
	}
	f.keys = append(f.keys, bencode.Pair{Key: key, Value: val})
	return nil
}

// addCodec appends v (a string or a list of them) to the codec list key.
func (f *rtppFlags) addCodec(key string, v bencode.Value) {
	var items []bencode.Value
	switch v.Kind {
	case bencode.KindString:
		items = []bencode.Value{v}
	case bencode.KindList:
		items = v.List
	default:
		return
	}
	for i := range f.codec {
		if f.codec[i].Key == key {
			f.codec[i].Value.List = append(f.codec[i].Value.List, items...)
			return
		}
	}
	f.codec = append(f.codec, bencode.Pair{Key: key, Value: bencode.List(append([]bencode.Value(nil), items...)...)})
}

// mergeRTPPFlags returns the request with its rtpp-flags key replaced by
// the keys it stands for (v itself if it has none). A malformed string is
// an error for the reply.
func mergeRTPPFlags(v bencode.Value) (bencode.Value, error) {
	at := -1
	for i, p := range v.Dict {
		if isRTPPFlagsKey(p.Key) {
			at = i
			break
		}
	}
	if at < 0 {
		return v, nil
	}
	s, ok := v.Dict[at].Value.String()
	if !ok {
		return v, fmt.Errorf("%w: not a string", errRTPPFlags)
	}
	f, err := parseRTPPFlags(s)
	if err != nil {
		return v, err
	}
	out := bencode.DictCap(len(v.Dict) + len(f.keys) + 4)
	for i, p := range v.Dict {
		if i != at {
			if !isRTPPFlagsKey(p.Key) {
				out.Dict = append(out.Dict, p)
			}
			continue
		}
		for _, k := range f.keys {
			out.Set(k.Key, k.Value)
		}
		appendList(&out, "flags", f.flags)
		appendList(&out, "direction", f.direction)
		if f.transport != 0 {
			if t, ok := transportOf[f.transport&0x007]; ok {
				out.Set("transport-protocol", bencode.Str(t))
			}
		}
		if len(f.codec) > 0 {
			codec, _ := out.Get("codec")
			if codec.Kind != bencode.KindDict {
				codec = bencode.DictCap(len(f.codec))
			} else {
				codec = bencode.Value{Kind: bencode.KindDict, Dict: append([]bencode.Pair(nil), codec.Dict...)}
			}
			for _, c := range f.codec {
				cur, _ := codec.Get(c.Key)
				l := bencode.List(append(append([]bencode.Value(nil), listOf(cur)...), c.Value.List...)...)
				codec.Set(c.Key, l)
			}
			out.Set("codec", codec)
		}
	}
	return out, nil
}

// appendList appends items to the list key of d (making it if absent).
func appendList(d *bencode.Value, key string, items []string) {
	if len(items) == 0 {
		return
	}
	cur, _ := d.Get(key)
	l := append([]bencode.Value(nil), listOf(cur)...)
	for _, s := range items {
		l = append(l, bencode.Str(s))
	}
	d.Set(key, bencode.List(l...))
}

func listOf(v bencode.Value) []bencode.Value {
	if v.Kind == bencode.KindList {
		return v.List
	}
	return nil
}

// rtppScanner reads the tokens of an rtpp-flags string.
type rtppScanner struct {
	s string
	i int
}

// next returns the next token: a bare key, or a key and its value. An
// empty key without a value is the end.
func (p *rtppScanner) next() (key string, val bencode.Value, hasVal bool, err error) {
	p.skipSpaces()
	if p.i >= len(p.s) {
		return "", bencode.Value{}, false, nil
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != '=' && p.s[p.i] != '[' && p.s[p.i] != ']' {
		p.i++
	}
	key = p.s[start:p.i]
	if p.i < len(p.s) && (p.s[p.i] == '[' || p.s[p.i] == ']') {
		return "", bencode.Value{}, false, fmt.Errorf("%w: unexpected %q at offset %d", errRTPPFlags, p.s[p.i], p.i)
	}
	if key == "" {
		return "", bencode.Value{}, false, fmt.Errorf("%w: empty key at offset %d", errRTPPFlags, p.i)
	}
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return key, bencode.Value{}, false, nil
	}
	p.i++ // '='
	val, err = p.value(0)
	if err != nil {
		return "", bencode.Value{}, false, err
	}
	return key, val, true, nil
}

// value reads a string (up to a space or a closing bracket) or a
// bracketed list or dictionary.
func (p *rtppScanner) value(depth int) (bencode.Value, error) {
	if p.i < len(p.s) && p.s[p.i] == '[' {
		if depth >= maxRTPPFlagsDepth {
			return bencode.Value{}, fmt.Errorf("%w: brackets nested deeper than %d", errRTPPFlags, maxRTPPFlagsDepth)
		}
		return p.group(depth + 1)
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ']' && p.s[p.i] != '[' {
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '[' {
		return bencode.Value{}, fmt.Errorf("%w: unexpected '[' at offset %d", errRTPPFlags, p.i)
	}
	return bencode.Str(p.s[start:p.i]), nil
}

// group reads "[...]" at p.i: a dictionary if its first element is
// KEY=VALUE, a list otherwise.
func (p *rtppScanner) group(depth int) (bencode.Value, error) {
	open := p.i
	p.i++ // '['
	var list []bencode.Value
	var dict []bencode.Pair
	isDict := false
	for n := 0; ; n++ {
		p.skipSpaces()
		if p.i >= len(p.s) {
			return bencode.Value{}, fmt.Errorf("%w: '[' at offset %d is not closed", errRTPPFlags, open)
		}
		if p.s[p.i] == ']' {
			p.i++
			break
		}
		if p.s[p.i] == '[' {
			if isDict {
				return bencode.Value{}, fmt.Errorf("%w: a list inside a dictionary needs a key, at offset %d", errRTPPFlags, p.i)
			}
			v, err := p.value(depth)
			if err != nil {
				return bencode.Value{}, err
			}
			list = append(list, v)
			continue
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ']' && p.s[p.i] != '=' && p.s[p.i] != '[' {
			p.i++
		}
		word := p.s[start:p.i]
		if p.i < len(p.s) && p.s[p.i] == '=' {
			if n == 0 {
				isDict = true
			}
			if !isDict {
				return bencode.Value{}, fmt.Errorf("%w: KEY=VALUE inside a list at offset %d", errRTPPFlags, start)
			}
			p.i++
			v, err := p.value(depth)
			if err != nil {
				return bencode.Value{}, err
			}
			dict = append(dict, bencode.Pair{Key: word, Value: v})
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '[' {
			return bencode.Value{}, fmt.Errorf("%w: unexpected '[' at offset %d", errRTPPFlags, p.i)
		}
		if isDict {
			return bencode.Value{}, fmt.Errorf("%w: entry %q of a dictionary without '=' at offset %d", errRTPPFlags, word, start)
		}
		list = append(list, bencode.Str(word))
	}
	if isDict {
		return bencode.Value{Kind: bencode.KindDict, Dict: dict}, nil
	}
	return bencode.List(list...), nil
}

func (p *rtppScanner) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}
