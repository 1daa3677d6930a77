package testutil

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
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
	// Addr is host:port of its TCP listener, to dial from the namespace it
	// runs in (NetNS, or the test's own): for a wildcard Host ("0.0.0.0",
	// "::") it names the loopback address of that family.
	Addr string
	// Port is the port of its TCP listener (kept across Restart).
	Port int
	// NetNS is the network namespace it runs in (RedisOptions.NetNS); nil
	// means the test's own namespace.
	NetNS *NetNS
	// Socket is the path of its Unix socket.
	Socket string
	// Dir holds its data files (kept across Restart, for tests of a Redis
	// that comes back with its data).
	Dir string
	// Password is the requirepass the server was started with.
	Password string
	cmd      *exec.Cmd
	waitDone chan struct{}
	args     []string
	t        testing.TB
}

// RedisOptions tunes StartRedis.
type RedisOptions struct {
	// Host is the address to bind (default 127.0.0.1). A wildcard
	// ("0.0.0.0" or "::") listens on every address, which is only sensible
	// inside a private NetNS.
	Host string
	// NetNS, if set, runs redis-server inside this namespace (through
	// "ip netns exec", which execs, so the pid that Kill, Stop and Restart
	// act on is redis-server's own). The free port is picked, and Client
	// and the readiness check dial, inside the namespace too. Nil runs it in
	// the test's own namespace, as before.
	NetNS *NetNS
	// NotifyKeyspaceEvents is the notify-keyspace-events setting
	// (default "Khg$x": keyspace channel, generic, hash, string, expired).
	NotifyKeyspaceEvents string
	// Persist turns on the append-only file so a Restart keeps the data.
	Persist bool
	// Password, if set, is required from clients (requirepass).
	Password string
	// TLS, if set, makes the TCP listener TLS only (clients are not asked
	// for certificates).
	TLS *RedisTLS
}

// RedisTLS are the PEM files of a TLS listener.
type RedisTLS struct {
	CertFile, KeyFile, CAFile string
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
	r := &Redis{Dir: dir, Socket: filepath.Join(dir, "redis.sock"), NetNS: opts.NetNS, Password: opts.Password, t: t}
	aof := "no"
	if opts.Persist {
		aof = "yes"
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := r.freePort(opts.Host)
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		r.Port = port
		r.Addr = net.JoinHostPort(dialHost(opts.Host), strconv.Itoa(port))
		r.args = []string{
			"--bind", opts.Host, "--port", strconv.Itoa(port),
			"--unixsocket", r.Socket, "--unixsocketperm", "700",
			"--dir", dir, "--save", "", "--appendonly", aof,
			"--notify-keyspace-events", opts.NotifyKeyspaceEvents,
			"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
			"--databases", "32",
		}
		if opts.Password != "" {
			r.args = append(r.args, "--requirepass", opts.Password)
		}
		if opts.TLS != nil {
			r.args[3] = "0" // --port: no plain TCP listener
			r.args = append(r.args, "--tls-port", strconv.Itoa(port), "--tls-cert-file", opts.TLS.CertFile,
				"--tls-key-file", opts.TLS.KeyFile, "--tls-ca-cert-file", opts.TLS.CAFile, "--tls-auth-clients", "no")
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

// dialHost is the address to dial for a listener bound to host: loopback
// for a wildcard.
func dialHost(host string) string {
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		if a.Is4() {
			return "127.0.0.1"
		}
		return "::1"
	}
	return host
}

// freePort picks a free TCP port on host in the server's namespace.
func (r *Redis) freePort(host string) (int, error) {
	if r.NetNS == nil {
		return FreePort("tcp", host)
	}
	var port int
	err := r.NetNS.Do(func() error {
		var err error
		port, err = FreePort("tcp", host)
		return err
	})
	return port, err
}

// dial connects from the server's namespace (go-redis's Dialer).
func (r *Redis) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if r.NetNS == nil {
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := r.NetNS.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// newClient is a go-redis client for DB db that dials in the server's
// namespace.
func (r *Redis) newClient(db int) *redis.Client {
	o := &redis.Options{Addr: r.Addr, DB: db, Password: r.Password}
	if r.NetNS != nil {
		o.Dialer = r.dial
	}
	return redis.NewClient(o)
}

func (r *Redis) start(bin string) error {
	cmd := exec.Command(bin, r.args...)
	if r.NetNS != nil {
		cmd = r.NetNS.Command(bin, r.args...)
	}
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
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, err := r.dial(ctx, "tcp", r.Addr)
		cancel()
		if err == nil {
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

// Client returns a go-redis client for DB db, closed at cleanup. For a
// server in a NetNS it connects from inside that namespace.
func (r *Redis) Client(db int) *redis.Client {
	c := r.newClient(db)
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
	c := r.newClient(0)
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
