package bencode

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{"0:", Str("")},
		{"3:abc", Str("abc")},
		{"5:a:e:b", Str("a:e:b")},
		{"4:\x00\xff\r\n", Str("\x00\xff\r\n")},
		{"i0e", Int(0)},
		{"i42e", Int(42)},
		{"i-1e", Int(-1)},
		{"i10e", Int(10)},
		{"i9223372036854775807e", Int(9223372036854775807)},
		{"i-9223372036854775808e", Int(-9223372036854775808)},
		{"le", List()},
		{"l0:e", List(Str(""))},
		{"li1ei2ee", List(Int(1), Int(2))},
		{"lleli1eee", List(List(), List(Int(1)))},
		{"de", NewDict()},
		{"d0:i1ee", NewDict(Pair{"", Int(1)})},
		{"d1:ai1e1:bl1:xee", NewDict(Pair{"a", Int(1)}, Pair{"b", Strs("x")})},
		// Unsorted keys are fine and keep their order.
		{"d1:bi1e1:ai2ee", NewDict(Pair{"b", Int(1)}, Pair{"a", Int(2)})},
		{"d1:dd1:ldeee", NewDict(Pair{"d", NewDict(Pair{"l", NewDict()})})},
		// Duplicate keys: the first one wins, the others are dropped.
		{"d1:ai1e1:bi2e1:ai3ee", NewDict(Pair{"a", Int(1)}, Pair{"b", Int(2)})},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in), Limits{})
		if err != nil {
			t.Errorf("Decode(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("Decode(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want error
		off  int
	}{
		{"", ErrIncomplete, 0},
		{"i", ErrIncomplete, 1},
		{"i-", ErrIncomplete, 2},
		{"i0", ErrIncomplete, 2},
		{"i12", ErrIncomplete, 3},
		{"0", ErrIncomplete, 1},
		{"1", ErrIncomplete, 1},
		{"3:ab", ErrIncomplete, 4},
		{"l", ErrIncomplete, 1},
		{"d", ErrIncomplete, 1},
		{"d1:a", ErrIncomplete, 4},
		{"li1e", ErrIncomplete, 4},
		{"d1:ai1e", ErrIncomplete, 7},

		{"ie", ErrInvalidInt, 0},
		{"i-e", ErrInvalidInt, 0},
		{"i-0e", ErrInvalidInt, 0},
		{"i-0", ErrInvalidInt, 0},
		{"i-03e", ErrInvalidInt, 0},
		{"i03e", ErrInvalidInt, 0},
		{"i00e", ErrInvalidInt, 0},
		{"i+1e", ErrInvalidInt, 1},
		{"i 1e", ErrInvalidInt, 1},
		{"i1.5e", ErrInvalidInt, 2},
		{"i0x", ErrInvalidInt, 2},
		{"i9223372036854775808e", ErrInvalidInt, 0},
		{"i-9223372036854775809e", ErrInvalidInt, 0},
		{"i99999999999999999999999e", ErrInvalidInt, 0},
		{"li1ei03ee", ErrInvalidInt, 4},

		{"03:abc", ErrInvalidLength, 0},
		{"00:", ErrInvalidLength, 0},
		{"+3:abc", ErrInvalidLength, 0},
		{"-1:a", ErrInvalidLength, 0},
		{"-0:", ErrInvalidLength, 0},
		{"d+1:ai1ee", ErrInvalidLength, 1},

		{"x", ErrSyntax, 0},
		{"e", ErrSyntax, 0},
		{" i1e", ErrSyntax, 0},
		{"3x", ErrSyntax, 1},
		{"0x", ErrSyntax, 1},
		{"3 :abc", ErrSyntax, 1},
		{"dle", ErrSyntax, 1},
		{"di1ei2ee", ErrSyntax, 1},
		{"d1:ae", ErrSyntax, 4},
		{"lxe", ErrSyntax, 1},

		{"i1ei2e", ErrTrailing, 3},
		{"0:x", ErrTrailing, 2},
		{"de ", ErrTrailing, 2},
		{"d7:command4:pingee", ErrTrailing, 17},

		{"99999999999999999999:", ErrTooLarge, 0},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in), Limits{})
		if !errors.Is(err, tt.want) {
			t.Errorf("Decode(%q) error = %v, want %v", tt.in, err, tt.want)
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(%q) error %T is not a *DecodeError", tt.in, err)
			continue
		}
		if de.Offset != tt.off {
			t.Errorf("Decode(%q) error offset = %d, want %d (%v)", tt.in, de.Offset, tt.off, err)
		}
		if (tt.want == ErrInvalidInt || tt.want == ErrInvalidLength) && !errors.Is(err, ErrSyntax) {
			t.Errorf("Decode(%q) error %v is not also ErrSyntax", tt.in, err)
		}
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	_, err := Decode([]byte("li1ei03ee"), Limits{})
	const want = "bencode: invalid integer: leading zero at offset 4"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	_, err = Decode([]byte("l\x01e"), Limits{})
	const want2 = "bencode: syntax error: unexpected byte 0x01 at offset 1"
	if err == nil || err.Error() != want2 {
		t.Errorf("error = %v, want %q", err, want2)
	}
	if errors.Is(ErrSyntax, ErrInvalidInt) || errors.Is(ErrIncomplete, ErrSyntax) {
		t.Error("sentinel hierarchy is inverted")
	}
}

