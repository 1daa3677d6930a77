package testutil

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps the bind mounts of named namespaces.
const netnsDir = "/run/netns"

// RequireRoot skips the test unless it runs as root (uid 0), which network
// namespace helpers and privileged socket options need. CI runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("needs root: running as uid %d (network namespaces, privileged socket options)", uid)
	}
}

// NetNS is a named network namespace created for one test with [NewNetNS].
type NetNS struct {
	// Name is the namespace's iproute2 name (as in "ip netns exec Name").
	Name string
}

// NewNetNS creates a network namespace named prefix plus a unique suffix
// (process ID and random hex, so parallel test runs do not collide), brings
// its loopback interface up and registers a cleanup that deletes it, also
// when the test fails. It needs root; call [RequireRoot] first to skip
// otherwise.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("netns: random suffix: %v", err)
	}
	ns := &NetNS{Name: fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(rnd[:]))}
	ip(t, "netns", "add", ns.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("netns: ip netns del %s: %v\n%s", ns.Name, err, out)
		}
	})
	ip(t, "-n", ns.Name, "link", "set", "lo", "up")
	return ns
}

// Path returns the namespace's bind mount, /run/netns/<Name>.
func (ns *NetNS) Path() string { return filepath.Join(netnsDir, ns.Name) }

// Run runs a command inside the namespace ("ip netns exec Name args...")
// and returns its combined output. It fails the test, showing the output,
// if the command fails.
func (ns *NetNS) Run(t testing.TB, args ...string) string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("netns %s: Run without a command", ns.Name)
	}
	cmd := ns.Command(args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("netns %s: %s: %v\n%s", ns.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns a command that runs name with args inside the namespace
// (through "ip netns exec"), for long-running processes that the caller
// starts, stops and waits for itself.
func (ns *NetNS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Do runs f on a goroutine locked to an OS thread that has been moved into
// the namespace, and returns f's error. Sockets that f creates belong to the
// namespace for their whole life and can be used from any goroutine
// afterwards. Goroutines that f starts do not run in the namespace.
//
// f must not call t.Fatal, t.FailNow or t.SkipNow (they must run on the
// test's goroutine); a panic in f is returned as an error. The thread's
// original namespace is restored afterwards; if that fails, the thread stays
// locked so that the runtime discards it when the goroutine exits.
func (ns *NetNS) Do(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var (
			err      error
			returned bool // f returned (or panicked) instead of exiting the goroutine
			poisoned bool // the thread is still in the namespace
		)
		defer func() {
			if !returned {
				err = errors.Join(err, errors.New("function exited its goroutine (t.FailNow or runtime.Goexit inside Do?)"))
			}
			if !poisoned {
				runtime.UnlockOSThread()
			}
			if err != nil {
				err = fmt.Errorf("netns %s: %w", ns.Name, err)
			}
			done <- err
		}()

		orig, oerr := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			err, returned = fmt.Errorf("open own netns: %w", oerr), true
			return
		}
		defer unix.Close(orig)
		target, oerr := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			err, returned = fmt.Errorf("open %s: %w", ns.Path(), oerr), true
			return
		}
		serr := unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if serr != nil {
			err, returned = fmt.Errorf("setns into %s: %w", ns.Path(), serr), true
			return
		}
		defer func() {
			if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
				poisoned = true
				err = errors.Join(err, fmt.Errorf("restore original netns: %w", rerr))
			}
		}()
		defer func() {
			if r := recover(); r != nil {
				err, returned = fmt.Errorf("panic: %v\n%s", r, debug.Stack()), true
			}
		}()
		err = f()
		returned = true
	}()
	return <-done
}

// Veth creates a veth pair with end ifA in nsA and end ifB in nsB (which may
// be the same namespace) and brings both ends up. Both namespaces must be
// ones the test created: nil (meaning the test process's own namespace) is
// refused.
func Veth(t testing.TB, nsA *NetNS, ifA string, nsB *NetNS, ifB string) {
	t.Helper()
	if nsA == nil || nsB == nil {
		t.Fatalf("netns: Veth %s/%s: nil namespace; tests may only change namespaces they created", ifA, ifB)
	}
	ip(t, "-n", nsA.Name, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB.Name)
	ip(t, "-n", nsA.Name, "link", "set", ifA, "up")
	ip(t, "-n", nsB.Name, "link", "set", ifB, "up")
}

