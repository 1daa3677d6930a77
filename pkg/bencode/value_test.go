package bencode

import (
	"fmt"
	"slices"
	"testing"
)

func TestValueInt(t *testing.T) {
	tests := []struct {
		v    Value
		want int64
		ok   bool
	}{
		{Int(-7), -7, true},
		{Str("123"), 123, true},
		{Str("+5"), 5, true},
		{Str("-5"), -5, true},
		{Str("007"), 7, true},
		{Str("9223372036854775807"), 9223372036854775807, true},
		{Str("-9223372036854775808"), -9223372036854775808, true},
		{Str("9223372036854775808"), 0, false},
		{Str("-9223372036854775809"), 0, false},
		{Str(""), 0, false},
		{Str("-"), 0, false},
		{Str("+"), 0, false},
		{Str("1a"), 0, false},
		{Str(" 1"), 0, false},
		{Str("1 "), 0, false},
		{Str("1.0"), 0, false},
		{List(Int(1)), 0, false},
		{NewDict(), 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.v.Int()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%v.Int() = %d, %v; want %d, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValueString(t *testing.T) {
	if s, ok := Str("x").String(); s != "x" || !ok {
		t.Errorf("Str.String() = %q, %v", s, ok)
	}
	if s, ok := Int(1).String(); s != "" || ok {
		t.Errorf("Int.String() = %q, %v", s, ok)
	}
}

func TestValueStringList(t *testing.T) {
	mixed := List(Str("a"), Int(1), Str("b"), Strs("c"), NewDict())
	if l, ok := mixed.StringList(); !ok || !slices.Equal(l, []string{"a", "b"}) {
		t.Errorf("mixed list: %q, %v", l, ok)
	}
	if l, ok := List().StringList(); !ok || len(l) != 0 {
		t.Errorf("empty list: %q, %v", l, ok)
	}
	if l, ok := Str("trust-address").StringList(); ok || l != nil {
		t.Errorf("strict accepted a string: %q, %v", l, ok)
	}
	if l, ok := Str("trust-address").StringListLenient(); !ok || !slices.Equal(l, []string{"trust-address"}) {
		t.Errorf("lenient string: %q, %v", l, ok)
	}
	if l, ok := Strs("a", "b").StringListLenient(); !ok || !slices.Equal(l, []string{"a", "b"}) {
		t.Errorf("lenient list: %q, %v", l, ok)
	}
	if _, ok := Int(1).StringListLenient(); ok {
		t.Error("lenient accepted an int")
	}
}

func TestValueDict(t *testing.T) {
	d := NewDict()
	d.Set("b", Int(1)).Set("a", Int(2)).Set("c", Int(3))
	d.Set("b", Str("x")) // replace in place
	if got := string(Encode(d)); got != "d1:b1:x1:ai2e1:ci3ee" {
		t.Errorf("Set: %s", got)
	}
	if v, ok := d.Get("a"); !ok || !v.Equal(Int(2)) {
		t.Errorf("Get(a) = %v, %v", v, ok)
	}
	if _, ok := d.Get("A"); ok {
		t.Error("keys must be case-sensitive")
	}
	if !d.Delete("a") || d.Delete("a") {
		t.Error("Delete")
	}
	if got := string(Encode(d)); got != "d1:b1:x1:ci3ee" {
		t.Errorf("after Delete: %s", got)
	}
	if d.Len() != 2 {
		t.Errorf("Len = %d", d.Len())
	}
	if s, ok := d.GetString("b"); s != "x" || !ok {
		t.Errorf("GetString = %q, %v", s, ok)
	}
	if _, ok := d.GetString("c"); ok {
		t.Error("GetString of an int")
	}
	if n, ok := d.GetInt("c"); n != 3 || !ok {
		t.Errorf("GetInt = %d, %v", n, ok)
	}
	if _, ok := d.GetInt("missing"); ok {
		t.Error("GetInt of a missing key")
	}
	if _, ok := Str("x").Get("x"); ok {
		t.Error("Get on a string")
	}
	// NewDict with a repeated key behaves like Set.
	if got := string(Encode(NewDict(Pair{"k", Int(1)}, Pair{"j", Int(2)}, Pair{"k", Int(3)}))); got != "d1:ki3e1:ji2ee" {
		t.Errorf("NewDict dup: %s", got)
	}
}

func TestValueGetAnyLoose(t *testing.T) {
	d := NewDict(
		Pair{"call id", Str("spaced")},
		Pair{"received from", Strs("IP4", "1.2.3.4")},
		Pair{"media-address", Str("hyphen")},
		Pair{"media address", Str("space")},
	)
	if v, ok := d.GetAny("call-id", "call id", "call-ID"); !ok || !v.Equal(Str("spaced")) {
		t.Errorf("GetAny = %v, %v", v, ok)
	}
	if _, ok := d.GetAny("x", "y"); ok {
		t.Error("GetAny of absent keys")
	}
	if _, ok := d.GetAny(); ok {
		t.Error("GetAny()")
	}
	if v, ok := d.GetLoose("received-from"); !ok || v.Len() != 2 {
		t.Errorf("GetLoose(received-from) = %v, %v", v, ok)
	}
	// An exact match wins over an earlier loose one.
	if v, ok := d.GetLoose("media address"); !ok || !v.Equal(Str("space")) {
		t.Errorf("GetLoose(media address) = %v, %v", v, ok)
	}
	if _, ok := d.GetLoose("Received-From"); ok {
		t.Error("GetLoose must stay case-sensitive")
	}
	if _, ok := d.GetLoose("call_id"); ok {
		t.Error("GetLoose must not fold underscores")
	}
	if _, ok := List().GetLoose("x"); ok {
		t.Error("GetLoose on a list")
	}
}

func TestValueAppend(t *testing.T) {
	l := List()
	l.Append(Int(1)).Append(Str("a"), Strs("b"))
	if got := string(Encode(l)); got != "li1e1:al1:bee" {
		t.Errorf("Append: %s", got)
	}
}

func TestValuePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Set on string":  func() { v := Str("x"); v.Set("k", Int(1)) },
		"Set on zero":    func() { var v Value; v.Set("k", Int(1)) },
		"Append on dict": func() { v := NewDict(); v.Append(Int(1)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestValueEqual(t *testing.T) {
	eq := [][2]Value{
		{Value{}, Str("")},
		{List(), Value{Kind: KindList}},
		{NewDict(), Value{Kind: KindDict}},
		{NewDict(Pair{"a", Strs("x")}), NewDict(Pair{"a", Strs("x")})},
	}
	for _, p := range eq {
		if !p[0].Equal(p[1]) {
			t.Errorf("%v != %v", p[0], p[1])
		}
	}
	ne := [][2]Value{
		{Str("1"), Int(1)},
		{Int(1), Int(2)},
		{Strs("a"), Strs("a", "b")},
		{Strs("a"), Strs("b")},
		{NewDict(Pair{"a", Int(1)}, Pair{"b", Int(2)}), NewDict(Pair{"b", Int(2)}, Pair{"a", Int(1)})},
		{NewDict(Pair{"a", Int(1)}), NewDict(Pair{"a", Int(2)})},
		{NewDict(Pair{"a", Int(1)}), NewDict()},
	}
	for _, p := range ne {
		if p[0].Equal(p[1]) {
			t.Errorf("%v == %v", p[0], p[1])
		}
	}
}

func TestValueFormat(t *testing.T) {
	v := NewDict(Pair{"sdp", Str("v=0\r\n")}, Pair{"l", List(Int(-1), Str("\xff"))})
	want := `{"sdp": "v=0\r\n", "l": [-1, "\xff"]}`
	if got := fmt.Sprintf("%v", v); got != want {
		t.Errorf("%%v = %s, want %s", got, want)
	}
	if got := fmt.Sprint(Pair{"k", Int(1)}); got != "{k 1}" {
		t.Errorf("Pair = %s", got)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindString: "string", KindInt: "int", KindList: "list", KindDict: "dict", 9: "Kind(9)"} {
		if k.String() != want {
			t.Errorf("Kind %d = %s", k, k.String())
		}
	}
}
