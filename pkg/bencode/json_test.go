package bencode

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestFromJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{`{"command":"ping"}`, NewDict(Pair{"command", Str("ping")})},
		{` {"b":1, "a":2} `, NewDict(Pair{"b", Int(1)}, Pair{"a", Int(2)})},
		{`{"a":1,"b":2,"a":3}`, NewDict(Pair{"a", Int(1)}, Pair{"b", Int(2)})},
		{`{"t":true,"f":false}`, NewDict(Pair{"t", Int(1)}, Pair{"f", Int(0)})},
		{`{"n":null,"x":"y"}`, NewDict(Pair{"x", Str("y")})},
		{`[1,null,"a",[],{}]`, List(Int(1), Str("a"), List(), NewDict())},
		{`{"i":-5,"z":-0,"f":1.5,"e":1e3,"E":-2E-1}`, NewDict(
			Pair{"i", Int(-5)}, Pair{"z", Int(0)}, Pair{"f", Str("1.5")},
			Pair{"e", Str("1e3")}, Pair{"E", Str("-2E-1")})},
		{`[9223372036854775807,-9223372036854775808,9223372036854775808]`,
			List(Int(9223372036854775807), Int(-9223372036854775808), Str("9223372036854775808"))},
		{`{"sdp":"v=0\r\nc=IN IP4 1.2.3.4\r\n","u":"\u00e9\ud83d\ude00"}`, NewDict(
			Pair{"sdp", Str("v=0\r\nc=IN IP4 1.2.3.4\r\n")}, Pair{"u", Str("é😀")})},
		{`"str"`, Str("str")},
		{`42`, Int(42)},
		{`{"flags":["trust-address"],"received-from":["IP4","192.0.2.10"]}`, NewDict(
			Pair{"flags", Strs("trust-address")}, Pair{"received-from", Strs("IP4", "192.0.2.10")})},
	}
	for _, tt := range tests {
		got, err := FromJSON([]byte(tt.in), Limits{})
		if err != nil {
			t.Errorf("FromJSON(%s): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("FromJSON(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFromJSONInvalid(t *testing.T) {
	tests := []struct {
		in   string
		lim  Limits
		want error
	}{
		{``, Limits{}, ErrIncomplete},
		{`  `, Limits{}, ErrIncomplete},
		{`{"a":`, Limits{}, ErrIncomplete},
		{`{"a":"abc`, Limits{}, ErrIncomplete},
		{`[1,2`, Limits{}, ErrIncomplete},
		{`{"a" 1}`, Limits{}, ErrSyntax},
		{`{a:1}`, Limits{}, ErrSyntax},
		{`{"a":01}`, Limits{}, ErrSyntax},
		{`[1,]`, Limits{}, ErrSyntax},
		{`}`, Limits{}, ErrSyntax},
		{`null`, Limits{}, ErrSyntax},
		{`{} x`, Limits{}, ErrTrailing},
		{`{}{}`, Limits{}, ErrTrailing},
		{`1 2`, Limits{}, ErrTrailing},
		{`[[[]]]`, Limits{MaxDepth: 2}, ErrDepth},
		{`{"a":{"b":{}}}`, Limits{MaxDepth: 2}, ErrDepth},
		{`[1,2,3]`, Limits{MaxElements: 3}, ErrTooLarge},
		{`"abcde"`, Limits{MaxStringLen: 4}, ErrTooLarge},
		{`{"abcde":1}`, Limits{MaxStringLen: 4}, ErrTooLarge},
		{`{"a":"b"}`, Limits{MaxSize: 8}, ErrTooLarge},
	}
	for _, tt := range tests {
		v, err := FromJSON([]byte(tt.in), tt.lim)
		if !errors.Is(err, tt.want) {
			t.Errorf("FromJSON(%s) = %v, %v; want %v", tt.in, v, err, tt.want)
		}
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("FromJSON(%s): %T is not a *DecodeError", tt.in, err)
		}
	}
	// The limits that must pass at their exact value.
	for _, tt := range []struct {
		in  string
		lim Limits
	}{
		{`[[]]`, Limits{MaxDepth: 2}},
		{`[1,2]`, Limits{MaxElements: 3}},
		{`"abcd"`, Limits{MaxStringLen: 4}},
		{`{"a":"b"}`, Limits{MaxSize: 9}},
	} {
		if _, err := FromJSON([]byte(tt.in), tt.lim); err != nil {
			t.Errorf("FromJSON(%s, %+v): %v", tt.in, tt.lim, err)
		}
	}
}

func TestToJSON(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{NewDict(Pair{"result", Str("pong")}), `{"result":"pong"}`},
		{NewDict(Pair{"z", Int(-1)}, Pair{"a", Strs("x", "y")}, Pair{"d", NewDict()}), `{"z":-1,"a":["x","y"],"d":{}}`},
		{List(), `[]`},
		{Value{Kind: KindList}, `[]`},
		{Value{Kind: KindDict}, `{}`},
		{Value{}, `""`},
		{Value{Kind: 42}, `""`},
		{Str("v=0\r\n\ta\"b\\c/<&>"), `"v=0\r\n\ta\"b\\c/<&>"`},
		{Str("\x00\x01\x1f\b\f\x7f"), `"\u0000\u0001\u001f\b\f` + "\x7f" + `"`},
		{Str("é😀\u2028\u2029"), `"é😀\u2028\u2029"`},
		{Str("a\xffb\xc3"), `"a\ufffdb\ufffd"`},
		{NewDict(Pair{"k\xff", Int(1)}), `{"k\ufffd":1}`},
	}
	for _, tt := range tests {
		got := ToJSON(tt.v)
		if string(got) != tt.want {
			t.Errorf("ToJSON(%v) = %s, want %s", tt.v, got, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("ToJSON(%v) = %s is not valid JSON", tt.v, got)
		}
		if got := tt.v.AppendJSON([]byte("x")); string(got) != "x"+tt.want {
			t.Errorf("AppendJSON(%v) = %s", tt.v, got)
		}
	}
}

// TestJSONStringLikeEncodingJSON checks the string escaping against
// encoding/json with HTML escaping off.
func TestJSONStringLikeEncodingJSON(t *testing.T) {
	var all strings.Builder
	for i := range 256 {
		all.WriteByte(byte(i))
	}
	for _, s := range []string{all.String(), "\u2028x\u2029", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok"} {
		if got, want := appendJSONString(nil, s), stdJSONString(s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func stdJSONString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestJSONReferenceOffer(t *testing.T) {
	v, err := Decode([]byte(referenceOffer), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	js := ToJSON(v)
	const want = `{"command":"offer","call-id":"c1","from-tag":"ft1","sdp":"v=0\r\no=- 1 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio 7300 RTP/AVP 0\r\n","flags":["trust-address"],"replace":["origin","session-connection"],"ICE":"remove","received-from":["IP4","192.0.2.10"]}`
	if string(js) != want {
		t.Errorf("ToJSON:\n got %s\nwant %s", js, want)
	}
	back, err := FromJSON(js, Limits{})
	if err != nil || !back.Equal(v) {
		t.Errorf("FromJSON(ToJSON(offer)) = %v, %v", back, err)
	}
}
