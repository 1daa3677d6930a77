package systemd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// nodeUnits are the units of one node, as rtpkit.target pulls them in.
var nodeUnits = []struct{ file, name string }{
	{"rtpkit-bus.service", "rtpkit-bus.service"},
	{"rtpkit-portd.service", "rtpkit-portd.service"},
	{"rtpkit-rtp-fwd@.service", "rtpkit-rtp-fwd@0.service"},
	{"rtpkit-ng-ctl.service", "rtpkit-ng-ctl.service"},
	{"rtpkit-redis-sync.service", "rtpkit-redis-sync.service"},
}

// TestNodeFromUnits runs a node the way systemd would from these unit
// files (systemd is not PID 1 here): each unit's ExecStart= with its
// specifiers and ${VARIABLES} expanded, in the start order its After= and
// Before= give, with exactly the environment the unit defines
// (Environment=, EnvironmentFile=) plus what systemd adds (NOTIFY_SOCKET,
// WATCHDOG_USEC from WatchdogSec=, RUNTIME_DIRECTORY and STATE_DIRECTORY
// from RuntimeDirectory= and StateDirectory=), each Type=notify unit
// waited for until READY=1 arrives from its main pid on a notification
// socket of the test's. Only paths are mapped: /usr/bin to this build,
// /usr/sbin/nats-server to Debian's nats-server, the files under
// /etc/rtpkit to test copies on loopback ports, /run and /var/lib to a temp
// dir. Then one call through ng carries RTP both ways, every daemon keeps
// sending WATCHDOG=1 once ready (its liveness probes pass), and stopping
// the node in reverse order gets STOPPING=1 and a clean exit from each.
func TestNodeFromUnits(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("nats-server not installed (make test installs it)")
		}
		t.Skip("nats-server not installed")
	}
	redis := testutil.StartRedis(t, testutil.RedisOptions{})
	bin := testutil.Binaries(t)
	root := testutil.ShortTempDir(t)
	ns := newNotifySocket(t, filepath.Join(root, "notify"))

	// The configuration files, adjusted for this test's loopback ports.
	busPort, err := testutil.FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(busPort)
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	conf := writeNodeConfig(t, root, map[string]string{
		"nats-url": natsURL, "listen-ng": ngAddr, "port-min": "50000", "port-max": "50199",
		"redis": fmt.Sprintf("127.0.0.1:%d/1", redis.Port),
	})
	natsConf := readFile(t, "nats-server-rtpkit.conf")
	for _, r := range [][2]string{
		{"listen: 127.0.0.1:4222", "listen: 127.0.0.1:" + strconv.Itoa(busPort)},
		{`"/var/lib/rtpkit/bus"`, strconv.Quote(filepath.Join(root, "lib", "rtpkit", "bus"))},
	} {
		if !strings.Contains(natsConf, r[0]) {
			t.Fatalf("nats-server-rtpkit.conf has no %q", r[0])
		}
		natsConf = strings.Replace(natsConf, r[0], r[1], 1)
	}
	natsConfPath := filepath.Join(root, "nats-server-rtpkit.conf")
	writeFile(t, natsConfPath, natsConf)
	// /etc/default/rtpkit, which every daemon unit reads: the node id.
	envFile := filepath.Join(root, "default-rtpkit")
	writeFile(t, envFile, "# as an operator would write it\nRTPKIT_NODE_ID=\"unitnode\"\n")

	m := &mapper{root: root, ns: ns, paths: map[string]string{
		"/usr/sbin/nats-server":               natsBin,
		"/etc/rtpkit/rtpkit.conf":             conf,
		"/etc/rtpkit/nats-server-rtpkit.conf": natsConfPath,
		"/etc/default/rtpkit":                 envFile,
	}}
	for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync", "rtpctl"} {
		m.paths["/usr/bin/"+d] = filepath.Join(bin, d)
	}
	// The bus keys, made as the README's install step does.
	keyDir := filepath.Join(root, "bus")
	if out, err := exec.Command(filepath.Join(bin, "rtpctl"), "bus-keys", "--dir", keyDir, "--node-id", "unitnode").CombinedOutput(); err != nil {
		t.Errorf("rtpctl bus-keys: %v\n%s", err, out)
	}
	for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync", "rtpctl"} {
		m.paths["/etc/rtpkit/bus/"+d+".nk"] = filepath.Join(keyDir, d+".nk")
	}

	var units []*unitFile
	for _, nu := range nodeUnits {
		units = append(units, loadUnit(t, nu.file, nu.name))
	}
	order := startOrder(t, units)
	var names []string
	for _, u := range order {
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(u.name, "rtpkit-"), ".service"))
	}
	if got := strings.Join(names, " "); got != "bus portd rtp-fwd@0 ng-ctl redis-sync" {
		t.Fatalf("start order from After=/Before=: %s", got)
	}

	// Start, each notify unit waited for until READY=1 (systemd starts the
	// units ordered after one only then); the bus is Type=simple.
	procs := map[string]*unitProc{}
	for _, u := range order {
		p := m.start(t, u)
		procs[u.name] = p
		if u.last("Service", "Type") == "notify" {
			at := ns.wait(t, p, "READY=1", time.Time{}, 30*time.Second)
			t.Logf("%s: READY=1 %v after start (%s)", u.name, at.Sub(p.started).Round(time.Millisecond), strings.Join(p.argv, " "))
		}
	}

	// The EnvironmentFile= reached every daemon: they serve node "unitnode".
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The bus admits no client without a key; rtpctl's key is the
	// operator's.
	if nc, err := nats.Connect(natsURL, nats.NoReconnect(), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Errorf("the units' bus admits a client without a key")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("a client without a key: %v, want an authorization violation", err)
	}
	opKey := filepath.Join(keyDir, "rtpctl.nk")
	if _, err := os.Stat(opKey); err != nil {
		opKey = ""
	}
	conn, err := bus.Connect(ctx, bus.Options{URL: natsURL, NkeyFile: opKey}, "unitnode", "units-test", testutil.Logger(t))
	if err != nil {
		t.Fatalf("connect as the operator: %v", err)
	}
	defer conn.Close()
	hellos, err := bus.Scatter(ctx, conn, api.NodePing, api.Empty{}, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, h := range hellos {
		pids[h.Daemon] = h.PID
	}
	for d, unit := range map[string]string{"portd": "rtpkit-portd.service", "rtp-fwd": "rtpkit-rtp-fwd@0.service",
		"ng-ctl": "rtpkit-ng-ctl.service", "redis-sync": "rtpkit-redis-sync.service"} {
		if pids[d] != procs[unit].pid() {
			t.Fatalf("node unitnode: %s answers with pid %d, the unit's main pid is %d (answers: %+v)", d, pids[d], procs[unit].pid(), hellos)
		}
	}

	// One call through ng, RTP both ways.
	procs["rtpkit-rtp-fwd@0.service"].waitOutput(t, `msg="connected to portd"`, 20*time.Second)
	procs["rtpkit-ng-ctl.service"].waitOutput(t, `msg="port leases ready"`, 20*time.Second)
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", "unitcall", "", sdpFor(udpPort(a))))
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "unitcall", "B", sdpFor(udpPort(b))))
	dstA, dstB := testutil.SDPMediaAddr(t, toA), testutil.SDPMediaAddr(t, toB)
	for seq := uint16(1); seq <= 5; seq++ {
		testutil.Relay(t, a, dstA, b, 1, seq)
		testutil.Relay(t, b, dstB, a, 2, seq)
	}

	// Liveness: once ready, each daemon pings the watchdog every
	// WatchdogSec/2 — which it only does when its probes pass.
	for _, u := range order {
		if !u.has("Service", "WatchdogSec") {
			continue
		}
		p := procs[u.name]
		ready := ns.wait(t, p, "READY=1", time.Time{}, time.Second)
		period := parseSec(t, u.last("Service", "WatchdogSec")) / 2
		ns.wait(t, p, "WATCHDOG=1", ready, period+5*time.Second)
	}

	// Stop as `systemctl stop rtpkit.target` does: reverse start order,
	// KillSignal= (SIGTERM by default), within TimeoutStopSec=.
	for i := len(order) - 1; i >= 0; i-- {
		u := order[i]
		p := procs[u.name]
		sig := syscall.SIGTERM
		if u.last("Service", "KillSignal") == "SIGINT" {
			sig = syscall.SIGINT
		}
		sent := time.Now()
		_ = p.cmd.Process.Signal(sig)
		timeout := 90 * time.Second
		if s := u.last("Service", "TimeoutStopSec"); s != "" {
			timeout = parseSec(t, s)
		}
		select {
		case <-p.done:
		case <-time.After(timeout):
			t.Fatalf("%s did not stop within TimeoutStopSec=%v:\n%s", u.name, timeout, p.out.String())
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("%s exited with %d on %v:\n%s", u.name, code, sig, p.out.String())
		}
		if u.last("Service", "Type") == "notify" {
			ns.wait(t, p, "STOPPING=1", sent, time.Second)
		}
	}
}

