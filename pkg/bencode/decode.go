package bencode

import (
	"errors"
	"hash/maphash"
	"sync"
)

// Default limits, used for every [Limits] field left at zero.
const (
	DefaultMaxDepth     = 32
	DefaultMaxSize      = 1 << 20 // 1 MiB
	DefaultMaxStringLen = 1 << 18 // 256 KiB
	DefaultMaxElements  = 1 << 14

	// hardMaxDepth caps Limits.MaxDepth: decoding recurses once per level.
	hardMaxDepth = 1024
)

// Limits bounds the work and memory spent on one untrusted document. A zero
// (or negative) field means the default; the zero Limits is the defaults.
type Limits struct {
	// MaxDepth is the deepest nesting of lists and dictionaries; a
	// top-level dictionary is depth 1. Default 32; values above 1024 are
	// treated as 1024.
	MaxDepth int
	// MaxSize is the largest document in bytes. Default 1 MiB.
	MaxSize int
	// MaxStringLen is the longest single string in bytes. Default 256 KiB.
	MaxStringLen int
	// MaxElements is the most values (strings, integers, lists and
	// dictionaries, dictionary keys not counted) in one document. Default
	// 16384; an ng offer has well under 100. Every decoded value costs
	// about 100 bytes of memory.
	MaxElements int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, hardMaxDepth)
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxSize
	}
	if l.MaxStringLen <= 0 {
		l.MaxStringLen = DefaultMaxStringLen
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	return l
}

// Decode decodes b, which must hold exactly one bencode value; bytes after it
// are an error (ErrTrailing). Parsing is strict: integers must be canonical
// (no "i-0e", "i03e", "ie", "i+1e") and fit in int64, string lengths have no
// leading zeros ("0:" is fine), dictionary keys must be strings. Dictionary
// keys need not be sorted and their order is kept.
//
// Duplicate dictionary keys are accepted and the first occurrence wins: later
// pairs with the same key are dropped. This matches rtpengine, whose lookup
// finds the first one.
//
// Decode copies b once; the result does not alias b.
func Decode(b []byte, lim Limits) (Value, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxSize {
		return Value{}, errAt(lim.MaxSize, ErrTooLarge, "document exceeds MaxSize")
	}
	v, n, err := decodeString(string(b), lim, false)
	if err != nil {
		return Value{}, err
	}
	if n != len(b) {
		return Value{}, errAt(n, ErrTrailing, "")
	}
	return v, nil
}

// DecodePrefix decodes the one bencode value at the start of b and returns it
// with the number of bytes it took; what follows is not examined. It returns
// ErrIncomplete when b is a proper prefix of a value, unless b is already
// MaxSize bytes or more, which gives ErrTooLarge. See [Decode] for the rules.
func DecodePrefix(b []byte, lim Limits) (Value, int, error) {
	lim = lim.withDefaults()
	n, err := Split(b)
	if err != nil {
		if errors.Is(err, ErrIncomplete) && len(b) >= lim.MaxSize {
			return Value{}, 0, errAt(lim.MaxSize, ErrTooLarge, "incomplete value exceeds MaxSize")
		}
		return Value{}, 0, err
	}
	if n > lim.MaxSize {
		return Value{}, 0, errAt(lim.MaxSize, ErrTooLarge, "document exceeds MaxSize")
	}
	v, _, err := decodeString(string(b[:n]), lim, false)
	if err != nil {
		return Value{}, 0, err
	}
	return v, n, nil
}

