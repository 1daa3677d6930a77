package sdnotify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// listener is a notification socket as systemd opens it: unixgram with
// SO_PASSCRED, so that every datagram carries its sender's pid.
type listener struct {
	c *net.UnixConn
}

func listen(t *testing.T, name string) *listener {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return &listener{c: c}
}

// next returns the next datagram and its sender's pid.
func (l *listener) next(t *testing.T, timeout time.Duration) (string, int) {
	t.Helper()
	buf, oob := make([]byte, 4096), make([]byte, 1024)
	_ = l.c.SetReadDeadline(time.Now().Add(timeout))
	n, oobn, _, _, err := l.c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("no notification within %s: %v", timeout, err)
	}
	pid := 0
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			pid = int(cred.Pid)
		}
	}
	return string(buf[:n]), pid
}

func (l *listener) none(t *testing.T, wait time.Duration) {
	t.Helper()
	_ = l.c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	if n, _, err := l.c.ReadFromUnix(buf); err == nil {
		t.Fatalf("unexpected notification %q", buf[:n])
	}
}

func TestNotifyPathAndAbstractSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, name := range []string{filepath.Join(dir, "notify"), fmt.Sprintf("@rtpkit-sdnotify-test-%d", os.Getpid())} {
		l := listen(t, name)
		t.Setenv(sdnotify.EnvSocket, name)
		if err := sdnotify.Ready(); err != nil {
			t.Fatal(err)
		}
		msg, pid := l.next(t, 2*time.Second)
		if msg != "READY=1\nSTATUS=ready" || pid != os.Getpid() {
			t.Fatalf("%s: got %q from pid %d", name, msg, pid)
		}
		if err := sdnotify.Status("serving\n12 calls"); err != nil {
			t.Fatal(err)
		}
		if msg, _ := l.next(t, 2*time.Second); msg != "STATUS=serving 12 calls" {
			t.Fatalf("status: %q", msg)
		}
		if err := sdnotify.Stopping(); err != nil {
			t.Fatal(err)
		}
		if msg, _ := l.next(t, 2*time.Second); !strings.HasPrefix(msg, "STOPPING=1") {
			t.Fatalf("stopping: %q", msg)
		}
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv(sdnotify.EnvSocket, "")
	if sent, err := sdnotify.Notify("READY=1"); sent || err != nil {
		t.Fatalf("sent %v, err %v", sent, err)
	}
	t.Setenv(sdnotify.EnvSocket, "relative/path")
	if _, err := sdnotify.Notify("READY=1"); err == nil {
		t.Fatal("a relative socket name was accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"abc", "", 0},
		{"0", "", 0},
		{"20000000", "", 20 * time.Second},
		{"20000000", strconv.Itoa(os.Getpid()), 20 * time.Second},
		{"20000000", strconv.Itoa(os.Getpid() + 1), 0},
		{"20000000", "x", 0},
	} {
		t.Setenv(sdnotify.EnvWatchdogUsec, c.usec)
		t.Setenv(sdnotify.EnvWatchdogPID, c.pid)
		if got := sdnotify.WatchdogInterval(); got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", c.usec, c.pid, got, c.want)
		}
	}
}

// TestWatchdogPingsOnlyWhileProbesPass: pings every half period; a probe
// that fails or hangs stops them, and they resume when it passes again;
// none after ctx ends.
func TestWatchdogPingsOnlyWhileProbesPass(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	name := filepath.Join(dir, "notify")
	l := listen(t, name)
	t.Setenv(sdnotify.EnvSocket, name)
	t.Setenv(sdnotify.EnvWatchdogUsec, "200000") // 200 ms: a ping every 100 ms
	t.Setenv(sdnotify.EnvWatchdogPID, strconv.Itoa(os.Getpid()))

	var mu sync.Mutex
	mode := "ok"
	hang := make(chan struct{})
	var wd sdnotify.Watchdog
	remove := wd.Add("test", func(ctx context.Context) error {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "fail":
			return errors.New("broken")
		case "hang":
			<-hang // ignores ctx: a stuck lock
		}
		return nil
	})
	defer remove()
	set := func(m string) { mu.Lock(); mode = m; mu.Unlock() }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wd.Run(ctx, nil) }()

	start := time.Now()
	for i := 0; i < 3; i++ {
		if msg, pid := l.next(t, time.Second); msg != "WATCHDOG=1" || pid != os.Getpid() {
			t.Fatalf("ping %d: %q from %d", i, msg, pid)
		}
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > time.Second {
		t.Fatalf("3 pings (at 0, 100, 200 ms) took %v", el)
	}
	for _, m := range []string{"fail", "hang"} {
		set(m)
		time.Sleep(120 * time.Millisecond) // a ping may have been under way
		drain(l)
		l.none(t, 400*time.Millisecond)
		set("ok")
		if m == "hang" {
			close(hang) // the stuck probe returns; the next check starts it again
		}
		if msg, _ := l.next(t, time.Second); msg != "WATCHDOG=1" {
			t.Fatalf("after %s: %q", m, msg)
		}
	}
	cancel()
	<-done
	drain(l)
	l.none(t, 300*time.Millisecond)
}

func drain(l *listener) {
	buf := make([]byte, 4096)
	for {
		_ = l.c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if _, _, err := l.c.ReadFromUnix(buf); err != nil {
			return
		}
	}
}

func TestProbeRemoved(t *testing.T) {
	var wd sdnotify.Watchdog
	remove := wd.Add("gone", func(context.Context) error { return errors.New("still registered") })
	if err := wd.Check(context.Background(), time.Second); err == nil || !strings.Contains(err.Error(), "gone: still registered") {
		t.Fatalf("check: %v", err)
	}
	remove()
	remove()
	if err := wd.Check(context.Background(), time.Second); err != nil {
		t.Fatalf("check after remove: %v", err)
	}
}

// TestWatchdogsAreSeparate: a probe belongs to the watchdog it was added
// to (two daemons run in one test process must not see each other's), and
// a nil watchdog takes probes without keeping them.
func TestWatchdogsAreSeparate(t *testing.T) {
	var a, b sdnotify.Watchdog
	defer a.Add("a", func(context.Context) error { return errors.New("a fails") })()
	defer b.Add("b", func(context.Context) error { return nil })()
	for _, tc := range []struct {
		name string
		wd   *sdnotify.Watchdog
		want string // empty: passes
	}{
		{"a", &a, "a: a fails"},
		{"b", &b, ""},
		{"nil", nil, ""},
	} {
		err := tc.wd.Check(context.Background(), time.Second)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s: check %v, want %q", tc.name, err, tc.want)
		}
	}
	var none *sdnotify.Watchdog
	remove := none.Add("dropped", func(context.Context) error { return errors.New("kept") })
	remove()
	if err := none.Check(context.Background(), time.Second); err != nil {
		t.Errorf("nil watchdog: %v", err)
	}
}
