package nodestate_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestPurgeDeletesKeepsLiveAndYoung: PurgeDeletes removes only the delete
// markers older than its age; live records and younger markers stay.
func TestPurgeDeletesKeepsLiveAndYoung(t *testing.T) {
	srv := testutil.StartNATS(t)
	conn := testutil.Connect(t, srv.URL(), "n1", "test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls := nodestate.Calls(store)
	write := func(id string, del bool) {
		t.Helper()
		if _, err := calls.Put(ctx, id, nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: "n1"}); err != nil {
			t.Fatal(err)
		}
		if del {
			if err := calls.Delete(ctx, id, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("old-1", true)
	write("old-2", true)
	write("live-old", false)
	time.Sleep(1200 * time.Millisecond)
	write("young", true)
	write("live-young", false)

	for _, tt := range []struct {
		name       string
		age        time.Duration
		wantPurged int
		wantLeft   []string // markers left
	}{
		{name: "none old enough", age: time.Hour, wantPurged: 0, wantLeft: []string{"old-1", "old-2", "young"}},
		{name: "older than a second", age: time.Second, wantPurged: 2, wantLeft: []string{"young"}},
		{name: "all", age: 0, wantPurged: 1, wantLeft: nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := store.PurgeDeletes(ctx, tt.age)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantPurged {
				t.Errorf("purged %d, want %d", n, tt.wantPurged)
			}
			var left, live []string
			w, err := calls.Watch(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for ev := range w.C() {
				if ev.Synced {
					break
				}
				if ev.Op == nodestate.OpDelete {
					left = append(left, ev.ID)
				} else {
					live = append(live, ev.ID)
				}
			}
			_ = w.Stop()
			if len(left) != len(tt.wantLeft) {
				t.Errorf("markers left %v, want %v", left, tt.wantLeft)
			}
			for i := range min(len(left), len(tt.wantLeft)) {
				if left[i] != tt.wantLeft[i] {
					t.Errorf("markers left %v, want %v", left, tt.wantLeft)
					break
				}
			}
			if len(live) != 2 || live[0] != "live-old" || live[1] != "live-young" {
				t.Errorf("live records %v, want [live-old live-young]", live)
			}
		})
	}
}
