package fwd

import (
	"bytes"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/srtpctx"
)

// testKey is a random key of profile p, with the contexts a party uses to
// speak with it: pion's, or pkg/srtpctx's for the profiles pion lacks.
func testKey(t testing.TB, p srtp.ProtectionProfile) (SRTP, srtpContext, srtpContext) {
	return testKeyNoAuth(t, p, false)
}

// testKeyNoAuth is testKey with UNAUTHENTICATED_SRTP if noAuth.
func testKeyNoAuth(t testing.TB, p srtp.ProtectionProfile, noAuth bool) (SRTP, srtpContext, srtpContext) {
	t.Helper()
	info := profiles[p]
	key, salt := make([]byte, info.keyLen), make([]byte, info.saltLen)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	k, err := NewSRTP(p, key, salt, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.NoAuthSRTP = noAuth
	if k.ours() {
		cfg := srtpctx.Config{Cipher: info.cipher, Key: key, Salt: salt, TagLen: info.tagLen, NoAuthRTP: noAuth}
		enc, err := srtpctx.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := srtpctx.New(cfg)
		return k, enc, dec
	}
	enc, err := srtp.CreateContext(key, salt, p)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := srtp.CreateContext(key, salt, p)
	return k, enc, dec
}

func encryptRTP(t testing.TB, ctx srtpContext, p []byte) []byte {
	t.Helper()
	out, err := ctx.EncryptRTP(nil, p, &rtp.Header{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readUDP(t testing.TB, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("nothing arrived: %v", err)
	}
	return buf[:n]
}

// TestSRTPBridge: party A speaks SRTP (its own key towards us, ours
// towards it), party B plain RTP; each profile pion has and those
// pkg/srtpctx adds, and SRTP without tags. What B gets is
// A's packet as A built it before encrypting; what A gets decrypts with
// our key to B's packet; muxed SRTCP goes through too.
func TestSRTPBridge(t *testing.T) {
	for _, tc := range []struct {
		p      srtp.ProtectionProfile
		noAuth bool
	}{
		{p: srtp.ProtectionProfileAes128CmHmacSha1_80}, {p: srtp.ProtectionProfileAes128CmHmacSha1_32},
		{p: srtp.ProtectionProfileAes256CmHmacSha1_80}, {p: srtp.ProtectionProfileAeadAes128Gcm}, {p: srtp.ProtectionProfileAeadAes256Gcm},
		{p: ProfileAes192CmHmacSha1_80}, {p: ProfileAes192CmHmacSha1_32}, {p: ProfileF8128HmacSha1_80}, {p: ProfileF8128HmacSha1_32},
		{p: srtp.ProtectionProfileAes128CmHmacSha1_80, noAuth: true},
	} {
		p := tc.p
		name := SRTP{Profile: p}.String()
		if tc.noAuth {
			name += "/unauthenticated"
		}
		t.Run(name, func(t *testing.T) {
			e := newTestEngine(t, Config{})
			c := newCall(t)
			fromA, aEnc, _ := testKeyNoAuth(t, p, tc.noAuth)
			toA, _, aDec := testKeyNoAuth(t, p, tc.noAuth)
			c.set(t, e, "srtp", 1, 2, Stream{SRTPIn: fromA, SRTPOut: toA, Flags: RTCPMux}, Stream{Flags: RTCPMux})

			for seq := uint16(65534); seq != 3; seq++ { // across a rollover
				plain := rtpPacket(seq, 0xA1, []byte("from A"))
				send(t, c.A, c.paA, encryptRTP(t, aEnc, plain))
				expect(t, c.B, plain, c.pbA)
			}
			plain := rtpPacket(9, 0xB2, []byte("from B"))
			send(t, c.B, c.pbA, plain)
			got, err := aDec.DecryptRTP(nil, readUDP(t, c.A), &rtp.Header{})
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("A decrypts %x (%v), want %x", got, err, plain)
			}
			rr := rtcpPacket(0xA1)
			srtcp, err := aEnc.EncryptRTCP(nil, rr, nil)
			if err != nil {
				t.Fatal(err)
			}
			send(t, c.A, c.paA, srtcp)
			expect(t, c.B, rr, c.pbA)
			if s := stats(t, e, 1); s.SRTPFailures != 0 {
				t.Errorf("%d SRTP failures", s.SRTPFailures)
			}
		})
	}
}

// TestSRTPRefusesBadPackets: a tampered packet, a replayed one, one under
// another key and plain RTP are dropped and counted, never forwarded, and
// a stranger sending them is not learned as the party's address.
func TestSRTPRefusesBadPackets(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	fromA, aEnc, _ := testKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	_, otherEnc, _ := testKey(t, srtp.ProtectionProfileAes128CmHmacSha1_80)
	c.set(t, e, "bad", 1, 2, Stream{SRTPIn: fromA}, Stream{})

	good := encryptRTP(t, aEnc, rtpPacket(1, 0xA1, []byte("good")))
	send(t, c.A, c.paA, good)
	expect(t, c.B, rtpPacket(1, 0xA1, []byte("good")), c.pbA)
	endpoint := stats(t, e, 1).Endpoint

	tampered := encryptRTP(t, aEnc, rtpPacket(2, 0xA1, []byte("tampered")))
	tampered[len(tampered)-12] ^= 1
	stranger := party(t)
	for _, p := range [][]byte{tampered, good, encryptRTP(t, otherEnc, rtpPacket(3, 0xA1, []byte("other key"))), rtpPacket(4, 0xA1, []byte("plain"))} {
		send(t, stranger, c.paA, p)
	}
	expectNothing(t, c.B, 100*time.Millisecond)
	eventually(t, "4 SRTP failures", func() bool { return stats(t, e, 1).SRTPFailures == 4 })
	if s := stats(t, e, 1); s.Endpoint != endpoint || s.Packets != 1 {
		t.Errorf("after the bad packets: endpoint %s (was %s), %d packets", s.Endpoint, endpoint, s.Packets)
	}
}

// TestSRTPKeepsContextAcrossUpdates: setting a stream again with the same
// keys (a re-INVITE) keeps its replay window; new keys start afresh.
func TestSRTPKeepsContextAcrossUpdates(t *testing.T) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	fromA, aEnc, _ := testKey(t, srtp.ProtectionProfileAeadAes128Gcm)
	c.set(t, e, "upd", 1, 2, Stream{SRTPIn: fromA}, Stream{})
	first := encryptRTP(t, aEnc, rtpPacket(1, 0xA1, []byte("one")))
	send(t, c.A, c.paA, first)
	expect(t, c.B, rtpPacket(1, 0xA1, []byte("one")), c.pbA)
	c.set(t, e, "upd", 1, 2, Stream{SRTPIn: fromA, LastSignal: time.Now()}, Stream{})
	send(t, c.A, c.paA, first) // a replay: the window survived the update
	expectNothing(t, c.B, 100*time.Millisecond)
	eventually(t, "the replay counted", func() bool { return stats(t, e, 1).SRTPFailures == 1 })
}

// TestSRTPConfigChecked: keys that do not fit their profile are refused
// when the stream is set.
func TestSRTPConfigChecked(t *testing.T) {
	if _, err := NewSRTP(srtp.ProtectionProfileAes128CmHmacSha1_80, make([]byte, 32), make([]byte, 14), nil); err == nil {
		t.Error("a 32-byte key for AES-128 was taken")
	}
	e := newTestEngine(t, Config{})
	c := newCall(t)
	err := e.Set(1, Stream{Call: "x", FD: c.pa, SRTPIn: SRTP{Profile: 999}})
	if err == nil {
		t.Error("an unknown profile was taken")
	}
	if k := (SRTP{Profile: srtp.ProtectionProfileAeadAes128Gcm, Key: [32]byte{1, 2, 3}}); bytes.Contains([]byte(k.String()+k.GoString()), []byte{1, 2, 3}) {
		t.Error("key in String")
	}
}

// TestSRTPMKI: a key with a master key identifier reads and writes the
// MKI in every packet.
func TestSRTPMKI(t *testing.T) {
	p := srtp.ProtectionProfileAes128CmHmacSha1_80
	key, salt, mki := make([]byte, 16), make([]byte, 14), []byte{0, 0, 0, 7}
	_, _ = rand.Read(key)
	k, err := NewSRTP(p, key, salt, mki)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := srtp.CreateContext(key, salt, p, srtp.MasterKeyIndicator(mki))
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := srtp.CreateContext(key, salt, p, srtp.MasterKeyIndicator(mki))
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "mki", 1, 2, Stream{SRTPIn: k, SRTPOut: k}, Stream{})
	plain := rtpPacket(1, 0xA1, []byte("with mki"))
	send(t, c.A, c.paA, encryptRTP(t, enc, plain))
	expect(t, c.B, plain, c.pbA)
	back := rtpPacket(1, 0xB2, []byte("back"))
	send(t, c.B, c.pbA, back)
	got := readUDP(t, c.A)
	if len(got) != len(back)+10+len(mki) {
		t.Fatalf("A got %d bytes, want %d (tag and MKI)", len(got), len(back)+10+len(mki))
	}
	if pl, err := dec.DecryptRTP(nil, got, &rtp.Header{}); err != nil || !bytes.Equal(pl, back) {
		t.Fatalf("A decrypts %x (%v)", pl, err)
	}
}

