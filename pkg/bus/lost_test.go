package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestConnLost: a connection that a real nats-server closes for good —
// for a control line beyond its limit (what an over-long node-state key
// did), or by refusing the reconnect after a restart with credentials —
// is reported by Lost, LostErr and WithLoss's context; our own Close is
// not.
func TestConnLost(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cut     func(t *testing.T, ns *testutil.NATSServer, c *bus.Conn)
		lost    bool
		wantErr string
	}{
		{"control line beyond the server's limit", func(t *testing.T, _ *testutil.NATSServer, c *bus.Conn) {
			if err := c.NC.Publish(strings.Repeat("x", 5000), nil); err != nil {
				t.Fatal(err)
			}
			_ = c.NC.Flush()
		}, true, "maximum control line exceeded"},
		{"server restarted with credentials", func(t *testing.T, ns *testutil.NATSServer, _ *bus.Conn) {
			ns.Stop()
			ns.StartArgs("--user", "u", "--pass", "p")
		}, true, "uthorization"},
		{"own Close", func(t *testing.T, _ *testutil.NATSServer, c *bus.Conn) { c.Close() }, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := testutil.StartNATSServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := bus.Connect(ctx, bus.Options{URL: ns.URL(), ConnectTimeout: 5 * time.Second}, "n1", "lost-test", testutil.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			lctx, stop := c.WithLoss(ctx)
			defer stop()
			tt.cut(t, ns, c)
			if !tt.lost {
				select {
				case <-c.Lost():
					t.Fatalf("own Close reported as lost: %v", c.LostErr())
				case <-time.After(500 * time.Millisecond):
				}
				if c.LostErr() != nil || lctx.Err() != nil {
					t.Fatalf("own Close: LostErr %v, context %v", c.LostErr(), lctx.Err())
				}
				return
			}
			select {
			case <-c.Lost():
			case <-time.After(15 * time.Second):
				t.Fatalf("connection not reported lost (status %v, last error %v)", c.NC.Status(), c.NC.LastError())
			}
			err = c.LostErr()
			if !errors.Is(err, bus.ErrConnectionLost) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LostErr = %v, want ErrConnectionLost mentioning %q", err, tt.wantErr)
			}
			<-lctx.Done()
			if cause := context.Cause(lctx); !errors.Is(cause, bus.ErrConnectionLost) {
				t.Fatalf("WithLoss context cause = %v", cause)
			}
		})
	}
}
