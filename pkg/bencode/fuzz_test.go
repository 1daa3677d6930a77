package bencode

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// fuzzSeeds are the in-code seeds shared by the bencode fuzz targets: the
// reference datagrams' documents, edge cases and near misses.
var fuzzSeeds = []string{
	referenceOffer,
	"d3:sdp140:" + referenceSDPOut + "6:result2:oke",
	"d7:command4:pinge",
	"d6:result4:ponge",
	"d6:result5:error12:error-reason15:Unknown call-ide",
	"d7:command6:delete7:call-id2:c18:from-tag3:ft1e",
	"d7:warning38:Call-ID not found or tags didn't match6:result2:oke",
	"d7:command4:list5:limiti2ee",
	"d5:callsl2:c12:c2e6:result2:oke",
	"d1:ai1e1:bi2e1:ai3ee",
	"li-9223372036854775808ei9223372036854775807ee",
	"i03e", "i-0e", "ie", "03:abc", "+3:abc", "d+1:ai1ee", "di1ei2ee", "d1:ae",
	"i1ei2e", "3:ab", "", "l", "lllleeee", "0:",
}

// mainSentinels are the error classes; every error matches exactly one.
var mainSentinels = []error{ErrSyntax, ErrIncomplete, ErrTrailing, ErrDepth, ErrTooLarge}

func checkError(t *testing.T, err error, inputLen int) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	if de.Offset < 0 || de.Offset > inputLen {
		t.Fatalf("error offset %d outside input of %d bytes: %v", de.Offset, inputLen, err)
	}
	n := 0
	for _, s := range mainSentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %v matches %d sentinel classes", err, n)
	}
}

func sameClass(a, b error) bool {
	for _, s := range append(mainSentinels, ErrInvalidInt, ErrInvalidLength) {
		if errors.Is(a, s) != errors.Is(b, s) {
			return false
		}
	}
	return true
}

// dedupFirst drops every dictionary pair whose key already occurred in the
// same dictionary, recursively.
func dedupFirst(v Value) Value {
	switch v.Kind {
	case KindList:
		out := make([]Value, len(v.List))
		for i := range v.List {
			out[i] = dedupFirst(v.List[i])
		}
		return List(out...)
	case KindDict:
		out := Value{Kind: KindDict}
		for _, p := range v.Dict {
			if _, dup := out.Get(p.Key); !dup {
				out.Dict = append(out.Dict, Pair{p.Key, dedupFirst(p.Value)})
			}
		}
		return out
	}
	return v
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b, Limits{})
		all, n, errAll := decodeString(string(b), Limits{}.withDefaults(), true)
		if errAll == nil && n != len(b) {
			errAll = errAt(n, ErrTrailing, "")
		}
		if err != nil {
			checkError(t, err, len(b))
			if errAll == nil || !sameClass(err, errAll) {
				t.Fatalf("Decode: %v; keep-dups decode: %v", err, errAll)
			}
			if _, _, perr := DecodePrefix(b, Limits{}); perr == nil && !errors.Is(err, ErrTrailing) {
				t.Fatalf("DecodePrefix accepts what Decode rejects with %v", err)
			}
			return
		}
		if errAll != nil {
			t.Fatalf("keep-dups decode: %v", errAll)
		}
		// The format is strict, so the document is canonical: encoding
		// everything that was read gives back the input.
		if enc := Encode(all); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding with duplicates:\n got %q\nwant %q", enc, b)
		}
		if !v.Equal(dedupFirst(all)) {
			t.Fatalf("first occurrence did not win:\n got %v\nwant %v", v, dedupFirst(all))
		}
		enc := Encode(v)
		if len(enc) != v.EncodedLen() {
			t.Fatalf("EncodedLen %d, encoded %d bytes", v.EncodedLen(), len(enc))
		}
		if v.Equal(all) != bytes.Equal(enc, b) {
			t.Fatalf("re-encoding equals the input iff no key was repeated: %q -> %q", b, enc)
		}
		v2, err := Decode(enc, Limits{})
		if err != nil || !v2.Equal(v) {
			t.Fatalf("decoding the re-encoding: %v, %v", v2, err)
		}
		if n, err := Split(b); n != len(b) || err != nil {
			t.Fatalf("Split = %d, %v; want %d", n, err, len(b))
		}
		pv, pn, err := DecodePrefix(append(b, "trailing"...), Limits{})
		if err != nil || pn != len(b) || !pv.Equal(v) {
			t.Fatalf("DecodePrefix = %v, %d, %v", pv, pn, err)
		}
		if js := ToJSON(v); !json.Valid(js) {
			t.Fatalf("ToJSON gave invalid JSON %q", js)
		}
	})
}

