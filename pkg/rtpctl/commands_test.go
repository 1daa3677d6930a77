package rtpctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtpctl"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// The node of these tests: its own media ports and node id.
const (
	cmdNode    = "cmdtest"
	cmdPortMin = 41000
	cmdPortMax = 41999
)

// run runs rtpctl with args and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testutil.Binaries(t), "rtpctl"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("rtpctl %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// testNode is a node started with `rtpctl up`, and a client of its ng port.
type testNode struct {
	up  *testutil.Proc
	url string
	ng  *ngclient.Client
}

func startCmdNode(t *testing.T) *testNode {
	t.Helper()
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	up := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), []string{"up", "--nats-listen=127.0.0.1:0",
		"--node-id=" + cmdNode, "--state-dir=" + testutil.ShortTempDir(t), "--interface=127.0.0.1",
		"--port-min=" + strconv.Itoa(cmdPortMin), "--port-max=" + strconv.Itoa(cmdPortMax), "--listen-ng=" + ngAddr})
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	url := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(up.Output())
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &testNode{up: up, url: url, ng: c}
}

// ctl runs a client command against the node.
func (n *testNode) ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return run(t, append(args, "--nats-url="+n.url, "--node-id="+cmdNode)...)
}

// mustCtl runs a client command that must succeed.
func (n *testNode) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := n.ctl(t, args...)
	if code != 0 {
		t.Fatalf("rtpctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mediaCall is a call set up through ng between two local sockets.
type mediaCall struct {
	a, b      *net.UDPConn
	toA, toB  *net.UDPAddr // our sockets that A and B send to
	localForA int          // the port of our socket that receives from A
	aPort     int
}

func udpSock(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sdpOf(port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", port)
}

var mAudio = regexp.MustCompile(`m=audio (\d+) `)

func (n *testNode) call(t *testing.T, ctx context.Context, id string) *mediaCall {
	t.Helper()
	mc := &mediaCall{a: udpSock(t), b: udpSock(t)}
	mc.aPort = mc.a.LocalAddr().(*net.UDPAddr).Port
	do := func(cmd, to, sdp string) string {
		t.Helper()
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
			bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
		if to != "" {
			d.Set("to-tag", bencode.Str(to))
		}
		r, err := n.ng.Do(ctx, d)
		if res, why := ngclient.Result(r); err != nil || res != "ok" {
			t.Fatalf("%s %s: %s %s %v", cmd, id, res, why, err)
		}
		s, _ := r.GetString("sdp")
		return s
	}
	toB := do("offer", "", sdpOf(mc.aPort))
	toA := do("answer", "B", sdpOf(mc.b.LocalAddr().(*net.UDPAddr).Port))
	pA, _ := strconv.Atoi(mAudio.FindStringSubmatch(toA)[1])
	pB, _ := strconv.Atoi(mAudio.FindStringSubmatch(toB)[1])
	mc.toA = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pA}
	mc.toB = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pB}
	mc.localForA = pA
	return mc
}

// check is one expectation on a command's output.
type check struct {
	name string
	args []string
	code int
	// out are patterns stdout must match (multi-line mode).
	out []string
	// json, when set, decodes stdout and checks it.
	json func(t *testing.T, v map[string]any)
}

func (n *testNode) runChecks(t *testing.T, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := n.ctl(t, c.args...)
			if code != c.code {
				t.Fatalf("rtpctl %s: exit %d, want %d\n%s%s", strings.Join(c.args, " "), code, c.code, out, errOut)
			}
			for _, p := range c.out {
				if !regexp.MustCompile("(?m)" + p).MatchString(out + errOut) {
					t.Errorf("rtpctl %s: output lacks %q:\n%s%s", strings.Join(c.args, " "), p, out, errOut)
				}
			}
			if c.json != nil {
				var v map[string]any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("rtpctl %s: not JSON (%v):\n%s", strings.Join(c.args, " "), err, out)
				}
				c.json(t, v)
			}
		})
	}
}

