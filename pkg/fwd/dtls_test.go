package fwd

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/dtlscert"
)

func testCert(t testing.TB) *dtlscert.Cert {
	t.Helper()
	c, err := dtlscert.Load(dtlscert.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// demuxConn is a party's UDP socket split as a WebRTC endpoint splits
// it (RFC 7983): DTLS records to pion/dtls (it is its PacketConn), the
// rest to media.
type demuxConn struct {
	*net.UDPConn
	dtls, media chan []byte
}

func newDemux(c *net.UDPConn) *demuxConn {
	d := &demuxConn{UDPConn: c, dtls: make(chan []byte, 64), media: make(chan []byte, 64)}
	go func() {
		for {
			buf := make([]byte, 2048)
			_ = c.SetReadDeadline(time.Time{})
			n, err := c.Read(buf)
			if err != nil {
				close(d.dtls)
				return
			}
			if buf[0] >= 20 && buf[0] <= 63 {
				d.dtls <- buf[:n]
			} else {
				d.media <- buf[:n]
			}
		}
	}()
	return d
}

func (d *demuxConn) ReadFrom(p []byte) (int, net.Addr, error) {
	b, ok := <-d.dtls
	if !ok {
		return 0, nil, net.ErrClosed
	}
	return copy(p, b), nil, nil
}

func (d *demuxConn) SetReadDeadline(time.Time) error { return nil }
func (d *demuxConn) SetDeadline(time.Time) error     { return nil }

// readMedia is the next media packet at the party's socket.
func (d *demuxConn) readMedia(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-d.media:
		return b
	case <-time.After(2 * time.Second):
		t.Fatal("nothing arrived")
		return nil
	}
}

// partyDTLS is the party's side of the handshake (pion/dtls on its own
// UDP socket, to our socket at proxy), checking our certificate against
// ours; it returns the SRTP contexts the party speaks with.
func partyDTLS(t *testing.T, c *demuxConn, proxy *net.UDPAddr, cert *dtlscert.Cert, ourFP string, client bool) (enc, dec *srtp.Context, err error) {
	t.Helper()
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !dtlscert.Matches(raw[0], ourFP) {
			return errors.New("not the proxy's certificate")
		}
		return nil
	}
	opts := []dtls.Option{dtls.WithCertificates(cert.TLS), dtls.WithInsecureSkipVerify(true), dtls.WithVerifyPeerCertificate(verify),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80)}
	var conn *dtls.Conn
	if client {
		co := make([]dtls.ClientOption, len(opts))
		for i, o := range opts {
			co[i] = o
		}
		conn, err = dtls.ClientWithOptions(c, proxy, co...)
	} else {
		so := make([]dtls.ServerOption, len(opts))
		for i, o := range opts {
			so[i] = o
		}
		so = append(so, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		conn, err = dtls.ServerWithOptions(c, proxy, so...)
	}
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, nil, err
	}
	state, _ := conn.ConnectionState()
	km, err := state.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 2*(16+14))
	if err != nil {
		return nil, nil, err
	}
	ck, sk, cs, ss := km[:16], km[16:32], km[32:46], km[46:60]
	if !client {
		ck, sk, cs, ss = sk, ck, ss, cs // the party writes with the server key
	}
	if enc, err = srtp.CreateContext(ck, cs, srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
		return nil, nil, err
	}
	dec, err = srtp.CreateContext(sk, ss, srtp.ProtectionProfileAes128CmHmacSha1_80)
	return enc, dec, err
}