// mapper turns a unit into the command line and environment systemd would
// run, with paths mapped into the test.
type mapper struct {
	root  string
	ns    *notifySocket
	paths map[string]string
}

var systemPath = regexp.MustCompile(`(^|=)/(etc|usr|var|run|srv|opt)/`)

func (m *mapper) start(t *testing.T, u *unitFile) *unitProc {
	t.Helper()
	roots := map[byte]string{'t': filepath.Join(m.root, "run"), 'S': filepath.Join(m.root, "lib")}
	env := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
	// What systemd adds.
	if u.last("Service", "Type") == "notify" {
		env["NOTIFY_SOCKET"] = m.ns.path
	}
	if w := u.last("Service", "WatchdogSec"); w != "" {
		env["WATCHDOG_USEC"] = strconv.FormatInt(parseSec(t, w).Microseconds(), 10)
	}
	for _, d := range []struct{ key, env, root string }{
		{"RuntimeDirectory", "RUNTIME_DIRECTORY", roots['t']},
		{"StateDirectory", "STATE_DIRECTORY", roots['S']},
	} {
		var dirs []string
		for _, name := range u.words("Service", d.key) {
			dir := filepath.Join(d.root, name)
			if err := os.MkdirAll(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, dir)
		}
		if len(dirs) > 0 {
			env[d.env] = strings.Join(dirs, ":")
		}
	}
	// Environment=, then EnvironmentFile= (which wins, as in systemd).
	for _, v := range u.get("Service", "Environment") {
		v, err := u.specifiers(v, roots)
		if err != nil {
			t.Fatal(err)
		}
		words, err := splitWords(v)
		if err != nil {
			t.Fatalf("%s: Environment=%s: %v", u.name, v, err)
		}
		for _, w := range words {
			k, val, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("%s: Environment=%s: %q is not an assignment", u.name, v, w)
			}
			env[k] = val
		}
	}
	for k, v := range env { // paths in Environment= (the bus keys)
		if to, ok := m.paths[v]; ok {
			env[k] = to
		}
	}
	for _, v := range u.get("Service", "EnvironmentFile") {
		optional := strings.HasPrefix(v, "-")
		path := strings.TrimPrefix(v, "-")
		mapped, ok := m.paths[path]
		if !ok {
			t.Fatalf("%s: EnvironmentFile=%s: not mapped by this test", u.name, path)
		}
		vars, err := readEnvFile(mapped)
		if err != nil {
			if optional && os.IsNotExist(err) {
				continue
			}
			t.Fatalf("%s: EnvironmentFile=%s: %v", u.name, v, err)
		}
		for k, val := range vars {
			env[k] = val
		}
	}
	// ExecStart=: exactly one command.
	execs := u.get("Service", "ExecStart")
	if len(execs) != 1 {
		t.Fatalf("%s: %d ExecStart= lines", u.name, len(execs))
	}
	line, err := u.specifiers(execs[0], roots)
	if err != nil {
		t.Fatal(err)
	}
	words, err := splitWords(line)
	if err != nil {
		t.Fatalf("%s: ExecStart=%s: %v", u.name, line, err)
	}
	words[0] = strings.TrimLeft(words[0], "-@:+!")
	if words, err = expandEnv(words, env); err != nil {
		t.Fatalf("%s: ExecStart=%s: %v", u.name, line, err)
	}
	for i, w := range words {
		mapped := false
		for from, to := range m.paths {
			if w == from {
				words[i], mapped = to, true
			} else if k, v, ok := strings.Cut(w, "="); ok && v == from {
				words[i], mapped = k+"="+to, true
			}
		}
		if !mapped && systemPath.MatchString(words[i]) {
			t.Fatalf("%s: ExecStart= uses %q, which this test does not map (use the unit's directories: ${RUNTIME_DIRECTORY}, ...)", u.name, words[i])
		}
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)
	p := &unitProc{name: u.name, argv: words, done: make(chan struct{})}
	p.cmd = exec.Command(words[0], words[1:]...)
	p.cmd.Env = envList
	p.cmd.Dir = "/"
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", u.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (%s):\n%s", u.name, strings.Join(p.argv, " "), p.out.String())
		}
	})
	return p
}

