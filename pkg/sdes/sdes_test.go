package sdes

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		suite   string
		keyLen  int
		life    uint64
		mki     []byte
		flags   [3]bool
		wantErr error
	}{
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv", suite: "AES_CM_128_HMAC_SHA1_80", keyLen: 16},
		{in: "3 AES_256_CM_HMAC_SHA1_80 inline:8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw==", suite: "AES_256_CM_HMAC_SHA1_80", keyLen: 32},
		{in: "3 AES_256_CM_HMAC_SHA1_80 inline:8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw", suite: "AES_256_CM_HMAC_SHA1_80", keyLen: 32},
		{in: "2 AES_CM_128_HMAC_SHA1_32 inline:VAzLKvoE3jG9cdH/AZsl/ZqWNXrUzyM4Gw6chrFr|2^20|1:4", suite: "AES_CM_128_HMAC_SHA1_32", keyLen: 16, life: 1 << 20, mki: []byte{0, 0, 0, 1}},
		{in: "2 AES_CM_128_HMAC_SHA1_32 inline:VAzLKvoE3jG9cdH/AZsl/ZqWNXrUzyM4Gw6chrFr|258:2 UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP FEC_ORDER=FEC_SRTP", suite: "AES_CM_128_HMAC_SHA1_32", keyLen: 16, mki: []byte{1, 2}, flags: [3]bool{false, true, true}},
		{in: "9 AES_CM_128_HMAC_SHA1_80 INLINE:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|1000 UNENCRYPTED_SRTP", suite: "AES_CM_128_HMAC_SHA1_80", keyLen: 16, life: 1000, flags: [3]bool{true, false, false}},
		{in: "1 AES_CM_128_HMAC_SHA1_80", wantErr: ErrSyntax},
		{in: "x AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv", wantErr: ErrSyntax},
		{in: "1234567890 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv", wantErr: ErrSyntax},
		{in: "1 AES_CM_128_HMAC_SHA1_99 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv", wantErr: ErrUnknownSuite},
		{in: "1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key", wantErr: ErrKey},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isb", wantErr: ErrKey},
		{in: "1 AES_256_CM_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv", wantErr: ErrKey},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|2^49", wantErr: ErrKey},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|0", wantErr: ErrKey},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|256:1", wantErr: ErrKey},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|1:4|2^20", wantErr: ErrKey},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c, err := Parse(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Suite.Name != tc.suite || len(c.Key) != tc.keyLen || len(c.Salt) != c.Suite.SaltLen || c.Lifetime != tc.life || !bytes.Equal(c.MKI, tc.mki) ||
				[3]bool{c.UnencryptedSRTP, c.UnencryptedSRTCP, c.UnauthenticatedSRTP} != tc.flags {
				t.Errorf("got %v life %d mki %x flags %v %v %v", c, c.Lifetime, c.MKI, c.UnencryptedSRTP, c.UnencryptedSRTCP, c.UnauthenticatedSRTP)
			}
		})
	}
}

// TestAttribute: rtpengine's form: padding dropped unless asked for, a
// lifetime only as the flag's 2^31, the MKI as value:length, the session
// parameters it knows.
func TestAttribute(t *testing.T) {
	c, err := Parse("3 AES_256_CM_HMAC_SHA1_80 inline:8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw==|2^20|258:2 UNENCRYPTED_SRTCP")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    FormatOptions
		want string
	}{
		{FormatOptions{}, "3 AES_256_CM_HMAC_SHA1_80 inline:8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw|258:2 UNENCRYPTED_SRTCP"},
		{FormatOptions{Pad: true, Lifetime: true}, "3 AES_256_CM_HMAC_SHA1_80 inline:8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw==|2^31|258:2 UNENCRYPTED_SRTCP"},
	} {
		if got := c.Attribute(tc.o); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.o, got, tc.want)
		}
	}
}

// TestNewEverySuite: new keys of every suite have its lengths, differ,
// and survive a round trip through the attribute.
func TestNewEverySuite(t *testing.T) {
	if n := len(Suites()); n != 12 {
		t.Fatalf("%d suites, want rtpengine's 12", n)
	}
	for i, s := range Suites() {
		a, err := New(uint32(i+1), s, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := New(uint32(i+1), s, nil)
		if len(a.Key) != s.KeyLen || len(a.Salt) != s.SaltLen || bytes.Equal(a.Key, b.Key) {
			t.Fatalf("%s: key %d salt %d bytes, or two equal keys", s.Name, len(a.Key), len(a.Salt))
		}
		back, err := Parse(a.Attribute(FormatOptions{}))
		if err != nil || back.Suite != s || !bytes.Equal(back.Key, a.Key) || !bytes.Equal(back.Salt, a.Salt) {
			t.Fatalf("%s: round trip: %v", s.Name, err)
		}
	}
}

// TestKeyNeverPrinted: the ways a Crypto ends up in a log leave the key
// out.
func TestKeyNeverPrinted(t *testing.T) {
	c, err := Parse("1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "cJOJ") || strings.Contains(s, fmt.Sprint(c.Key[0])+" ") {
			t.Errorf("key material in %q", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|2^20|1:4 UNENCRYPTED_SRTP")
	f.Add("5 AEAD_AES_256_GCM inline:ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2VzYWx0c2FsdA==")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(in)
		if err != nil {
			return
		}
		if len(c.Key) != c.Suite.KeyLen || len(c.Salt) != c.Suite.SaltLen || len(c.MKI) > maxMKILen {
			t.Fatalf("%q parsed to bad lengths", in)
		}
		back, err := Parse(c.Attribute(FormatOptions{Pad: true}))
		if err != nil || !bytes.Equal(back.Key, c.Key) || !bytes.Equal(back.Salt, c.Salt) || !bytes.Equal(back.MKI, c.MKI) || back.Tag != c.Tag {
			t.Fatalf("%q: round trip %v", in, err)
		}
	})
}
