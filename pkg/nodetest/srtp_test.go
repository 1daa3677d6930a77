package nodetest

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/sdes"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

var cryptoRe = regexp.MustCompile(`(?m)^a=crypto:(.*?)\r?$`)

// firstCrypto is the first a=crypto of an SDP, as a pion context of its
// key (for the party that receives with it, or sends with it).
func firstCrypto(t *testing.T, body string) (sdes.Crypto, *srtp.Context) {
	t.Helper()
	m := cryptoRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no a=crypto in\n%s", body)
	}
	c, err := sdes.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return c, pionContext(t, c)
}

func pionContext(t *testing.T, c sdes.Crypto) *srtp.Context {
	t.Helper()
	profiles := map[string]srtp.ProtectionProfile{"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
		"AEAD_AES_128_GCM": srtp.ProtectionProfileAeadAes128Gcm}
	ctx, err := srtp.CreateContext(c.Key, c.Salt, profiles[c.Suite.Name])
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// TestSDESBridge: a whole node between an SRTP party (SDES keys in its
// SDP) and a plain RTP one, in both directions of the offer, and between
// two SRTP parties with the same suite (whose packets then pass through
// unchanged): payload, SSRC and sequence numbers arrive as sent.
func TestSDESBridge(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 49600, 49699, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	aKey, err := sdes.New(1, sdes.SuiteByName("AES_CM_128_HMAC_SHA1_80"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bKey, _ := sdes.New(1, sdes.SuiteByName("AES_CM_128_HMAC_SHA1_80"), nil)
	sdpOf := func(conn *net.UDPConn, proto string, k *sdes.Crypto) string {
		s := strings.Replace(testutil.AudioSDP(conn), "RTP/AVP", proto, 1)
		if k != nil {
			s += "a=crypto:" + k.Attribute(sdes.FormatOptions{}) + "\r\n"
		}
		return s
	}
	for _, tc := range []struct {
		name          string
		aSRTP, bSRTP  bool
		transport     string // towards B
		passesThrough bool
		osrtp         bool // A offers OSRTP (RTP/AVP with keys), B answers plain with OSRTP accept
	}{
		{name: "SRTP offerer, plain answerer", aSRTP: true, transport: "RTP/AVP"},
		{name: "plain offerer, SRTP answerer", bSRTP: true, transport: "RTP/SAVP"},
		{name: "SRTP both, same suite", aSRTP: true, bSRTP: true, passesThrough: true},
		{name: "OSRTP offerer, plain answerer accepting", aSRTP: true, osrtp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
			id := "sdes-" + strings.ReplaceAll(tc.name, " ", "-")
			var offerSDP string
			if tc.aSRTP {
				proto := "RTP/SAVP"
				if tc.osrtp {
					proto = "RTP/AVP"
				}
				offerSDP = sdpOf(a, proto, &aKey)
			} else {
				offerSDP = sdpOf(a, "RTP/AVP", nil)
			}
			offer := testutil.NGCall("offer", id, "", offerSDP)
			if tc.transport != "" {
				offer.Set("transport-protocol", bencode.Str(tc.transport))
			}
			toB := testutil.NGOK(t, ctx, c, offer)
			var answerSDP string
			var bRecv *srtp.Context // B decrypts what it gets with the key offered to it
			if tc.bSRTP {
				// B accepts the offer's AES_CM_128_HMAC_SHA1_80 with a key of its own.
				var offered sdes.Crypto
				for _, m := range cryptoRe.FindAllStringSubmatch(toB, -1) {
					if cr, err := sdes.Parse(m[1]); err == nil && cr.Suite.Name == "AES_CM_128_HMAC_SHA1_80" {
						offered = cr
					}
				}
				if offered.Suite == nil {
					t.Fatalf("B was offered no AES_CM_128_HMAC_SHA1_80:\n%s", toB)
				}
				if tc.passesThrough && !bytes.Equal(offered.Key, aKey.Key) {
					t.Errorf("same suite on both sides: B was offered another key than A's")
				}
				bRecv = pionContext(t, offered)
				k := bKey
				k.Tag = offered.Tag
				answerSDP = sdpOf(b, "RTP/SAVP", &k)
			} else {
				if (strings.Contains(toB, "a=crypto") != tc.osrtp) || !strings.Contains(toB, "RTP/AVP") {
					t.Fatalf("plain B got\n%s", toB)
				}
				answerSDP = sdpOf(b, "RTP/AVP", nil)
			}
			answer := testutil.NGCall("answer", id, "B", answerSDP)
			if tc.osrtp {
				answer.Set("OSRTP", bencode.Strs("accept"))
			}
			toA := testutil.NGOK(t, ctx, c, answer)
			var aRecv *srtp.Context
			if tc.aSRTP {
				var answered sdes.Crypto
				answered, aRecv = firstCrypto(t, toA)
				if answered.Tag != aKey.Tag || answered.Suite != aKey.Suite {
					t.Fatalf("A's answer chose %v", answered)
				}
				if tc.passesThrough && !bytes.Equal(answered.Key, bKey.Key) {
					t.Errorf("same suite on both sides: A was answered another key than B's")
				}
			} else if strings.Contains(toA, "a=crypto") {
				t.Fatalf("plain A got\n%s", toA)
			}
			aSend, bSend := pionContext(t, aKey), pionContext(t, bKey)
			flow(t, "A→B", a, b, testutil.SDPMediaAddr(t, toA), 0x1000, sendCtx(tc.aSRTP, aSend), sendCtx(tc.bSRTP, bRecv), tc.passesThrough)
			flow(t, "B→A", b, a, testutil.SDPMediaAddr(t, toB), 0x2000, sendCtx(tc.bSRTP, bSend), sendCtx(tc.aSRTP, aRecv), tc.passesThrough)
			if tc.aSRTP && !tc.bSRTP {
				tampered(t, ctx, c, id, a, testutil.SDPMediaAddr(t, toA), aSend, aKey)
			}
			del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
			testutil.NGOK(t, ctx, c, del)
		})
	}
}

func sendCtx(on bool, c *srtp.Context) *srtp.Context {
	if on {
		return c
	}
	return nil
}

// flow sends 20 RTP packets from one party to our port `to` (encrypted
// with enc if not nil) and checks that the other party gets each
// (decrypting with dec if not nil) with the same header and payload; with
// passesThrough, byte for byte the same SRTP packet.
func flow(t *testing.T, name string, from, other *net.UDPConn, to *net.UDPAddr, ssrc uint32, enc, dec *srtp.Context, passesThrough bool) {
	t.Helper()
	buf := make([]byte, 2048)
	got := 0
	for seq := uint16(1); seq <= 20; seq++ {
		plain := testutil.RTPPacket(ssrc, seq, "payload "+name)
		wire := plain
		if enc != nil {
			var err error
			if wire, err = enc.EncryptRTP(nil, plain, &rtp.Header{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := from.WriteToUDP(wire, to); err != nil {
			t.Fatal(err)
		}
		_ = other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := other.ReadFromUDP(buf)
		if err != nil {
			continue // the call may still be installing
		}
		pkt := buf[:n]
		if passesThrough && !bytes.Equal(pkt, wire) {
			t.Errorf("%s: SRTP packet changed on its way through", name)
		}
		if dec != nil {
			if pkt, err = dec.DecryptRTP(nil, pkt, &rtp.Header{}); err != nil {
				t.Fatalf("%s: packet %d does not decrypt: %v", name, seq, err)
			}
		}
		if !bytes.Equal(pkt, plain) {
			t.Fatalf("%s: packet %d arrived as %x, sent %x", name, seq, pkt, plain)
		}
		got++
	}
	if got < 15 {
		t.Fatalf("%s: %d of 20 packets arrived", name, got)
	}
}

// tampered sends A's port a packet with a flipped bit, a good packet
// twice (the second a replay) and one under another key; query must show
// the three bad ones as SRTP failures of A's stream, name the suite, say
// the stream stays out of the kernel ("no kernel support"), and show no
// key.
func tampered(t *testing.T, ctx context.Context, c *ngclient.Client, id string, a *net.UDPConn, to *net.UDPAddr, enc *srtp.Context, key sdes.Crypto) {
	t.Helper()
	flipped, err := enc.EncryptRTP(nil, testutil.RTPPacket(0x1000, 100, "tampered"), &rtp.Header{})
	if err != nil {
		t.Fatal(err)
	}
	flipped[len(flipped)-12] ^= 0x20
	replay, _ := enc.EncryptRTP(nil, testutil.RTPPacket(0x1000, 101, "once"), &rtp.Header{})
	other, _ := sdes.New(1, key.Suite, nil)
	wrong, _ := pionContext(t, other).EncryptRTP(nil, testutil.RTPPacket(0x1000, 102, "wrong key"), &rtp.Header{})
	for _, p := range [][]byte{flipped, replay, replay, wrong} {
		if _, err := a.WriteToUDP(p, to); err != nil {
			t.Fatal(err)
		}
	}
	q := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.Do(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		raw := string(bencode.Encode(r))
		if strings.Contains(raw, key.Attribute(sdes.FormatOptions{})[len("1 AES_CM_128_HMAC_SHA1_80 inline:"):][:20]) {
			t.Fatal("query shows key material")
		}
		if strings.Contains(raw, "12:crypto suite23:AES_CM_128_HMAC_SHA1_80") && strings.Contains(raw, "13:SRTP failuresi3e") &&
			strings.Contains(raw, "17:no kernel support") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("query never showed the suite and 3 SRTP failures: %s", raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
