package redissync_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/sdes"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestFailoverSRTP is TestFailover with SDES-SRTP calls: node A carries
// calls whose party A speaks SRTP (AES_CM_128_HMAC_SHA1_80) and party B
// plain RTP, so A decrypts and encrypts, and calls SRTP on both sides
// with the same suite (AEAD_AES_128_GCM). The flows start just below
// sequence number 65535 and wrap before the failover, so the streams'
// rollover counters are 1 when A dies: B must have the keys and the ROCs
// (A's call records, through Redis) and carry on from the first packet
// after the route moves, every packet decrypting at its receiver.
func TestFailoverSRTP(t *testing.T) {
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, ServiceOnAll: true, Redis: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := tb.Service.String()
	ngArgs := []string{"--listen-ng=" + svc + ":2223", "--active-switchover"}
	a := startNodeArgs(t, tb, 0, 1, ngArgs, 2)
	b := startNodeArgs(t, tb, 1, 2, ngArgs, 1)
	dumpOnFailure(t, a, b)
	viaService := tb.NG(t, tb.Callers, svc+":2223")
	viaService.SetRetransmit(200 * time.Millisecond)

	const bridged, both = 10, 4
	const firstSeq = 65300 // 236 packets, under 5 s at 50 packets/s, before the wrap
	l := &load{}
	for i := range bridged + both {
		fa, fb := srtpCallVia(t, ctx, tb, viaService, fmt.Sprintf("fosrtp-%03d", i), i >= bridged)
		fa.FirstSeq, fb.FirstSeq = firstSeq, firstSeq
		l.Flows = append(l.Flows, fa, fb)
	}
	eventually(t, "B restores A's calls", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })

	l.Start(20 * time.Millisecond)
	wrapped := time.Now().Add(time.Duration(65536-firstSeq) * 20 * time.Millisecond)
	time.Sleep(time.Until(wrapped))
	// Every SRTP stream A decrypts or encrypts has wrapped: its ROC is 1
	// in the record B holds (A's workers → A's record → Redis → B).
	var n int
	eventually(t, "the ROCs reach B's records", 15*time.Second, func() error {
		n = 0
		for id, c := range b.list(t) {
			for _, leg := range c.Legs {
				for _, m := range leg.Medias {
					if len(m.SDESIn) == 0 || len(m.SDESOut) == 0 {
						continue
					}
					n++
					if m.SRTPInROC != 1 || m.SRTPOutROC != 1 {
						return fmt.Errorf("call %s leg %q media %d: ROC in %d out %d", id, leg.Tag, m.Index, m.SRTPInROC, m.SRTPOutROC)
					}
				}
			}
		}
		if n != bridged+2*both { // party A's of every call, and party B's of the SRTP–SRTP ones
			return fmt.Errorf("%d SRTP medias in B's records, want %d", n, bridged+2*both)
		}
		return nil
	})
	t.Logf("%d SRTP medias in B's records with ROC 1 in and out, %v after the wrap", n, time.Since(wrapped).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)

	kill := time.Now()
	_ = a.proc.Cmd.Process.Kill()
	tb.Route(t, 1)
	moved := time.Now()
	time.Sleep(3 * time.Second)
	l.Stop(300 * time.Millisecond)

	r := l.report(kill, moved)
	t.Logf("SRTP failover (%d calls SRTP–RTP, %d SRTP–SRTP, first sequence number %d, wrapped %v before the kill): %s",
		bridged, both, firstSeq, kill.Sub(wrapped).Round(time.Millisecond), r)
	if len(r.silent) > 0 {
		t.Errorf("%d streams never resumed after the move: %v", len(r.silent), r.silent[:min(5, len(r.silent))])
	}
	if r.lostAfter > 0 {
		t.Errorf("%d of %d packets that reached B after the move never arrived", r.lostAfter, r.sentAfter)
	}
	for _, f := range l.Flows {
		// Packets that arrived but did not decrypt or were not as sent:
		// the first few of each flow, and how many.
		fls := f.Failures()
		for i, fl := range fls[:min(3, len(fls))] {
			when := "before the kill"
			if fl.At.After(moved) {
				when = "after the move"
			} else if fl.At.After(kill) {
				when = "during the failover"
			}
			t.Errorf("%s: failure %d of %d: %s (%s)", f.Name, i+1, len(fls), fl, when)
		}
		if sent, _ := f.Times(); len(sent) < 65536-firstSeq+100 {
			t.Errorf("%s: only %d packets sent, the sequence numbers did not wrap well before the end", f.Name, len(sent))
		}
	}
}

