package fwd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPing: every loop answers; a loop that has stopped does not, and
// Ping says how many answered; a closed engine says so.
func TestPing(t *testing.T) {
	e, err := New(Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	// Stop the second loop's goroutine as if it had died.
	e.loops[1].stop.Store(true)
	e.loops[1].wake()
	time.Sleep(100 * time.Millisecond)
	sctx, scancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer scancel()
	if err := e.Ping(sctx); err == nil || !strings.Contains(err.Error(), "1 of 2 forwarding loops answered") {
		t.Fatalf("ping with a dead loop: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}
