package nodetest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestMediaReadyAtReply: once ng-ctl has answered an offer or an answer,
// a packet arriving at a port it advertised is forwarded, whatever the
// setup load. 1000 calls, eight clients setting them up at once; right
// after the offer's reply the callee sends its first RTP packet to the
// port the offer advertised, right after the answer's reply the caller
// sends its first to the port the answer advertised, and each must arrive
// at the other party (waited for up to 2 s, never sent again).
func TestMediaReadyAtReply(t *testing.T) {
	const clients, perClient = 8, 125
	_, _, ngAddr := testutil.StartLocalNode(t, 46000, 47999, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var lost []string
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ngclient.Dial(ngAddr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
			for i := range perClient {
				id := fmt.Sprintf("ready-%d-%d", w, i)
				ssrc := uint32(w<<16 | i<<1)
				miss := readyCall(ctx, t, c, id, a, b, ssrc)
				if miss != "" {
					mu.Lock()
					lost = append(lost, id+": "+miss)
					mu.Unlock()
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(lost) > 0 {
		t.Errorf("%d of %d first packets lost, first: %v", len(lost), 2*clients*perClient, lost[:min(len(lost), 5)])
	}
}

// readyCall makes one call between sockets a (caller) and b (callee),
// sends each party's first packet right after the reply that told it
// where to send, checks that both arrive and deletes the call. It returns
// what went missing ("" if nothing).
func readyCall(ctx context.Context, t *testing.T, c *ngclient.Client, id string, a, b *net.UDPConn, ssrc uint32) string {
	offer := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", id, "", testutil.AudioSDP(a)))
	if _, err := b.WriteToUDP(testutil.RTPPacket(ssrc, 1, "from B"), testutil.SDPMediaAddr(t, offer)); err != nil {
		t.Fatal(err)
	}
	answer := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", id, "B", testutil.AudioSDP(b)))
	if _, err := a.WriteToUDP(testutil.RTPPacket(ssrc+1, 1, "from A"), testutil.SDPMediaAddr(t, answer)); err != nil {
		t.Fatal(err)
	}
	var miss string
	if !awaitSSRC(a, ssrc) {
		miss += "callee's packet sent after the offer's reply; "
	}
	if !awaitSSRC(b, ssrc+1) {
		miss += "caller's packet sent after the answer's reply"
	}
	del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
	testutil.NGOK(t, ctx, c, del)
	return miss
}

// awaitSSRC reads c until a packet of ssrc arrives (true) or 2 s pass;
// packets of other SSRCs (an earlier call's) are skipped.
func awaitSSRC(c *net.UDPConn, ssrc uint32) bool {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(2 * time.Second)
	_ = c.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return false
		}
		if h, _, ok := rtppacket.Read(buf[:n]); ok && h.SSRC == ssrc {
			return true
		}
	}
	return false
}
