package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"

	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/daemon"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// childEnv makes the test binary run daemon.Main as the test daemon
// "testd" instead of the tests; probeEnv set to "fail" makes its one
// liveness probe fail.
const (
	childEnv = "RTPKIT_TEST_DAEMON_CHILD"
	probeEnv = "RTPKIT_TEST_DAEMON_PROBE"
)

type testConfig struct {
	cli.Common
	Fail string
}

func (c *testConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.Fail, "fail", "", "make run fail with this `message`")
}

func (c *testConfig) Validate() error { return c.Common.Validate() }

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		testd()
		return
	}
	os.Exit(m.Run())
}

// testd is the test daemon: it fails if asked, else adds a probe to the
// watchdog it is handed, says it is running and waits for a signal.
func testd() {
	var cfg testConfig
	daemon.Main("testd", "testd is a test daemon.", &cfg, &cfg.Common, proctune.Policy{}, func(ctx context.Context, _ *slog.Logger, wd *sdnotify.Watchdog) error {
		if wd == nil {
			return errors.New("no watchdog")
		}
		if cfg.Fail != "" {
			return errors.New(cfg.Fail)
		}
		defer wd.Add("test", func(context.Context) error {
			if os.Getenv(probeEnv) == "fail" {
				return errors.New("stuck")
			}
			return nil
		})()
		fmt.Println("running")
		<-ctx.Done()
		return nil
	})
}

// output is a child's stdout or stderr, read while the child writes it.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// start runs testd with args and env; the caller waits for it.
func start(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, stdout, stderr *output) {
	t.Helper()
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1", "RTPKIT_NATS_URL=nats://127.0.0.1:1", "RTPKIT_SCHEDULING=default"}, env...)...)
	stdout, stderr = new(output), new(output)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("testd did not exit within 10 s")
	}
	return cmd.ProcessState.ExitCode()
}

// TestExitCodes: 0 for --help, 2 for a bad option or argument (never
// restarted), 1 when run fails or the supervisor that started it is gone.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		code   int
		stdout string
		stderr string
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: "Usage: testd [options]"},
		{name: "unknown option", args: []string{"--bogus"}, code: 2, stderr: "testd: unknown option --bogus"},
		{name: "bad value", args: []string{"--scheduling=deadline"}, code: 2, stderr: "is not a scheduling policy"},
		{name: "argument", args: []string{"extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{name: "run fails", args: []string{"--fail=boom"}, code: daemon.ExitFailure, stderr: "boom"},
		{name: "orphaned", env: []string{daemon.SupervisorEnv + "=1"}, code: daemon.ExitFailure, stderr: "supervisor 1 is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, stdout, stderr := start(t, tc.env, tc.args...)
			if code := exitCode(t, cmd); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stdout %q (want %q), stderr %q (want %q)", stdout, tc.stdout, stderr, tc.stderr)
			}
		})
	}
}

// TestWatchdogAndSignal: under systemd's watchdog, Main pings while the
// probe run added passes and not while it fails; SIGTERM sends STOPPING=1
// and ends the daemon with 0.
func TestWatchdogAndSignal(t *testing.T) {
	for _, probe := range []string{"pass", "fail"} {
		t.Run(probe, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "daemon-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			sock := filepath.Join(dir, "notify")
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cmd, stdout, stderr := start(t, []string{sdnotify.EnvSocket + "=" + sock, sdnotify.EnvWatchdogUsec + "=200000", probeEnv + "=" + probe})
			defer func() { _ = cmd.Process.Kill() }()
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(stdout.String(), "running") {
				if time.Now().After(deadline) {
					t.Fatalf("testd not running\nstderr: %s", stderr)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// The probe is there now; a ping may have been sent before.
			time.Sleep(150 * time.Millisecond)
			pings := 0
			buf := make([]byte, 4096)
			_ = c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
			for {
				n, _, err := c.ReadFromUnix(buf)
				if err != nil {
					break
				}
				if string(buf[:n]) == "WATCHDOG=1" {
					pings++
				}
			}
			// Pings every 100 ms: some in 400 ms while the probe passes,
			// but for one that may have started before it was added.
			if probe == "pass" && pings < 2 || probe == "fail" && pings > 1 {
				t.Errorf("%d pings in 400 ms with a probe that should %s\nstderr: %s", pings, probe, stderr)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				n, _, err := c.ReadFromUnix(buf)
				if err != nil {
					t.Fatalf("no STOPPING=1: %v\nstderr: %s", err, stderr)
				}
				if strings.HasPrefix(string(buf[:n]), "STOPPING=1") {
					break
				}
			}
			if code := exitCode(t, cmd); code != 0 {
				t.Fatalf("exit %d after SIGTERM\nstderr: %s", code, stderr)
			}
		})
	}
}
