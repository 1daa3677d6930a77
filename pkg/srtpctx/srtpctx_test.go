package srtpctx

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyDerivation checks the session keys against RFC 3711 Appendix
// B.3.
func TestKeyDerivation(t *testing.T) {
	master, err := aes.NewCipher(unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139"))
	if err != nil {
		t.Fatal(err)
	}
	salt := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	for _, tc := range []struct {
		label byte
		n     int
		want  string
	}{
		{0, 16, "C61E7A93744F39EE10734AFE3FF7A087"},
		{2, 14, "30CBBC08863D8C85D49DB34A9AE1"},
		{1, 20, "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"},
	} {
		got := make([]byte, tc.n)
		derive(master, salt, tc.label, got)
		if !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("label %d: %X, want %s", tc.label, got, tc.want)
		}
	}
}

// TestF8Vector checks the f8 keystream against RFC 3711 Appendix B.2
// (the session key and salt given there, so the keys are set directly).
func TestF8Vector(t *testing.T) {
	key := unhex(t, "234829008467be186c3de14aae72d62c")
	salt := unhex(t, "32f2870d")
	c := &Context{cfg: Config{Cipher: AESF8}}
	var err error
	if c.rtp.block, err = aes.NewCipher(key); err != nil {
		t.Fatal(err)
	}
	m := unhex(t, "32f2870d555555555555555555555555")
	for i := range m {
		m[i] ^= key[i]
	}
	if c.rtp.f8, err = aes.NewCipher(m); err != nil {
		t.Fatal(err)
	}
	copy(c.rtp.salt[:], salt)
	hdr := unhex(t, "806e5cba50681de55c621599")
	payload := unhex(t, "70736575646f72616e646f6d6e657373"+"20697320746865206e65787420626573"+"74207468696e67")
	c.cryptRTP(hdr, payload, 0xd462564a)
	if got, want := hex.EncodeToString(c.iv[:]), "006e5cba50681de55c621599d462564a"; got != want {
		t.Errorf("IV %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(c.f8iv[:]), "595b699bbd3bc0df26062093c1ad8f73"; got != want {
		t.Errorf("IV' %s, want %s", got, want)
	}
	want := "019ce7a26e7854014a6366aa95d4eefd" + "1ad4172a14f9faf455b7f1d4b62bd08f" + "562c0eef7c4802"
	if got := hex.EncodeToString(payload); got != want {
		t.Errorf("cipher text %s\nwant        %s", got, want)
	}
}

func rtpPacket(t testing.TB, ssrc uint32, seq uint16, payload []byte) []byte {
	t.Helper()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: 160 * uint32(seq), SSRC: ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rtcpPacket is a receiver report with one block, then an SDES chunk.
func rtcpPacket(ssrc uint32) []byte {
	b := []byte{0x81, 201, 0, 7, 0, 0, 0, 0}
	b[4], b[5], b[6], b[7] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
	return append(b, bytes.Repeat([]byte{0xab}, 24)...)
}

func newCtx(t testing.TB, cfg Config) *Context {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSameBytesAsPion: for the suites pion/srtp also does, this package
// writes the same SRTP and SRTCP packets byte for byte, and each takes
// the other's, across a sequence-number wrap. That checks the key
// derivation, AES-CM IVs, HMAC coverage and the SRTCP trailer against an
// implementation we did not write; AES-192 differs from them only in the
// key's length.
func TestSameBytesAsPion(t *testing.T) {
	for _, tc := range []struct {
		profile srtp.ProtectionProfile
		keyLen  int
		tagLen  int
	}{
		{srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 10},
		{srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 4},
		{srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 10},
		{srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 4},
	} {
		for _, mki := range [][]byte{nil, {1, 2}} {
			t.Run(fmt.Sprintf("%s/mki%d", tc.profile, len(mki)), func(t *testing.T) {
				key := bytes.Repeat([]byte{0x42}, tc.keyLen)
				key[0] = byte(tc.keyLen)
				salt := bytes.Repeat([]byte{0x17}, 14)
				var opts []srtp.ContextOption
				if mki != nil {
					opts = append(opts, srtp.MasterKeyIndicator(mki))
				}
				pEnc, err := srtp.CreateContext(key, salt, tc.profile, opts...)
				if err != nil {
					t.Fatal(err)
				}
				pDec, _ := srtp.CreateContext(key, salt, tc.profile, append(opts, srtp.SRTPReplayProtection(128))...)
				ours := newCtx(t, Config{Cipher: AESCM, Key: key, Salt: salt, TagLen: tc.tagLen, MKI: mki})
				oursDec := newCtx(t, Config{Cipher: AESCM, Key: key, Salt: salt, TagLen: tc.tagLen, MKI: mki, Replay: true})
				for i := 0; i < 6; i++ {
					seq := uint16(65533 + i) // wraps after the third
					plain := rtpPacket(t, 0x11223344, seq, []byte(fmt.Sprintf("payload number %d, long enough for two blocks", i)))
					a, err := pEnc.EncryptRTP(nil, plain, nil)
					if err != nil {
						t.Fatal(err)
					}
					b, err := ours.EncryptRTP(nil, plain, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(a, b) {
						t.Fatalf("seq %d: ours\n%x\npion\n%x", seq, b, a)
					}
					if got, err := oursDec.DecryptRTP(nil, a, nil); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("seq %d: we decrypt pion's: %v", seq, err)
					}
					if got, err := pDec.DecryptRTP(nil, b, nil); err != nil || !bytes.Equal(got, plain) {
						t.Fatalf("seq %d: pion decrypts ours: %v", seq, err)
					}
					rc := rtcpPacket(0x55667788)
					a, _ = pEnc.EncryptRTCP(nil, rc, nil)
					b, _ = ours.EncryptRTCP(nil, rc, nil)
					if !bytes.Equal(a, b) {
						t.Fatalf("SRTCP %d: ours\n%x\npion\n%x", i, b, a)
					}
					if got, err := oursDec.DecryptRTCP(nil, a, nil); err != nil || !bytes.Equal(got, rc) {
						t.Fatalf("SRTCP %d: we decrypt pion's: %v", i, err)
					}
				}
				if roc, _ := oursDec.ROC(0x11223344); roc != 1 {
					t.Errorf("ROC after the wrap %d, want 1", roc)
				}
			})
		}
	}
}

// TestRoundTrip runs every transform and option this package adds both
// ways, and checks what a receiver refuses.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"AES_192_CM_80", Config{Cipher: AESCM, Key: make([]byte, 24), TagLen: 10}},
		{"AES_192_CM_32", Config{Cipher: AESCM, Key: make([]byte, 24), TagLen: 4}},
		{"F8_128_80", Config{Cipher: AESF8, Key: make([]byte, 16), TagLen: 10}},
		{"F8_128_32", Config{Cipher: AESF8, Key: make([]byte, 16), TagLen: 4}},
		{"AES_CM_128_unauth", Config{Cipher: AESCM, Key: make([]byte, 16), TagLen: 10, NoAuthRTP: true}},
		{"AES_192_unenc", Config{Cipher: AESCM, Key: make([]byte, 24), TagLen: 10, NoEncryptRTP: true, NoEncryptRTCP: true}},
		{"F8_mki", Config{Cipher: AESF8, Key: make([]byte, 16), TagLen: 10, MKI: []byte{9, 9, 9, 9}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			for i := range cfg.Key {
				cfg.Key[i] = byte(i * 7)
			}
			cfg.Salt = bytes.Repeat([]byte{0x5a}, 14)
			enc := newCtx(t, cfg)
			cfg.Replay = true
			dec := newCtx(t, cfg)
			for i := 0; i < 4; i++ {
				plain := rtpPacket(t, 7, uint16(65534+i), bytes.Repeat([]byte{byte(i)}, 37))
				p, err := enc.EncryptRTP(nil, plain, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.cfg.NoEncryptRTP != bytes.Equal(p[12:12+37], plain[12:]) {
					t.Fatalf("payload encrypted: %v, want %v", !bytes.Equal(p[12:12+37], plain[12:]), !tc.cfg.NoEncryptRTP)
				}
				var h rtp.Header
				got, err := dec.DecryptRTP(p[:0], p, &h) // in place
				if err != nil || !bytes.Equal(got, plain) || h.SequenceNumber != uint16(65534+i) || h.SSRC != 7 {
					t.Fatalf("packet %d: %v %x", i, err, got)
				}
				rc := rtcpPacket(7)
				p, err = enc.EncryptRTCP(nil, rc, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := dec.DecryptRTCP(nil, p, nil); err != nil || !bytes.Equal(got, rc) {
					t.Fatalf("SRTCP %d: %v", i, err)
				}
				if _, err := dec.DecryptRTCP(nil, p, nil); err != ErrReplayed {
					t.Errorf("SRTCP replay: %v, want ErrReplayed", err)
				}
			}
			plain := rtpPacket(t, 7, 2, []byte("after the wrap"))
			p, _ := enc.EncryptRTP(nil, plain, nil)
			if _, err := dec.DecryptRTP(nil, p, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := dec.DecryptRTP(nil, p, nil); err != ErrReplayed {
				t.Errorf("replay: %v, want ErrReplayed", err)
			}
			if tc.cfg.NoAuthRTP {
				return
			}
			p, _ = enc.EncryptRTP(nil, rtpPacket(t, 7, 3, []byte("tampered")), nil)
			p[14] ^= 1
			if _, err := dec.DecryptRTP(nil, p, nil); err != ErrAuth {
				t.Errorf("tampered: %v, want ErrAuth", err)
			}
			other := cfg
			other.Key = bytes.Repeat([]byte{1}, len(cfg.Key))
			wrong := newCtx(t, other)
			p, _ = wrong.EncryptRTP(nil, rtpPacket(t, 7, 4, []byte("wrong key")), nil)
			if _, err := dec.DecryptRTP(nil, p, nil); err != ErrAuth {
				t.Errorf("wrong key: %v, want ErrAuth", err)
			}
			if roc, ok := dec.ROC(7); !ok || roc != 1 {
				t.Errorf("ROC %d %v, want 1", roc, ok)
			}
		})
	}
}

// TestSetROC: a receiver that starts from the sender's ROC (a call
// continued on another node) takes its packets at once; one that starts
// from 0 does not.
func TestSetROC(t *testing.T) {
	cfg := Config{Cipher: AESF8, Key: make([]byte, 16), Salt: make([]byte, 14), TagLen: 10}
	enc := newCtx(t, cfg)
	enc.SetROC(9, 3)
	p, _ := enc.EncryptRTP(nil, rtpPacket(t, 9, 100, []byte("x")), nil)
	fresh := newCtx(t, cfg)
	if _, err := fresh.DecryptRTP(nil, p, nil); err != ErrAuth {
		t.Errorf("ROC 0: %v, want ErrAuth", err)
	}
	dec := newCtx(t, cfg)
	dec.SetROC(9, 3)
	if _, err := dec.DecryptRTP(nil, p, nil); err != nil {
		t.Errorf("ROC 3: %v", err)
	}
}

// TestBadInput: short, non-RTP and unknown-MKI packets are errors, never
// panics.
func TestBadInput(t *testing.T) {
	c := newCtx(t, Config{Cipher: AESCM, Key: make([]byte, 24), Salt: make([]byte, 14), TagLen: 10, MKI: []byte{1}, Replay: true})
	for _, p := range [][]byte{nil, {0x80}, make([]byte, 12), append([]byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 11)...), {0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff}} {
		if _, err := c.DecryptRTP(nil, p, nil); err == nil {
			t.Errorf("%x: no error", p)
		}
		if _, err := c.DecryptRTCP(nil, p, nil); err == nil {
			t.Errorf("RTCP %x: no error", p)
		}
	}
	for _, cfg := range []Config{
		{Cipher: AESF8, Key: make([]byte, 24), Salt: make([]byte, 14), TagLen: 10},
		{Cipher: AESCM, Key: make([]byte, 16), Salt: make([]byte, 12), TagLen: 10},
		{Cipher: AESCM, Key: make([]byte, 16), Salt: make([]byte, 14), TagLen: 16},
		{Cipher: 9, Key: make([]byte, 16), Salt: make([]byte, 14), TagLen: 10},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg.Cipher)
		}
	}
}

// TestNoAllocs: protecting and unprotecting a packet of a known SSRC
// allocates nothing.
func TestNoAllocs(t *testing.T) {
	for _, cipher := range []Cipher{AESCM, AESF8} {
		cfg := Config{Cipher: cipher, Key: make([]byte, 16), Salt: make([]byte, 14), TagLen: 10, Replay: true}
		enc, dec := newCtx(t, cfg), newCtx(t, cfg)
		plain := rtpPacket(t, 1, 1, make([]byte, 160))
		buf := make([]byte, 0, 1500)
		rc := rtcpPacket(1)
		seq := uint16(1)
		var h rtp.Header
		allocs := testing.AllocsPerRun(200, func() {
			seq++
			plain[2], plain[3] = byte(seq>>8), byte(seq)
			p, err := enc.EncryptRTP(buf[:0], plain, &h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec.DecryptRTP(p[:0], p, &h); err != nil {
				t.Fatal(err)
			}
			p, _ = enc.EncryptRTCP(buf[:0], rc, nil)
			if _, err := dec.DecryptRTCP(p[:0], p, nil); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("cipher %d: %v allocations per packet", cipher, allocs)
		}
	}
}

// FuzzDecrypt: whatever arrives, decryption returns an error or a packet,
// never panics.
func FuzzDecrypt(f *testing.F) {
	cfg := Config{Cipher: AESF8, Key: make([]byte, 16), Salt: make([]byte, 14), TagLen: 4, MKI: []byte{7}, Replay: true}
	enc := newCtx(f, cfg)
	p, _ := enc.EncryptRTP(nil, rtpPacket(f, 1, 1, []byte("seed")), nil)
	f.Add(p)
	r, _ := enc.EncryptRTCP(nil, rtcpPacket(1), nil)
	f.Add(r)
	dec := newCtx(f, cfg)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = dec.DecryptRTP(nil, b, nil)
		_, _ = dec.DecryptRTCP(nil, b, nil)
	})
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"AES_192_CM_80", Config{Cipher: AESCM, Key: make([]byte, 24), TagLen: 10}},
		{"F8_128_80", Config{Cipher: AESF8, Key: make([]byte, 16), TagLen: 10}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := tc.cfg
			cfg.Salt = make([]byte, 14)
			enc := newCtx(b, cfg)
			cfg.Replay = true
			dec := newCtx(b, cfg)
			plain := rtpPacket(b, 1, 1, make([]byte, 160))
			buf := make([]byte, 0, 1500)
			for i := 0; i < b.N; i++ {
				seq := uint16(i)
				plain[2], plain[3] = byte(seq>>8), byte(seq)
				p, _ := enc.EncryptRTP(buf[:0], plain, nil)
				if _, err := dec.DecryptRTP(p[:0], p, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
