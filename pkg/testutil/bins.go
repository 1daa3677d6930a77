package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// BinDirEnv names a directory holding prebuilt binaries (`make test` builds
// them once into bin/ and sets it); without it, Binaries builds them once
// per test process.
const BinDirEnv = "RTPKIT_TEST_BINDIR"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// Binaries returns a directory with the project's binaries (rtpctl, portd,
// rtp-fwd, ng-ctl, redis-sync), built once per test run.
func Binaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if d := os.Getenv(BinDirEnv); d != "" {
			if _, err := os.Stat(filepath.Join(d, "rtpctl")); err != nil {
				binErr = fmt.Errorf("%s=%s has no rtpctl: %w", BinDirEnv, d, err)
				return
			}
			binDir = d
			return
		}
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		d, err := os.MkdirTemp("", "rtpkit-bin-")
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", d+"/", "./cmd/...")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
			return
		}
		binDir = d
		builtTemp = d
	})
	if binErr != nil {
		t.Fatalf("binaries: %v", binErr)
	}
	return binDir
}

var builtTemp string

// CleanupBinaries removes binaries built by Binaries; call it from TestMain
// after m.Run.
func CleanupBinaries() {
	if builtTemp != "" {
		_ = os.RemoveAll(builtTemp)
	}
}

// moduleRoot finds the directory of go.mod above this source file.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate source")
	}
	dir := filepath.Dir(file)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/rtpkit/rtpkit") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod of rtpkit not found above %s", file)
		}
		dir = parent
	}
}
