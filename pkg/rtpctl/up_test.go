package rtpctl_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

var childRe = regexp.MustCompile(`(?m)^  (\S+)\s+running, pid (\d+)$`)

// startUp runs `rtpctl up` on a free bus port and waits for its endpoints.
func startUp(t *testing.T, extra ...string) (*testutil.Proc, map[string]int, string) {
	t.Helper()
	bin := testutil.Binaries(t)
	state := testutil.ShortTempDir(t)
	args := append([]string{"up", "--nats-listen=127.0.0.1:0", "--state-dir=" + state,
		"--interface=127.0.0.1", "--port-min=36000", "--port-max=36099"}, extra...)
	p := testutil.StartProc(t, filepath.Join(bin, "rtpctl"), args)
	p.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	out := p.Output()
	for _, want := range []string{"  bus          nats://127.0.0.1:", "  state-dir    " + state, "  ng           udp 127.0.0.1:2223"} {
		if !strings.Contains(out, want) {
			t.Fatalf("endpoints lack %q:\n%s", want, out)
		}
	}
	children := map[string]int{}
	for _, m := range childRe.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[2])
		children[m[1]] = pid
	}
	if children["portd"] == 0 {
		t.Fatalf("portd is not running:\n%s", out)
	}
	url := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(out)
	return p, children, url
}

// The policies of /proc/PID/task/TID/stat (field 41).
const (
	schedOther = 0
	schedBatch = 3
)

// threadSched is a thread's scheduling policy and nice value.
type threadSched struct{ policy, nice int }

// threadPolicies reads the scheduling policy and nice value of each thread
// of pid.
func threadPolicies(t *testing.T, pid int) map[int]threadSched {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	out := map[int]threadSched{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "stat"))
		if err != nil {
			continue // exited
		}
		// Fields after the command name, which is in parentheses.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		// fields[0] is field 3 (state); nice is field 19, the policy 41.
		policy, err1 := strconv.Atoi(fields[41-3])
		nice, err2 := strconv.Atoi(fields[19-3])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: policy %q, nice %q", e.Name(), fields[41-3], fields[19-3])
		}
		tid, _ := strconv.Atoi(e.Name())
		out[tid] = threadSched{policy, nice}
	}
	if len(out) == 0 {
		t.Fatalf("no threads read for pid %d", pid)
	}
	return out
}

func pids(m map[string]int) []int {
	var out []int
	for _, pid := range m {
		out = append(out, pid)
	}
	return out
}

