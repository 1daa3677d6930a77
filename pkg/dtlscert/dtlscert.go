// Package dtlscert is the node's DTLS certificate for DTLS-SRTP (RFC
// 5763): a self-signed certificate that the SDP names by its fingerprint
// (a=fingerprint), made once and kept in the state directory, or read
// from files the operator gives. Like rtpengine it is an ECDSA prime256v1
// key by default (or RSA), signed with SHA-256 (or SHA-1), valid from a
// day ago for 30 days; a kept certificate with less than half of that left
// is replaced at load.
//
// The private key is written 0600 in a 0700 directory and never printed:
// [Cert.String] names the certificate by its SHA-256 fingerprint.
package dtlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	// The hashes a fingerprint may use.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Lifetime is how long a generated certificate is valid (rtpengine's 30
// days); one with less than half of it left is replaced at load.
const Lifetime = 30 * 24 * time.Hour

// Options say where the certificate comes from and how a new one is made
// (rtpengine's dtls-cert-cipher, dtls-rsa-key-size, dtls-signature).
type Options struct {
	// CertFile and KeyFile, both or neither: PEM files the operator
	// provides; used as they are (no expiry check beyond a warning's
	// worth: an expired certificate is refused).
	CertFile, KeyFile string
	// Dir is where a generated certificate is kept (cert.pem, key.pem);
	// created 0700 if missing.
	Dir string
	// Cipher is "prime256v1" (the default) or "rsa"; RSAKeySize its size
	// in bits (default 2048).
	Cipher     string
	RSAKeySize int
	// Signature is "sha-256" (the default) or "sha-1".
	Signature string
	// CommonName of a generated certificate (default "rtpkit").
	CommonName string
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Cert is the loaded certificate.
type Cert struct {
	// TLS is the certificate and key for a DTLS library (pion/dtls takes
	// tls.Certificate).
	TLS tls.Certificate
	// X509 is the parsed certificate.
	X509 *x509.Certificate
	// Generated reports whether this load made it.
	Generated bool
}

// Load returns the node's certificate: the operator's files, else the one
// kept in Dir if it has at least half its lifetime left, else a new one
// written there.
func Load(o Options) (*Cert, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		return nil, errors.New("dtlscert: give both the certificate and the key file, or neither")
	case o.CertFile != "":
		c, err := readPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		if now().After(c.X509.NotAfter) {
			return nil, fmt.Errorf("dtlscert: %s expired on %s", o.CertFile, c.X509.NotAfter.Format(time.DateOnly))
		}
		return c, nil
	case o.Dir == "":
		return nil, errors.New("dtlscert: no directory to keep the certificate in")
	}
	certFile, keyFile := filepath.Join(o.Dir, "cert.pem"), filepath.Join(o.Dir, "key.pem")
	// A kept certificate that is missing, damaged or half expired is
	// replaced: it is ours to make. ng-ctl (which writes its fingerprint
	// into SDP) and rtp-fwd (which does the handshakes) load it alike: a
	// lock on the directory makes the first one make it and the other read
	// that one.
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("dtlscert: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(o.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dtlscert: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("dtlscert: lock %s: %w", o.Dir, err)
	}
	if c, err := readPair(certFile, keyFile); err == nil && c.X509.NotAfter.Sub(now()) > Lifetime/2 {
		return c, nil
	}
	c, certPEM, keyPEM, err := generate(o, now())
	if err != nil {
		return nil, err
	}
	if err := writeFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certFile, certPEM, 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// readPair reads a PEM certificate and key.
func readPair(certFile, keyFile string) (*Cert, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("dtlscert: %w", err)
	}
	x, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("dtlscert: %s: %w", certFile, err)
	}
	return &Cert{TLS: pair, X509: x}, nil
}

