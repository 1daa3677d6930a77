package nodestate_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestMain lets the test binary act as "another process" writing a record.
func TestMain(m *testing.M) {
	if os.Getenv("NODESTATE_HELPER_URL") != "" {
		os.Exit(helperPut())
	}
	os.Exit(m.Run())
}

func helperPut() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bus.Connect(ctx, bus.Options{URL: os.Getenv("NODESTATE_HELPER_URL")}, "n1", "helper", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	s, err := nodestate.Open(ctx, c, nodestate.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	call := sampleCall(os.Getenv("NODESTATE_HELPER_ID"))
	call.Owner = fmt.Sprintf("pid-%d", os.Getpid())
	if _, err := nodestate.Calls(s).Put(ctx, call.ID, call); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func sampleCall(id string) nodestate.Call {
	return nodestate.Call{
		Schema: nodestate.CallSchema, ID: id, Owner: "n1", Created: time.Unix(1700000000, 0).UTC(),
		Legs: []nodestate.Leg{{
			Tag: "from-tag", Medias: []nodestate.Media{{
				Index: 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default",
				PayloadTypes: []nodestate.PayloadType{{PT: 0, Encoding: "PCMU", Clock: 8000}, {PT: 101, Encoding: "telephone-event", Clock: 8000, Fmtp: "0-16"}},
				Streams: []nodestate.Stream{
					{Component: 1, Local: netip.MustParseAddrPort("127.0.0.1:30000")},
					{Component: 2, Local: netip.MustParseAddrPort("127.0.0.1:30001")},
				},
			}},
		}},
	}
}

func openStore(t *testing.T, url string) *nodestate.Store {
	t.Helper()
	c := testutil.Connect(t, url, "n1", t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := nodestate.Open(ctx, c, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeleteAtRevision: a delete at a revision the record has left fails
// with ErrConflict and leaves the record; at its current one it deletes.
func TestDeleteAtRevision(t *testing.T) {
	srv := testutil.StartNATS(t)
	calls := nodestate.Calls(openStore(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const id = "a84b4c76e66710@pc33.atlanta.example.com"

	rev1, err := calls.Put(ctx, id, sampleCall(id))
	if err != nil {
		t.Fatal(err)
	}
	got, err := calls.Get(ctx, id)
	if err != nil || got.ID != id || got.Revision != rev1 || got.Value.Legs[0].Medias[0].PayloadTypes[1].Fmtp != "0-16" {
		t.Fatalf("get: %+v %v", got, err)
	}
	a := got.Value
	a.LastSignal = time.Unix(1700000100, 0).UTC()
	rev2, err := calls.Put(ctx, id, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := calls.Delete(ctx, id, rev1); !errors.Is(err, nodestate.ErrConflict) {
		t.Fatalf("stale delete: %v, want ErrConflict", err)
	}
	now, err := calls.Get(ctx, id)
	if err != nil || now.Revision != rev2 || !now.Value.LastSignal.Equal(a.LastSignal) {
		t.Fatalf("after conflict: %+v %v", now, err)
	}
	if err := calls.Delete(ctx, id, rev2); err != nil {
		t.Fatal(err)
	}
	if _, err := calls.Get(ctx, id); !errors.Is(err, nodestate.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
}

func TestWatcherSeesAnotherProcessWrite(t *testing.T) {
	srv := testutil.StartNATS(t)
	calls := nodestate.Calls(openStore(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := calls.Put(ctx, "existing", sampleCall("existing")); err != nil {
		t.Fatal(err)
	}
	w, err := calls.Watch(ctx, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()

	next := func() nodestate.Event[nodestate.Call] {
		t.Helper()
		select {
		case ev, ok := <-w.C():
			if !ok {
				t.Fatal("watch ended")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no watch event in time")
		}
		panic("unreachable")
	}
	if ev := next(); ev.ID != "existing" || ev.Op != nodestate.OpPut {
		t.Fatalf("first event %+v, want the existing record", ev)
	}
	if ev := next(); !ev.Synced {
		t.Fatalf("want Synced after the initial records, got %+v", ev)
	}

	const id = "call from another process"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NODESTATE_HELPER_URL="+srv.URL(), "NODESTATE_HELPER_ID="+id)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	ev := next()
	if ev.ID != id || ev.Op != nodestate.OpPut || ev.Value.Owner != fmt.Sprintf("pid-%d", cmd.Process.Pid) {
		t.Fatalf("event %+v, want the helper's put", ev)
	}
	if err := calls.Delete(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.ID != id || ev.Op != nodestate.OpDelete {
		t.Fatalf("event %+v, want delete of %q", ev, id)
	}
	list, err := calls.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "existing" {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func TestStateSurvivesBusRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	write := func(id string) {
		srv := startBusIn(t, dir)
		defer srv.Shutdown()
		c, err := bus.Connect(ctx, bus.Options{URL: srv.URL()}, "n1", "w", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := nodestate.Open(ctx, c, nodestate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if id != "" {
			if _, err := nodestate.Calls(s).Put(ctx, id, sampleCall(id)); err != nil {
				t.Fatal(err)
			}
			return
		}
		got, err := nodestate.Calls(s).Get(ctx, "kept")
		if err != nil || got.Value.ID != "kept" {
			t.Fatalf("after bus restart: %+v %v", got, err)
		}
	}
	write("kept")
	write("")
}

func TestPutAsyncIsPipelined(t *testing.T) {
	srv := testutil.StartNATS(t)
	calls := nodestate.Calls(openStore(t, srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 200
	futs := make([]jetstream.PubAckFuture, 0, n)
	for i := 0; i < n; i++ {
		rec := sampleCall("c")
		rec.Owner = fmt.Sprint(i)
		f, err := calls.PutAsync("c", rec)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	if err := nodestate.Await(ctx, futs...); err != nil {
		t.Fatal(err)
	}
	got, err := calls.Get(ctx, "c")
	if err != nil || got.Value.Owner != fmt.Sprint(n-1) {
		t.Fatalf("last write wins in order: %+v %v", got.Value.Owner, err)
	}
}

// TestOnWriteError: a pipelined write the bus refuses reaches
// Options.OnWriteError with the record's kind and id; the ones it accepts
// do not.
func TestOnWriteError(t *testing.T) {
	srv := testutil.StartNATS(t)
	c := testutil.Connect(t, srv.URL(), "n1", "writer")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type failure struct{ kind, id string }
	failures := make(chan failure, 10)
	s, err := nodestate.Open(ctx, c, nodestate.Options{Memory: true, OnWriteError: func(kind, id string, err error) {
		failures <- failure{kind, id}
	}})
	if err != nil {
		t.Fatal(err)
	}
	calls := nodestate.Calls(s)
	fut, err := calls.PutAsync("fits", sampleCall("fits"))
	if err != nil {
		t.Fatal(err)
	}
	// The accepted write is stored before the bucket changes (else the
	// server could see it after the change and refuse it too).
	select {
	case <-fut.Ok():
	case err := <-fut.Err():
		t.Fatalf("accepted write: %v", err)
	case <-ctx.Done():
		t.Fatal("accepted write not acknowledged")
	}
	// Make the bucket refuse records larger than 64 bytes.
	js, err := jetstream.New(c.NC)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_"+nodestate.BucketName("n1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 64
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	big := sampleCall("a call/with odd id")
	if _, err := calls.PutAsync(big.ID, big); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-failures:
		if f.kind != nodestate.CallKind || f.id != big.ID {
			t.Fatalf("failure reported for %s %q, want call %q", f.kind, f.id, big.ID)
		}
	case <-ctx.Done():
		t.Fatal("refused write not reported")
	}
	if e, err := calls.Get(ctx, "fits"); err != nil || e.Value.ID != "fits" {
		t.Fatalf("accepted write: %+v %v", e, err)
	}
	select {
	case f := <-failures:
		t.Fatalf("unexpected failure %+v", f)
	default:
	}
}
