package nodetest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestOSRTPRejectFirstPacket: an OSRTP offer (RTP/AVP with a=crypto)
// answered without keys leaves both parties plain, and the offerer's
// first packet, sent once right after the answer's reply, arrives (rtp-fwd
// may get the answer after the packet: the offerer's SRTP is undecided
// until then, so the packet waits instead of failing as SRTP). Then the
// answerer's first packet goes the other way.
func TestOSRTPRejectFirstPacket(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 50900, 50999, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		id := "osrtp-reject-" + string(rune('a'+i))
		a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
		offer := strings.Replace(testutil.AudioSDP(a), "RTP/AVP 0\r\n",
			"RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa\r\n", 1)
		toB := testutil.NGOK(t, ctx, c, ngDict("offer", id, "A", "", offer))
		if !strings.Contains(toB, "RTP/AVP 0") || !strings.Contains(toB, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 ") {
			t.Fatalf("the offer to B is not OSRTP:\n%s", toB)
		}
		toA := testutil.NGOK(t, ctx, c, ngDict("answer", id, "A", "B", testutil.AudioSDP(b)))
		if strings.Contains(toA, "a=crypto") {
			t.Fatalf("A was answered with keys:\n%s", toA)
		}
		once(t, a, testutil.SDPMediaAddr(t, toA), b, 0x1234, 1000)
		once(t, b, testutil.SDPMediaAddr(t, toB), a, 0x3456, 2000)
	}
}

// once sends one RTP packet from src to dst and expects it at rcv, byte
// for byte, within a second.
func once(t *testing.T, src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, ssrc uint32, seq uint16) {
	t.Helper()
	want := testutil.RTPPacket(ssrc, seq, "first packet")
	if _, err := src.WriteToUDP(want, dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = rcv.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := rcv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != string(want) {
		t.Fatalf("packet %d from %s: got %x (%v)", seq, src.LocalAddr(), buf[:n], err)
	}
}
