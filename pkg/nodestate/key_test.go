package nodestate

import (
	"regexp"
	"testing"
)

var keyTokenRe = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)

func TestEscapeID(t *testing.T) {
	for _, tt := range []struct{ id, want string }{
		{"abc-DEF_123", "abc-DEF_123"},
		{"a84b4c76e66710@pc33.atlanta.example.com", "a84b4c76e66710=40pc33=2Eatlanta=2Eexample=2Ecom"},
		{"", "="},
		{"=", "=3D"},
		{"a b*>", "a=20b=2A=3E"},
		{"\xff\x00", "=FF=00"},
	} {
		got := EscapeID(tt.id)
		if got != tt.want {
			t.Errorf("EscapeID(%q) = %q, want %q", tt.id, got, tt.want)
		}
		back, err := UnescapeID(got)
		if err != nil || back != tt.id {
			t.Errorf("UnescapeID(%q) = %q, %v; want %q", got, back, err, tt.id)
		}
	}
	for _, bad := range []string{"=4", "=G0", "abc=", "=zz"} {
		if _, err := UnescapeID(bad); err == nil {
			t.Errorf("UnescapeID(%q): want error", bad)
		}
	}
}

func FuzzEscapeID(f *testing.F) {
	for _, s := range []string{"", "=", "abc@host", "a.b.c", "\x00\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := EscapeID(id)
		if !keyTokenRe.MatchString(tok) {
			t.Fatalf("EscapeID(%q) = %q is not one key token", id, tok)
		}
		back, err := UnescapeID(tok)
		if err != nil || back != id {
			t.Fatalf("round trip of %q: %q, %v", id, back, err)
		}
		// Unescaping arbitrary input must not panic.
		_, _ = UnescapeID(id)
	})
}

func TestPayloadTypeString(t *testing.T) {
	for _, tt := range []struct {
		pt   PayloadType
		want string
	}{
		{PayloadType{PT: 0, Encoding: "PCMU", Clock: 8000}, "0/PCMU/8000"},
		{PayloadType{PT: 111, Encoding: "opus", Clock: 48000, Params: "2", Fmtp: "minptime=10;useinbandfec=1"}, "111/opus/48000/2/minptime=10;useinbandfec=1"},
		{PayloadType{PT: 101, Encoding: "telephone-event", Clock: 8000, Fmtp: "0-16"}, "101/telephone-event/8000//0-16"},
		{PayloadType{PT: 96, Encoding: "H264", Clock: 90000, Fmtp: "profile-level-id=42e01f/x"}, "96/H264/90000//profile-level-id=42e01f/x"},
	} {
		if got := tt.pt.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		back, err := ParsePayloadType(tt.want)
		if err != nil || back != tt.pt {
			t.Errorf("ParsePayloadType(%q) = %+v, %v; want %+v", tt.want, back, err, tt.pt)
		}
	}
	for _, bad := range []string{"", "0/PCMU", "x/PCMU/8000", "200/a/8000", "0/PCMU/-1"} {
		if _, err := ParsePayloadType(bad); err == nil {
			t.Errorf("ParsePayloadType(%q): want error", bad)
		}
	}
}
