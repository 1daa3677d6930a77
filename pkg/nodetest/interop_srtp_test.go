package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/sdes"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// startRtpengine runs the system's rtpengine (Debian rtpengine-daemon)
// on 127.0.0.1 with media ports portMin–portMax, no kernel forwarding
// and no delete delay, as bench/setup-rate.sh does; it returns an ng
// client dialled to it once it answers ping, and the path of its log
// (its stderr, shown if the test fails). It is killed by pid at cleanup.
// Skipped when rtpengine is missing, unless RTPKIT_REQUIRE_DEPS is set.
func startRtpengine(t *testing.T, portMin, portMax int) (*ngclient.Client, string) {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("rtpengine not installed (Debian rtpengine-daemon; make test installs it)")
		}
		t.Skip("rtpengine (Debian rtpengine-daemon) not installed: no interop test against it")
	}
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	logPath := filepath.Join(t.TempDir(), "rtpengine.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file=none", "--table=-1", "--foreground", "--interface=127.0.0.1",
		"--listen-ng="+ngAddr, "--port-min="+strconv.Itoa(portMin), "--port-max="+strconv.Itoa(portMax),
		"--delete-delay=0", "--log-stderr")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start rtpengine: %v", err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Registered before the client's close, so it runs after it.
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("rtpengine's log:\n%s", out)
		}
	})
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ping := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("ping")})
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		r, err := c.Do(ctx, ping)
		cancel()
		if res, _ := ngclient.Result(r); err == nil && res == "pong" {
			return c, logPath
		}
		select {
		case <-exited:
			t.Fatalf("rtpengine exited before answering ping (%v)", cmd.ProcessState)
		default:
		}
		if i == 50 {
			t.Fatalf("rtpengine not answering ping on %s: %v", ngAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allSuites are the SDES suites rtpengine knows, in the order in which
// both proxies offer them; with SDES no-… for those before one, that one
// is offered first (and the later ones after it).
var allSuites = []string{"AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32",
	"AES_192_CM_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32",
	"F8_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32"}

var sdpProtoRe = regexp.MustCompile(`(?m)^m=audio \d+ (\S+) `)

// proxy is one of the two media proxies of a chain; decryptFailures
// tells whether it has dropped packets of call id that failed SRTP
// authentication.
type proxy struct {
	name            string
	c               *ngclient.Client
	decryptFailures func(t *testing.T, ctx context.Context, id string) bool
}

// TestSRTPInteropRtpengine checks rtpkit's SDES-SRTP against an
// implementation we did not write: a real rtpengine and a real rtpkit
// node side by side on loopback, the test acting as the SIP proxy of
// both. Plain party A talks to the first proxy, which is told to speak
// RTP/SAVP onwards; the second proxy gets the first's SDP verbatim and
// is told to speak RTP/AVP to plain party B. Between them travels SRTP
// with the suite under test; A's and B's packets must arrive byte for
// byte as sent, both ways, with rtpengine encrypting and rtpkit
// decrypting and the other way round. A key corrupted in the SDP
// between the proxies must stop the packets it protects.
func TestSRTPInteropRtpengine(t *testing.T) {
	engC, _ := startRtpengine(t, 49800, 49899)
	// rtpengine counts a packet that fails SRTP as an error of its stream
	// (its log says so too, but rate-limited).
	eng := &proxy{name: "rtpengine", c: engC, decryptFailures: func(t *testing.T, ctx context.Context, id string) bool {
		return queryMatches(t, ctx, engC, id, `6:errorsi[1-9]`)
	}}
	_, kitC, _ := testutil.StartLocalNode(t, 49700, 49799, "--delete-delay=0")
	kit := &proxy{name: "rtpkit", c: kitC, decryptFailures: func(t *testing.T, ctx context.Context, id string) bool {
		return queryMatches(t, ctx, kitC, id, `13:SRTP failuresi[1-9]`)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := time.Now().UnixNano()
	n := 0
	// AES-192 and F8 are pkg/srtpctx's, not pion's: rtpengine (OpenSSL,
	// and its own f8) is the check of both against another implementation.
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM", "AES_192_CM_HMAC_SHA1_80", "F8_128_HMAC_SHA1_32"} {
		t.Run(suite, func(t *testing.T) {
			for _, chain := range [][2]*proxy{{eng, kit}, {kit, eng}} {
				t.Run(chain[0].name+" encrypts, "+chain[1].name+" decrypts", func(t *testing.T) {
					for _, corrupt := range []bool{false, true} {
						name := "keys as signalled"
						if corrupt {
							name = "corrupted key"
						}
						n++
						id := fmt.Sprintf("interop-%d-%d", run, n)
						t.Run(name, func(t *testing.T) {
							interopChain(t, ctx, id, suite, chain[0], chain[1], corrupt, nil)
						})
					}
				})
			}
		})
	}
	// UNAUTHENTICATED_SRTP (pkg/srtpctx): SRTP packets without a tag. A
	// corrupted key is not detectable without tags, so only the keys as
	// signalled are tried.
	t.Run("AES_CM_128_HMAC_SHA1_80 UNAUTHENTICATED_SRTP", func(t *testing.T) {
		for _, chain := range [][2]*proxy{{eng, kit}, {kit, eng}} {
			t.Run(chain[0].name+" encrypts, "+chain[1].name+" decrypts", func(t *testing.T) {
				n++
				id := fmt.Sprintf("interop-%d-%d", run, n)
				interopChain(t, ctx, id, "AES_CM_128_HMAC_SHA1_80", chain[0], chain[1], false, []string{"unauthenticated_srtp"})
			})
		}
	})
}

// queryMatches tells whether a proxy's query of call id, bencoded,
// matches re.
func queryMatches(t *testing.T, ctx context.Context, c *ngclient.Client, id, re string) bool {
	t.Helper()
	q := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
	r, err := c.Do(ctx, q)
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("query %s: %s %s %v", id, res, why, err)
	}
	return regexp.MustCompile(re).Match(bencode.Encode(r))
}

func ngDict(cmd, callID, fromTag, toTag, sdp string, extra ...bencode.Pair) bencode.Value {
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(callID)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str(fromTag)}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
	if toTag != "" {
		d.Set("to-tag", bencode.Str(toTag))
	}
	for _, p := range extra {
		d.Set(p.Key, p.Value)
	}
	return d
}

// interopChain sets up A (plain) → enc → (SRTP, suite) → dec → B (plain)
// and sends RTP both ways. With corrupt, the key enc offers dec is
// altered on the way: A's packets must then not reach B, while B's (under
// dec's own key, which enc got intact) still reach A.
//
// sdesExtra are SDES options of enc's offer (session parameters); the
// offer and the answer between the proxies must then carry them.
func interopChain(t *testing.T, ctx context.Context, id, suite string, enc, dec *proxy, corrupt bool, sdesExtra []string) {
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	fromTag, toTag := id+"-a", id+"-b"
	var noSuites []string
	for _, s := range allSuites {
		if s == suite {
			break
		}
		noSuites = append(noSuites, "no-"+s)
	}
	// A's offer to enc: onwards as RTP/SAVP, SDES offering the suite under
	// test first, which the answerer then picks.
	encOffer := testutil.NGOK(t, ctx, enc.c, ngDict("offer", id, fromTag, "", testutil.AudioSDP(a),
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/SAVP")},
		bencode.Pair{Key: "DTLS", Value: bencode.Str("off")},
		bencode.Pair{Key: "SDES", Value: bencode.Strs(append(noSuites, sdesExtra...)...)}))
	t.Logf("%s's offer:\n%s", enc.name, encOffer)
	checkSRTPSDP(t, enc.name+"'s offer", encOffer, suite)
	for _, o := range sdesExtra {
		if !strings.Contains(encOffer, " "+strings.ToUpper(o)+"\r\n") {
			t.Fatalf("%s's offer lacks %s", enc.name, strings.ToUpper(o))
		}
	}
	toDec := encOffer
	if corrupt {
		toDec = corruptKey(t, encOffer)
	}
	decOffer := testutil.NGOK(t, ctx, dec.c, ngDict("offer", id, fromTag, "", toDec,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")}))
	t.Logf("%s's offer:\n%s", dec.name, decOffer)
	checkPlainSDP(t, dec.name+"'s offer", decOffer)
	decAnswer := testutil.NGOK(t, ctx, dec.c, ngDict("answer", id, fromTag, toTag, testutil.AudioSDP(b)))
	t.Logf("%s's answer:\n%s", dec.name, decAnswer)
	checkSRTPSDP(t, dec.name+"'s answer", decAnswer, suite)
	for _, o := range sdesExtra {
		if !strings.Contains(decAnswer, " "+strings.ToUpper(o)+"\r\n") {
			t.Fatalf("%s's answer lacks %s", dec.name, strings.ToUpper(o))
		}
	}
	encAnswer := testutil.NGOK(t, ctx, enc.c, ngDict("answer", id, fromTag, toTag, decAnswer))
	t.Logf("%s's answer:\n%s", enc.name, encAnswer)
	checkPlainSDP(t, enc.name+"'s answer", encAnswer)
	t.Cleanup(func() {
		for _, p := range []*proxy{enc, dec} {
			del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
				bencode.Pair{Key: "from-tag", Value: bencode.Str(fromTag)})
			testutil.NGOK(t, ctx, p.c, del)
		}
	})

	if corrupt {
		// B→A first: it shows the call is in place on both proxies.
		interopFlow(t, "B→A", b, a, testutil.SDPMediaAddr(t, decOffer), 0x2000, true)
		interopFlow(t, "A→B", a, b, testutil.SDPMediaAddr(t, encAnswer), 0x1000, false)
		deadline := time.Now().Add(5 * time.Second)
		for !dec.decryptFailures(t, ctx, id) {
			if time.Now().After(deadline) {
				t.Fatalf("%s shows no SRTP failure for A's packets under a corrupted key", dec.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Whether enc dropped any of B's packets is not asked: B→A went
		// first, and a packet of B's that reaches rtpkit before the
		// answer's update (a few ms after the reply) meets the key still
		// pending there and is dropped as an SRTP failure (fwd.SRTPPending).
		return
	}
	interopFlow(t, "A→B", a, b, testutil.SDPMediaAddr(t, encAnswer), 0x1000, true)
	interopFlow(t, "B→A", b, a, testutil.SDPMediaAddr(t, decOffer), 0x2000, true)
	// A→B went first, and neither proxy waits for a key of the answer
	// before it: nothing may have failed SRTP.
	for _, p := range []*proxy{enc, dec} {
		if p.decryptFailures(t, ctx, id) {
			q := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
			r, _ := p.c.Do(ctx, q)
			t.Errorf("%s dropped packets that failed SRTP; query: %s", p.name, bencode.Encode(r))
		}
	}
}

// checkSRTPSDP: the SDP between the proxies is RTP/SAVP and its first
// a=crypto is of the suite under test.
func checkSRTPSDP(t *testing.T, what, body, suite string) {
	t.Helper()
	if m := sdpProtoRe.FindStringSubmatch(body); m == nil || m[1] != "RTP/SAVP" {
		t.Fatalf("%s is not RTP/SAVP:\n%s", what, body)
	}
	m := cryptoRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s has no a=crypto:\n%s", what, body)
	}
	c, err := sdes.Parse(m[1])
	if err != nil {
		t.Fatalf("%s: a=crypto:%s: %v", what, m[1], err)
	}
	if c.Suite.Name != suite {
		t.Fatalf("%s: first a=crypto is %s, want %s:\n%s", what, c.Suite.Name, suite, body)
	}
}

func checkPlainSDP(t *testing.T, what, body string) {
	t.Helper()
	if m := sdpProtoRe.FindStringSubmatch(body); m == nil || m[1] != "RTP/AVP" || strings.Contains(body, "a=crypto") {
		t.Fatalf("%s is not plain RTP/AVP:\n%s", what, body)
	}
}

var inlineRe = regexp.MustCompile(`inline:([A-Za-z0-9+/]+)`)

// corruptKey changes the first character of every inline key in body.
func corruptKey(t *testing.T, body string) string {
	t.Helper()
	out := inlineRe.ReplaceAllStringFunc(body, func(s string) string {
		k := []byte(s)
		i := len("inline:")
		if k[i] == 'A' {
			k[i] = 'B'
		} else {
			k[i] = 'A'
		}
		return string(k)
	})
	if out == body {
		t.Fatalf("no key to corrupt in\n%s", body)
	}
	return out
}

// interopFlow sends 20 RTP packets from one plain party to to (the
// address its proxy gave it). With want, the other party must get each
// byte for byte as sent (header, SSRC, sequence number, payload: neither
// proxy rewrites anything plain→SRTP→plain), but a few lost while the
// proxies install the call; without, none may arrive.
func interopFlow(t *testing.T, name string, from, other *net.UDPConn, to *net.UDPAddr, ssrc uint32, want bool) {
	t.Helper()
	buf := make([]byte, 2048)
	got := 0
	wait := 200 * time.Millisecond
	if !want {
		wait = 20 * time.Millisecond
	}
	for seq := uint16(1); seq <= 20; seq++ {
		sent := testutil.RTPPacket(ssrc, 1000+seq, fmt.Sprintf("%s payload %d", name, seq))
		if _, err := from.WriteToUDP(sent, to); err != nil {
			t.Fatal(err)
		}
		if !want && seq == 20 {
			wait = 300 * time.Millisecond
		}
		_ = other.SetReadDeadline(time.Now().Add(wait))
		n, _, err := other.ReadFromUDP(buf)
		if err != nil {
			continue // the proxies may still be installing the call
		}
		if !want {
			t.Fatalf("%s: packet %d arrived under a corrupted key: %x", name, seq, buf[:n])
		}
		if !bytes.Equal(buf[:n], sent) {
			gh, gp, gok := rtppacket.Read(buf[:n])
			sh, sp, _ := rtppacket.Read(sent)
			t.Fatalf("%s: packet %d arrived as\n%x (%+v %q RTP %v)\nsent\n%x (%+v %q)", name, seq, buf[:n], gh, gp, gok, sent, sh, sp)
		}
		got++
	}
	if want && got < 15 {
		t.Fatalf("%s: %d of 20 packets arrived", name, got)
	}
}