// TestSRTPRolloverCounters: the counters publish each direction's ROC
// once a sequence number wraps, and a stream set with a starting ROC (a
// call continued after a restart or failover) decrypts and encrypts from
// it at once.
func TestSRTPRolloverCounters(t *testing.T) {
	p := srtp.ProtectionProfileAeadAes128Gcm
	e := newTestEngine(t, Config{})
	c := newCall(t)
	fromA, aEnc, _ := testKey(t, p)
	toA, _, aDec := testKey(t, p)
	c.set(t, e, "roc", 1, 2, Stream{SRTPIn: fromA, SRTPOut: toA}, Stream{})
	for seq := uint16(65534); seq != 2; seq++ {
		plain := rtpPacket(seq, 0xA1, []byte("a"))
		send(t, c.A, c.paA, encryptRTP(t, aEnc, plain))
		expect(t, c.B, plain, c.pbA)
		back := rtpPacket(seq, 0xB2, []byte("b"))
		send(t, c.B, c.pbA, back)
		if got, err := aDec.DecryptRTP(nil, readUDP(t, c.A), &rtp.Header{}); err != nil || !bytes.Equal(got, back) {
			t.Fatalf("seq %d: A decrypts %x (%v)", seq, got, err)
		}
	}
	eventually(t, "both ROCs 1", func() bool { s := stats(t, e, 1); return s.SRTPInROC == 1 && s.SRTPOutROC == 1 })

	// The same keys on a new engine (another worker, another node), told
	// the ROCs: the next packets go on without a new key.
	e2 := newTestEngine(t, Config{})
	c2 := newCall(t)
	fromA.ROC, toA.ROC = 1, 1
	c2.set(t, e2, "roc", 1, 2, Stream{SRTPIn: fromA, SRTPOut: toA}, Stream{})
	plain := rtpPacket(10, 0xA1, []byte("after"))
	send(t, c2.A, c2.paA, encryptRTP(t, aEnc, plain))
	expect(t, c2.B, plain, c2.pbA)
	back := rtpPacket(10, 0xB2, []byte("after"))
	send(t, c2.B, c2.pbA, back)
	if got, err := aDec.DecryptRTP(nil, readUDP(t, c2.A), &rtp.Header{}); err != nil || !bytes.Equal(got, back) {
		t.Fatalf("after the move A decrypts %x (%v)", got, err)
	}
	if s := stats(t, e2, 1); s.SRTPFailures != 0 {
		t.Errorf("%d failures after the move", s.SRTPFailures)
	}
}

