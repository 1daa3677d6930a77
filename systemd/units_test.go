// Package systemd holds rtpkit's systemd units; its test verifies them.
package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		s := strings.ReplaceAll(string(b), "/usr/bin/", bin+"/")
		s = strings.ReplaceAll(s, "/usr/sbin/nats-server", nats)
		if err := os.WriteFile(filepath.Join(dir, u), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "./"+u)
	}
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
		// exit code 1 (or 69 if not implemented yet), never 2.
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
