package bencode

import (
	"fmt"
	"strconv"
)

// Kind is the type of a [Value].
type Kind uint8

// The four bencode kinds. The zero Kind is KindString, so the zero Value is
// the empty string.
const (
	KindString Kind = iota // byte string ([Value.Str])
	KindInt                // 64-bit signed integer ([Value.Num])
	KindList               // ordered list ([Value.List])
	KindDict               // dictionary in insertion order ([Value.Dict])
)

// String returns "string", "int", "list" or "dict".
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindList:
		return "list"
	case KindDict:
		return "dict"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one bencode value. Only the field selected by Kind is meaningful;
// the zero Value is the empty string.
//
// Dictionaries are ordered slices of pairs, kept in insertion (or input)
// order and encoded in that order, never sorted. Values produced by the
// decoders never hold two pairs with the same key (see [Decode]); [Value.Set]
// keeps it that way. Code that fills Dict directly owns that invariant.
//
// Decoded values share memory: strings are substrings of one copy of the
// input (so any retained string keeps the whole message alive), and the
// List/Dict slices of one document are cut from shared arrays with their
// capacity clipped, so appending to one of them copies it first. A Value is
// safe for concurrent reads; mutate it from one goroutine only.
type Value struct {
	Kind Kind
	Str  string  // KindString
	Num  int64   // KindInt
	List []Value // KindList
	Dict []Pair  // KindDict
}

// Pair is one dictionary entry.
type Pair struct {
	Key   string
	Value Value
}

// Str returns a string Value.
func Str(s string) Value { return Value{Kind: KindString, Str: s} }

// Bytes returns a string Value holding a copy of b.
func Bytes(b []byte) Value { return Value{Kind: KindString, Str: string(b)} }

// Int returns an integer Value.
func Int(n int64) Value { return Value{Kind: KindInt, Num: n} }

// List returns a list Value holding items (not copied).
func List(items ...Value) Value { return Value{Kind: KindList, List: items} }

// Strs returns a list Value of the given strings.
func Strs(ss ...string) Value {
	items := make([]Value, len(ss))
	for i, s := range ss {
		items[i] = Str(s)
	}
	return List(items...)
}

// NewDict returns a dictionary Value with the given pairs, in that order.
// Later pairs with a key already present replace the earlier value in place,
// as [Value.Set] does.
func NewDict(pairs ...Pair) Value {
	d := Value{Kind: KindDict, Dict: make([]Pair, 0, len(pairs))}
	for _, p := range pairs {
		d.Set(p.Key, p.Value)
	}
	return d
}

// DictCap returns an empty dictionary Value with room for n pairs, so that
// filling it with [Value.Set] does not reallocate.
func DictCap(n int) Value { return Value{Kind: KindDict, Dict: make([]Pair, 0, n)} }

// String returns the string of a KindString value. Integers are not
// converted (rtpengine does not either).
func (v Value) String() (string, bool) {
	if v.Kind != KindString {
		return "", false
	}
	return v.Str, true
}

// Int returns the integer of a KindInt value, or of a KindString value that
// is a decimal number: an optional '+' or '-' followed by one or more ASCII
// digits (leading zeros allowed), in the int64 range. rtpengine accepts both
// forms for most numeric keys (limit, delete-delay, TOS, ptime...).
//
// Unlike rtpengine's strtoll, leading white space and trailing garbage
// ("10abc") are rejected rather than ignored.
func (v Value) Int() (int64, bool) {
	switch v.Kind {
	case KindInt:
		return v.Num, true
	case KindString:
		return parseDecimal(v.Str)
	}
	return 0, false
}

// parseDecimal parses [+-]digits into an int64 without allocating.
func parseDecimal(s string) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var u uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if d > 9 || u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		return int64(-u), true
	}
	return int64(u), true
}

// StringList returns the string elements of a list, in order. It is strict
// about the container: ok is false unless v is a list. Non-string elements
// are skipped, as rtpengine's list iteration skips them.
func (v Value) StringList() (list []string, ok bool) {
	if v.Kind != KindList {
		return nil, false
	}
	list = make([]string, 0, len(v.List))
	for i := range v.List {
		if v.List[i].Kind == KindString {
			list = append(list, v.List[i].Str)
		}
	}
	return list, true
}

// StringListLenient is [Value.StringList] that also accepts a single string
// as a one-element list. This is NOT what rtpengine 10.5 does for most keys
// (flags, replace, rtcp-mux, endpoint-learning... silently ignore a plain
// string), so use it only where that leniency is wanted on purpose.
func (v Value) StringListLenient() ([]string, bool) {
	if v.Kind == KindString {
		return []string{v.Str}, true
	}
	return v.StringList()
}

// Len returns the number of list items, dictionary pairs or string bytes; 0
// for integers.
func (v Value) Len() int {
	switch v.Kind {
	case KindString:
		return len(v.Str)
	case KindList:
		return len(v.List)
	case KindDict:
		return len(v.Dict)
	}
	return 0
}

