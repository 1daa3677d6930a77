package ngserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	pingDoc   = "d7:command4:pinge"
	pongReply = "d6:result4:ponge"
	// noPayload is what the real engine answers to an empty document.
	noPayload = "d6:result5:error12:error-reason25:Invalid data (no payload)e"
	// replyWait bounds waiting for a reply that must come.
	replyWait = 5 * time.Second
	// silenceWait is how long a test listens to conclude no reply comes.
	silenceWait = 200 * time.Millisecond
)

// fakeEngine is a Handler that answers ping with pong, an empty document
// with the no-payload error, and anything else with an echo of it; it
// counts its calls per document.
type fakeEngine struct {
	calls atomic.Int64
	delay time.Duration // sleep before answering
	gate  chan struct{} // if set, wait for it (or ctx) before answering

	mu    sync.Mutex
	docs  []string
	froms []netip.AddrPort
}

func (f *fakeEngine) handle(ctx context.Context, doc []byte, from netip.AddrPort) []byte {
	f.calls.Add(1)
	f.mu.Lock()
	f.docs = append(f.docs, string(doc))
	f.froms = append(f.froms, from)
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
		}
	}
	switch {
	case len(doc) == 0:
		return []byte(noPayload)
	case string(doc) == pingDoc:
		return []byte(pongReply)
	case strings.HasPrefix(string(doc), "{"):
		return []byte(`{"result":"ok"}`)
	}
	return fmt.Appendf(nil, "d4:echo%d:%s6:result2:oke", len(doc), doc)
}

func (f *fakeEngine) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.docs...)
}

// echoReply is what fakeEngine answers to doc.
func echoReply(doc string) string { return fmt.Sprintf("d4:echo%d:%s6:result2:oke", len(doc), doc) }

// testLogger logs to the test at debug level when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startServer creates a server from cfg (with the fake engine f as handler
// unless cfg has one), runs Serve and registers a cleanup that closes it
// and checks that Serve returned nil.
func startServer(t testing.TB, cfg Config, f *fakeEngine) *Server {
	t.Helper()
	s, err := tryStartServer(t, cfg, f)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// tryStartServer is startServer, returning New's error instead of failing
// the test.
func tryStartServer(t testing.TB, cfg Config, f *fakeEngine) (*Server, error) {
	t.Helper()
	if cfg.Handler == nil {
		cfg.Handler = f.handle
	}
	if cfg.Log == nil {
		cfg.Log = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s, nil
}

// udpClient is a UDP socket connected to one server address.
type udpClient struct {
	t    testing.TB
	conn *net.UDPConn
}

func dialUDP(t testing.TB, to netip.AddrPort) *udpClient {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatalf("dial udp %s: %v", to, err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c}
}

func (c *udpClient) send(msg string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv returns the next datagram, or "" and false after wait.
func (c *udpClient) recv(wait time.Duration) (string, bool) {
	c.t.Helper()
	buf := make([]byte, 70000)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := c.conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", false
		}
		c.t.Fatalf("recv: %v", err)
	}
	return string(buf[:n]), true
}

// roundTrip sends msg and returns the reply, failing the test without one.
func (c *udpClient) roundTrip(msg string) string {
	c.t.Helper()
	c.send(msg)
	reply, ok := c.recv(replyWait)
	if !ok {
		c.t.Fatalf("no reply to %q", msg)
	}
	return reply
}

// expectSilence fails the test if a datagram arrives within silenceWait.
func (c *udpClient) expectSilence(after string) {
	c.t.Helper()
	if reply, ok := c.recv(silenceWait); ok {
		c.t.Fatalf("after %q: unexpected reply %q", after, reply)
	}
}

// fakeClock is a settable clock for the reply cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// haveIPv6Loopback reports whether ::1 can be bound here.
func haveIPv6Loopback() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// requireIPv6 skips the test without IPv6 loopback.
func requireIPv6(t testing.TB) {
	t.Helper()
	if !haveIPv6Loopback() {
		t.Skip("no IPv6 loopback (::1) on this host")
	}
}

// waitFor polls cond until it holds or fails the test after replyWait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(replyWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
