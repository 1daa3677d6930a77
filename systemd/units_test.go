// Package systemd holds rtpkit's systemd units; its test verifies them.
package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestUnitsVerify runs `systemd-analyze verify` on every unit, with the
// binaries pointed at this build, and fails on any complaint (systemd only
// warns about unknown keys or bad values, with exit code 0).
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	nats, err := exec.LookPath("nats-server")
	if err != nil {
		nats = "/bin/true" // the bus unit's binary; its flags are not what is verified
	}
	bin := testutil.Binaries(t)
	dir := t.TempDir()
	units, _ := filepath.Glob("*.service")
	units = append(units, "rtpkit.target")
	var args []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync", "rtpctl"} {
			s = strings.ReplaceAll(s, "/usr/bin/"+d+" ", bin+"/"+d+" ")
		}
		s = strings.ReplaceAll(s, "/usr/sbin/nats-server", nats)
		if err := os.WriteFile(filepath.Join(dir, u), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "./"+u)
	}
	// The worker template as an instance too: its %i expanded.
	if err := os.Symlink("rtpkit-rtp-fwd@.service", filepath.Join(dir, "rtpkit-rtp-fwd@0.service")); err != nil {
		t.Fatal(err)
	}
	args = append(args, "./rtpkit-rtp-fwd@0.service")
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestExampleConfigIsAccepted: every daemon accepts the shipped example
// configuration (the options of its siblings skipped).
func TestExampleConfigIsAccepted(t *testing.T) {
	bin := testutil.Binaries(t)
	for _, d := range []string{"portd", "ng-ctl", "redis-sync", "rtp-fwd"} {
		// With a bus that is not there the daemon fails after parsing, with
		// exit code 1, never 2.
		args := []string{"--config", "rtpkit.conf", "--nats-url=nats://127.0.0.1:1", "--nats-connect-timeout=100ms"}
		if d == "portd" || d == "rtp-fwd" {
			args = append(args, "--runtime-dir="+t.TempDir())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, d), args...)
		out, _ := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s did not exit within 30 s with an unreachable bus:\n%s", d, out)
		}
		if code := cmd.ProcessState.ExitCode(); code == 2 {
			t.Fatalf("%s rejected the example config:\n%s", d, out)
		}
	}
}

