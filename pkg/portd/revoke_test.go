package portd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngctl/portstock"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestRestoreRevokesStockedLease: a call restored on ports that sit leased
// in ng-ctl's stock (portd.bind, or a call record naming them without a
// generation) takes them; portd revokes the lease and the stock never
// hands the pair out again.
func TestRestoreRevokesStockedLease(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=37700", "--port-max=37799")
	cases := []struct {
		name    string
		restore func(t *testing.T, call string, p portdapi.Pair)
	}{
		{"bind", func(t *testing.T, call string, p portdapi.Pair) {
			r, err := bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: call, Pairs: []portdapi.Pair{{RTP: p.RTP, RTCP: p.RTCP}}})
			if err != nil || len(r.Pairs) != 1 || r.Pairs[0].RTP != p.RTP || r.Pairs[0].Gen != p.Gen {
				t.Fatalf("bind %s: %+v %v", p.RTP, r, err)
			}
		}},
		{"call record without generation", func(t *testing.T, call string, p portdapi.Pair) {
			n.putCall(call, p)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const batch = 8
			st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 2, Batch: batch, Log: testutil.Logger(t)})
			if err := st.Init(n.ctx()); err != nil {
				t.Fatal(err)
			}
			if err := st.Follow(n.conn); err != nil {
				t.Fatal(err)
			}
			if err := st.Warm(n.ctx(), "", 4, false); err != nil {
				t.Fatal(err)
			}
			// Take one pair and put it back: a pair known to be in stock.
			victim, err := st.Take(n.ctx(), "", 4, false)
			if err != nil {
				t.Fatal(err)
			}
			st.Put(victim)
			if l := st.Level("", 4, false); l != batch {
				t.Fatalf("level %d, want %d", l, batch)
			}

			tc.restore(t, "restored-"+tc.name, victim)

			deadline := time.Now().Add(10 * time.Second)
			for st.Level("", 4, false) != batch-1 {
				if time.Now().After(deadline) {
					t.Fatalf("stock level %d: the revoked pair is still there\n%s", st.Level("", 4, false), n.portd.Output())
				}
				time.Sleep(10 * time.Millisecond)
			}
			// Everything left in stock, and what the stock leases after, is
			// some other pair.
			for i := 0; i < 2*batch; i++ {
				p, err := st.Take(n.ctx(), "", 4, false)
				if err != nil {
					t.Fatal(err)
				}
				if p.RTP == victim.RTP {
					t.Fatalf("take %d handed out the revoked pair %s", i, p.RTP)
				}
			}
			// The pair is the restored call's: binding it for another fails.
			_, err = bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: "probe", Pairs: []portdapi.Pair{{RTP: victim.RTP, RTCP: victim.RTCP}}})
			if !bus.IsCode(err, bus.CodeConflict) || !strings.Contains(err.Error(), "restored-"+tc.name) {
				t.Fatalf("bind of the restored call's pair for another call: %v", err)
			}
			cancel()
			st.Wait()
			if _, err := bus.Request(n.ctx(), n.conn, portdapi.ReturnEndpoint, portdapi.ReturnRequest{Holder: "ng-ctl", All: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
