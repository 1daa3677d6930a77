package ngctl_test

import (
	"context"
	"fmt"
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
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// node is a whole node run by `rtpctl up` on free ports.
type node struct {
	up     *testutil.Proc
	ngAddr string
	ngctl  int
}

var ngctlRe = regexp.MustCompile(`(?m)^  ng-ctl\s+running, pid (\d+)$`)

func startNode(t *testing.T, portMin int, extra ...string) *node {
	t.Helper()
	port, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{ngAddr: "127.0.0.1:" + strconv.Itoa(port)}
	args := append([]string{"up", "--nats-listen=127.0.0.1:0", "--state-dir=" + testutil.ShortTempDir(t),
		"--interface=127.0.0.1", "--port-min=" + strconv.Itoa(portMin), "--port-max=" + strconv.Itoa(portMin+999),
		"--listen-ng=" + n.ngAddr}, extra...)
	n.up = testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), args)
	m := n.up.WaitMatch(t, ngctlRe, 30*time.Second)
	n.ngctl, _ = strconv.Atoi(m[1])
	n.up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	return n
}

const offerSDP = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0 8\r\n"
const answerSDP = "v=0\r\no=- 2 2 IN IP4 198.51.100.8\r\ns=-\r\nc=IN IP4 198.51.100.8\r\nt=0 0\r\nm=audio 9100 RTP/AVP 8\r\n"

var mPort = regexp.MustCompile(`m=audio (\d+) `)

func TestPerlClient(t *testing.T) {
	bin, err := exec.LookPath("rtpengine-ng-client")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("rtpengine-ng-client not installed (Debian rtpengine-utils; make test installs it)")
		}
		t.Skip("rtpengine-ng-client (Debian rtpengine-utils) not installed")
	}
	n := startNode(t, 34000)
	port := strings.Split(n.ngAddr, ":")[1]
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"--proxy-address=127.0.0.1", "--proxy-port=" + port}, args...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("rtpengine-ng-client %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, step := range []struct {
		args []string
		want []string
	}{
		{[]string{"ping"}, []string{`result => 'pong'`}},
		{[]string{"--call-id=perl1", "--from-tag=pa", "--trust-address", "--replace-origin", "--replace-session-connection",
			"--ICE=remove", "--sdp=" + offerSDP, "offer"}, []string{"New SDP:", "m=audio 34", "c=IN IP4 127.0.0.1"}},
		{[]string{"--call-id=perl1", "--from-tag=pa", "--to-tag=pb", "--trust-address", "--sdp=" + answerSDP, "answer"},
			[]string{"New SDP:", "a=rtpmap:8 PCMA/8000"}},
		{[]string{"--call-id=perl1", "query"}, []string{`totals =>`, `pa =>`, `pb =>`, `'local port' =>`}},
		{[]string{"list"}, []string{`'perl1'`}},
		{[]string{"--call-id=perl1", "--from-tag=pa", "--delete-delay=0", "delete"}, []string{`created =>`, `totals =>`}},
		{[]string{"--json", "ping"}, []string{`result => 'pong'`}},
	} {
		out := run(step.args...)
		if strings.Contains(out, "'error'") || strings.Contains(out, "error-reason") {
			t.Fatalf("rtpengine-ng-client %s got an error:\n%s", step.args[len(step.args)-1], out)
		}
		for _, w := range step.want {
			if !strings.Contains(out, w) {
				t.Fatalf("rtpengine-ng-client %s: no %q in:\n%s", step.args[len(step.args)-1], w, out)
			}
		}
	}
}

func TestNPMClient(t *testing.T) {
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs("testdata/npm-client")
	if _, serr := os.Stat(filepath.Join(dir, "node_modules", "rtpengine-client")); err != nil || serr != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatalf("node or the npm rtpengine-client is missing (make test runs npm ci in %s)", dir)
		}
		t.Skip("node or the npm rtpengine-client is not installed")
	}
	n := startNode(t, 35000)
	port := strings.Split(n.ngAddr, ":")[1]
	out, err := exec.Command(node, filepath.Join(dir, "client.js"), port).CombinedOutput()
	if err != nil {
		t.Fatalf("npm rtpengine-client: %v\n%s", err, out)
	}
	for _, step := range []string{"ping", "offer", "answer", "query", "list", "delete"} {
		if !strings.Contains(string(out), `{"step":"`+step+`"`) {
			t.Fatalf("no %s reply in:\n%s", step, out)
		}
	}
	if !strings.Contains(string(out), `"result":"pong"`) || !strings.Contains(string(out), "m=audio 35") {
		t.Fatalf("unexpected replies:\n%s", out)
	}
}

