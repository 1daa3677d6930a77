package testutil

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// StartNATSServer runs the system's nats-server binary (Debian package
// nats-server) with JetStream on a free loopback port, as a production node
// would use it, and returns its URL. Skipped when the binary is missing,
// unless RTPKIT_REQUIRE_DEPS is set (make test installs both).
func StartNATSServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("nats-server not installed (make test installs it)")
		}
		t.Skip("nats-server not installed")
	}
	port, err := FreePort("tcp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := StartProc(t, bin, []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", ShortTempDir(t)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen on %s:\n%s", addr, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGTERM); _, _ = p.Wait(5 * time.Second) })
	return "nats://" + addr
}