var cryptoRe = regexp.MustCompile(`(?m)^a=crypto:(.*?)\r?$`)

// srtpCallVia sets up a call over ng between two new sockets in the
// callers' namespace, party A speaking SRTP with a key of its own; party B
// speaks plain RTP, or with both SRTP too, and then both use
// AEAD_AES_128_GCM (rtpkit passes their packets through). It returns the
// two flows, encrypting and decrypting as each party does.
func srtpCallVia(t *testing.T, ctx context.Context, tb *testutil.Testbed, ng *ngclient.Client, id string, both bool) (*testutil.RTPFlow, *testutil.RTPFlow) {
	t.Helper()
	ua := tb.UDP(t, tb.Callers, tb.CallerAddrs[0].String()+":0")
	ub := tb.UDP(t, tb.Callers, tb.CallerAddrs[1].String()+":0")
	suite := sdes.SuiteByName("AES_CM_128_HMAC_SHA1_80")
	if both {
		suite = sdes.SuiteByName("AEAD_AES_128_GCM")
	}
	aKey, err := sdes.New(1, suite, nil)
	if err != nil {
		t.Fatal(err)
	}
	sdpOf := func(addr string, c *net.UDPConn, k *sdes.Crypto) string {
		s := fmt.Sprintf(mediaSDP, addr, c.LocalAddr().(*net.UDPAddr).Port)
		if k != nil {
			s = strings.Replace(s, "RTP/AVP", "RTP/SAVP", 1) + "a=crypto:" + k.Attribute(sdes.FormatOptions{}) + "\r\n"
		}
		return s
	}
	offer := testutil.NGCall("offer", id, "", sdpOf(tb.CallerAddrs[0].String(), ua, &aKey))
	if !both {
		offer.Set("transport-protocol", bencode.Str("RTP/AVP"))
	}
	toB := testutil.NGOK(t, ctx, ng, offer)
	var bKey *sdes.Crypto
	var bRecv *srtp.Context
	if both {
		// B takes the offer's suite with a key of its own.
		var offered sdes.Crypto
		for _, m := range cryptoRe.FindAllStringSubmatch(toB, -1) {
			if c, err := sdes.Parse(m[1]); err == nil && c.Suite == suite && offered.Suite == nil {
				offered = c
			}
		}
		if offered.Suite == nil {
			t.Fatalf("%s: B was offered no %s:\n%s", id, suite.Name, toB)
		}
		bRecv = pionContext(t, offered)
		k, err := sdes.New(offered.Tag, suite, nil)
		if err != nil {
			t.Fatal(err)
		}
		bKey = &k
	} else if strings.Contains(toB, "a=crypto") || !strings.Contains(toB, "RTP/AVP") {
		t.Fatalf("%s: plain B was offered\n%s", id, toB)
	}
	toA := testutil.NGOK(t, ctx, ng, testutil.NGCall("answer", id, "B", sdpOf(tb.CallerAddrs[1].String(), ub, bKey)))
	m := cryptoRe.FindStringSubmatch(toA)
	if m == nil {
		t.Fatalf("%s: A's answer has no a=crypto:\n%s", id, toA)
	}
	answered, err := sdes.Parse(m[1])
	if err != nil || answered.Suite != suite || answered.Tag != aKey.Tag {
		t.Fatalf("%s: A was answered %v (%v)", id, answered, err)
	}
	aRecv := pionContext(t, answered)

	port := func(body string) *net.UDPAddr {
		p := mPortRe.FindStringSubmatch(body)
		if p == nil {
			t.Fatalf("%s: no m= line in %q", id, body)
		}
		a, err := net.ResolveUDPAddr("udp", net.JoinHostPort(tb.Service.String(), p[1]))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ab := testutil.NewRTPFlow(id+" A→B", ua, ub, port(toA))
	ba := testutil.NewRTPFlow(id+" B→A", ub, ua, port(toB))
	ab.Protect = encrypt(pionContext(t, aKey))
	ba.Unprotect = decrypt(aRecv)
	if both {
		ab.Unprotect = decrypt(bRecv)
		ba.Protect = encrypt(pionContext(t, *bKey))
	}
	return ab, ba
}

// pionContext is a pion SRTP context of an SDES key.
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

func encrypt(c *srtp.Context) func([]byte) ([]byte, error) {
	return func(p []byte) ([]byte, error) { return c.EncryptRTP(nil, p, nil) }
}

func decrypt(c *srtp.Context) func([]byte) ([]byte, error) {
	return func(p []byte) ([]byte, error) { return c.DecryptRTP(nil, p, nil) }
}