// Dummy creates an interface named name in ns to hold local addresses, and
// brings it up. It is a dummy interface where the kernel has the dummy
// driver; otherwise (some minimal kernels lack it) it is one end of a veth
// pair whose other end, named name+"p" (cut to fit IFNAMSIZ), is also in ns
// and up, which behaves the same for addresses that are local to ns.
func Dummy(t testing.TB, ns *NetNS, name string) {
	t.Helper()
	if ns == nil {
		t.Fatalf("netns: Dummy %s: nil namespace; tests may only change namespaces they created", name)
	}
	out, err := exec.Command("ip", "-n", ns.Name, "link", "add", name, "type", "dummy").CombinedOutput()
	if err == nil {
		ip(t, "-n", ns.Name, "link", "set", name, "up")
		return
	}
	if !bytes.Contains(out, []byte("Unknown device type")) {
		t.Fatalf("netns %s: ip link add %s type dummy: %v\n%s", ns.Name, name, err, out)
	}
	peer := name
	if len(peer) > unix.IFNAMSIZ-2 {
		peer = peer[:unix.IFNAMSIZ-2]
	}
	peer += "p"
	t.Logf("netns %s: no dummy driver in this kernel; %s is a veth with peer %s", ns.Name, name, peer)
	Veth(t, ns, name, ns, peer)
}

// AddAddr adds the address cidr (such as "192.0.2.1/24" or "2001:db8::1/64")
// to interface dev in ns. IPv6 addresses are added with nodad, so they are
// usable at once.
func AddAddr(t testing.TB, ns *NetNS, dev, cidr string) {
	t.Helper()
	args := append([]string{"addr", "add", cidr, "dev", dev}, addrFlags(t, cidr)...)
	nsIP(t, ns, args...)
}

// DelAddr removes the address cidr from interface dev in ns.
func DelAddr(t testing.TB, ns *NetNS, dev, cidr string) {
	t.Helper()
	addrFlags(t, cidr)
	nsIP(t, ns, "addr", "del", cidr, "dev", dev)
}

// AddRoute adds a route to dst (a prefix, or "default") via the gateway via
// in ns.
func AddRoute(t testing.TB, ns *NetNS, dst, via string) {
	t.Helper()
	nsIP(t, ns, routeArgs(t, "add", dst, via)...)
}

// ReplaceRoute adds or replaces the route to dst (a prefix, or "default")
// via the gateway via in ns.
func ReplaceRoute(t testing.TB, ns *NetNS, dst, via string) {
	t.Helper()
	nsIP(t, ns, routeArgs(t, "replace", dst, via)...)
}

func routeArgs(t testing.TB, verb, dst, via string) []string {
	t.Helper()
	gw, err := netip.ParseAddr(via)
	if err != nil {
		t.Fatalf("netns: route %s via %q: %v", dst, via, err)
	}
	family := "-4"
	if gw.Is6() && !gw.Is4In6() {
		family = "-6"
	}
	return []string{family, "route", verb, dst, "via", gw.String()}
}

// addrFlags checks cidr and returns the extra flags "ip addr add" needs.
func addrFlags(t testing.TB, cidr string) []string {
	t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("netns: address %q: %v", cidr, err)
	}
	if p.Addr().Is6() {
		return []string{"nodad"}
	}
	return nil
}

func nsIP(t testing.TB, ns *NetNS, args ...string) {
	t.Helper()
	if ns == nil {
		t.Fatalf("netns: ip %s: nil namespace; tests may only change namespaces they created", strings.Join(args, " "))
	}
	ip(t, append([]string{"-n", ns.Name}, args...)...)
}

// ip runs iproute2's ip and fails the test with its output on error.
func ip(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