// TestSRTPUnencrypted: UNENCRYPTED_SRTP and UNENCRYPTED_SRTCP keys
// authenticate without encrypting, both ways.
func TestSRTPUnencrypted(t *testing.T) {
	p := srtp.ProtectionProfileAes128CmHmacSha1_80
	key, salt := make([]byte, 16), make([]byte, 14)
	_, _ = rand.Read(key)
	k, err := NewSRTP(p, key, salt, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.PlainSRTP, k.PlainSRTCP = true, true
	opts := []srtp.ContextOption{srtp.SRTPNoEncryption(), srtp.SRTCPNoEncryption()}
	enc, _ := srtp.CreateContext(key, salt, p, opts...)
	dec, _ := srtp.CreateContext(key, salt, p, opts...)
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "plain", 1, 2, Stream{SRTPIn: k, SRTPOut: k, Flags: RTCPMux}, Stream{})
	plain := rtpPacket(1, 0xA1, []byte("visible"))
	wire := encryptRTP(t, enc, plain)
	if !bytes.Contains(wire, []byte("visible")) {
		t.Fatal("the sender encrypted")
	}
	send(t, c.A, c.paA, wire)
	expect(t, c.B, plain, c.pbA)
	back := rtpPacket(1, 0xB2, []byte("also visible"))
	send(t, c.B, c.pbA, back)
	got := readUDP(t, c.A)
	if !bytes.Contains(got, []byte("also visible")) {
		t.Error("the engine encrypted what it should only authenticate")
	}
	if pl, err := dec.DecryptRTP(nil, got, &rtp.Header{}); err != nil || !bytes.Equal(pl, back) {
		t.Fatalf("A reads %x (%v)", pl, err)
	}
}

