package ngctl

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestStateStoreConfirmsWrites: writes go out without acknowledgements and
// are confirmed by coming back in the watch, or else by reading them back;
// a write that is not in node state is made again from the call's current
// state, a delete likewise.
func TestStateStoreConfirmsWrites(t *testing.T) {
	srv := testutil.StartNATS(t)
	conn := testutil.Connect(t, srv.URL(), "n1", "ng-ctl-test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	table := nodestate.Calls(store)
	s := newStateStore(table, testutil.Logger(t))
	var mu sync.Mutex
	live := map[string]nodestate.Call{}
	s.current = func(id string) (nodestate.Call, bool) {
		mu.Lock()
		defer mu.Unlock()
		c, ok := live[id]
		return c, ok
	}
	setLive := func(c nodestate.Call, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if ok {
			live[c.ID] = c
		} else {
			delete(live, c.ID)
		}
	}
	w, err := table.WatchSkippingRaw(ctx, testutil.Logger(t), func(id string, op nodestate.Op, raw []byte) bool {
		s.echo(id, op, raw)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	stopWatch := func() { _ = w.Stop() }
	defer stopWatch()

	pending := func(id string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.pending[id]
		return ok
	}
	dirty := func(id string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.dirty[id]
	}
	waitEcho := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); pending(id); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("write of %s never came back in the watch", id)
			}
		}
	}
	stored := func(id string) bool {
		t.Helper()
		_, err := table.GetRaw(ctx, id)
		if err != nil && !errors.Is(err, nodestate.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	confirmAll := func() {
		for i := 0; i < confirmTicks; i++ {
			s.confirm(ctx)
		}
	}

	// Confirmed by the watch: nothing left pending, nothing dirty.
	a := record("a", "n1", false, "", 31000)
	setLive(a, true)
	s.Save(a)
	waitEcho("a")
	if !stored("a") || dirty("a") {
		t.Fatalf("a: stored %v dirty %v", stored("a"), dirty("a"))
	}
	setLive(a, false)
	s.Remove("a")
	waitEcho("a")
	if stored("a") {
		t.Fatal("a still stored after its delete was confirmed")
	}

	// A write lost on the way (noted, never published): read back after
	// confirmTicks, found missing, made again from the current state.
	lost := record("lost", "n1", false, "", 31010)
	setLive(lost, true)
	data, err := table.Encode(lost.ID, lost)
	if err != nil {
		t.Fatal(err)
	}
	s.note("lost", pendingWrite{data: data})
	s.confirm(ctx)
	if dirty("lost") {
		t.Fatal("lost: dirty before confirmTicks ticks")
	}
	confirmAll()
	if !dirty("lost") || pending("lost") {
		t.Fatalf("lost: dirty %v pending %v after the read-back", dirty("lost"), pending("lost"))
	}
	s.retryDirty()
	waitEcho("lost")
	if !stored("lost") {
		t.Fatal("lost: not written again")
	}

	// A delete lost on the way: the record is still there and the call is
	// gone, so the retry deletes it.
	setLive(lost, false)
	s.note("lost", pendingWrite{deleted: true})
	confirmAll()
	if !dirty("lost") {
		t.Fatal("lost delete: not dirty after the read-back")
	}
	s.retryDirty()
	waitEcho("lost")
	if stored("lost") {
		t.Fatal("lost delete: record still there after the retry")
	}

	// With no watch, a write that did reach node state is confirmed by
	// reading it back, and nothing is written again.
	stopWatch()
	b := record("b", "n1", false, "", 31020)
	setLive(b, true)
	s.Save(b)
	for deadline := time.Now().Add(10 * time.Second); !stored("b"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("b never stored")
		}
	}
	confirmAll()
	if pending("b") || dirty("b") {
		t.Fatalf("b: pending %v dirty %v after a read-back that found it", pending("b"), dirty("b"))
	}
}
