package rediscalls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestTLS: a rediss:// address reaches a TLS-only Redis whose certificate
// is checked against the CA given with UseCA (redis-sync's --redis-ca);
// without that CA the certificate is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	files := writeTestPKI(t, dir)
	r := testutil.StartRedis(t, testutil.RedisOptions{TLS: &files})
	url := "rediss://" + r.Addr + "/5"

	o, p, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := UseCA(o, files.CAFile); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	s := New(rdb, time.Hour)
	if err := s.Load(ctx); err != nil {
		t.Fatalf("over TLS with our CA: %v", err)
	}
	c := testCall("tls-call", []nodestate.PayloadType{pcmu})
	if res := apply(t, s, Op{Kind: OpWrite, Part: p, ID: c.ID, Entry: &Entry{Call: c}}); res[0] != nil {
		t.Fatal(res[0])
	}
	if e, _ := read1(t, s, p, c.ID); e == nil {
		t.Fatal("call not read back over TLS")
	}

	// The system's roots do not know our CA.
	o2, _, _ := ParseURL(url)
	o2.MaxRetries = -1
	rdb2 := redis.NewClient(o2)
	defer rdb2.Close()
	if err := rdb2.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
	// A CA for a plain address is a mistake worth saying.
	o3, _, _ := ParseURL(r.Addr + "/5")
	if err := UseCA(o3, files.CAFile); err == nil {
		t.Error("UseCA accepted a non-TLS address")
	}
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1.
func writeTestPKI(t *testing.T, dir string) testutil.RedisTLS {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rtpkit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := testutil.RedisTLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	for file, block := range map[string]*pem.Block{
		out.CAFile: {Type: "CERTIFICATE", Bytes: caDER}, out.CertFile: {Type: "CERTIFICATE", Bytes: der},
		out.KeyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
