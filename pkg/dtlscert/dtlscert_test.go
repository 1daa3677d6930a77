package dtlscert

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKeptAndRenewed: the first load makes a prime256v1 certificate valid
// from a day ago for 30 days and keeps it (key 0600, directory 0700); the
// next load reads the same one; past half its life a load replaces it.
func TestKeptAndRenewed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dtls")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	o := Options{Dir: dir, Now: func() time.Time { return now }}
	c, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Generated || c.X509.Subject.CommonName != "rtpkit" || c.X509.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("generated %v, CN %q, signature %v", c.Generated, c.X509.Subject.CommonName, c.X509.SignatureAlgorithm)
	}
	if _, ok := c.TLS.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("key %T", c.TLS.PrivateKey)
	}
	if !c.X509.NotBefore.Equal(now.Add(-24*time.Hour)) || !c.X509.NotAfter.Equal(now.Add(Lifetime)) {
		t.Errorf("valid %s to %s", c.X509.NotBefore, c.X509.NotAfter)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "key.pem"): 0o600} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, want)
		}
	}
	fp, _ := c.Fingerprint("sha-256")

	now = now.Add(Lifetime/2 - time.Hour)
	again, err := Load(o)
	if err != nil || again.Generated {
		t.Fatalf("second load: generated %v, %v", again.Generated, err)
	}
	if fp2, _ := again.Fingerprint("SHA-256"); fp2 != fp {
		t.Errorf("kept certificate changed: %s, was %s", fp2, fp)
	}

	now = now.Add(2 * time.Hour)
	renewed, err := Load(o)
	if err != nil || !renewed.Generated {
		t.Fatalf("past half its life: generated %v, %v", renewed.Generated, err)
	}
	if fp3, _ := renewed.Fingerprint("sha-256"); fp3 == fp {
		t.Error("the certificate was not replaced")
	}
}

// TestOptions: RSA and SHA-1 as rtpengine's dtls-cert-cipher and
// dtls-signature; bad values are errors; the operator's files are used as
// they are, and refused when expired or half given.
func TestOptions(t *testing.T) {
	c, err := Load(Options{Dir: t.TempDir(), Cipher: "RSA", RSAKeySize: 1024, Signature: "sha-1", CommonName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.TLS.PrivateKey.(*rsa.PrivateKey); !ok || k.N.BitLen() != 1024 || c.X509.SignatureAlgorithm != x509.SHA1WithRSA || c.X509.Subject.CommonName != "node-a" {
		t.Fatalf("key %T, signature %v, CN %q", c.TLS.PrivateKey, c.X509.SignatureAlgorithm, c.X509.Subject.CommonName)
	}
	for _, o := range []Options{{Dir: t.TempDir(), Cipher: "dsa"}, {Dir: t.TempDir(), Signature: "md5"}, {Dir: t.TempDir(), Cipher: "rsa", RSAKeySize: 512},
		{CertFile: "x.pem"}, {}} {
		if _, err := Load(o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}

	dir := t.TempDir()
	now := time.Now()
	if _, err := Load(Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	given := Options{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	g, err := Load(given)
	if err != nil || g.Generated {
		t.Fatalf("given files: %v, generated %v", err, g.Generated)
	}
	given.Now = func() time.Time { return now.Add(Lifetime + time.Hour) }
	if _, err := Load(given); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired given certificate: %v", err)
	}
}

// TestFingerprint: RFC 4572's form, for every hash rtpengine offers, and
// the digest of the DER certificate.
func TestFingerprint(t *testing.T) {
	c, err := Load(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s256 := sha256.Sum256(c.X509.Raw)
	s1 := sha1.Sum(c.X509.Raw)
	for _, tc := range []struct {
		in, name string
		bytes    int
		digest   []byte
	}{
		{"sha-256", "sha-256", 32, s256[:]}, {"SHA-1", "sha-1", 20, s1[:]}, {"sha224", "sha-224", 28, nil},
		{"SHA-384", "sha-384", 48, nil}, {"sha-512", "sha-512", 64, nil},
	} {
		fp, err := c.Fingerprint(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`^` + tc.name + ` ([0-9A-F]{2}:){` + strconv.Itoa(tc.bytes-1) + `}[0-9A-F]{2}$`)
		if !re.MatchString(fp) {
			t.Errorf("%s: %q", tc.in, fp)
		}
		if tc.digest != nil && strings.ReplaceAll(strings.TrimPrefix(fp, tc.name+" "), ":", "") != strings.ToUpper(hex.EncodeToString(tc.digest)) {
			t.Errorf("%s: not the digest of the certificate", tc.in)
		}
	}
	if _, err := c.Fingerprint("md5"); err == nil {
		t.Error("md5 taken")
	}
	if s := c.String(); !strings.Contains(s, "sha-256 ") || strings.Contains(s, "PRIVATE") {
		t.Errorf("String %q", s)
	}
}
