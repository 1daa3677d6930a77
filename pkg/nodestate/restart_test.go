package nodestate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestWatchResumesAfterBusRestart: a watch delivers the records written
// right after its bus server restarted (its consumer died with the
// server) within a few seconds, not only once the client library's
// inactivity check (two idle heartbeats, 10 s and more) makes the
// consumer again; nothing is delivered twice, and no second Synced comes.
// Before the watch resumed on reconnect, the soak run lost the media of
// every call set up in the 13 s after a bus restart.
func TestWatchResumesAfterBusRestart(t *testing.T) {
	srv := testutil.StartNATSServer(t)
	s := openStore(t, srv.URL())
	calls := nodestate.Calls(s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := calls.Put(ctx, "before", sampleCall("before")); err != nil {
		t.Fatal(err)
	}
	w, err := calls.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	next := func(within time.Duration) (nodestate.Event[nodestate.Call], bool) {
		select {
		case ev, ok := <-w.C():
			return ev, ok
		case <-time.After(within):
			return nodestate.Event[nodestate.Call]{}, false
		}
	}
	if ev, ok := next(5 * time.Second); !ok || ev.ID != "before" {
		t.Fatalf("first event %+v %v", ev, ok)
	}
	if ev, ok := next(5 * time.Second); !ok || !ev.Synced {
		t.Fatalf("want Synced, got %+v %v", ev, ok)
	}

	srv.Stop()
	srv.Start()
	// Write as soon as the store's connection is back.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := calls.Put(pctx, "after", sampleCall("after"))
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	written := time.Now()
	for i := range 3 {
		id := fmt.Sprintf("after-%d", i)
		if _, err := calls.Put(ctx, id, sampleCall(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Well under the library's own recovery (at least 10 s).
	const within = 5 * time.Second
	want := []string{"after", "after-0", "after-1", "after-2"}
	for _, id := range want {
		ev, ok := next(within - time.Since(written))
		if !ok {
			t.Fatalf("record %q not delivered within %v of the write after a bus restart", id, within)
		}
		if ev.Synced || ev.ID != id {
			t.Fatalf("after the restart got %+v, want %q (nothing twice, no second Synced)", ev, id)
		}
	}
}
