package testutil

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server started for one test.
type Redis struct {
	// Addr is host:port of its TCP listener.
	Addr string
	// Socket is the path of its Unix socket.
	Socket string
	// Dir holds its data files (kept across Restart, for tests of a Redis
	// that comes back with its data).
	Dir      string
	cmd      *exec.Cmd
	waitDone chan struct{}
	args     []string
	t        testing.TB
}

// RedisOptions tunes StartRedis.
type RedisOptions struct {
	// Host is the address to bind (default 127.0.0.1).
	Host string
	// NotifyKeyspaceEvents is the notify-keyspace-events setting
	// (default "Khg$x": keyspace channel, generic, hash, string, expired).
	NotifyKeyspaceEvents string
	// Persist turns on the append-only file so a Restart keeps the data.
	Persist bool
}

// StartRedis runs a real redis-server on a free port and a Unix socket, with
// keyspace notifications on, stopped at cleanup. The test is skipped if no
// redis-server is installed and RTPKIT_REQUIRE_DEPS is unset (`make test`
// installs it and sets that variable, so CI never skips).
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatalf("redis-server not found in PATH (RTPKIT_REQUIRE_DEPS is set)")
		}
		t.Skip("redis-server not installed (make test installs it)")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.NotifyKeyspaceEvents == "" {
		opts.NotifyKeyspaceEvents = "Khg$x"
	}
	dir := shortTempDir(t)
	r := &Redis{Dir: dir, Socket: filepath.Join(dir, "redis.sock"), t: t}
	aof := "no"
	if opts.Persist {
		aof = "yes"
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort("tcp", opts.Host)
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		r.Addr = net.JoinHostPort(opts.Host, strconv.Itoa(port))
		r.args = []string{
			"--bind", opts.Host, "--port", strconv.Itoa(port),
			"--unixsocket", r.Socket, "--unixsocketperm", "700",
			"--dir", dir, "--save", "", "--appendonly", aof,
			"--notify-keyspace-events", opts.NotifyKeyspaceEvents,
			"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
			"--databases", "32",
		}
		if err := r.start(bin); err == nil {
			t.Cleanup(r.Stop)
			return r
		} else if attempt == 4 {
			t.Fatalf("start redis-server: %v", err)
		}
	}
	return r
}

func (r *Redis) start(bin string) error {
	cmd := exec.Command(bin, r.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, _ := os.Create(filepath.Join(r.Dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", readFile(filepath.Join(r.Dir, "redis.log")))
		default:
		}
		if c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			r.waitDone = exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not listen on %s within 10s", r.Addr)
}

// URL is a redis:// URL for DB db.
func (r *Redis) URL(db int) string { return fmt.Sprintf("redis://%s/%d", r.Addr, db) }

// Client returns a go-redis client for DB db, closed at cleanup.
func (r *Redis) Client(db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DB: db})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// PID is the server's process id.
func (r *Redis) PID() int { return r.cmd.Process.Pid }

// Kill stops the server with SIGKILL (a crash) and waits for it.
func (r *Redis) Kill() {
	if r.cmd == nil || r.waitDone == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.waitDone
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 5 s).
func (r *Redis) Stop() {
	if r.cmd == nil || r.waitDone == nil {
		return
	}
	select {
	case <-r.waitDone:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.waitDone:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.waitDone
	}
}

// Restart starts the server again on the same port, socket and data dir.
func (r *Redis) Restart() {
	r.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	if err := r.start(bin); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

// WaitKeyspaceConfig returns CONFIG GET notify-keyspace-events.
func (r *Redis) WaitKeyspaceConfig(ctx context.Context) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	m, err := c.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return "", err
	}
	return m["notify-keyspace-events"], nil
}

// FreePort returns a port that was free on host a moment ago.
func FreePort(network, host string) (int, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	default:
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
}

// shortTempDir is a temp dir with a short path: Unix socket paths are
// limited to 108 bytes, and t.TempDir() paths can be longer.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rtpkit-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// ShortTempDir is a test temp dir whose path is short enough for Unix
// socket names, removed at cleanup.
func ShortTempDir(t testing.TB) string { t.Helper(); return shortTempDir(t) }

func readFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan() && i < 20; i++ {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}