// TestUnitSettings checks what the units promise beyond their syntax:
// readiness and watchdog, restart rules, ordering, the shared runtime
// directory, and the hardening that keeps FREEBIND and DSCP marking
// working.
func TestUnitSettings(t *testing.T) {
	want := func(u *unitFile, section, key, value string) {
		t.Helper()
		if got := u.last(section, key); got != value {
			t.Errorf("%s: %s=%q, want %q", u.name, key, got, value)
		}
	}
	wantWords := func(u *unitFile, section, key string, values ...string) {
		t.Helper()
		have := map[string]bool{}
		for _, w := range u.words(section, key) {
			have[w] = true
		}
		for _, v := range values {
			if !have[v] {
				t.Errorf("%s: %s= lacks %s (has %v)", u.name, key, v, u.words(section, key))
			}
		}
	}
	units := map[string]*unitFile{}
	for _, nu := range nodeUnits {
		units[nu.name] = loadUnit(t, nu.file, nu.name)
	}
	for name, u := range units {
		wantWords(u, "Unit", "PartOf", "rtpkit.target")
		wantWords(u, "Install", "WantedBy", "rtpkit.target")
		want(u, "Service", "Restart", "on-failure")
		want(u, "Service", "PrivateNetwork", "") // the host's addresses
		wantWords(u, "Service", "RestrictAddressFamilies", "AF_UNIX", "AF_INET", "AF_INET6")
		// Work off the request and media paths weighs less across units.
		switch name {
		case "rtpkit-bus.service", "rtpkit-portd.service", "rtpkit-redis-sync.service":
			want(u, "Service", "CPUWeight", "10")
		default:
			want(u, "Service", "CPUWeight", "")
		}
		if name == "rtpkit-bus.service" {
			continue
		}
		want(u, "Service", "Type", "notify")
		want(u, "Service", "NotifyAccess", "main")
		if u.last("Service", "WatchdogSec") == "" {
			t.Errorf("%s: no WatchdogSec=", name)
		}
		want(u, "Service", "RestartPreventExitStatus", "2")
		// Exit code 2 is also a Go panic's: GOTRACEBACK=crash makes it a
		// SIGABRT, which is restarted (TestGoPanicIsNotExit2).
		wantWords(u, "Service", "Environment", "GOTRACEBACK=crash")
		wantWords(u, "Unit", "After", "rtpkit-bus.service")
		wantWords(u, "Unit", "Wants", "rtpkit-bus.service")
		if name != "rtpkit-portd.service" {
			wantWords(u, "Unit", "After", "rtpkit-portd.service")
		}
		if u.has("Service", "AmbientCapabilities") && name != "rtpkit-portd.service" && name != "rtpkit-rtp-fwd@0.service" {
			t.Errorf("%s: capabilities: %v", name, u.get("Service", "AmbientCapabilities"))
		}
	}
	for _, name := range []string{"rtpkit-portd.service", "rtpkit-rtp-fwd@0.service"} {
		u := units[name]
		want(u, "Service", "RuntimeDirectory", "rtpkit")
		want(u, "Service", "RuntimeDirectoryPreserve", "yes")
		want(u, "Service", "LimitNOFILE", "1048576")
		if !strings.Contains(u.last("Service", "ExecStart"), "--runtime-dir ${RUNTIME_DIRECTORY}") {
			t.Errorf("%s: ExecStart= does not take --runtime-dir from RuntimeDirectory=: %s", name, u.last("Service", "ExecStart"))
		}
	}
	fwd := units["rtpkit-rtp-fwd@0.service"]
	// The fast path: load and attach eBPF, pin on systemd's bpffs.
	wantWords(fwd, "Service", "AmbientCapabilities", "CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN")
	wantWords(fwd, "Service", "CapabilityBoundingSet", "CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN")
	wantWords(fwd, "Service", "SystemCallFilter", "bpf")
	wantWords(fwd, "Service", "RestrictAddressFamilies", "AF_NETLINK")
	wantWords(fwd, "Service", "LimitNICE", "+0")
	if !strings.Contains(fwd.last("Service", "ExecStart"), "--fast-path-pin-dir /sys/fs/bpf/rtpkit-fwd-%i") {
		t.Errorf("rtp-fwd@: the fast path is not pinned on /sys/fs/bpf: %s", fwd.last("Service", "ExecStart"))
	}
	if !strings.Contains(fwd.last("Service", "ExecStart"), "--worker-id %i") {
		t.Errorf("rtp-fwd@: the worker id is not the instance: %s", fwd.last("Service", "ExecStart"))
	}
	wantWords(fwd, "Unit", "Before", "rtpkit-ng-ctl.service", "rtpkit-redis-sync.service")
	if slices.Contains(fwd.words("Unit", "PartOf"), "rtpkit-portd.service") || slices.Contains(fwd.words("Unit", "BindsTo"), "rtpkit-portd.service") {
		t.Error("rtp-fwd@ is stopped with portd: a portd restart must leave media alone")
	}
	target := loadUnit(t, "rtpkit.target", "rtpkit.target")
	for name := range units {
		wantWords(target, "Unit", "Wants", name)
	}
	bus := units["rtpkit-bus.service"]
	if !strings.Contains(bus.last("Service", "ExecStart"), "/usr/sbin/nats-server -js -c /etc/rtpkit/nats-server-rtpkit.conf") {
		t.Errorf("bus: ExecStart=%s", bus.last("Service", "ExecStart"))
	}
	want(bus, "Service", "StateDirectory", "rtpkit/bus")
}

// TestNATSConfig: Debian's nats-server accepts the bus's configuration,
// with the authorization `rtpctl bus-keys` makes next to it (as installed).
func TestNATSConfig(t *testing.T) {
	nats, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats-server-rtpkit.conf")
	writeFile(t, conf, readFile(t, "nats-server-rtpkit.conf"))
	rtpctl := filepath.Join(testutil.Binaries(t), "rtpctl")
	if out, err := exec.Command(rtpctl, "bus-keys", "--dir", filepath.Join(dir, "bus"), "--node-id", "n1").CombinedOutput(); err != nil {
		t.Fatalf("rtpctl bus-keys: %v\n%s", err, out)
	}
	out, err := exec.Command(nats, "-js", "-c", conf, "-t").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("nats-server -t: %v\n%s", err, out)
	}
}

// TestGoPanicIsNotExit2: a Go program that panics exits with code 2,
// which RestartPreventExitStatus= keeps for bad configuration; with the
// units' GOTRACEBACK=crash it dies by SIGABRT instead, and systemd
// restarts it (the watchdog's SIGABRT ends the same way).
func TestGoPanicIsNotExit2(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module panicker\n\ngo 1.21\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { panic(\"boom\") }\n")
	build := exec.Command("go", "build", "-o", "panicker", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		env      string
		code     int
		signaled bool
	}{{"GOTRACEBACK=single", 2, false}, {"GOTRACEBACK=crash", -1, true}} {
		cmd := exec.Command(filepath.Join(dir, "panicker"))
		cmd.Env = []string{c.env}
		_ = cmd.Run()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if cmd.ProcessState.ExitCode() != c.code || ws.Signaled() != c.signaled || (c.signaled && ws.Signal() != syscall.SIGABRT) {
			t.Errorf("%s: %v, want exit code %d (signaled %v)", c.env, cmd.ProcessState, c.code, c.signaled)
		}
	}
}
