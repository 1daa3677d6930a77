package rtpfwd_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestSpoofedPacketsDoNotKeepCallAlive runs a whole node with a 3 s
// no-media timeout: once both parties of a strict-source call stop
// sending, a stranger's packets to one of its ports (dropped by strict
// source) do not count as media, and the call ends by timeout.
func TestSpoofedPacketsDoNotKeepCallAlive(t *testing.T) {
	up, c, _ := testutil.StartLocalNode(t, 42000, 42999, "--timeout=3", "--endpoint-learning=immediate")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl := setupCall(t, ctx, c, "spoofed-1", "strict-source")
	deliver(t, cl.a, cl.dstA, cl.b, testutil.RTPPacket(0xA, 1, "a"))
	deliver(t, cl.b, cl.dstB, cl.a, testutil.RTPPacket(0xB, 2, "b"))
	stranger := testutil.ListenUDP(t)
	query := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str("spoofed-1")})
	start := time.Now()
	for i := 0; ; i++ {
		if _, err := stranger.WriteToUDP(testutil.RTPPacket(0x5, uint16(100+i), "spoof"), cl.dstA); err != nil {
			t.Fatal(err)
		}
		r, err := c.Do(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		if res, why := ngclient.Result(r); res != "ok" {
			t.Logf("the call ended %v after the parties stopped, a stranger sending every 500 ms: %s %s", time.Since(start).Round(100*time.Millisecond), res, why)
			return
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("the call is still up %v after both parties stopped (timeout 3 s): a stranger's dropped packets keep it alive\nquery: %v\nnode:\n%s",
				time.Since(start).Round(100*time.Millisecond), r, up.Output())
		}
		time.Sleep(500 * time.Millisecond)
	}
}