// TestDTLSSRTP: party A speaks DTLS-SRTP (pion/dtls, its own certificate),
// party B plain RTP; in both roles the handshake runs on A's proxy socket
// off the loop, the certificates are checked against the fingerprints,
// and then A's SRTP reaches B as plain RTP and B's RTP reaches A as SRTP
// under the exported keys.
func TestDTLSSRTP(t *testing.T) {
	ours, theirs := testCert(t), testCert(t)
	ourFP, _ := ours.Fingerprint("sha-256")
	theirFP, _ := theirs.Fingerprint("sha-256")
	for _, role := range []DTLSRole{DTLSServer, DTLSClient} {
		t.Run(map[DTLSRole]string{DTLSServer: "rtpkit passive", DTLSClient: "rtpkit active"}[role], func(t *testing.T) {
			e := newTestEngine(t, Config{DTLSCert: &ours.TLS})
			c := newCall(t)
			c.set(t, e, "dtls", 1, 2, Stream{DTLS: DTLS{Role: role, Fingerprint: theirFP}, SRTPIn: SRTPPending, SRTPOut: SRTPPending}, Stream{})
			a := newDemux(c.A)
			enc, dec, err := partyDTLS(t, a, net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, role == DTLSServer)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			plain := rtpPacket(1, 0xA1, []byte("from A"))
			p, _ := enc.EncryptRTP(nil, plain, &rtp.Header{})
			deadline := time.Now().Add(3 * time.Second)
			for { // the keys reach the loop just after the handshake
				send(t, c.A, c.paA, p)
				buf := make([]byte, 2048)
				_ = c.B.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, _, err := c.B.ReadFromUDP(buf)
				if err == nil && bytes.Equal(buf[:n], plain) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("A's SRTP did not reach B as plain RTP")
				}
				plain = rtpPacket(uint16(plain[3])+1, 0xA1, []byte("from A"))
				p, _ = enc.EncryptRTP(nil, plain, &rtp.Header{})
			}
			fromB := rtpPacket(7, 0xB2, []byte("from B"))
			send(t, c.B, c.pbA, fromB)
			got, err := dec.DecryptRTP(nil, a.readMedia(t), &rtp.Header{})
			if err != nil || !bytes.Equal(got, fromB) {
				t.Fatalf("A decrypts %x (%v), want %x", got, err, fromB)
			}
		})
	}
}

// TestDTLSWrongFingerprint: a party whose certificate is not the one its
// SDP named gets no keys: its handshake fails, it is counted, and its
// packets never pass.
func TestDTLSWrongFingerprint(t *testing.T) {
	ours, theirs, other := testCert(t), testCert(t), testCert(t)
	ourFP, _ := ours.Fingerprint("sha-256")
	otherFP, _ := other.Fingerprint("sha-256")
	e := newTestEngine(t, Config{DTLSCert: &ours.TLS})
	c := newCall(t)
	c.set(t, e, "dtlsbad", 1, 2, Stream{DTLS: DTLS{Role: DTLSServer, Fingerprint: otherFP}, SRTPIn: SRTPPending, SRTPOut: SRTPPending}, Stream{})
	if _, _, err := partyDTLS(t, newDemux(c.A), net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, true); err == nil {
		t.Fatal("a handshake with the wrong certificate succeeded")
	}
	eventually(t, "the failed handshake counted", func() bool { return e.dtlsFailures.Load() == 1 })
	send(t, party(t), c.paA, rtpPacket(1, 0xA1, []byte("unkeyed"))) // pion closed A's socket
	expectNothing(t, c.B, 600*time.Millisecond)
}

// TestDTLSStrangerFirst: a stranger's handshake reaching a passive
// stream first (its certificate is not the party's) fails and is counted,
// and does not block the party's own handshake a moment later.
func TestDTLSStrangerFirst(t *testing.T) {
	ours, theirs, stranger := testCert(t), testCert(t), testCert(t)
	ourFP, _ := ours.Fingerprint("sha-256")
	theirFP, _ := theirs.Fingerprint("sha-256")
	e := newTestEngine(t, Config{DTLSCert: &ours.TLS})
	c := newCall(t)
	c.set(t, e, "dtlsfirst", 1, 2, Stream{DTLS: DTLS{Role: DTLSServer, Fingerprint: theirFP}, SRTPIn: SRTPPending, SRTPOut: SRTPPending}, Stream{})
	if _, _, err := partyDTLS(t, newDemux(party(t)), net.UDPAddrFromAddrPort(c.paA), stranger, ourFP, true); err == nil {
		t.Fatal("the stranger's handshake succeeded")
	}
	eventually(t, "the stranger's handshake counted", func() bool { return e.dtlsFailures.Load() == 1 })
	time.Sleep(dtlsRetry) // the least time between two handshakes of a stream
	a := newDemux(c.A)
	enc, _, err := partyDTLS(t, a, net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, true)
	if err != nil {
		t.Fatalf("the party's handshake after the stranger's: %v", err)
	}
	plain := rtpPacket(1, 0xA1, []byte("after a stranger"))
	p, _ := enc.EncryptRTP(nil, plain, &rtp.Header{})
	eventually(t, "the party's SRTP at B", func() bool {
		send(t, c.A, c.paA, p)
		buf := make([]byte, 2048)
		_ = c.B.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := c.B.ReadFromUDP(buf)
		return err == nil && bytes.Equal(buf[:n], plain)
	})
}