func TestUpStartsAndStopsCleanlyOnSIGTERM(t *testing.T) {
	p, children, url := startUp(t)
	for name, pid := range children {
		if !testutil.Alive(pid) {
			t.Fatalf("%s (pid %d) not alive", name, pid)
		}
	}
	// --scheduling=auto: every thread runs SCHED_BATCH but ng-ctl's (the
	// request path, ngctl.Tuning) and rtp-fwd's forwarding loops (one per
	// CPU), which set themselves to SCHED_OTHER.
	// Work off the request and media paths runs proctune.BackgroundNice higher:
	// every thread of portd and redis-sync, rtp-fwd's control threads (as
	// root: it may bring its loops back to 0) and rtpctl up's but the one
	// the children are forked from, which keeps 0 for them; ng-ctl stays 0.
	for _, name := range []string{"rtpctl", "portd", "ng-ctl", "rtp-fwd", "redis-sync"} {
		pid := p.PID()
		if name != "rtpctl" {
			pid = children[name]
		}
		bg := proctune.BackgroundNice
		switch {
		case name == "ng-ctl", name == "rtp-fwd" && os.Geteuid() != 0:
			bg = 0
		}
		loops, atZero := 0, 0
		for tid, got := range threadPolicies(t, pid) {
			switch {
			case name == "ng-ctl":
				if got.policy != schedOther || got.nice != 0 {
					t.Errorf("ng-ctl thread %d: policy %d nice %d, want %d nice 0", tid, got.policy, got.nice, schedOther)
				}
			case got.policy == schedOther && name == "rtp-fwd":
				loops++
				if got.nice != 0 {
					t.Errorf("rtp-fwd loop thread %d: nice %d, want 0", tid, got.nice)
				}
			case got.policy != schedBatch:
				t.Errorf("%s thread %d: policy %d, want %d", name, tid, got.policy, schedBatch)
			case got.nice == 0 && name == "rtpctl":
				atZero++
			case got.nice != bg:
				t.Errorf("%s thread %d: nice %d, want %d", name, tid, got.nice, bg)
			}
		}
		if name == "rtp-fwd" && loops != runtime.NumCPU() {
			t.Errorf("rtp-fwd: %d threads SCHED_OTHER, want one per forwarding loop (%d)", loops, runtime.NumCPU())
		}
		if name == "rtpctl" && atZero != 1 {
			t.Errorf("rtpctl up: %d threads at nice 0, want 1 (the spawner)", atZero)
		}
	}
	// The node answers on its bus.
	out, err := exec.Command(filepath.Join(testutil.Binaries(t), "rtpctl"), "status", "--nats-url", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "portd") {
		t.Fatalf("rtpctl status: %v\n%s", err, out)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(30 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("rtpctl up exit %d, %v\n%s", code, err, p.Output())
	}
	testutil.WaitGone(t, pids(children), 5*time.Second)
	if left := testutil.Children(p.PID()); len(left) > 0 {
		t.Fatalf("children left: %v", left)
	}
}

func TestKill9OfUpLeavesNoChild(t *testing.T) {
	p, children, _ := startUp(t)
	all := append(pids(children), testutil.Children(p.PID())...)
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = p.Wait(10 * time.Second)
	testutil.WaitGone(t, all, 5*time.Second)
}

func TestChildKilledIsRestarted(t *testing.T) {
	p, children, url := startUp(t)
	old := children["portd"]
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.WaitMatch(t, regexp.MustCompile(`msg="exited; restarting" daemon=rtpctl-up child=portd`), 10*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command(filepath.Join(testutil.Binaries(t), "rtpctl"), "status", "--json", "--nats-url", url).CombinedOutput()
		if err == nil && strings.Contains(string(out), `"daemon": "portd"`) && !strings.Contains(string(out), `"pid": `+strconv.Itoa(old)+",") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("portd not back: %v\n%s\n%s", err, out, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestBadOptionsExit2WithUsage(t *testing.T) {
	bin := filepath.Join(testutil.Binaries(t), "rtpctl")
	conf := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(conf, []byte("port-min = 30000\nno-such-option 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown option", []string{"up", "--bogus"}, "unknown option --bogus"},
		{"bad value", []string{"up", "--port-min=many"}, `invalid value "many" for option --port-min`},
		{"bad range", []string{"up", "--port-min=40000", "--port-max=30000"}, "port-min"},
		{"bad node id", []string{"up", "--node-id=a.b"}, "--node-id"},
		{"bad config line", []string{"up", "--config", conf}, `line 2: unknown option "no-such-option"`},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"portd bad listen", []string{"up", "--listen-ng=localhost"}, "--listen-ng"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit %d (%v), want 2\n%s", cmd.ProcessState.ExitCode(), err, out)
			}
			first, _, _ := strings.Cut(string(out), "\n")
			if !strings.Contains(first, tt.want) || !strings.Contains(string(out), "Usage: ") {
				t.Fatalf("want first line with %q and the usage, got:\n%s", tt.want, out)
			}
		})
	}
	// A daemon on its own behaves the same.
	cmd := exec.Command(filepath.Join(testutil.Binaries(t), "portd"), "--interface")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "option --interface needs a value") {
		t.Fatalf("portd bad option: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestStatusUnreachableExit3(t *testing.T) {
	port, err := testutil.FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(filepath.Join(testutil.Binaries(t), "rtpctl"), "status", "--nats-url", url, "--timeout=500ms")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(string(out), url) {
		t.Fatalf("exit %d, want 3 naming %s:\n%s", cmd.ProcessState.ExitCode(), url, out)
	}
}
