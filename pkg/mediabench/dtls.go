package mediabench

// DTLS-SRTP load (rtp-dtls): party A plain RTP, party B a DTLS-SRTP
// endpoint (UDP/TLS/RTP/SAVP, a=setup:active), so that the proxy is the
// DTLS server of one handshake per call and then converts between RTP and
// SRTP with the handshake's keys. B's handshake (pion/dtls, the client)
// runs on B's own socket after the answer, within the call's setup; the
// proxy's CPU over the whole setup phase is reported per call (Result's
// SetupCPUusPerCall), which with this mode is mostly the handshake.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

// SRTPFromDTLS is the DTLS-SRTP mode of [Config.SRTP]: A plain RTP/AVP,
// B DTLS-SRTP with the SRTP profile of [Config.SRTPSuite].
const SRTPFromDTLS = "rtp-dtls"

// dtlsProfiles are the SRTP profiles of DTLS-SRTP by SDES suite name.
var dtlsProfiles = map[string]dtls.SRTPProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	"AES_CM_128_HMAC_SHA1_32": dtls.SRTP_AES128_CM_HMAC_SHA1_32,
	"AEAD_AES_128_GCM":        dtls.SRTP_AEAD_AES_128_GCM,
	"AEAD_AES_256_GCM":        dtls.SRTP_AEAD_AES_256_GCM,
}

// dtlsTimeout bounds one handshake.
const dtlsTimeout = 10 * time.Second

// partyCert is B's certificate (one for every call of the run: the
// proxy's work per handshake does not depend on it) and its fingerprint.
var partyCert struct {
	once sync.Once
	cert tls.Certificate
	fp   string
	err  error
}

func dtlsPartyCert() (tls.Certificate, string, error) {
	partyCert.once.Do(func() {
		c, err := selfsign.GenerateSelfSigned()
		if err != nil {
			partyCert.err = fmt.Errorf("DTLS certificate: %w", err)
			return
		}
		partyCert.cert = c
		partyCert.fp, partyCert.err = dtlscert.FingerprintOf(c.Certificate[0], "sha-256")
	})
	return partyCert.cert, partyCert.fp, partyCert.err
}

var fingerprintRe = regexp.MustCompile(`(?m)^a=fingerprint:(.*?)\r?$`)

// setupDTLSCall sets up a call whose B speaks DTLS-SRTP, does B's
// handshake with the proxy and sets both parties' destinations and B's
// SRTP contexts (A is plain).
func setupDTLSCall(ctx context.Context, c *ngclient.Client, call string, a, b *socket, plan srtpPlan) error {
	cert, fp, err := dtlsPartyCert()
	if err != nil {
		return err
	}
	offer := ngRequest("offer", call, partySDP(a.port, "RTP/AVP", ""))
	offer.Set("transport-protocol", bencode.Str("UDP/TLS/RTP/SAVP"))
	offer.Set("flags", bencode.Strs("trust-address", "SDES-off"))
	forB, toB, err := signal(ctx, c, call, offer)
	if err != nil {
		return err
	}
	m := fingerprintRe.FindStringSubmatch(toB)
	if m == nil {
		return fmt.Errorf("offer %s: B was offered no DTLS fingerprint:\n%s", call, toB)
	}
	proxyFP := m[1]
	answer := partySDP(b.port, "UDP/TLS/RTP/SAVP", "") + "a=setup:active\r\na=fingerprint:" + fp + "\r\n"
	forA, _, err := signal(ctx, c, call, ngRequest("answer", call, answer))
	if err != nil {
		return err
	}
	b.setDest(forB)
	if b.enc, b.dec, err = dtlsHandshake(ctx, b, forB, cert, proxyFP, plan.suiteB); err != nil {
		return fmt.Errorf("DTLS %s: %w", call, err)
	}
	a.setDest(forA)
	return nil
}

// dtlsHandshake runs B's side of the handshake (the client) from its
// socket to the proxy's port and returns its SRTP contexts: enc with the
// client's key, dec with the server's (RFC 5764 §4.2).
func dtlsHandshake(ctx context.Context, b *socket, port int, cert tls.Certificate, proxyFP, suite string) (enc, dec *srtp.Context, err error) {
	// A duplicate of the socket for Go's poller (an os.File would close
	// the descriptor it is given, so it gets a duplicate of its own).
	d, err := unix.Dup(b.fd)
	if err != nil {
		return nil, nil, fmt.Errorf("dup: %w", err)
	}
	f := os.NewFile(uintptr(d), "party")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	defer pc.Close() // the duplicate only; the handshake's Conn is dropped without close_notify
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !dtlscert.Matches(raw[0], proxyFP) {
			return errors.New("the proxy's certificate does not match its fingerprint")
		}
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, dtlsTimeout)
	defer cancel()
	proxy := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	conn, err := dtls.ClientWithOptions(pc, proxy,
		dtls.WithCertificates(cert),
		dtls.WithSRTPProtectionProfiles(dtlsProfiles[suite]),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verify))
	if err != nil {
		return nil, nil, err
	}
	if err := conn.HandshakeContext(hctx); err != nil {
		return nil, nil, err
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, nil, errors.New("no DTLS state")
	}
	profile := srtp.ProtectionProfile(dtlsProfiles[suite])
	kl, err := profile.KeyLen()
	if err != nil {
		return nil, nil, err
	}
	sl, err := profile.SaltLen()
	if err != nil {
		return nil, nil, err
	}
	km, err := state.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 2*(kl+sl))
	if err != nil {
		return nil, nil, err
	}
	enc, err = srtp.CreateContext(km[:kl], km[2*kl:2*kl+sl], profile)
	if err != nil {
		return nil, nil, err
	}
	dec, err = srtp.CreateContext(km[kl:2*kl], km[2*kl+sl:], profile)
	return enc, dec, err
}
