package nodestate

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var keyTokenRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestKeyToken: whatever the id, its key token is 32 hex digits, the same
// for the same id and different for different ids, so that the key and
// its write subject stay short (a Call-ID of 3000 dots used to make a
// 9000-byte key, beyond the bus's 4 KiB control line).
func TestKeyToken(t *testing.T) {
	ids := []string{"", "=", "abc-DEF_123", "a84b4c76e66710@pc33.atlanta.example.com", "a b*>", "\xff\x00", "日本",
		strings.Repeat(".", 3000), strings.Repeat("a", 3000), strings.Repeat(".", MaxIDLen), strings.Repeat(".", MaxIDLen-1)}
	seen := map[string]string{}
	for _, id := range ids {
		tok := KeyToken(id)
		if !keyTokenRe.MatchString(tok) {
			t.Errorf("KeyToken(%.20q…) = %q: not 32 hex digits", id, tok)
		}
		if KeyToken(id) != tok {
			t.Errorf("KeyToken(%.20q…) differs between calls", id)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("ids %.20q and %.20q share token %s", id, other, tok)
		}
		seen[tok] = id
		if subj := "$KV." + BucketName(strings.Repeat("n", 64)) + "." + CallKind + "." + tok; len(subj) > 200 {
			t.Errorf("write subject of %.20q is %d bytes", id, len(subj))
		}
	}
}

// TestEntryID: the id of a stored record or delete marker comes from its
// body, checked against the key token.
func TestEntryID(t *testing.T) {
	long := strings.Repeat(".", 3000)
	rec := func(id string) []byte {
		b, err := marshalCall(&Call{Schema: CallSchema, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name    string
		tok     string
		deleted bool
		raw     []byte
		want    string
		wantErr bool
	}{
		{"record", KeyToken("c1@host"), false, rec("c1@host"), "c1@host", false},
		{"long record", KeyToken(long), false, rec(long), long, false},
		{"escaped id", KeyToken("a\"b\\c\x01"), false, rec("a\"b\\c\x01"), "a\"b\\c\x01", false},
		{"non-ASCII id", KeyToken("日本"), false, rec("日本"), "日本", false},
		{"other field order", KeyToken("x"), false, []byte(`{"owner":"n","id":"x","schema":1}`), "x", false},
		{"empty id", KeyToken(""), false, rec(""), "", false},
		{"delete marker", KeyToken("c1@host"), true, []byte("c1@host"), "c1@host", false},
		{"delete marker of long id", KeyToken(long), true, []byte(long), long, false},
		{"delete marker without id", KeyToken("c1"), true, nil, "", true},
		{"record without id", KeyToken(""), false, []byte(`{"schema":1}`), "", true},
		{"id of another key", KeyToken("c2"), false, rec("c1"), "", true},
		{"not JSON", KeyToken("c1"), false, []byte(`{"schema":1,"id":`), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := entryID(tt.tok, tt.deleted, tt.raw)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("entryID = %.20q, %v; want %.20q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// FuzzRecordID: the id read from a record is the id encoding/json reads.
func FuzzRecordID(f *testing.F) {
	for _, s := range []string{"", "=", "abc@host", "a.b.c", "\x00\xff", "日本", `a"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		raw, err := marshalCall(&Call{Schema: CallSchema, ID: id})
		if err != nil {
			t.Skip("an id the encoder refuses is not a record to read back")
		}
		var c Call
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		got, err := recordID(raw)
		if err != nil || got != c.ID {
			t.Fatalf("recordID of %q = %q, %v; want %q", id, got, err, c.ID)
		}
		_, _ = recordID([]byte(id))
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
