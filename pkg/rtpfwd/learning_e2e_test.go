package rtpfwd_test

import (
	"context"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestHeuristicLearningThroughTheNode runs a node with rtpengine's
// --endpoint-learning=heuristic and shows, with real sockets, that in the
// learning window the source that matches the SDP exactly wins over a
// source with only the same address (a stranger sending before and after
// A), and that the packet which ends the window confirms the best-ranked
// source, not its own (delayed learning would follow the last packet).
func TestHeuristicLearningThroughTheNode(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 41000, 41999, "--endpoint-learning=heuristic")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	signalled := time.Now()
	cl := setupCall(t, ctx, c, "heuristic-1")
	stranger := testutil.ListenUDP(t) // 127.0.0.1 like A, another port
	deliver(t, stranger, cl.dstA, cl.b, testutil.RTPPacket(0x5, 1, "stranger"))
	deliver(t, cl.a, cl.dstA, cl.b, testutil.RTPPacket(0xA, 2, "a"))
	deliver(t, stranger, cl.dstA, cl.b, testutil.RTPPacket(0x5, 3, "stranger"))
	if d := time.Since(signalled); d > learnWindow-500*time.Millisecond {
		t.Fatalf("inconclusive: the packets took %v, up to the end of the learning window", d)
	}
	deliver(t, cl.b, cl.dstB, cl.a, testutil.RTPPacket(0xB, 4, "to-A"))
	never(t, stranger, isRTP(0xB, 4), "in the window, B's packet went to the stranger")

	// After the window the stranger's packet confirms A (ranked first).
	time.Sleep(time.Until(signalled.Add(learnWindow + 1500*time.Millisecond)))
	deliver(t, stranger, cl.dstA, cl.b, testutil.RTPPacket(0x5, 5, "stranger"))
	deliver(t, cl.b, cl.dstB, cl.a, testutil.RTPPacket(0xB, 6, "to-A"))
	never(t, stranger, isRTP(0xB, 6), "after the window, B's packet went to the stranger")
}
