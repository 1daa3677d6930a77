package nodetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestTranscodeSurvivesWorkerRestart: rtp-fwd killed in the middle of a
// PCMU→Opus call is started again by its supervisor, rebuilds the
// transcoder from the call record, and the callee gets Opus again under
// the same SSRC.
func TestTranscodeSurvivesWorkerRestart(t *testing.T) {
	const node = "tcrestart"
	up, c, _ := testutil.StartLocalNode(t, 52600, 52699, "--delete-delay=0", "--node-id="+node)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	natsURL := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(up.Output())
	conn := testutil.Connect(t, natsURL, node, "tcrestart-test")

	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	offer := testutil.NGCall("offer", "tr-1", "", fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=sendrecv\r\n", a.LocalAddr().(*net.UDPAddr).Port))
	offer.Set("codec", bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.Strs("opus")}))
	testutil.NGOK(t, ctx, c, offer)
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "tr-1", "B", fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=sendrecv\r\n", b.LocalAddr().(*net.UDPAddr).Port)))
	to := testutil.SDPMediaAddr(t, toA)
	got := make(chan []byte, 1024)
	go readAll(b, got)
	payloads, _ := sweepPCMU(t, 50)
	seq := uint16(0)
	// send sends n packets 20 ms apart and counts the Opus ones the
	// callee gets under the caller's mapped SSRC.
	send := func(n int) int {
		for range n {
			pkt := rtppacket.RTP{PayloadType: 0, Seq: seq, Timestamp: uint32(160 * int(seq)), SSRC: 0x77}.Packet(payloads[int(seq)%len(payloads)])
			seq++
			if _, err := a.WriteToUDP(pkt, to); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		opus := 0
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
			select {
			case p := <-got:
				if p[1]&0x7f == 96 && binary.BigEndian.Uint32(p[8:12]) == codec.SSRC(0x77) {
					opus++
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
		return opus
	}
	if n := send(25); n != 25 {
		t.Fatalf("before the restart the callee got %d Opus packets of 25", n)
	}
	pid := ping(ctx, conn, "rtp-fwd")
	if pid == 0 {
		t.Fatal("rtp-fwd does not answer its ping")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The supervisor starts a new one; it takes its sockets back from
	// portd and its streams from the record.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if p := ping(ctx, conn, "rtp-fwd"); p != 0 && p != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rtp-fwd not back after 20 s")
		}
	}
	ok := 0
	for range 20 { // until the worker has the call again (bounded)
		if ok = send(10); ok == 10 {
			break
		}
	}
	if ok != 10 {
		t.Fatalf("after the restart the callee got %d Opus packets of 10", ok)
	}
	if n := send(25); n != 25 {
		t.Fatalf("after the restart the callee got %d Opus packets of 25", n)
	}
}
