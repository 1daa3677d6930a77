package ngctl_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestBusDownLosesNothing: with the bus gone, ng-ctl keeps answering
// offers (ports from its stock, writes pipelined); when the bus comes back
// the calls made meanwhile reach node state.
func TestBusDownLosesNothing(t *testing.T) {
	ns := testutil.StartNATSServer(t)
	bin := testutil.Binaries(t)
	run := testutil.ShortTempDir(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	common := []string{"--nats-url=" + ns.URL(), "--node-id=busdown", "--log-level=debug"}
	portd := testutil.StartProc(t, filepath.Join(bin, "portd"), append(common, "--runtime-dir="+run, "--interface=127.0.0.1", "--port-min=38000", "--port-max=38999"))
	ngctl := testutil.StartProc(t, filepath.Join(bin, "ng-ctl"), append(common, "--listen-ng="+ngAddr))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("portd output:\n%s", portd.Output())
		}
	})
	ngctl.WaitMatch(t, testutil.MatchLine(`msg="port leases ready"`), 20*time.Second)

	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mustOK := func(call string) {
		t.Helper()
		r, err := c.Do(ctx, offerReq(call))
		if res, why := ngclient.Result(r); err != nil || res != "ok" {
			t.Fatalf("offer %s: %s %s %v", call, res, why, err)
		}
	}
	mustOK("before")

	ns.Stop()
	for i := 0; i < 5; i++ {
		mustOK("during-" + strconv.Itoa(i)) // answered from the stock; nothing waits on the bus
	}

	ns.Start()
	conn := testutil.Connect(t, ns.URL(), "busdown", "check")
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	calls := nodestate.Calls(store)
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range []string{"before", "during-0", "during-4"} {
		for {
			_, err := calls.Get(ctx, id)
			if err == nil {
				break
			}
			if !errors.Is(err, nodestate.ErrNotFound) && !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("get %s: %v", id, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("call %s not in node state after the bus came back: %v\n%s", id, err, ngctl.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The node is whole again: an answer for a call made while the bus was down works.
	r, err := c.Do(ctx, answerReq("during-2"))
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("answer after the bus came back: %s %s %v", res, why, err)
	}
}

// TestNoPortdLeavesNoCall: without portd an offer gets "Ran out of ports"
// and leaves no call behind.
func TestNoPortdLeavesNoCall(t *testing.T) {
	srv := testutil.StartNATS(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	ngctl := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "ng-ctl"),
		[]string{"--nats-url=" + srv.URL(), "--node-id=noportd", "--listen-ng=" + ngAddr})
	ngctl.WaitMatch(t, testutil.MatchLine(`portd not answering yet`), 20*time.Second)
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Do(ctx, offerReq("np1"))
	if res, why := ngclient.Result(r); err != nil || res != "error" || why != "Ran out of ports" {
		t.Fatalf("offer without portd: %s %q %v", res, why, err)
	}
	r, err = c.Do(ctx, listReq())
	calls, _ := r.Get("calls")
	if err != nil || len(calls.List) != 0 {
		t.Fatalf("calls after the failed offer: %v %v", calls, err)
	}
}
