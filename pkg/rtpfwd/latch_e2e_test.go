package rtpfwd_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// call is one call set up through ng between two test sockets.
type call struct {
	a, b       *net.UDPConn
	dstA, dstB *net.UDPAddr // where A and B send
}

func setupCall(t *testing.T, ctx context.Context, c *ngclient.Client, id string, flags ...string) call {
	t.Helper()
	cl := call{a: testutil.ListenUDP(t), b: testutil.ListenUDP(t)}
	offer := testutil.NGCall("offer", id, "", sdpFor(port(cl.a)))
	answer := testutil.NGCall("answer", id, "B", sdpFor(port(cl.b)))
	if len(flags) > 0 {
		offer.Set("flags", bencode.Strs(flags...))
		answer.Set("flags", bencode.Strs(flags...))
	}
	toB := testutil.NGOK(t, ctx, c, offer)
	toA := testutil.NGOK(t, ctx, c, answer)
	cl.dstA = udpAddr(mPort.FindStringSubmatch(toA)[1])
	cl.dstB = udpAddr(mPort.FindStringSubmatch(toB)[1])
	return cl
}

// TestStrictSourceAndFloodThroughTheNode: strict-source given over ng is
// enforced by rtp-fwd once the source is confirmed, and a flooded call does
// not stop another call's packets.
func TestStrictSourceAndFloodThroughTheNode(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 32000, 32999)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	strict := setupCall(t, ctx, c, "strict1", "strict-source")
	other := setupCall(t, ctx, c, "other1")
	testutil.Relay(t, strict.a, strict.dstA, strict.b, 1, 1)
	testutil.Relay(t, strict.b, strict.dstB, strict.a, 2, 1)

	// After the learning window (3 s after the last signalling) the first
	// packet confirms A's source; then a stranger's packets are dropped.
	time.Sleep(3500 * time.Millisecond)
	testutil.Relay(t, strict.a, strict.dstA, strict.b, 1, 2)
	stranger := testutil.ListenUDP(t)
	for i := 0; i < 5; i++ {
		if _, err := stranger.WriteToUDP(testutil.RTPPacket(9, uint16(100+i), "stranger"), strict.dstA); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 2048)
	_ = strict.b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := strict.b.ReadFromUDP(buf); err == nil {
		t.Fatalf("a stranger's packet was forwarded under strict-source: %x", buf[:n])
	}
	testutil.Relay(t, strict.a, strict.dstA, strict.b, 1, 3) // the real source still passes

	// A flood on one call (far above the 30k packets/s cap of a stream)
	// while the other call's packets all arrive.
	flood := testutil.RTPPacket(3, 1, "flood")
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < 256; i++ {
				_, _ = strict.a.WriteToUDP(flood, strict.dstA)
				n++
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the flood is under way
	for seq := uint16(1); seq <= 20; seq++ {
		testutil.Relay(t, other.a, other.dstA, other.b, 5, seq)
		testutil.Relay(t, other.b, other.dstB, other.a, 6, seq)
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	sent := <-done
	if sent < 5000 {
		t.Fatalf("the flood sent only %d packets: nothing was tested", sent)
	}
	t.Logf("flooded one call with %d packets while the other relayed 40, one by one", sent)
}