// unitProc is the main process of one unit.
type unitProc struct {
	name    string
	argv    []string
	cmd     *exec.Cmd
	out     syncBuffer
	done    chan struct{}
	started time.Time
}

func (p *unitProc) pid() int { return p.cmd.Process.Pid }

func (p *unitProc) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before logging %s:\n%s", p.name, s, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %s within %v:\n%s", p.name, s, timeout, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// notifySocket is a service manager's notification socket: unixgram with
// SO_PASSCRED, every datagram attributed to its sender's pid.
type notifySocket struct {
	path string
	mu   sync.Mutex
	cond *sync.Cond
	msgs []notification
}

type notification struct {
	pid   int
	state string
	at    time.Time
}

func newNotifySocket(t *testing.T, path string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	ns := &notifySocket{path: path}
	ns.cond = sync.NewCond(&ns.mu)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 4096), make([]byte, 1024)
		for {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			pid := 0
			cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range cmsgs {
				if cred, err := unix.ParseUnixCredentials(&m); err == nil {
					pid = int(cred.Pid)
				}
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, notification{pid: pid, state: string(buf[:n]), at: time.Now()})
			ns.cond.Broadcast()
			ns.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return ns
}

// wait returns when p's main pid has sent a datagram with the line want,
// received after since; it fails the test after timeout. Datagrams from
// other pids do not count (NotifyAccess=main).
func (ns *notifySocket) wait(t *testing.T, p *unitProc, want string, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	timer := time.AfterFunc(timeout, func() { ns.mu.Lock(); ns.cond.Broadcast(); ns.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for {
		for _, m := range ns.msgs {
			if m.pid == p.pid() && !m.at.Before(since) {
				for _, l := range strings.Split(m.state, "\n") {
					if l == want {
						return m.at
					}
				}
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, m := range ns.msgs {
				got = append(got, fmt.Sprintf("pid %d: %q", m.pid, m.state))
			}
			t.Fatalf("%s (pid %d): no %s within %v; notifications: %v\n%s", p.name, p.pid(), want, timeout, got, p.out.String())
		}
		ns.cond.Wait()
	}
}

// writeNodeConfig writes a copy of rtpkit.conf with the options in set
// replacing the file's own lines for them.
func writeNodeConfig(t *testing.T, dir string, set map[string]string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(readFile(t, "rtpkit.conf"), "\n") {
		if f := strings.FieldsFunc(line, func(r rune) bool { return r == '=' || r == ' ' || r == '\t' }); len(f) > 0 {
			if _, ok := set[f[0]]; ok {
				continue // the file's own line for an option the test sets
			}
		}
		out = append(out, line)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out = append(out, "# set by the test")
	for _, k := range keys {
		out = append(out, k+" = "+set[k])
	}
	p := filepath.Join(dir, "rtpkit.conf")
	writeFile(t, p, strings.Join(out, "\n")+"\n")
	return p
}

func parseSec(t *testing.T, s string) time.Duration {
	t.Helper()
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(strings.Replace(s, "min", "m", 1))
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return d
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// --- a call and its media ---

func sdpFor(port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", port)
}

func udpPort(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }
