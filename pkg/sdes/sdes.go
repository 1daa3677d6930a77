// Package sdes reads and writes SDP Security Descriptions (RFC 4568): the
// a=crypto attribute that carries SRTP master keys in the SDP, with the
// crypto suites rtpengine 10.5 knows, in its order.
//
// It holds no call state and does no SRTP itself: the call model picks the
// suites and keys of each side, and the packet path builds its contexts
// from the keys this package parses or makes. Key material is never
// printed by this package's String methods (see [Crypto.String]): write
// an attribute with [Crypto.Attribute] only into SDP.
package sdes

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Suite is an SRTP crypto suite as SDES names it.
type Suite struct {
	// Name is the suite's name in a=crypto.
	Name string
	// KeyLen and SaltLen are the master key and master salt lengths in
	// bytes.
	KeyLen, SaltLen int
	// SRTPTagLen and SRTCPTagLen are the authentication tag lengths in
	// bytes (0 for the AEAD suites, whose GCM tag is part of the cipher
	// text).
	SRTPTagLen, SRTCPTagLen int
	// AEAD marks the AES-GCM suites (RFC 7714).
	AEAD bool
	// F8 marks the AES-f8 suites; Null those that do not encrypt.
	F8, Null bool
}

// MaxLifetime is the largest key lifetime (in packets) an a=crypto may
// give: 2^48, SRTP's limit, as rtpengine checks it.
const MaxLifetime = 1 << 48

// suites are rtpengine 10.5's suites in its order: the order it offers
// them in.
var suites = []Suite{
	{Name: "AEAD_AES_256_GCM", KeyLen: 32, SaltLen: 12, AEAD: true},
	{Name: "AEAD_AES_128_GCM", KeyLen: 16, SaltLen: 12, AEAD: true},
	{Name: "AES_256_CM_HMAC_SHA1_80", KeyLen: 32, SaltLen: 14, SRTPTagLen: 10, SRTCPTagLen: 10},
	{Name: "AES_256_CM_HMAC_SHA1_32", KeyLen: 32, SaltLen: 14, SRTPTagLen: 4, SRTCPTagLen: 10},
	{Name: "AES_192_CM_HMAC_SHA1_80", KeyLen: 24, SaltLen: 14, SRTPTagLen: 10, SRTCPTagLen: 10},
	{Name: "AES_192_CM_HMAC_SHA1_32", KeyLen: 24, SaltLen: 14, SRTPTagLen: 4, SRTCPTagLen: 10},
	{Name: "AES_CM_128_HMAC_SHA1_80", KeyLen: 16, SaltLen: 14, SRTPTagLen: 10, SRTCPTagLen: 10},
	{Name: "AES_CM_128_HMAC_SHA1_32", KeyLen: 16, SaltLen: 14, SRTPTagLen: 4, SRTCPTagLen: 10},
	{Name: "F8_128_HMAC_SHA1_80", KeyLen: 16, SaltLen: 14, SRTPTagLen: 10, SRTCPTagLen: 10, F8: true},
	{Name: "F8_128_HMAC_SHA1_32", KeyLen: 16, SaltLen: 14, SRTPTagLen: 4, SRTCPTagLen: 10, F8: true},
	{Name: "NULL_HMAC_SHA1_80", KeyLen: 16, SaltLen: 14, SRTPTagLen: 10, SRTCPTagLen: 10, Null: true},
	{Name: "NULL_HMAC_SHA1_32", KeyLen: 16, SaltLen: 14, SRTPTagLen: 4, SRTCPTagLen: 10, Null: true},
}

// Suites returns the suites in rtpengine's order. The caller must not
// change them.
func Suites() []*Suite {
	out := make([]*Suite, len(suites))
	for i := range suites {
		out[i] = &suites[i]
	}
	return out
}

// SuiteByName finds a suite by its a=crypto name (exact, as rtpengine
// matches it); nil if unknown.
func SuiteByName(name string) *Suite {
	for i := range suites {
		if suites[i].Name == name {
			return &suites[i]
		}
	}
	return nil
}