// path digs into decoded JSON: keys of objects, indexes of arrays.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// TestClientCommands runs every client command, text and JSON, against a
// node started with `rtpctl up`, with calls made through ng and RTP both
// ways on one of them.
func TestClientCommands(t *testing.T) {
	n := startCmdNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	n.runChecks(t, []check{
		{name: "no sessions", args: []string{"list", "sessions"}, out: []string{`^No sessions on this media relay\.$`}},
		{name: "no sessions json", args: []string{"list", "sessions", "--json"}, json: func(t *testing.T, v map[string]any) {
			if s, ok := v["sessions"].([]any); !ok || len(s) != 0 {
				t.Errorf("sessions %v", v)
			}
		}},
		{name: "terminate all of none", args: []string{"terminate", "all"}, out: []string{`^All calls terminated by operator \(0\)\.$`}},
	})

	c1 := n.call(t, ctx, "cmd-call-1")
	n.call(t, ctx, "cmd-call-2")
	for seq := uint16(1); seq <= 3; seq++ {
		testutil.Relay(t, c1.a, c1.toA, c1.b, 0x1234, seq)
		testutil.Relay(t, c1.b, c1.toB, c1.a, 0x1234, seq)
	}
	// The workers' counters reach ng-ctl once a second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := n.mustCtl(t, "session", "cmd-call-1", "--json")
		var v map[string]any
		_ = json.Unmarshal([]byte(out), &v)
		if num(path(v, "query", "totals", "RTP", "packets")) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no packets counted:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	localA := strconv.Itoa(c1.localForA)
	aPort := strconv.Itoa(c1.aPort)
	n.runChecks(t, []check{
		{name: "list sessions", args: []string{"list", "sessions"}, out: []string{
			`^CALL-ID\s+OWNER\s+FOREIGN\s+CREATED\s+LAST SIGNAL\s+DELETION MARK\s+KEYSPACE\s+TAGS$`,
			`^cmd-call-1\s+cmdtest\s+no\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+no\s+-\s+A B$`,
			`^cmd-call-2\s+cmdtest\s+no\s`}},
		{name: "list sessions own", args: []string{"list", "sessions", "own"}, out: []string{`^cmd-call-1\s`, `^cmd-call-2\s`}},
		{name: "list sessions foreign", args: []string{"list", "sessions", "foreign"}, out: []string{`^No foreign sessions on this media relay\.$`}},
		{name: "list sessions json", args: []string{"list", "sessions", "all", "--json"}, json: func(t *testing.T, v map[string]any) {
			if path(v, "sessions", 0, "id") != "cmd-call-1" || path(v, "sessions", 1, "id") != "cmd-call-2" ||
				path(v, "sessions", 0, "owner") != cmdNode || path(v, "sessions", 0, "foreign") != false ||
				path(v, "sessions", 0, "tags", 1) != "B" || path(v, "sessions", 0, "created") == nil || path(v, "sessions", 2) != nil {
				t.Errorf("sessions %v", v)
			}
		}},
		{name: "numsessions", args: []string{"list", "numsessions"}, out: []string{
			`^Current sessions own: +2$`, `^Current sessions foreign: +0$`, `^Current sessions total: +2$`}},
		{name: "numsessions json", args: []string{"list", "numsessions", "--json"}, json: func(t *testing.T, v map[string]any) {
			if num(v["own"]) != 2 || num(v["foreign"]) != 0 || num(v["total"]) != 2 {
				t.Errorf("numsessions %v", v)
			}
		}},
		{name: "totals", args: []string{"list", "totals"}, out: []string{`^Uptime of ng-ctl: +\S+$`, `^Total managed sessions: +2$`,
			`^Total forced terminated sessions: +0$`, `^Control statistics:$`, `^PROXY\s+OFFER\s+ANSWER\s+DELETE`, `^127\.0\.0\.1\s+2\s+2\s+0\s`}},
		{name: "totals json", args: []string{"list", "totals", "--json"}, json: func(t *testing.T, v map[string]any) {
			if num(path(v, "totalstatistics", "managedsessions")) != 2 || path(v, "controlstatistics", "proxies") == nil {
				t.Errorf("totals %v", v)
			}
		}},
		{name: "session", args: []string{"session", "cmd-call-1"}, out: []string{
			`^Call-ID: +cmd-call-1$`, `^Owner: +cmdtest \(own\)$`, `^Deletion mark: +no$`, `^Totals: +RTP [1-9]\d* p, \d+ b, 0 e; RTCP 0 p, 0 b, 0 e$`,
			`^--- Tag 'A', created .*, in dialogue with 'B'$`, `^--- Tag 'B'`,
			`^ +MEDIA +STREAM +LOCAL +ADVERTISED +ENDPOINT +PACKETS +BYTES +ERRORS +LAST PACKET +FLAGS$`,
			// Our socket that receives from A, A's endpoint, what A sent.
			`^ +1 audio RTP/AVP +RTP +127\.0\.0\.1:` + localA + ` +127\.0\.0\.1:` + localA + ` +127\.0\.0\.1:` + aPort + ` +[1-9]\d* +[1-9]\d* +0 +\d+s ago +filled,initialized,send,recv$`,
			`^ +1 audio RTP/AVP +RTCP +127\.0\.0\.1:\d+ .* never `}},
		{name: "list sessions CALL-ID", args: []string{"list", "sessions", "cmd-call-1"}, out: []string{`^Call-ID: +cmd-call-1$`}},
		{name: "session json", args: []string{"session", "--json", "cmd-call-1"}, json: func(t *testing.T, v map[string]any) {
			st := path(v, "query", "tags", "A", "medias", 0, "streams", 0)
			if path(v, "session", "id") != "cmd-call-1" || path(v, "session", "owner") != cmdNode ||
				num(path(st, "local port")) != c1.localForA || num(path(st, "endpoint", "port")) != c1.aPort ||
				num(path(st, "stats", "packets")) < 3 || path(v, "query", "result") != "ok" {
				t.Errorf("session %v", v)
			}
		}},
		{name: "session unknown", args: []string{"session", "nope"}, code: 1, out: []string{`^rtpctl session: Call Id not found \(nope\)\.$`}},
		{name: "interfaces", args: []string{"interfaces"}, out: []string{
			`^INTERFACE\s+ADDRESS\s+ADVERTISED\s+PORTS\s+USED\s+FREE\s+QUARANTINED\s+USE\s+PAIRS IN CALLS\s+PAIRS LEASED\s+ON HOST$`,
			`^default\s+127\.0\.0\.1\s+-\s+41000-41999\s+\d+\s+\d+\s+\d+\s+\d+\.\d%\s+4\s+\d+\s+yes$`,
			`^Media sockets open: \d+ \(descriptor limit \d+\); forwarding workers: 1$`}},
		{name: "interfaces json", args: []string{"interfaces", "--json"}, json: func(t *testing.T, v map[string]any) {
			a := path(v, "interfaces", 0, "addresses", 0)
			if path(v, "interfaces", 0, "name") != "default" || path(a, "local") != "127.0.0.1" || num(path(a, "port_min")) != cmdPortMin ||
				num(path(a, "port_max")) != cmdPortMax || num(path(a, "assigned")) != 4 || num(path(a, "used"))+num(path(a, "free"))+num(path(a, "quarantined")) != 1000 {
				t.Errorf("interfaces %v", v)
			}
		}},
		{name: "get all", args: []string{"get"}, out: []string{`\ATIMEOUT=60\nSILENT_TIMEOUT=3600\nOFFER_TIMEOUT=3600\nFINAL_TIMEOUT=0\nDELETE_DELAY=30\nMAX_SESSIONS=-1\n\z`}},
		{name: "get json", args: []string{"get", "all", "--json"}, json: func(t *testing.T, v map[string]any) {
			if len(v) != 6 || num(v["timeout"]) != 60 || num(v["maxsessions"]) != -1 || num(v["deletedelay"]) != 30 {
				t.Errorf("settings %v", v)
			}
		}},
		{name: "set timeout", args: []string{"set", "timeout", "45"}, out: []string{`\ASuccess setting timeout to 45\.\n\z`}},
		{name: "get timeout", args: []string{"get", "timeout"}, out: []string{`\ATIMEOUT=45\n\z`}},
		{name: "get option spelling", args: []string{"get", "silent-timeout", "--json"}, json: func(t *testing.T, v map[string]any) {
			if len(v) != 1 || num(v["silenttimeout"]) != 3600 {
				t.Errorf("settings %v", v)
			}
		}},
		{name: "list timeout", args: []string{"list", "timeout"}, out: []string{`\ATIMEOUT=45\n\z`}},
		{name: "set maxsessions", args: []string{"set", "maxsessions", "2", "--json"}, json: func(t *testing.T, v map[string]any) {
			if len(v) != 1 || num(v["maxsessions"]) != 2 {
				t.Errorf("settings %v", v)
			}
		}},
		{name: "ng ping", args: []string{"ng", `{"command":"ping"}`}, out: []string{`\A\{\n  "result": "pong"\n\}\n\z`}},
		// The limit of 2 set above refuses a third call.
		{name: "ng offer over the limit", args: []string{"ng", `{"command":"offer","call-id":"cmd-call-3","from-tag":"A","supports":["load limit"],"sdp":"` +
			strings.ReplaceAll(sdpOf(5000), "\r\n", `\r\n`) + `"}`}, out: []string{`"result": "load limit"`}},
		{name: "ng query", args: []string{"ng", `{"command":"query","call-id":"cmd-call-1"}`}, json: func(t *testing.T, v map[string]any) {
			if v["result"] != "ok" || path(v, "tags", "A", "tag") != "A" {
				t.Errorf("query %v", v)
			}
		}},
		{name: "ng error", args: []string{"ng", `{"command":"query","call-id":"nope"}`}, code: 1, out: []string{`"error-reason": "Unknown call-id"`}},
		{name: "terminate unknown", args: []string{"terminate", "nope"}, code: 1, out: []string{`^rtpctl terminate: Call Id not found \(nope\)\.$`}},
		{name: "terminate one", args: []string{"terminate", "cmd-call-1"}, out: []string{`\ACall Id \(cmd-call-1\) successfully terminated by operator\.\n\z`}},
		{name: "terminate foreign", args: []string{"terminate", "foreign", "--json"}, json: func(t *testing.T, v map[string]any) {
			if s, ok := v["terminated"].([]any); !ok || len(s) != 0 {
				t.Errorf("terminated %v", v)
			}
		}},
		{name: "terminate own", args: []string{"terminate", "own", "--json"}, json: func(t *testing.T, v map[string]any) {
			if s, _ := v["terminated"].([]any); len(s) != 1 || s[0] != "cmd-call-2" {
				t.Errorf("terminated %v", v)
			}
		}},
		{name: "none left", args: []string{"list", "numsessions"}, out: []string{`^Current sessions total: +0$`}},
		{name: "forced in totals", args: []string{"list", "totals"}, out: []string{`^Total forced terminated sessions: +2$`, `^Total rejected sessions: +1$`}},
	})

	// The end of the call is one CDR line with what each party sent.
	n.up.WaitMatch(t, regexp.MustCompile(`msg="call ended" daemon=ng-ctl call=cmd-call-1 reason=forced duration=\S+ tags="\[A B\]" foreign=false created=\S+ last_signal=\S+ `+
		`ml0\.tag=A ml0\.packets=[1-9]\d* ml0\.bytes=[1-9]\d* ml0\.errors=0 ml0\.endpoint=127\.0\.0\.1:`+aPort+` ml1\.tag=B ml1\.packets=[1-9]\d* .* packets=[1-9]\d* bytes=\d+ errors=0`), 5*time.Second)
}