// generate makes a self-signed certificate as rtpengine does.
func generate(o Options, now time.Time) (*Cert, []byte, []byte, error) {
	var key crypto.Signer
	var err error
	switch strings.ToLower(o.Cipher) {
	case "", "prime256v1", "ec-prime256v1":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		bits := o.RSAKeySize
		if bits == 0 {
			bits = 2048
		}
		if bits < 1024 || bits > 8192 {
			return nil, nil, nil, fmt.Errorf("dtlscert: RSA key size %d is not 1024 to 8192", bits)
		}
		key, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		return nil, nil, nil, fmt.Errorf("dtlscert: cipher %q is not prime256v1 or rsa", o.Cipher)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: new key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: serial: %w", err)
	}
	cn := o.CommonName
	if cn == "" {
		cn = "rtpkit"
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(Lifetime),
	}
	switch sig := strings.ToLower(o.Signature); {
	case sig == "" || sig == "sha-256" || sig == "sha256":
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.SignatureAlgorithm = x509.SHA256WithRSA
		} else {
			tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
		}
	case sig == "sha-1" || sig == "sha1":
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.SignatureAlgorithm = x509.SHA1WithRSA
		} else {
			tmpl.SignatureAlgorithm = x509.ECDSAWithSHA1
		}
	default:
		return nil, nil, nil, fmt.Errorf("dtlscert: signature %q is not sha-256 or sha-1", o.Signature)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: sign: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: %w", err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dtlscert: %w", err)
	}
	return &Cert{TLS: pair, X509: x, Generated: true}, certPEM, keyPEM, nil
}

// writeFile writes data to path through a temporary file and a rename,
// so a crash never leaves half a key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("dtlscert: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode passes the umask
		return fmt.Errorf("dtlscert: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("dtlscert: %w", err)
	}
	return nil
}

// hashes are the fingerprint hash functions rtpengine offers, by their SDP
// names (RFC 4572), in its order.
var hashes = []struct {
	name string
	hash crypto.Hash
}{
	{"sha-256", crypto.SHA256}, {"sha-1", crypto.SHA1}, {"sha-224", crypto.SHA224},
	{"sha-384", crypto.SHA384}, {"sha-512", crypto.SHA512},
}

// HashName returns the SDP name of a fingerprint hash given as rtpengine's
// DTLS-fingerprint takes it (SHA-256, sha-1, ...); false if unknown.
func HashName(s string) (string, bool) {
	for _, h := range hashes {
		if strings.EqualFold(s, h.name) || strings.EqualFold(s, strings.ReplaceAll(h.name, "-", "")) {
			return h.name, true
		}
	}
	return "", false
}

// Fingerprint is the value of an a=fingerprint attribute for the
// certificate: the hash's SDP name and the digest of the DER certificate
// as upper-case hex pairs joined by colons (RFC 4572 §5).
func (c *Cert) Fingerprint(hash string) (string, error) {
	return FingerprintOf(c.X509.Raw, hash)
}

// FingerprintOf is the a=fingerprint value of a DER certificate (a
// peer's, to check it against the fingerprint its SDP gave).
func FingerprintOf(der []byte, hash string) (string, error) {
	name, ok := HashName(hash)
	if !ok {
		return "", fmt.Errorf("dtlscert: fingerprint hash %q is not one of sha-1, sha-224, sha-256, sha-384, sha-512", hash)
	}
	for _, h := range hashes {
		if h.name != name {
			continue
		}
		d := h.hash.New()
		d.Write(der)
		sum := strings.ToUpper(hex.EncodeToString(d.Sum(nil)))
		var b strings.Builder
		b.WriteString(name)
		b.WriteByte(' ')
		for i := 0; i < len(sum); i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(sum[i : i+2])
		}
		return b.String(), nil
	}
	panic("unreachable")
}

// Matches reports whether a DER certificate has the fingerprint an SDP
// gave ("sha-256 AB:CD:…"; the hash name and hex in any case).
func Matches(der []byte, fingerprint string) bool {
	hash, value, ok := strings.Cut(strings.TrimSpace(fingerprint), " ")
	if !ok {
		return false
	}
	got, err := FingerprintOf(der, hash)
	if err != nil {
		return false
	}
	_, gotValue, _ := strings.Cut(got, " ")
	return strings.EqualFold(gotValue, strings.TrimSpace(value))
}

// String names the certificate for logs (never the key).
func (c *Cert) String() string {
	fp, _ := c.Fingerprint("sha-256")
	return fmt.Sprintf("DTLS certificate %s, valid until %s", fp, c.X509.NotAfter.UTC().Format(time.DateOnly))
}