// Crypto is one a=crypto attribute: a tag, a suite and one master key with
// its parameters, and the session parameters rtpengine reads.
type Crypto struct {
	Tag   uint32
	Suite *Suite
	// Key and Salt are the master key and salt (Suite.KeyLen and
	// Suite.SaltLen bytes).
	Key, Salt []byte
	// Lifetime is the key's lifetime in packets (0: not given).
	Lifetime uint64
	// MKI is the master key identifier as it goes on the wire (its length
	// is the MKI length); nil when the attribute gives none.
	MKI []byte
	// The session parameters RFC 4568 §6.3 defines that SRTP acts on.
	UnencryptedSRTP, UnencryptedSRTCP, UnauthenticatedSRTP bool
}

// Errors of Parse, wrapped with the detail.
var (
	ErrSyntax       = errors.New("a=crypto: bad syntax")
	ErrUnknownSuite = errors.New("a=crypto: unknown crypto suite")
	ErrKey          = errors.New("a=crypto: bad key parameters")
)

// maxMKILen is the longest MKI rtpengine takes (bytes).
const maxMKILen = 128

// Parse reads the value of an a=crypto attribute (what follows
// "a=crypto:"): "TAG SUITE inline:KEY||SALT[|LIFETIME][|MKI:LEN] [PARAMS]".
// Like rtpengine it takes the base64 key and salt with or without their
// padding, a lifetime as a number or 2^N, and only the inline key method;
// of several key parameters (";"-separated) it reads the first.
func Parse(value string) (Crypto, error) {
	var c Crypto
	fields := strings.Fields(value)
	if len(fields) < 3 {
		return c, fmt.Errorf("%w: want tag, suite and key parameters", ErrSyntax)
	}
	tag, err := strconv.ParseUint(fields[0], 10, 32)
	if err != nil || len(fields[0]) > 9 {
		return c, fmt.Errorf("%w: tag %q", ErrSyntax, fields[0])
	}
	c.Tag = uint32(tag)
	if c.Suite = SuiteByName(fields[1]); c.Suite == nil {
		return c, fmt.Errorf("%w: %q", ErrUnknownSuite, fields[1])
	}
	kp, _, _ := strings.Cut(fields[2], ";")
	method, info, ok := strings.Cut(kp, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return c, fmt.Errorf("%w: key method %q is not inline", ErrKey, method)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return c, fmt.Errorf("%w: too many '|' parts", ErrKey)
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil || len(raw) != c.Suite.KeyLen+c.Suite.SaltLen {
		return c, fmt.Errorf("%w: key and salt are not %d bytes of base64", ErrKey, c.Suite.KeyLen+c.Suite.SaltLen)
	}
	c.Key, c.Salt = raw[:c.Suite.KeyLen:c.Suite.KeyLen], raw[c.Suite.KeyLen:]
	for _, p := range parts[1:] {
		if v, n, isMKI := strings.Cut(p, ":"); isMKI {
			if c.MKI != nil {
				return c, fmt.Errorf("%w: two MKIs", ErrKey)
			}
			if c.MKI, err = parseMKI(v, n); err != nil {
				return c, err
			}
			continue
		}
		if c.Lifetime != 0 || c.MKI != nil {
			return c, fmt.Errorf("%w: lifetime %q out of place", ErrKey, p)
		}
		if c.Lifetime, err = parseLifetime(p); err != nil {
			return c, err
		}
	}
	for _, f := range fields[3:] {
		switch f {
		case "UNENCRYPTED_SRTP":
			c.UnencryptedSRTP = true
		case "UNENCRYPTED_SRTCP":
			c.UnencryptedSRTCP = true
		case "UNAUTHENTICATED_SRTP":
			c.UnauthenticatedSRTP = true
		}
	}
	return c, nil
}

func parseLifetime(s string) (uint64, error) {
	var v uint64
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		e, err := strconv.ParseUint(exp, 10, 8)
		if err != nil || e == 0 || e > 48 {
			return 0, fmt.Errorf("%w: lifetime %q", ErrKey, s)
		}
		v = 1 << e
	} else {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: lifetime %q", ErrKey, s)
		}
		v = n
	}
	if v == 0 || v > MaxLifetime {
		return 0, fmt.Errorf("%w: lifetime %q is not 1 to 2^48", ErrKey, s)
	}
	return v, nil
}

