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

// NATSServer is the system's nats-server (Debian package nats-server) with
// JetStream, run as a production node would run its bus. It can be stopped
// and started again on the same port and store.
type NATSServer struct {
	bin, dir string
	port     int
	ns       *NetNS
	t        testing.TB
	proc     *Proc
}

// StartNATSServer runs nats-server with JetStream on a free loopback port.
// Skipped when the binary is missing, unless RTPKIT_REQUIRE_DEPS is set
// (make test installs it).
func StartNATSServer(t testing.TB) *NATSServer {
	t.Helper()
	return StartNATSServerIn(t, nil)
}

// StartNATSServerIn is StartNATSServer inside the namespace ns (nil: the
// test's own): the server runs through "ip netns exec", which execs, so
// Stop and Kill act on nats-server itself, and it listens on the
// namespace's loopback, for the daemons of a node in ns.
func StartNATSServerIn(t testing.TB, ns *NetNS) *NATSServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("nats-server not installed (make test installs it)")
		}
		t.Skip("nats-server not installed")
	}
	var port int
	err = inNS(ns, func() error {
		var err error
		port, err = FreePort("tcp", "127.0.0.1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &NATSServer{bin: bin, dir: ShortTempDir(t), port: port, ns: ns, t: t}
	n.Start()
	return n
}

// URL is the server's client URL.
func (n *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// Start runs the server (again) and waits until it listens.
func (n *NATSServer) Start() {
	n.t.Helper()
	n.StartArgs()
}

// StartArgs runs the server (again) with extra command-line options (for
// example --user and --pass, so that it refuses clients without them) and
// waits until it listens.
func (n *NATSServer) StartArgs(extra ...string) {
	n.t.Helper()
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-sd", n.dir}, extra...)
	if n.ns == nil {
		n.proc = StartProc(n.t, n.bin, args)
	} else {
		n.proc = StartProc(n.t, "ip", append([]string{"netns", "exec", n.ns.Name, n.bin}, args...))
	}
	addr := "127.0.0.1:" + strconv.Itoa(n.port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if inNS(n.ns, func() error {
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				_ = c.Close()
			}
			return err
		}) == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server did not listen on %s:\n%s", addr, n.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the server's process id (of its current run).
func (n *NATSServer) PID() int { return n.proc.PID() }

// Output is what the server's current run printed.
func (n *NATSServer) Output() string { return n.proc.Output() }

// StoreDir is the server's store dir (-sd), kept across Stop and Start.
func (n *NATSServer) StoreDir() string { return n.dir }

// inNS runs f in ns, or right here for a nil ns.
func inNS(ns *NetNS, f func() error) error {
	if ns == nil {
		return f()
	}
	return ns.Do(f)
}

// Stop ends the server with SIGTERM and waits for it.
func (n *NATSServer) Stop() { n.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL (a crash) and waits for it.
func (n *NATSServer) Kill() { n.signal(syscall.SIGKILL) }

func (n *NATSServer) signal(sig syscall.Signal) {
	_ = n.proc.Signal(sig)
	_, _ = n.proc.Wait(10 * time.Second)
}
