package rtpfwd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

var mPort = regexp.MustCompile(`m=audio (\d+) `)

func sdpFor(port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", port)
}

// TestCallCarriesRTP: a call set up through ng carries RTP both ways
// between two endpoints, with payload, SSRC and sequence intact; after a
// kill -9 of rtp-fwd the restarted worker forwards again on the same ports.
func TestCallCarriesRTP(t *testing.T) {
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	up := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), []string{"up", "--nats-listen=127.0.0.1:0",
		"--state-dir=" + testutil.ShortTempDir(t), "--interface=127.0.0.1", "--port-min=39000", "--port-max=39999", "--listen-ng=" + ngAddr})
	m := up.WaitMatch(t, regexp.MustCompile(`(?m)^  rtp-fwd\s+running, pid (\d+)$`), 30*time.Second)
	fwdPID, _ := strconv.Atoi(m[1])
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)

	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	do := func(d bencode.Value) string {
		t.Helper()
		r, err := c.Do(ctx, d)
		if res, why := ngclient.Result(r); err != nil || res != "ok" {
			t.Fatalf("%v: %s %s %v", d, res, why, err)
		}
		s, _ := r.GetString("sdp")
		return s
	}
	mk := func(cmd, to, sdp string) bencode.Value {
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str("rtp1")},
			bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
		if to != "" {
			d.Set("to-tag", bencode.Str(to))
		}
		return d
	}
	toB := do(mk("offer", "", sdpFor(a.LocalAddr().(*net.UDPAddr).Port)))   // B is told where to send
	toA := do(mk("answer", "B", sdpFor(b.LocalAddr().(*net.UDPAddr).Port))) // A is told where to send
	portForB, _ := strconv.Atoi(mPort.FindStringSubmatch(toB)[1])
	portForA, _ := strconv.Atoi(mPort.FindStringSubmatch(toA)[1])
	dstA := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: portForA}
	dstB := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: portForB}

	testutil.Relay(t, a, dstA, b, 0x11111111, 1) // A → B
	testutil.Relay(t, b, dstB, a, 0x22222222, 1) // B → A
	testutil.Relay(t, a, dstA, b, 0x11111111, 2)

	// The workers' counters reach query (published once a second).
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str("rtp1")}))
		if err != nil {
			t.Fatal(err)
		}
		totals, _ := r.Get("totals")
		rtp, _ := totals.Get("RTP")
		if n, _ := rtp.GetInt("packets"); n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query shows no packets: %v", totals)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// rtp-fwd dies; its successor gets the sockets and rules back.
	if err := syscall.Kill(fwdPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	up.WaitMatch(t, regexp.MustCompile(`msg="exited; restarting" daemon=rtpctl-up child=rtp-fwd`), 10*time.Second)
	testutil.Relay(t, a, dstA, b, 0x11111111, 3)
	testutil.Relay(t, b, dstB, a, 0x22222222, 2)
}