// parseMKI reads "VALUE:LENGTH": the value as a decimal number, written
// big-endian into LENGTH bytes.
func parseMKI(value, length string) ([]byte, error) {
	v, err1 := strconv.ParseUint(value, 10, 64)
	n, err2 := strconv.Atoi(length)
	if err1 != nil || err2 != nil || n < 1 || n > maxMKILen || (n < 8 && v>>(8*n) != 0) {
		return nil, fmt.Errorf("%w: MKI %q:%q", ErrKey, value, length)
	}
	mki := make([]byte, n)
	for i := 0; i < 8 && i < n; i++ {
		mki[n-1-i] = byte(v >> (8 * i))
	}
	return mki, nil
}

// New makes a Crypto of suite s with a random master key and salt, read
// from r (crypto/rand.Reader when nil).
func New(tag uint32, s *Suite, r io.Reader) (Crypto, error) {
	if r == nil {
		r = rand.Reader
	}
	buf := make([]byte, s.KeyLen+s.SaltLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Crypto{}, fmt.Errorf("sdes: new %s key: %w", s.Name, err)
	}
	return Crypto{Tag: tag, Suite: s, Key: buf[:s.KeyLen:s.KeyLen], Salt: buf[s.KeyLen:]}, nil
}

// FormatOptions are how [Crypto.Attribute] writes the key parameters
// (rtpengine's SDES-pad and SDES-lifetime flags).
type FormatOptions struct {
	// Pad keeps the base64 padding ("="), which rtpengine drops by default.
	Pad bool
	// Lifetime writes "|2^31" (rtpengine writes no other lifetime, and
	// not the one it read).
	Lifetime bool
}

// Attribute writes the attribute value (what follows "a=crypto:") as
// rtpengine writes it. It contains the key: it belongs in SDP only.
func (c Crypto) Attribute(o FormatOptions) string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(c.Tag), 10))
	b.WriteByte(' ')
	b.WriteString(c.Suite.Name)
	b.WriteString(" inline:")
	enc := base64.StdEncoding.EncodeToString(append(append(make([]byte, 0, len(c.Key)+len(c.Salt)), c.Key...), c.Salt...))
	if !o.Pad {
		enc = strings.TrimRight(enc, "=")
	}
	b.WriteString(enc)
	// Like rtpengine, a lifetime read from the peer is not passed on.
	if o.Lifetime {
		b.WriteString("|2^31")
	}
	if c.MKI != nil {
		var v uint64
		for _, x := range c.MKI[max(0, len(c.MKI)-8):] {
			v = v<<8 | uint64(x)
		}
		b.WriteString("|" + strconv.FormatUint(v, 10) + ":" + strconv.Itoa(len(c.MKI)))
	}
	for _, p := range []struct {
		on   bool
		name string
	}{{c.UnencryptedSRTP, "UNENCRYPTED_SRTP"}, {c.UnencryptedSRTCP, "UNENCRYPTED_SRTCP"}, {c.UnauthenticatedSRTP, "UNAUTHENTICATED_SRTP"}} {
		if p.on {
			b.WriteString(" " + p.name)
		}
	}
	return b.String()
}

// String describes c for logs without its key material.
func (c Crypto) String() string {
	name := "?"
	if c.Suite != nil {
		name = c.Suite.Name
	}
	return fmt.Sprintf("crypto:%d %s inline:[%d-byte key hidden]", c.Tag, name, len(c.Key)+len(c.Salt))
}

// GoString keeps %#v from printing the key too.
func (c Crypto) GoString() string { return "sdes.Crypto{" + c.String() + "}" }