func nested(open, close string, n int) []byte {
	return []byte(strings.Repeat(open, n) + strings.Repeat(close, n))
}

func TestDecodeLimits(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		lim  Limits
		want error // nil: must decode
	}{
		{"default depth", nested("l", "e", DefaultMaxDepth), Limits{}, nil},
		{"default depth+1", nested("l", "e", DefaultMaxDepth+1), Limits{}, ErrDepth},
		{"dict depth", []byte("d1:ad1:adeee"), Limits{MaxDepth: 3}, nil},
		{"dict depth+1", []byte("d1:ad1:ad1:adeeee"), Limits{MaxDepth: 3}, ErrDepth},
		{"depth clamp", nested("l", "e", hardMaxDepth+1), Limits{MaxDepth: 1 << 30}, ErrDepth},
		{"depth clamp ok", nested("l", "e", hardMaxDepth), Limits{MaxDepth: 1 << 30}, nil},
		{"size", []byte("5:abcde"), Limits{MaxSize: 7}, nil},
		{"size+1", []byte("5:abcde"), Limits{MaxSize: 6}, ErrTooLarge},
		{"string", []byte("4:abcd"), Limits{MaxStringLen: 4}, nil},
		{"string+1", []byte("5:abcde"), Limits{MaxStringLen: 4}, ErrTooLarge},
		{"string truncated", []byte("50:abc"), Limits{MaxStringLen: 4}, ErrTooLarge},
		{"elements", []byte("li1ei2ee"), Limits{MaxElements: 3}, nil},
		{"elements+1", []byte("li1ei2ee"), Limits{MaxElements: 2}, ErrTooLarge},
		{"dict elements", []byte("d1:ai1e1:bi2ee"), Limits{MaxElements: 3}, nil},
		{"dict elements+1", []byte("d1:ai1e1:bi2ee"), Limits{MaxElements: 2}, ErrTooLarge},
		{"negative means default", nested("l", "e", DefaultMaxDepth+1), Limits{MaxDepth: -1}, ErrDepth},
	}
	for _, tt := range tests {
		_, err := Decode(tt.in, tt.lim)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestDecodeManyDuplicates covers both duplicate checks: the Bloom filter
// with linear confirmation, and the map used for large dictionaries.
func TestDecodeManyDuplicates(t *testing.T) {
	for _, size := range []int{3, 40, dupMapMin - 1, dupMapMin, 3 * dupMapMin} {
		var in, want []byte
		in = append(in, 'd')
		want = append(want, 'd')
		for i := range size {
			k := Str(strconv.Itoa(i))
			in = k.AppendTo(in)
			in = Int(int64(i)).AppendTo(in)
			want = k.AppendTo(want)
			want = Int(int64(i)).AppendTo(want)
			if i%3 == 0 {
				// Repeat an earlier key with another value.
				in = Str(strconv.Itoa(i / 2)).AppendTo(in)
				in = Int(-1).AppendTo(in)
			}
		}
		in = append(in, 'e')
		want = append(want, 'e')
		v, err := Decode(in, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if got := Encode(v); !bytes.Equal(got, want) {
			t.Errorf("%d keys:\n got %s\nwant %s", size, got, want)
		}
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	in := []byte("d3:key5:valuee")
	v, err := Decode(in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'X'
	}
	if s, _ := v.GetString("key"); s != "value" {
		t.Errorf("value changed with the input: %q", s)
	}
}

func TestDecodedSlicesAreClipped(t *testing.T) {
	v, err := Decode([]byte("lli1eeli2eee"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a := v.List[0]
	a.Append(Int(9)) // must not overwrite the sibling list
	if !v.List[1].Equal(List(Int(2))) {
		t.Errorf("sibling overwritten: %v", v)
	}
}

func TestDecodePrefix(t *testing.T) {
	v, n, err := DecodePrefix([]byte("d1:ai1ee5323_2 garbage"), Limits{})
	if err != nil || n != 8 || !v.Equal(NewDict(Pair{"a", Int(1)})) {
		t.Errorf("DecodePrefix = %v, %d, %v", v, n, err)
	}
	if _, _, err := DecodePrefix([]byte("d1:ai1e"), Limits{}); !errors.Is(err, ErrIncomplete) {
		t.Errorf("incomplete: %v", err)
	}
	if _, _, err := DecodePrefix([]byte("d1:ai03ee"), Limits{}); !errors.Is(err, ErrInvalidInt) {
		t.Errorf("invalid: %v", err)
	}
	// An incomplete value that has already reached MaxSize can never fit.
	if _, _, err := DecodePrefix([]byte("100:abcdefgh"), Limits{MaxSize: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large incomplete: %v", err)
	}
	if _, _, err := DecodePrefix([]byte("8:abcdefghi1e"), Limits{MaxSize: 9}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, _, err := DecodePrefix([]byte("lllleeee"), Limits{MaxDepth: 3}); !errors.Is(err, ErrDepth) {
		t.Errorf("depth: %v", err)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Value{}, "0:"},
		{Str("abc"), "3:abc"},
		{Bytes([]byte{0, 'e'}), "2:\x00e"},
		{Int(0), "i0e"},
		{Int(-42), "i-42e"},
		{Int(-9223372036854775808), "i-9223372036854775808e"},
		{List(), "le"},
		{Value{Kind: KindList}, "le"},
		{NewDict(), "de"},
		{Value{Kind: KindDict}, "de"},
		{Strs("a", "bc"), "l1:a2:bce"},
		{NewDict(Pair{"z", Int(1)}, Pair{"a", List(NewDict())}), "d1:zi1e1:aldeee"},
		{Value{Kind: 99, Str: "ignored"}, "0:"},
	}
	for _, tt := range tests {
		got := Encode(tt.v)
		if string(got) != tt.want {
			t.Errorf("Encode(%v) = %q, want %q", tt.v, got, tt.want)
		}
		if n := tt.v.EncodedLen(); n != len(tt.want) {
			t.Errorf("EncodedLen(%v) = %d, want %d", tt.v, n, len(tt.want))
		}
		if got := tt.v.AppendTo([]byte("x")); string(got) != "x"+tt.want {
			t.Errorf("AppendTo(%v) = %q", tt.v, got)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range []string{
		"d1:bi1e1:ai2ee",
		"l0:i0ei-1edelee",
		"d3:sdp4:\r\n\r\n5:flagsl3:one3:twoe6:resulti-5ee",
		referenceOffer,
	} {
		v, err := Decode([]byte(in), Limits{})
		if err != nil {
			t.Fatalf("Decode(%q): %v", in, err)
		}
		if out := Encode(v); string(out) != in {
			t.Errorf("round trip of %q gave %q", in, out)
		}
	}
}

// TestDecodeLargeDocuments checks that documents at the element limit stay
// cheap: no quadratic duplicate check, no quadratic list building.
func TestDecodeLargeDocuments(t *testing.T) {
	const n = DefaultMaxElements - 1
	dict := []byte{'d'}
	same := []byte{'d'}
	list := []byte{'l'}
	for i := range n {
		dict = Str(strconv.Itoa(i)).AppendTo(dict)
		dict = append(dict, "0:"...)
		same = append(same, "1:k0:"...)
		list = append(list, "le"...)
	}
	dict = append(dict, 'e')
	same = append(same, 'e')
	list = append(list, 'e')
	for name, tt := range map[string]struct {
		in   []byte
		want int
	}{
		"distinct keys": {dict, n},
		"one key":       {same, 1},
		"empty lists":   {list, n},
	} {
		v, err := Decode(tt.in, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v.Len() != tt.want {
			t.Errorf("%s: %d entries, want %d", name, v.Len(), tt.want)
		}
	}
	// One more element is over the limit.
	if _, err := Decode(append(list[:len(list)-1:len(list)-1], "lee"...), Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the element limit: %v", err)
	}
}
