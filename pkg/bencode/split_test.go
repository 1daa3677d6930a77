package bencode

import (
	"errors"
	"strings"
	"testing"
)

// splitSamples are complete values, each exactly one value long.
var splitSamples = []string{
	"0:", "1:e", "10:0123456789", "i0e", "i-12e", "i9223372036854775807e",
	"le", "de", "l0:e", "lli1eee", "d1:ai1ee", "d0:dee", "d1:elee",
	"d1:ad1:bd1:cleeee", "l1:ed1:el1:eeee",
	referenceOffer,
	"d3:sdp140:" + referenceSDPOut + "6:result2:oke",
	string(nested("l", "e", 200)),
	strings.Repeat("d1:k", 100) + "de" + strings.Repeat("e", 100),
}

func TestSplitComplete(t *testing.T) {
	for _, s := range splitSamples {
		for _, tail := range []string{"", "e", "i1e", "x", s, "5323_2 d7:command4:pinge"} {
			n, err := Split([]byte(s + tail))
			if err != nil || n != len(s) {
				t.Errorf("Split(%.40q + %q) = %d, %v; want %d", s, tail, n, err, len(s))
			}
		}
	}
}

func TestSplitEveryPrefixIncomplete(t *testing.T) {
	for _, s := range splitSamples {
		for k := range len(s) {
			n, err := Split([]byte(s[:k]))
			if !errors.Is(err, ErrIncomplete) {
				t.Errorf("Split(%.40q[:%d]) = %d, %v; want ErrIncomplete", s, k, n, err)
				break
			}
		}
	}
}

func TestSplitGarbage(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"x", ErrSyntax},
		{"e", ErrSyntax},
		{" d1:ai1ee", ErrSyntax},
		{"ie", ErrInvalidInt},
		{"i-0", ErrInvalidInt},
		{"i01", ErrInvalidInt},
		{"i1x", ErrInvalidInt},
		{"i92233720368547758070", ErrInvalidInt},
		{"i9223372036854775808", ErrInvalidInt},
		{"00", ErrInvalidLength},
		{"01:a", ErrInvalidLength},
		{"+1:a", ErrInvalidLength},
		{"1a", ErrSyntax},
		{"di", ErrSyntax},
		{"dl", ErrSyntax},
		{"dd", ErrSyntax},
		{"d-", ErrInvalidLength},
		{"d1:ae", ErrSyntax},
		{"ld1:ae", ErrSyntax},
		{"d1:ai1ei2ee", ErrSyntax},
		{"99999999999999999999999:", ErrTooLarge},
	} {
		n, err := Split([]byte(tt.in))
		if err == nil || errors.Is(err, ErrIncomplete) || !errors.Is(err, tt.want) {
			t.Errorf("Split(%q) = %d, %v; want %v", tt.in, n, err, tt.want)
		}
		// No continuation can repair garbage.
		for _, more := range []string{"e", "0:", "i1e", "ee", ":"} {
			if _, err2 := Split([]byte(tt.in + more)); err2 == nil || errors.Is(err2, ErrIncomplete) {
				t.Errorf("Split(%q+%q) = %v after Split(%q) = %v", tt.in, more, err2, tt.in, err)
			}
		}
	}
}

func TestSplitAgreesWithDecode(t *testing.T) {
	inputs := append([]string{}, splitSamples...)
	inputs = append(inputs, "i03e", "ie", "d1:ae", "x", "3:ab", "i1ei2e", "d1:ai1e1:ai2ee")
	for _, s := range inputs {
		n, serr := Split([]byte(s))
		v, m, derr := DecodePrefix([]byte(s), Limits{MaxDepth: hardMaxDepth})
		if (serr == nil) != (derr == nil) || serr == nil && n != m {
			t.Errorf("%.40q: Split = %d, %v; DecodePrefix = %v, %d, %v", s, n, serr, v, m, derr)
		}
	}
}

func TestSplitDeep(t *testing.T) {
	// Split has no depth limit and no recursion.
	in := nested("l", "e", 100000)
	if n, err := Split(in); err != nil || n != len(in) {
		t.Errorf("Split(deep) = %d, %v", n, err)
	}
	if _, err := Split(in[:len(in)-1]); !errors.Is(err, ErrIncomplete) {
		t.Errorf("Split(deep, truncated) = %v", err)
	}
}

func TestSplitAllocs(t *testing.T) {
	in := []byte(referenceOffer)
	if a := testing.AllocsPerRun(100, func() { _, _ = Split(in) }); a != 0 {
		t.Errorf("Split allocates %v times", a)
	}
}
