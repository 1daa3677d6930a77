package ngctl_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

var portdPidRe = regexp.MustCompile(`(?m)^  portd\s+running, pid (\d+)$`)

// TestWaitingOffersDoNotStallOthers: with portd stopped and ng-ctl's stock
// empty, every offer waits for ports (the stock's refill, then a lease of
// one, each up to the stock's timeout). A burst of such offers, more than
// ng-ctl runs at once, must not keep a ping or a delete from being
// answered meanwhile: they are answered while the offers still wait (here:
// before the stock's first wait could have ended, well under its 2 s).
func TestWaitingOffersDoNotStallOthers(t *testing.T) {
	// Two pairs in the range: one offer takes them both, and the stock is
	// empty after it.
	n := startNode(t, 33300, "--port-max=33303", "--port-quarantine=0", "--delete-delay=0")
	m := n.up.WaitMatch(t, portdPidRe, 10*time.Second)
	portdPID, _ := strconv.Atoi(m[1])
	c, err := ngclient.Dial(n.ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetRetransmit(0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r, err := c.Do(ctx, offerReq("first")); err != nil {
		t.Fatal(err)
	} else if res, why := ngclient.Result(r); res != "ok" {
		t.Fatalf("first offer: %s %s", res, why)
	}
	p, err := os.FindProcess(portdPID)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Signal(syscall.SIGCONT) }()

	// 100 offers at once (ng-ctl runs 64 requests at a time).
	const burst = 100
	var wg sync.WaitGroup
	results := make(chan string, burst)
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Do(ctx, offerReq(fmt.Sprintf("burst-%d", i)))
			res, why := ngclient.Result(r)
			results <- fmt.Sprintf("%s %s %v", res, why, err)
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the burst reach ng-ctl first

	for _, tc := range []struct {
		name string
		req  bencode.Value
		want string
	}{
		{"ping", bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("ping")}), "pong"},
		{"delete", bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")},
			bencode.Pair{Key: "call-id", Value: bencode.Str("first")}, bencode.Pair{Key: "from-tag", Value: bencode.Str("a")}), "ok"},
	} {
		qctx, qcancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		r, err := c.Do(qctx, tc.req)
		qcancel()
		if res, why := ngclient.Result(r); err != nil || res != tc.want {
			t.Errorf("%s while offers wait for ports: %q %q %v, want %q at once", tc.name, res, why, err, tc.want)
		}
	}
	_ = p.Signal(syscall.SIGCONT)
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	t.Logf("offers of the burst: %v", counts)
}