func offerReq(call string) bencode.Value {
	return bencode.NewDict(
		bencode.Pair{Key: "command", Value: bencode.Str("offer")}, bencode.Pair{Key: "call-id", Value: bencode.Str(call)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("a")}, bencode.Pair{Key: "sdp", Value: bencode.Str(offerSDP)},
		bencode.Pair{Key: "replace", Value: bencode.Strs("origin", "session-connection")})
}

func answerReq(call string) bencode.Value {
	return bencode.NewDict(
		bencode.Pair{Key: "command", Value: bencode.Str("answer")}, bencode.Pair{Key: "call-id", Value: bencode.Str(call)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("a")}, bencode.Pair{Key: "to-tag", Value: bencode.Str("b")},
		bencode.Pair{Key: "sdp", Value: bencode.Str(answerSDP)})
}

// localPorts reads each party's local RTP port from a query reply.
func localPorts(t *testing.T, c *ngclient.Client, call string) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(call)}))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	tags, _ := r.Get("tags")
	for _, kv := range tags.Dict {
		medias, _ := kv.Value.Get("medias")
		for _, m := range medias.List {
			streams, _ := m.Get("streams")
			if len(streams.List) > 0 {
				p, _ := streams.List[0].GetInt("local port")
				out[kv.Key] = p
			}
		}
	}
	return out
}

// TestKill9BetweenOfferAndAnswer: ng-ctl dies after the offer; the
// restarted one answers with the ports of the offer.
func TestKill9BetweenOfferAndAnswer(t *testing.T) {
	n := startNode(t, 36000)
	c, err := ngclient.Dial(n.ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.Do(ctx, offerReq("k9"))
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("offer: %s %s %v", res, why, err)
	}
	before := localPorts(t, c, "k9")
	if len(before) != 2 {
		t.Fatalf("ports before: %v", before)
	}
	if err := syscall.Kill(n.ngctl, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The client retransmits until the restarted ng-ctl answers.
	r, err = c.Do(ctx, answerReq("k9"))
	res, why := ngclient.Result(r)
	if err != nil || res != "ok" {
		t.Fatalf("answer after kill -9: %s %s %v\n%s", res, why, err, n.up.Output())
	}
	sdp, _ := r.GetString("sdp")
	m := mPort.FindStringSubmatch(sdp)
	if m == nil || m[1] != fmt.Sprint(before["a"]) {
		t.Fatalf("answer gives the caller port %v, the offer had chosen %d:\n%s", m, before["a"], sdp)
	}
	after := localPorts(t, c, "k9")
	if after["a"] != before["a"] || after["b"] != before["<untagged 1>"] {
		t.Fatalf("ports changed across the restart: before %v after %v", before, after)
	}
	if !testutil.Alive(n.up.PID()) || testutil.Alive(n.ngctl) {
		t.Fatal("expected the old ng-ctl dead and the node alive")
	}
}

func listReq() bencode.Value {
	return bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("list")})
}

// TestExhaustedPortsAnswerErrorAndRecover: a node whose range holds two
// pairs carries one call (offer and answer take one pair each); the next
// offer gets "Ran out of ports" after portd's LeaseWait, not a second
// wait for a lease of one, and leaves no call; once the first call is
// deleted, its pairs serve a new call.
func TestExhaustedPortsAnswerErrorAndRecover(t *testing.T) {
	n := startNode(t, 33100, "--port-max=33103", "--port-quarantine=0", "--delete-delay=0")
	c, err := ngclient.Dial(n.ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRetransmit(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	do := func(name string, req bencode.Value, want, wantReason string) time.Duration {
		t.Helper()
		start := time.Now()
		r, err := c.Do(ctx, req)
		if res, why := ngclient.Result(r); err != nil || res != want || why != wantReason {
			t.Fatalf("%s: result %q reason %q err %v, want %q %q", name, res, why, err, want, wantReason)
		}
		return time.Since(start)
	}
	do("offer 1", offerReq("full1"), "ok", "")
	do("answer 1", answerReq("full1"), "ok", "")
	took := do("offer 2", offerReq("full2"), "error", "Ran out of ports")
	t.Logf("refused offer took %v", took)
	// One wait at portd (about LeaseWait); the stock's refill and then a
	// lease of one each waiting made it about three.
	if took > portd.LeaseWait*5/2 {
		t.Errorf("the refused offer took %v, want about portd.LeaseWait (%v), not several", took, portd.LeaseWait)
	}
	r, err := c.Do(ctx, listReq())
	calls, _ := r.Get("calls")
	if err != nil || len(calls.List) != 1 {
		t.Fatalf("calls after the refused offer: %v %v, want only full1", calls, err)
	}
	del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str("full1")},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("a")})
	do("delete 1", del, "ok", "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.Do(ctx, offerReq("full3"))
		if res, _ := ngclient.Result(r); err == nil && res == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no offer succeeded after the first call ended: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
