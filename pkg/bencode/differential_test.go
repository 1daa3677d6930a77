package bencode

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	jackpal "github.com/jackpal/bencode-go"
)

// The differential tests use github.com/jackpal/bencode-go (v1.2.0, a test
// dependency only) as an oracle. Its generic decoder reads one value into
// string, int64, []any and map[string]any.
//
// Where the two differ on purpose, jackpal accepts and we reject:
//
//   - non-canonical integers, read by strconv.ParseInt: "i03e", "i-0e",
//     "i+1e", "i-00e" (ErrInvalidInt);
//   - non-canonical string lengths, likewise: "03:abc", "+3:abc", "-0:", also
//     as dictionary keys (ErrInvalidLength);
//   - anything after the first value: jackpal decodes one value from a
//     stream, Decode wants exactly one (ErrTrailing; compare DecodePrefix);
//   - documents over our tighter limits (ErrDepth, ErrTooLarge).
//
// And where both accept but the values differ: a repeated dictionary key
// keeps its last value in jackpal's map, its first in our Value (as in
// rtpengine). The comparison accounts for that.
//
// We never accept what jackpal rejects.

// jackpalDecode returns jackpal's value for the start of b and how many bytes
// it consumed.
func jackpalDecode(b []byte, lim Limits) (any, int, error) {
	r := bytes.NewReader(b)
	br := bufio.NewReader(r)
	dec := jackpal.NewDecoderWithOptions(br, jackpal.Options{
		MaxStringLength: int64(lim.MaxStringLen),
		MaxDepth:        lim.MaxDepth,
		MaxElements:     -1,
	})
	v, err := dec.Decode()
	return v, len(b) - r.Len() - br.Buffered(), err
}

// sameAsJackpal compares a value decoded with every pair kept (keep-dups)
// against jackpal's, letting the last of repeated keys win as a Go map does.
func sameAsJackpal(v *Value, j any) bool {
	switch v.Kind {
	case KindString:
		s, ok := j.(string)
		return ok && s == v.Str
	case KindInt:
		n, ok := j.(int64)
		return ok && n == v.Num
	case KindList:
		l, ok := j.([]any)
		if !ok || len(l) != len(v.List) {
			return false
		}
		for i := range l {
			if !sameAsJackpal(&v.List[i], l[i]) {
				return false
			}
		}
		return true
	case KindDict:
		m, ok := j.(map[string]any)
		if !ok {
			return false
		}
		last := make(map[string]*Value, len(v.Dict))
		for i := range v.Dict {
			last[v.Dict[i].Key] = &v.Dict[i].Value
		}
		if len(last) != len(m) {
			return false
		}
		for k, jv := range m {
			ov, ok := last[k]
			if !ok || !sameAsJackpal(ov, jv) {
				return false
			}
		}
		return true
	}
	return false
}

// differential checks one input against the oracle and returns why we are
// stricter, if we are ("" when both agree).
func differential(t *testing.T, b []byte) (stricter error) {
	t.Helper()
	lim := Limits{}.withDefaults()
	ours, n, err := decodeString(string(b), lim, true)
	theirs, consumed, jerr := jackpalDecode(b, lim)
	switch {
	case err == nil && jerr == nil:
		if n != consumed {
			t.Fatalf("%q: we read %d bytes, jackpal %d", b, n, consumed)
		}
		if !sameAsJackpal(&ours, theirs) {
			t.Fatalf("%q: we decode %v, jackpal %#v", b, ours, theirs)
		}
		if n != len(b) {
			return ErrTrailing
		}
		return nil
	case err == nil:
		t.Fatalf("%q: we accept %v, jackpal rejects: %v", b, ours, jerr)
	case jerr == nil:
		for _, allowed := range []error{ErrInvalidInt, ErrInvalidLength, ErrDepth, ErrTooLarge} {
			if errors.Is(err, allowed) {
				return allowed
			}
		}
		t.Fatalf("%q: we reject (%v), jackpal accepts %#v", b, err, theirs)
	}
	return nil
}

func TestDifferentialKnownDifferences(t *testing.T) {
	tests := []struct {
		in   string
		want error // our reason to be stricter; nil: we agree
	}{
		{"i03e", ErrInvalidInt},
		{"i-0e", ErrInvalidInt},
		{"i+1e", ErrInvalidInt},
		{"li-00ee", ErrInvalidInt},
		{"03:abc", ErrInvalidLength},
		{"+3:abc", ErrInvalidLength},
		{"-0:", ErrInvalidLength},
		{"d+1:ai1ee", ErrInvalidLength},
		{"d01:ai1ee", ErrInvalidLength},
		{"i1ei2e", ErrTrailing},
		{string(nested("l", "e", DefaultMaxDepth)), nil},
		{"d1:ai1e1:bi2e1:ai3ee", nil}, // values differ, see sameAsJackpal
		{referenceOffer, nil},
		{"i9223372036854775808e", nil}, // both reject
		{"di1ei2ee", nil},
	}
	for _, tt := range tests {
		if got := differential(t, []byte(tt.in)); got != tt.want {
			t.Errorf("%q: stricter because of %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		differential(t, b)
	})
}

func BenchmarkJackpalDecodeOffer(b *testing.B) {
	in := benchOffer()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jackpal.Decode(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}