// decoder holds the state of one decode. The scratch stacks collect the
// children of the containers being parsed; when a container ends, its
// children are copied into an exactly sized slice cut from vchunk or
// pchunk. The chunks are sized by a counting pre-pass, so a document costs
// three allocations (the string copy and the two chunks) whatever its
// shape; allocValues and allocPairs grow them if needed (after a failed
// pre-pass).
type decoder struct {
	s        string
	lim      Limits
	elems    int
	keepDups bool // tests only: keep duplicate keys to compare with the input

	vals   []Value // scratch: items of open lists
	pairs  []Pair  // scratch: pairs of open dictionaries
	vchunk []Value // bump-allocated list storage
	pchunk []Pair  // bump-allocated dictionary storage
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

// maxPooledScratch keeps one huge document from pinning its scratch stacks.
const maxPooledScratch = 1024

func decodeString(s string, lim Limits, keepDups bool) (Value, int, error) {
	// A first pass checks the syntax without limits and counts the
	// containers' children, so that their storage is allocated once and
	// exactly. On error the decoder runs anyway: it stops at the same
	// error, or earlier at a limit.
	var cnt counts
	n, scanErr := scan(s, &cnt)
	d := decoderPool.Get().(*decoder)
	d.s, d.lim, d.elems, d.keepDups = s, lim, 0, keepDups
	if scanErr == nil && cnt.items+cnt.pairs < lim.MaxElements {
		d.s = s[:n]
		d.vchunk = make([]Value, 0, cnt.items)
		d.pchunk = make([]Pair, 0, cnt.pairs)
		// The scratch stacks never hold more than that either; sizing
		// them now spares a huge document a long series of copies.
		if cap(d.vals) < cnt.items {
			d.vals = make([]Value, 0, cnt.items)
		}
		if cap(d.pairs) < cnt.pairs {
			d.pairs = make([]Pair, 0, cnt.pairs)
		}
	}
	v, n, err := d.value(0, 0)
	if err == nil && scanErr != nil {
		err = scanErr // unreachable while both passes apply the same rules
	}
	d.s, d.vchunk, d.pchunk = "", nil, nil
	if cap(d.vals) <= maxPooledScratch && cap(d.pairs) <= maxPooledScratch {
		// Containers clear the scratch they used when they end; after
		// an error some may be left.
		clear(d.vals)
		clear(d.pairs)
		d.vals, d.pairs = d.vals[:0], d.pairs[:0]
		decoderPool.Put(d)
	}
	return v, n, err
}

func isDigit(c byte) bool { return c-'0' <= 9 }

// value decodes the value starting at p, at nesting depth depth (the number
// of enclosing containers), and returns it with the offset just past it.
func (d *decoder) value(p, depth int) (Value, int, error) {
	s := d.s
	if p >= len(s) {
		return Value{}, p, errAt(p, ErrIncomplete, "")
	}
	d.elems++
	if d.elems > d.lim.MaxElements {
		return Value{}, p, errAt(p, ErrTooLarge, "too many elements")
	}
	switch c := s[p]; {
	case isDigit(c):
		str, q, err := d.str(p)
		return Value{Kind: KindString, Str: str}, q, err
	case c == 'i':
		n, q, err := scanInt(s, p)
		return Value{Kind: KindInt, Num: n}, q, err
	case c == 'l':
		if depth >= d.lim.MaxDepth {
			return Value{}, p, errAt(p, ErrDepth, "")
		}
		return d.list(p+1, depth+1)
	case c == 'd':
		if depth >= d.lim.MaxDepth {
			return Value{}, p, errAt(p, ErrDepth, "")
		}
		return d.dict(p+1, depth+1)
	default:
		return Value{}, p, unexpected(s[p], p)
	}
}

// unexpected builds the error for a byte that cannot start a value.
func unexpected(c byte, p int) error {
	if c == '+' || c == '-' {
		// Only a string length could be meant here.
		return errAt(p, ErrInvalidLength, "sign in string length")
	}
	return errAt(p, ErrSyntax, "unexpected byte "+quoteByte(c))
}

func quoteByte(c byte) string {
	const hex = "0123456789abcdef"
	if c >= 0x20 && c < 0x7f && c != '\'' && c != '\\' {
		return "'" + string(rune(c)) + "'"
	}
	return "0x" + string([]byte{hex[c>>4], hex[c&15]})
}

// str decodes the string whose length prefix starts at p.
func (d *decoder) str(p int) (string, int, error) {
	n, q, err := scanLen(d.s, p, d.lim.MaxStringLen)
	if err != nil {
		return "", q, err
	}
	if n > len(d.s)-q {
		return "", len(d.s), errAt(len(d.s), ErrIncomplete, "")
	}
	return d.s[q : q+n], q + n, nil
}

func (d *decoder) list(p, depth int) (Value, int, error) {
	start := len(d.vals)
	for {
		if p >= len(d.s) {
			return Value{}, p, errAt(p, ErrIncomplete, "")
		}
		if d.s[p] == 'e' {
			p++
			break
		}
		v, q, err := d.value(p, depth)
		if err != nil {
			return Value{}, q, err
		}
		d.vals = append(d.vals, v)
		p = q
	}
	items := d.allocValues(len(d.vals) - start)
	copy(items, d.vals[start:])
	clear(d.vals[start:]) // the pooled scratch must not pin the document
	d.vals = d.vals[:start]
	return Value{Kind: KindList, List: items}, p, nil
}

func (d *decoder) dict(p, depth int) (Value, int, error) {
	start := len(d.pairs)
	var keys keySet
	for {
		if p >= len(d.s) {
			return Value{}, p, errAt(p, ErrIncomplete, "")
		}
		c := d.s[p]
		if c == 'e' {
			p++
			break
		}
		if !isDigit(c) {
			if c == '+' || c == '-' {
				return Value{}, p, errAt(p, ErrInvalidLength, "sign in string length")
			}
			return Value{}, p, errAt(p, ErrSyntax, "dictionary key is not a string")
		}
		key, q, err := d.str(p)
		if err != nil {
			return Value{}, q, err
		}
		if q < len(d.s) && d.s[q] == 'e' {
			return Value{}, q, errAt(q, ErrSyntax, "dictionary key without value")
		}
		v, q, err := d.value(q, depth)
		if err != nil {
			return Value{}, q, err
		}
		p = q
		if d.keepDups || keys.add(d.pairs[start:], key) {
			d.pairs = append(d.pairs, Pair{Key: key, Value: v})
		}
	}
	pairs := d.allocPairs(len(d.pairs) - start)
	copy(pairs, d.pairs[start:])
	clear(d.pairs[start:])
	d.pairs = d.pairs[:start]
	return Value{Kind: KindDict, Dict: pairs}, p, nil
}

// chunkMin is the smallest bump-allocation chunk, in elements.
const chunkMin = 8

func (d *decoder) allocValues(n int) []Value {
	if n == 0 {
		return nil
	}
	if cap(d.vchunk)-len(d.vchunk) < n {
		d.vchunk = make([]Value, 0, max(n, 2*cap(d.vchunk), chunkMin))
	}
	l := len(d.vchunk)
	d.vchunk = d.vchunk[:l+n]
	return d.vchunk[l : l+n : l+n]
}

func (d *decoder) allocPairs(n int) []Pair {
	if n == 0 {
		return nil
	}
	if cap(d.pchunk)-len(d.pchunk) < n {
		d.pchunk = make([]Pair, 0, max(n, 2*cap(d.pchunk), chunkMin))
	}
	l := len(d.pchunk)
	d.pchunk = d.pchunk[:l+n]
	return d.pchunk[l : l+n : l+n]
}

// text is what the scanners read: the decoder's string or Split's bytes.
type text interface{ ~string | ~[]byte }

// scanInt parses the integer whose 'i' is at b[p] and returns it with the
// offset just past its 'e'. It reports ErrIncomplete only when some
// continuation of b could still be a valid integer.
func scanInt[T text](b T, p int) (int64, int, error) {
	start := p
	p++ // 'i'
	neg := false
	if p < len(b) && b[p] == '-' {
		neg = true
		p++
	}
	if p >= len(b) {
		return 0, p, errAt(p, ErrIncomplete, "")
	}
	switch c := b[p]; {
	case c == '0':
		if neg {
			return 0, p, errAt(start, ErrInvalidInt, "negative zero")
		}
		p++
		if p >= len(b) {
			return 0, p, errAt(p, ErrIncomplete, "")
		}
		if b[p] != 'e' {
			if isDigit(b[p]) {
				return 0, p, errAt(start, ErrInvalidInt, "leading zero")
			}
			return 0, p, errAt(p, ErrInvalidInt, "unexpected byte "+quoteByte(b[p]))
		}
		return 0, p + 1, nil
	case c == 'e':
		return 0, p, errAt(start, ErrInvalidInt, "no digits")
	case !isDigit(c):
		return 0, p, errAt(p, ErrInvalidInt, "unexpected byte "+quoteByte(c))
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var u uint64
	for ; p < len(b); p++ {
		c := b[p]
		if c == 'e' {
			if neg {
				return int64(-u), p + 1, nil
			}
			return int64(u), p + 1, nil
		}
		if !isDigit(c) {
			return 0, p, errAt(p, ErrInvalidInt, "unexpected byte "+quoteByte(c))
		}
		dg := uint64(c - '0')
		if u > (limit-dg)/10 {
			return 0, p, errAt(start, ErrInvalidInt, "out of int64 range")
		}
		u = u*10 + dg
	}
	return 0, p, errAt(p, ErrIncomplete, "")
}

// scanLen parses the string length prefix starting at b[p], which must be a
// digit, and returns the length with the offset just past the ':'. Lengths
// over maxLen are ErrTooLarge.
func scanLen[T text](b T, p, maxLen int) (int, int, error) {
	start := p
	if b[p] == '0' {
		p++
		if p >= len(b) {
			return 0, p, errAt(p, ErrIncomplete, "")
		}
		if b[p] != ':' {
			if isDigit(b[p]) {
				return 0, p, errAt(start, ErrInvalidLength, "leading zero")
			}
			return 0, p, errAt(p, ErrSyntax, "expected ':' after string length")
		}
		return 0, p + 1, nil
	}
	n := 0
	for ; p < len(b); p++ {
		c := b[p]
		if c == ':' {
			return n, p + 1, nil
		}
		if !isDigit(c) {
			return 0, p, errAt(p, ErrSyntax, "expected ':' after string length")
		}
		dg := int(c - '0')
		if n > maxLen/10 || n*10 > maxLen-dg {
			return 0, p, errAt(start, ErrTooLarge, "string length exceeds limit")
		}
		n = n*10 + dg
	}
	return 0, p, errAt(p, ErrIncomplete, "")
}

// keySet finds duplicate keys in one dictionary being decoded without
// allocating for dictionaries of ordinary size: a 256-bit Bloom filter of
// key hashes says "new" for most keys, and only a hit costs a linear scan.
// Past dupMapMin pairs it switches to a map, keeping large dictionaries
// linear.
type keySet struct {
	bloom [4]uint64
	m     map[string]struct{}
}

// dupMapMin is the dictionary size at which keySet switches to a map.
const dupMapMin = 128

var keySeed = maphash.MakeSeed()

// add reports whether key is absent from pairs, the dictionary so far, and
// remembers it; the caller appends the pair when add returns true.
func (ks *keySet) add(pairs []Pair, key string) bool {
	if ks.m == nil && len(pairs) >= dupMapMin {
		ks.m = make(map[string]struct{}, 2*len(pairs))
		for i := range pairs {
			ks.m[pairs[i].Key] = struct{}{}
		}
	}
	if ks.m != nil {
		if _, dup := ks.m[key]; dup {
			return false
		}
		ks.m[key] = struct{}{}
		return true
	}
	h := uint8(maphash.String(keySeed, key))
	word, bit := &ks.bloom[h>>6], uint64(1)<<(h&63)
	if *word&bit == 0 {
		*word |= bit
		return true
	}
	for i := range pairs {
		if pairs[i].Key == key {
			return false
		}
	}
	return true
}