// index returns the position of key in a dictionary, or -1.
func (v *Value) index(key string) int {
	if v.Kind != KindDict {
		return -1
	}
	for i := range v.Dict {
		if v.Dict[i].Key == key {
			return i
		}
	}
	return -1
}

// Get returns the value stored under key in a dictionary. ok is false if v
// is not a dictionary or has no such key. Keys are case-sensitive.
func (v Value) Get(key string) (Value, bool) {
	if i := v.index(key); i >= 0 {
		return v.Dict[i].Value, true
	}
	return Value{}, false
}

// GetAny returns the value of the first of keys present in the dictionary,
// e.g. v.GetAny("call-id", "call id", "call-ID") for a key with spelling
// aliases.
func (v Value) GetAny(keys ...string) (Value, bool) {
	for _, k := range keys {
		if i := v.index(k); i >= 0 {
			return v.Dict[i].Value, true
		}
	}
	return Value{}, false
}

// GetLoose returns the value under key, or if there is none, under the first
// key that equals key when '-' and ' ' are taken as the same byte ("received
// from" for "received-from"). Case still matters. rtpengine accepts such
// aliases only for some keys of some commands, so callers pick where to use
// it; [Value.GetAny] covers the aliases that differ otherwise ("call-ID").
func (v Value) GetLoose(key string) (Value, bool) {
	if i := v.index(key); i >= 0 {
		return v.Dict[i].Value, true
	}
	if v.Kind != KindDict {
		return Value{}, false
	}
	for i := range v.Dict {
		if equalDashSpace(v.Dict[i].Key, key) {
			return v.Dict[i].Value, true
		}
	}
	return Value{}, false
}

func equalDashSpace(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == ' ' {
			x = '-'
		}
		if y == ' ' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

// GetString returns the string stored under key (see [Value.String]).
func (v Value) GetString(key string) (string, bool) {
	x, ok := v.Get(key)
	if !ok {
		return "", false
	}
	return x.String()
}

// GetInt returns the integer stored under key, as an int or a digit string
// (see [Value.Int]).
func (v Value) GetInt(key string) (int64, bool) {
	x, ok := v.Get(key)
	if !ok {
		return 0, false
	}
	return x.Int()
}

// Set stores val under key in a dictionary: it replaces the value in place
// if key is present, otherwise it appends the pair, so insertion order is
// kept. It returns v for chaining. Set panics if v is not a dictionary.
func (v *Value) Set(key string, val Value) *Value {
	if v.Kind != KindDict {
		panic("bencode: Set on a " + v.Kind.String() + " value")
	}
	if i := v.index(key); i >= 0 {
		v.Dict[i].Value = val
		return v
	}
	v.Dict = append(v.Dict, Pair{Key: key, Value: val})
	return v
}

// Delete removes key from a dictionary, keeping the order of the other
// pairs, and reports whether it was present.
func (v *Value) Delete(key string) bool {
	i := v.index(key)
	if i < 0 {
		return false
	}
	v.Dict = append(v.Dict[:i:i], v.Dict[i+1:]...)
	return true
}

// Append adds items to the end of a list and returns v for chaining. It
// panics if v is not a list.
func (v *Value) Append(items ...Value) *Value {
	if v.Kind != KindList {
		panic("bencode: Append on a " + v.Kind.String() + " value")
	}
	v.List = append(v.List, items...)
	return v
}

// Equal reports whether v and w are the same value. Dictionary order
// matters; nil and empty lists or dictionaries are equal.
func (v Value) Equal(w Value) bool { return equal(&v, &w) }

func equal(a, b *Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case KindString:
		return a.Str == b.Str
	case KindInt:
		return a.Num == b.Num
	case KindList:
		if len(a.List) != len(b.List) {
			return false
		}
		for i := range a.List {
			if !equal(&a.List[i], &b.List[i]) {
				return false
			}
		}
		return true
	case KindDict:
		if len(a.Dict) != len(b.Dict) {
			return false
		}
		for i := range a.Dict {
			if a.Dict[i].Key != b.Dict[i].Key || !equal(&a.Dict[i].Value, &b.Dict[i].Value) {
				return false
			}
		}
		return true
	}
	return true
}

// Format writes a compact, human-readable form for fmt's %v (and any other
// verb): strings Go-quoted, lists as [a, b], dictionaries as {"k": v}. It is
// for logs and test failures; use [Encode] or [ToJSON] for the wire.
func (v Value) Format(f fmt.State, _ rune) {
	_, _ = f.Write(appendDebug(nil, &v))
}

func appendDebug(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(dst, v.Num, 10)
	case KindList:
		dst = append(dst, '[')
		for i := range v.List {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendDebug(dst, &v.List[i])
		}
		return append(dst, ']')
	case KindDict:
		dst = append(dst, '{')
		for i := range v.Dict {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = strconv.AppendQuote(dst, v.Dict[i].Key)
			dst = append(dst, ": "...)
			dst = appendDebug(dst, &v.Dict[i].Value)
		}
		return append(dst, '}')
	}
	return strconv.AppendQuote(dst, v.Str)
}
