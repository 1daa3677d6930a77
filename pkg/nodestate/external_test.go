package nodestate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestDebianNATSServer runs node state and a request/reply endpoint against
// the nats-server Debian ships (2.9), which operators may use as the bus.
func TestDebianNATSServer(t *testing.T) {
	url := testutil.StartNATSServer(t).URL()
	s := openStore(t, url)
	calls := nodestate.Calls(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := calls.Put(ctx, "x@y", sampleCall("x@y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := calls.Delete(ctx, "x@y", rev+100); !errors.Is(err, nodestate.ErrConflict) {
		t.Fatalf("delete at a revision against nats-server: %v", err)
	}
	w, err := calls.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if ev := <-w.C(); ev.ID != "x@y" {
		t.Fatalf("watch: %+v", ev)
	}
	c := testutil.Connect(t, url, "n1", "svc")
	svc, err := bus.NewService(c, "probe", "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	if err := svc.Ready(); err != nil {
		t.Fatal(err)
	}
	h, err := bus.Request(ctx, c, api.Ping("probe"), api.Empty{})
	if err != nil || h.Daemon != "probe" {
		t.Fatalf("ping over nats-server: %+v %v", h, err)
	}
}

// TestConcurrentOpen: daemons starting together on a fresh bus all open
// the bucket, whichever of them creates it (embedded and Debian servers).
func TestConcurrentOpen(t *testing.T) {
	for _, tt := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"embedded", func(t *testing.T) string { return testutil.StartNATS(t).URL() }},
		{"debian", func(t *testing.T) string { return testutil.StartNATSServer(t).URL() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for round := 0; round < 5; round++ {
				url := tt.url(t)
				errs := make(chan error, 8)
				for i := 0; i < 8; i++ {
					go func() {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						c, err := bus.Connect(ctx, bus.Options{URL: url}, "race", "open", nil)
						if err != nil {
							errs <- err
							return
						}
						defer c.Close()
						_, err = nodestate.Open(ctx, c, nodestate.Options{})
						errs <- err
					}()
				}
				for i := 0; i < 8; i++ {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: concurrent open: %v", round, err)
					}
				}
			}
		})
	}
}
