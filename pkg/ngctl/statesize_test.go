package ngctl_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

// TestNodeStateFullRefusesNewCalls: with node state over --state-max-bytes
// a new call's offer is refused with an ng error that names the limit,
// while a call in progress is still answered and deleted; once ended
// calls' delete markers are purged, new calls are taken again. Before the
// guard nothing bounded node state but the bus's store, which then
// refused the writes of every call, old and new, behind answers of "ok".
func TestNodeStateFullRefusesNewCalls(t *testing.T) {
	n := startNode(t, 48000, "--state-max-bytes=16384", "--delete-delay=0", "--state-purge-age=1s", "--state-purge-interval=1s")
	c, err := ngclient.Dial(n.ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var made []string
	var reason string
	for i := 0; i < 300 && reason == ""; i++ {
		id := fmt.Sprintf("fill-%d", i)
		r, err := c.Do(ctx, offerReq(id))
		if err != nil {
			t.Fatal(err)
		}
		switch res, why := ngclient.Result(r); res {
		case "ok":
			made = append(made, id)
			time.Sleep(50 * time.Millisecond)
		case "error":
			reason = why
		default:
			t.Fatalf("offer %s: result %q %q", id, res, why)
		}
	}
	if !strings.Contains(reason, "Node state full") || !strings.Contains(reason, "--state-max-bytes") {
		t.Fatalf("after %d calls no offer was refused for node state (last reason %q)", len(made), reason)
	}
	t.Logf("refused after %d calls: %s", len(made), reason)
	if len(made) == 0 {
		t.Fatal("no call was taken before the limit")
	}
	// A call in progress goes on: answered and deleted.
	if r, err := c.Do(ctx, answerReq(made[0])); err != nil || mustResult(r) != "ok" {
		t.Fatalf("answer of a call in progress while full: %v %v", r, err)
	}
	for _, id := range made {
		del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
		if r, err := c.Do(ctx, del); err != nil || mustResult(r) != "ok" {
			t.Fatalf("delete %s while full: %v %v", id, r, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.Do(ctx, offerReq("after"))
		if err == nil && mustResult(r) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new call taken 30 s after every call ended: %v %v\n%s", r, err, n.up.Output())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out := n.up.Output(); !strings.Contains(out, "node state full") || !strings.Contains(out, "node state below its limit again") {
		t.Errorf("the log does not say when node state filled and made room again:\n%s", out)
	}
}

func mustResult(r bencode.Value) string {
	res, _ := ngclient.Result(r)
	return res
}