// TestSRTPPending: an SRTP party whose keys are still to come (before the
// answer) gets nothing in the clear and has nothing it sends passed on as
// plain RTP: what it sends, and what is sent to it, waits in the loop's
// ring until the keys are set; then what it sent is authenticated (a
// packet that fails is counted and dropped, never forwarded) and what it
// was sent goes out encrypted.
func TestSRTPPending(t *testing.T) {
	for _, p := range []srtp.ProtectionProfile{srtp.ProtectionProfileAes128CmHmacSha1_80, ProfileAes192CmHmacSha1_80, ProfileF8128HmacSha1_32} {
		t.Run(SRTP{Profile: p}.String(), func(t *testing.T) { testSRTPPending(t, p) })
	}
}

func testSRTPPending(t *testing.T, profile srtp.ProtectionProfile) {
	e := newTestEngine(t, Config{})
	c := newCall(t)
	c.set(t, e, "pending", 1, 2, Stream{SRTPIn: SRTPPending, SRTPOut: SRTPPending}, Stream{})
	if s := SRTPPending.String(); s != "SRTP, key pending" {
		t.Errorf("String %q", s)
	}
	fromA, aEnc, _ := testKey(t, profile)
	toA, _, aDec := testKey(t, profile)

	early := rtpPacket(1, 0xA1, []byte("from A, early"))
	send(t, c.A, c.paA, encryptRTP(t, aEnc, early))
	send(t, c.A, c.paA, rtpPacket(2, 0xA1, []byte("from A, unauthenticated")))
	earlyBack := rtpPacket(1, 0xB2, []byte("from B, early"))
	send(t, c.B, c.pbA, earlyBack)
	expectNothing(t, c.B, 100*time.Millisecond)
	expectNothing(t, c.A, 10*time.Millisecond)
	if s := stats(t, e, 1); s.Packets != 0 || s.SRTPFailures != 0 {
		t.Fatalf("before the keys: A's stream counted %d packets, %d failures", s.Packets, s.SRTPFailures)
	}

	c.set(t, e, "pending", 1, 2, Stream{SRTPIn: fromA, SRTPOut: toA}, Stream{})
	expect(t, c.B, early, c.pbA) // held, authenticated, decrypted
	if got, err := aDec.DecryptRTP(nil, readUDP(t, c.A), &rtp.Header{}); err != nil || !bytes.Equal(got, earlyBack) {
		t.Fatalf("A decrypts %x (%v), want the held %x", got, err, earlyBack)
	}
	expectNothing(t, c.B, 50*time.Millisecond) // the unauthenticated one went nowhere
	eventually(t, "one SRTP failure and one packet", func() bool { s := stats(t, e, 1); return s.SRTPFailures == 1 && s.Packets == 1 })

	plain := rtpPacket(3, 0xA1, []byte("from A"))
	send(t, c.A, c.paA, encryptRTP(t, aEnc, plain))
	expect(t, c.B, plain, c.pbA)
	back := rtpPacket(2, 0xB2, []byte("from B"))
	send(t, c.B, c.pbA, back)
	if got, err := aDec.DecryptRTP(nil, readUDP(t, c.A), &rtp.Header{}); err != nil || !bytes.Equal(got, back) {
		t.Fatalf("A decrypts %x (%v), want %x", got, err, back)
	}
}
