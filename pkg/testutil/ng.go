package testutil

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

// NGCall builds an offer or answer as the tests send them: the caller's
// from-tag is "A", to is the to-tag (none if empty), sdp the body.
func NGCall(cmd, call, to, sdp string) bencode.Value {
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(call)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")})
	if sdp != "" {
		d.Set("sdp", bencode.Str(sdp))
	}
	if to != "" {
		d.Set("to-tag", bencode.Str(to))
	}
	return d
}

// NGOK sends d and fails the test unless the reply's result is ok (or pong
// for a ping); it returns the reply's SDP (empty if none).
func NGOK(t testing.TB, ctx context.Context, c *ngclient.Client, d bencode.Value) string {
	t.Helper()
	r, err := c.Do(ctx, d)
	if res, why := ngclient.Result(r); err != nil || (res != "ok" && res != "pong") {
		t.Fatalf("%v: %s %s %v", d, res, why, err)
	}
	s, _ := r.GetString("sdp")
	return s
}

// StartLocalNode runs a whole node (`rtpctl up`, embedded bus) on
// 127.0.0.1 with media ports portMin–portMax and an ng port of its own,
// plus extra options; it returns once the node is up, with an ng client
// dialled to it (closed at cleanup) and the ng address.
func StartLocalNode(t testing.TB, portMin, portMax int, extra ...string) (*Proc, *ngclient.Client, string) {
	t.Helper()
	ngPort, err := FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	args := append([]string{"up", "--nats-listen=127.0.0.1:0", "--state-dir=" + ShortTempDir(t), "--interface=127.0.0.1",
		"--port-min=" + strconv.Itoa(portMin), "--port-max=" + strconv.Itoa(portMax), "--listen-ng=" + ngAddr}, extra...)
	up := StartProc(t, filepath.Join(Binaries(t), "rtpctl"), args)
	up.WaitMatch(t, regexp.MustCompile(`(?m)^  rtp-fwd\s+running, pid \d+$`), 30*time.Second)
	up.WaitMatch(t, MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return up, c, ngAddr
}

// AudioSDP is an SDP offering one audio stream (PCMU) on c's loopback
// port.
func AudioSDP(c *net.UDPConn) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n",
		c.LocalAddr().(*net.UDPAddr).Port)
}

var audioPortRe = regexp.MustCompile(`m=audio (\d+) `)

// SDPMediaAddr is where an SDP on loopback says to send its audio.
func SDPMediaAddr(t testing.TB, sdp string) *net.UDPAddr {
	t.Helper()
	m := audioPortRe.FindStringSubmatch(sdp)
	if m == nil {
		t.Fatalf("no m=audio port in %q", sdp)
	}
	p, _ := strconv.Atoi(m[1])
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}
}