// bigLimits lift every limit, so that only the syntax decides.
var bigLimits = Limits{MaxDepth: hardMaxDepth, MaxSize: 1 << 30, MaxStringLen: 1 << 30, MaxElements: 1 << 30}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
		f.Add([]byte(s + "5323_1 d7:command4:pinge"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Split(b)
		_, dn, derr := decodeString(string(b), bigLimits, false)
		if errors.Is(derr, ErrDepth) || errors.Is(derr, ErrTooLarge) {
			// Split has no limits (but overflow); the decoder still has
			// its depth and string length ceilings.
			return
		}
		switch {
		case err == nil:
			if n <= 0 || n > len(b) {
				t.Fatalf("Split = %d for %d bytes", n, len(b))
			}
			if derr != nil || dn != n {
				t.Fatalf("Split = %d but decoder: %d, %v", n, dn, derr)
			}
			if n <= 256 {
				for k := range n {
					if _, err := Split(b[:k]); !errors.Is(err, ErrIncomplete) {
						t.Fatalf("Split(b[:%d]) = %v, want ErrIncomplete (value is %d bytes)", k, err, n)
					}
				}
			}
		default:
			checkError(t, err, len(b))
			if derr == nil || !sameClass(err, derr) {
				t.Fatalf("Split: %v; decoder: %v", err, derr)
			}
			if err.(*DecodeError).Offset != derr.(*DecodeError).Offset {
				t.Fatalf("Split: %v; decoder: %v", err, derr)
			}
			if !errors.Is(err, ErrIncomplete) {
				// Nothing appended can repair it.
				for _, more := range []string{"e", "0:", "i0e", "1:x", ":", "ee"} {
					if _, err2 := Split(append(b[:len(b):len(b)], more...)); err2 == nil || errors.Is(err2, ErrIncomplete) {
						t.Fatalf("Split(b) = %v but Split(b+%q) = %v", err, more, err2)
					}
				}
			}
		}
		// Whatever prefix decodes on its own is exactly what Split finds.
		for k := 1; k <= len(b) && k <= 512; k++ {
			if _, derr := Decode(b[:k], bigLimits); derr == nil && (err != nil || n != k) {
				t.Fatalf("Decode(b[:%d]) succeeds but Split(b) = %d, %v", k, n, err)
			}
		}
	})
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"command":"ping"}`,
		`{"result":"pong"}`,
		`{"command":"offer","call-id":"c1","from-tag":"ft1","sdp":"v=0\r\n","flags":["trust-address"],"replace":["origin","session-connection"],"ICE":"remove","received-from":["IP4","192.0.2.10"]}`,
		`{"a":1,"a":2,"t":true,"f":false,"n":null,"x":1.5e3,"big":123456789012345678901}`,
		`[[[["\u00e9\ud800\"\\"]]]]`,
		`{"a":`, `{} x`, `null`, `"\xff"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The string escaping is exactly encoding/json's.
		if got, want := appendJSONString(nil, string(b)), stdJSONString(string(b)); !bytes.Equal(got, want) {
			t.Fatalf("string escaping:\n got %s\nwant %s", got, want)
		}
		v, err := FromJSON(b, Limits{})
		if err != nil {
			checkError(t, err, len(b))
			if json.Valid(b) && !errors.Is(err, ErrDepth) && !errors.Is(err, ErrTooLarge) &&
				!(errors.Is(err, ErrSyntax) && bytes.Equal(bytes.TrimSpace(b), []byte("null"))) {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON accepted as %v", v)
		}
		js := ToJSON(v)
		if !json.Valid(js) {
			t.Fatalf("ToJSON gave invalid JSON %q", js)
		}
		v2, err := FromJSON(js, Limits{})
		if err != nil || !v2.Equal(v) {
			t.Fatalf("FromJSON(ToJSON(v)) = %v, %v; want %v", v2, err, v)
		}
		v3, err := Decode(Encode(v), Limits{})
		if err != nil || !v3.Equal(v) {
			t.Fatalf("Decode(Encode(v)) = %v, %v; want %v", v3, err, v)
		}
	})
}