// TestClientCommandUsageErrors: a bad command line is exit 2 with one line
// saying what is wrong and the usage, without contacting any node.
func TestClientCommandUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "missing what to list"},
		{[]string{"list", "frob"}, `cannot list "frob"`},
		{[]string{"list", "sessions", "own", "x"}, `unexpected argument "x"`},
		{[]string{"list", "numsessions", "x"}, `unexpected argument "x"`},
		{[]string{"list", "sessions", "--bogus"}, "unknown option --bogus"},
		{[]string{"session"}, "missing CALL-ID"},
		{[]string{"session", "a", "b"}, "one CALL-ID, got 2 arguments"},
		{[]string{"session", "a", "--wait=soon"}, `invalid value "soon" for option --wait`},
		{[]string{"session", "a", "--timeout=soon"}, `invalid value "soon" for option --wait`},
		{[]string{"terminate"}, "missing CALL-ID, all, own or foreign"},
		{[]string{"terminate", "a", "b"}, "one CALL-ID, all, own or foreign"},
		{[]string{"interfaces", "x"}, `unexpected argument "x"`},
		{[]string{"get", "loglevel"}, `unknown parameter "loglevel"`},
		{[]string{"get", "timeout", "x"}, `unexpected argument "x"`},
		{[]string{"set", "timeout"}, "want a parameter and its value"},
		{[]string{"set", "timeout", "soon"}, `timeout: "soon" is not a whole number`},
		{[]string{"set", "timeout", "-5"}, "timeout -5: must be >= 0"},
		{[]string{"set", "maxsessions", "-2"}, "maxsessions -2: must be -1 (no limit) or more"},
		{[]string{"set", "bogus", "1"}, `unknown parameter "bogus"`},
		{[]string{"ng"}, "missing the JSON document"},
		{[]string{"ng", "{nope"}, "not a JSON object"},
		{[]string{"ng", `{"call-id":"x"}`}, `the document has no "command" string`},
		{[]string{"ng", `{"command":"ping"}`, "x"}, "one JSON document, got 2 arguments"},
		{[]string{"completion"}, "missing shell"},
		{[]string{"completion", "tcsh"}, `unsupported shell "tcsh"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
			}
			first, _, _ := strings.Cut(errOut, "\n")
			if !strings.Contains(first, tt.want) || !strings.Contains(errOut, "Usage: ") || out != "" {
				t.Fatalf("want a first line with %q, then the usage; got:\nstdout: %s\nstderr: %s", tt.want, out, errOut)
			}
		})
	}
	// --help is not an error.
	for _, cmd := range []string{"list", "session", "terminate", "interfaces", "get", "set", "ng", "completion"} {
		out, errOut, code := run(t, cmd, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: rtpctl "+cmd) {
			t.Errorf("rtpctl %s --help: exit %d\n%s%s", cmd, code, out, errOut)
		}
	}
}

// TestClientCommandsUnreachable: no bus at the URL is exit 3, and the
// message names the URL.
func TestClientCommandsUnreachable(t *testing.T) {
	port, err := testutil.FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	for _, args := range [][]string{
		{"list", "sessions"}, {"list", "numsessions"}, {"list", "totals"}, {"session", "x"}, {"terminate", "all"},
		{"interfaces"}, {"get", "timeout"}, {"set", "timeout", "5"}, {"ng", `{"command":"ping"}`},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := run(t, append(args, "--nats-url", url, "--wait=300ms")...)
			if code != 3 || !strings.Contains(errOut, url) {
				t.Fatalf("exit %d, want 3 naming %s:\n%s%s", code, url, out, errOut)
			}
		})
	}
}

// TestClientWaitOption: a client's wait is --wait, or --timeout on the
// command line only. ng-ctl's `timeout` (seconds of no media) in a config
// file shared by the node or in RTPKIT_TIMEOUT is not the client's: it
// neither fails as a malformed duration (exit 2) nor becomes the wait.
func TestClientWaitOption(t *testing.T) {
	port, err := testutil.FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(t.TempDir(), "rtpkit.conf")
	if err := os.WriteFile(conf, []byte("[rtpkit]\ninterface 127.0.0.1\ntimeout 60\nsilent-timeout 3600\nwait 300ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  string
		args []string
		code int
		want string
	}{
		{"node config file", "", []string{"list", "sessions", "--config=" + conf}, 3, url},
		{"RTPKIT_TIMEOUT is ng-ctl's", "RTPKIT_TIMEOUT=60", []string{"list", "totals", "--wait=300ms"}, 3, url},
		{"RTPKIT_WAIT", "RTPKIT_WAIT=300ms", []string{"interfaces"}, 3, url},
		{"--timeout VALUE as before", "", []string{"session", "x", "--timeout", "300ms"}, 3, url},
		{"-timeout=VALUE as before", "", []string{"get", "-timeout=300ms"}, 3, url},
		{"--wait VALUE", "", []string{"session", "--wait", "300ms", "x"}, 3, url},
		{"a bad wait", "", []string{"list", "sessions", "--wait", "60"}, 2, `invalid value "60" for option --wait`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				k, v, _ := strings.Cut(tt.env, "=")
				t.Setenv(k, v)
			}
			out, errOut, code := run(t, append(tt.args, "--nats-url", url)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d and %q:\n%s%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
}

// TestClientCommandsDaemonMissing: a bus where ng-ctl and portd do not
// run is exit 3 too, naming the daemon and the URL.
func TestClientCommandsDaemonMissing(t *testing.T) {
	srv := testutil.StartNATS(t)
	url := srv.URL()
	for _, tt := range []struct {
		args   []string
		daemon string
	}{
		{[]string{"list", "sessions"}, "ng-ctl"}, {[]string{"session", "x"}, "ng-ctl"}, {[]string{"get"}, "ng-ctl"},
		{[]string{"ng", `{"command":"ping"}`}, "ng-ctl"}, {[]string{"interfaces"}, "portd"},
	} {
		out, errOut, code := run(t, append(tt.args, "--nats-url", url, "--node-id=nobody", "--wait=2s")...)
		if code != 3 || !strings.Contains(errOut, tt.daemon+" is not running on node \"nobody\"") || !strings.Contains(errOut, url) {
			t.Errorf("rtpctl %s: exit %d, want 3 naming %s and %s:\n%s%s", strings.Join(tt.args, " "), code, tt.daemon, url, out, errOut)
		}
	}
}

// TestBashCompletion: the script is valid bash and completes commands,
// their words and their options.
func TestBashCompletion(t *testing.T) {
	var script bytes.Buffer
	if code := rtpctl.Main([]string{"completion", "bash"}, &script, os.Stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	file := filepath.Join(t.TempDir(), "rtpctl.bash")
	if err := os.WriteFile(file, script.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ line, want string }{
		{"rtpctl ", "up status bench keyspace active standby list session terminate interfaces get set ng dtmf bus-keys completion version help"},
		{"rtpctl te", "terminate"},
		{"rtpctl list ", "sessions numsessions totals"},
		{"rtpctl list sessions ", "all own foreign"},
		{"rtpctl list --json sessions o", "own"},
		{"rtpctl terminate ", "all own foreign"},
		{"rtpctl get ", "timeout silenttimeout offertimeout finaltimeout deletedelay maxsessions all"},
		{"rtpctl set m", "maxsessions"},
		{"rtpctl set maxsessions ", ""},
		{"rtpctl keyspace ", "add remove list"},
		{"rtpctl bench ", "setup media"},
		{"rtpctl bench media --pp", "--pps"},
		{"rtpctl bench setup --cl", "--clients"},
		{"rtpctl status --j", "--json"},
		{"rtpctl session --nats-u", "--nats-url"},
		{"rtpctl list --timeout 2s s", "sessions"},
		{"rtpctl list --log-format ", "text json"},
		{"rtpctl list --log-format=j", "json"},
		{"rtpctl up --max-s", "--max-sessions"},
		{"rtpctl completion ", "bash"},
	} {
		cmd := exec.Command(bash, "--norc", "-c", `source "$1"; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}; _rtpctl; echo "${COMPREPLY[*]}"`, "_", file, tt.line)
		cmd.Env = []string{"PATH=/nonexistent"} // no rtpctl to ask for call ids
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("%q completes to %q (%v), want %q", tt.line, strings.TrimSpace(string(out)), err, tt.want)
		}
	}
}
