package ngctl_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// churnCalls writes n call records and deletes each again, the way a node
// that has seen n calls end leaves its bucket: n delete markers. It writes
// without waiting (Publish), with an acknowledged write every 1000 records
// so that the server keeps up.
func churnCalls(t *testing.T, ctx context.Context, calls *nodestate.Table[nodestate.Call], n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		id := "churn-" + strconv.Itoa(i)
		data, err := calls.Encode(id, nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: "churn"})
		if err != nil {
			t.Fatal(err)
		}
		if err := calls.Publish(id, data); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		if err := calls.PublishDelete(id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
		if i%1000 == 999 {
			if _, err := calls.Put(ctx, "churn-barrier", nodestate.Call{Schema: nodestate.CallSchema, ID: "churn-barrier", Owner: "churn"}); err != nil {
				t.Fatalf("barrier write: %v", err)
			}
		}
	}
	if err := calls.Delete(ctx, "churn-barrier", 0); err != nil {
		t.Fatalf("delete barrier: %v", err)
	}
}

// replay counts what a daemon's watch of the call records delivers before
// its Synced mark (live records and delete markers) and how long that
// takes.
func replay(t *testing.T, ctx context.Context, calls *nodestate.Table[nodestate.Call]) (puts, deletes int, took time.Duration) {
	t.Helper()
	start := time.Now()
	w, err := calls.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	for ev := range w.C() {
		switch {
		case ev.Synced:
			return puts, deletes, time.Since(start)
		case ev.Op == nodestate.OpDelete:
			deletes++
		default:
			puts++
		}
	}
	t.Fatalf("watch ended before Synced: %v", ctx.Err())
	return
}

// TestNgctlPurgesDeleteMarkers: a node that has seen many calls end keeps
// a delete marker per call in its bucket, which every daemon start
// replays. ng-ctl purges the markers older than --state-purge-age every
// --state-purge-interval, so that a start after heavy churn replays about
// what a fresh node's does. Runs against the embedded server (v2.15) and
// Debian's nats-server (2.9), both on file storage.
func TestNgctlPurgesDeleteMarkers(t *testing.T) {
	bin := testutil.Binaries(t)
	for _, tt := range []struct {
		name   string
		server func(t *testing.T) string
		churn  int
	}{
		{name: "embedded", server: func(t *testing.T) string { return testutil.StartNATS(t).URL() }, churn: 100000},
		{name: "nats-server", server: func(t *testing.T) string { return testutil.StartNATSServer(t).URL() }, churn: 20000},
	} {
		if raceBuild && tt.name == "embedded" {
			tt.churn = 20000 // the embedded server is race-instrumented too
		}
		t.Run(tt.name, func(t *testing.T) {
			url := tt.server(t)
			node := "purge-" + tt.name
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			conn := testutil.Connect(t, url, node, "churn")
			store, err := nodestate.Open(ctx, conn, nodestate.Options{})
			if err != nil {
				t.Fatal(err)
			}
			calls := nodestate.Calls(store)
			setup := time.Now()
			churnCalls(t, ctx, calls, tt.churn)
			t.Logf("churn: %d calls created and deleted in %s", tt.churn, time.Since(setup).Round(time.Millisecond))
			_, before, took := replay(t, ctx, calls)
			t.Logf("replay before purge: %d delete markers up to Synced in %s", before, took.Round(time.Millisecond))
			if before < tt.churn {
				t.Fatalf("churn left %d delete markers, want %d", before, tt.churn)
			}
			_, _, fresh := replay(t, ctx, nodestate.Calls(openFresh(t, ctx, url, node+"-fresh")))
			t.Logf("replay of a fresh node: up to Synced in %s", fresh.Round(time.Millisecond))

			ngPort, err := testutil.FreePort("udp", "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			ngctl := testutil.StartProc(t, filepath.Join(bin, "ng-ctl"),
				[]string{"--nats-url=" + url, "--node-id=" + node, "--listen-ng=127.0.0.1:" + strconv.Itoa(ngPort)},
				"RTPKIT_STATE_PURGE_AGE=1s", "RTPKIT_STATE_PURGE_INTERVAL=1s")
			testutil.AwaitPing(t, conn, "ng-ctl", ngctl)

			left := before
			for deadline := time.Now().Add(90 * time.Second); left > 0 && time.Now().Before(deadline); {
				time.Sleep(2 * time.Second)
				_, left, _ = replay(t, ctx, calls)
			}
			if left > 0 {
				t.Fatalf("ng-ctl running with RTPKIT_STATE_PURGE_AGE=1s: %d of %d delete markers still in the bucket after 90 s\n%s", left, before, ngctl.Output())
			}
			_, after, took := replay(t, ctx, calls)
			t.Logf("replay after purge: %d delete markers up to Synced in %s", after, took.Round(time.Millisecond))
			for _, l := range testutil.MatchLine(`.*delete markers purged.*`).FindAllString(ngctl.Output(), 3) {
				t.Logf("ng-ctl: %s", l)
			}
		})
	}
}

// openFresh opens the bucket of a node that has seen no calls.
func openFresh(t *testing.T, ctx context.Context, url, node string) *nodestate.Store {
	t.Helper()
	c := testutil.Connect(t, url, node, "fresh")
	s, err := nodestate.Open(ctx, c, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