// TestDTLSSocketHandedOn: a socket handed on to a new call (the stream
// retired and set again under the same id and descriptor, as rtp-fwd does
// when portd reuses a port) gets a new DTLS session, even when the new
// party's certificate is the old one's (the same client again): the old
// call's session, which never saw a close, takes none of its records.
func TestDTLSSocketHandedOn(t *testing.T) {
	ours, theirs := testCert(t), testCert(t)
	ourFP, _ := ours.Fingerprint("sha-256")
	theirFP, _ := theirs.Fingerprint("sha-256")
	e := newTestEngine(t, Config{DTLSCert: &ours.TLS})
	c := newCall(t)
	s := Stream{DTLS: DTLS{Role: DTLSServer, Fingerprint: theirFP}, SRTPIn: SRTPPending, SRTPOut: SRTPPending}
	c.set(t, e, "first", 1, 2, s, Stream{})
	if _, _, err := partyDTLS(t, newDemux(party(t)), net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, true); err != nil {
		t.Fatalf("the first call's handshake: %v", err)
	}
	e.Remove(1)
	e.Remove(2)
	c.A = party(t) // the new call's party, with the same certificate
	c.set(t, e, "second", 1, 2, s, Stream{})
	type result struct {
		enc *srtp.Context
		err error
	}
	done := make(chan result, 1)
	a := newDemux(c.A)
	go func() {
		enc, _, err := partyDTLS(t, a, net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, true)
		done <- result{enc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the second call's handshake on the same socket hangs")
	}
	if r.err != nil {
		t.Fatalf("the second call's handshake on the same socket: %v", r.err)
	}
	enc := r.enc
	plain := rtpPacket(1, 0xA1, []byte("second call"))
	p, _ := enc.EncryptRTP(nil, plain, &rtp.Header{})
	eventually(t, "the second call's SRTP at B", func() bool {
		send(t, c.A, c.paA, p)
		buf := make([]byte, 2048)
		_ = c.B.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := c.B.ReadFromUDP(buf)
		return err == nil && bytes.Equal(buf[:n], plain)
	})
}

// TestDTLSHandshakeBeforeFingerprint: an answerer that starts its
// handshake as soon as it answered reaches a stream that still waits as
// the server for the answer (no fingerprint yet): its records wait for
// the fingerprint, and the handshake completes once it is set, instead of
// the party being refused.
func TestDTLSHandshakeBeforeFingerprint(t *testing.T) {
	ours, theirs := testCert(t), testCert(t)
	ourFP, _ := ours.Fingerprint("sha-256")
	theirFP, _ := theirs.Fingerprint("sha-256")
	e := newTestEngine(t, Config{DTLSCert: &ours.TLS})
	c := newCall(t)
	pending := Stream{DTLS: DTLS{Role: DTLSServer}, SRTPIn: SRTPPending, SRTPOut: SRTPPending}
	c.set(t, e, "early", 1, 2, pending, Stream{})
	done := make(chan error, 1)
	a := newDemux(c.A)
	go func() {
		_, _, err := partyDTLS(t, a, net.UDPAddrFromAddrPort(c.paA), theirs, ourFP, true)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the answer on its way to the worker
	pending.DTLS.Fingerprint = theirFP
	c.set(t, e, "early", 1, 2, pending, Stream{})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the handshake that began before the fingerprint: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handshake that began before the fingerprint hangs")
	}
	if n := e.dtlsFailures.Load(); n != 0 {
		t.Fatalf("%d failed handshakes", n)
	}
}
