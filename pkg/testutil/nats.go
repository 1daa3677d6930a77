package testutil

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/embedbus"
)

// StartNATS runs an embedded NATS server with JetStream (file storage in a
// test temp dir) on a free loopback port, stopped at cleanup.
func StartNATS(t testing.TB) *embedbus.Server {
	t.Helper()
	srv, err := embedbus.Start(embedbus.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, Logger(t))
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect opens a bus connection for node to srv's URL, closed at cleanup.
// On the bus of an `rtpctl up` it connects with the operator's key, which
// that node advertised (busauth.FindOperatorKey).
func Connect(t testing.TB, url, node, name string) *bus.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := bus.Options{URL: url, NkeyFile: busauth.FindOperatorKey(url, node), ConnectTimeout: 5 * time.Second}
	c, err := bus.Connect(ctx, opts, node, name, Logger(t))
	if err != nil {
		t.Fatalf("connect to bus %s: %v", url, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Logger returns a logger that writes through t.Log at debug level when
// RTPKIT_TEST_LOG is set, and discards otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testLogEnabled() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// AwaitPing waits up to 15 s until daemon answers its ping on conn's node
// from process p (a ping from an earlier run does not count), and fails
// the test with p's output if it does not.
func AwaitPing(t testing.TB, conn *bus.Conn, daemon string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		h, err := bus.Request(ctx, conn, api.Ping(daemon), api.Empty{})
		cancel()
		if err == nil && h.PID == p.PID() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering: %v\n%s", daemon, err, p.Output())
		}
		time.Sleep(30 * time.Millisecond)
	}
}
