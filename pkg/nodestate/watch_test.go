package nodestate_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestWatchSkippingRaw: the skip func sees each put's raw JSON (and nil
// for a delete) and drops changes before they are decoded.
func TestWatchSkippingRaw(t *testing.T) {
	srv := testutil.StartNATS(t)
	calls := nodestate.Calls(openStore(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	deleteRaw := map[string][]byte{}
	// Deliver deletes and records written by redis-sync; skip the rest.
	skip := func(id string, op nodestate.Op, raw []byte) bool {
		if op == nodestate.OpDelete {
			mu.Lock()
			deleteRaw[id] = raw
			mu.Unlock()
			return false
		}
		return !bytes.Contains(raw, []byte(`"source":"redis"`))
	}
	changes := []struct {
		id      string
		source  string // "" and "redis" put, "-" deletes
		deliver bool
	}{
		{"own", "", false},
		{"restored", nodestate.SourceRedis, true},
		{`tricky "source":"redis"`, "", false}, // the marker inside a value is escaped
		{"own", "-", true},
		{"restored", "", false},
		{"restored", nodestate.SourceRedis, true},
		{"end", nodestate.SourceRedis, true},
	}
	w, err := calls.WatchSkippingRaw(ctx, testutil.Logger(t), skip)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if ev := <-w.C(); !ev.Synced {
		t.Fatalf("want Synced on an empty table, got %+v", ev)
	}
	for _, c := range changes {
		if c.source == "-" {
			if err := calls.Delete(ctx, c.id, 0); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rec := sampleCall(c.id)
		rec.Source = c.source
		rec.Legs[0].Tag = c.id
		if _, err := calls.Put(ctx, c.id, rec); err != nil {
			t.Fatal(err)
		}
	}
	var got []nodestate.Event[nodestate.Call]
	for len(got) == 0 || got[len(got)-1].ID != "end" {
		select {
		case ev, ok := <-w.C():
			if !ok {
				t.Fatal("watch ended")
			}
			got = append(got, ev)
		case <-ctx.Done():
			t.Fatalf("no end record; got %+v", got)
		}
	}
	var want []int
	for i, c := range changes {
		if c.deliver {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, ev := range got {
		c := changes[want[i]]
		if ev.ID != c.id || (ev.Op == nodestate.OpDelete) != (c.source == "-") {
			t.Fatalf("change %d: %s %s, want %+v", i, ev.Op, ev.ID, c)
		}
		if ev.Op == nodestate.OpPut && (ev.Value.Source != c.source || ev.Value.Legs[0].Tag != c.id) {
			t.Fatalf("change %d: decoded %+v, want source %q", i, ev.Value, c.source)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if raw, ok := deleteRaw["own"]; !ok || raw != nil {
		t.Fatalf("skip func got %q for the delete, want nil", raw)
	}
}
