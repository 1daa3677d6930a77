package rtpfwd_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestRTCPMuxMismatchThroughTheNode runs one whole node (rtpctl up) and
// proves, with real sockets on both sides, that RTCP lands where each
// party's SDP says when only one side muxes (reference §2.3, §3.2;
// rtpengine's __rtcp_mux_logic):
//
//   - demux and accept, the offerer muxes and the answerer does not: A is
//     told a=rtcp:<its RTP port> and a=rtcp-mux, so A's RTCP on A's RTP
//     port goes to B's RTCP port (RTP port + 1, from the port B was told in
//     a=rtcp), and B's RTCP from B's RTCP port reaches A muxed on A's RTP
//     port;
//   - require and offer, the offerer does not mux and the answerer does: B
//     muxes on its RTP port, while A, which never offered mux, keeps
//     separate RTCP (a=rtcp:<RTP port + 1>, no a=rtcp-mux; rtpengine does
//     the same), so A's RTCP from A's RTCP port reaches B on B's RTP port
//     and B's muxed RTCP reaches A on A's RTP port + 1.
//
// Every packet must arrive byte for byte, from the port the receiver was
// told, and never at the other port of the receiver.
func TestRTCPMuxMismatchThroughTheNode(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 42000, 42999)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const mux = "a=rtcp-mux\r\n"
	for _, tc := range []struct {
		flag string
		// aMux, bMux: A offers a=rtcp-mux, B answers with it.
		aMux, bMux bool
		// toBMux: the offer to B carries a=rtcp-mux; toBSingle: on the RTP
		// port (a=rtcp:<RTP port>), not RTP port + 1.
		toBMux, toBSingle bool
		// toAMux: the answer to A accepts mux (a=rtcp:<RTP port> and
		// a=rtcp-mux); otherwise a=rtcp:<RTP port + 1> and no a=rtcp-mux.
		toAMux bool
	}{
		{flag: "demux", aMux: true, bMux: false, toBMux: false, toBSingle: false, toAMux: true},
		{flag: "accept", aMux: true, bMux: false, toBMux: true, toBSingle: false, toAMux: true},
		{flag: "require", aMux: false, bMux: true, toBMux: true, toBSingle: true, toAMux: false},
		{flag: "offer", aMux: false, bMux: true, toBMux: true, toBSingle: false, toAMux: false},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			id := "rtcpmux-" + tc.flag
			aRTP, aRTCP := listenPair(t)
			bRTP, bRTCP := listenPair(t)
			offerSDP, answerSDP := sdpFor(port(aRTP)), sdpFor(port(bRTP))
			if tc.aMux {
				offerSDP += mux
			}
			if tc.bMux {
				answerSDP += mux
			}
			offer := testutil.NGCall("offer", id, "", offerSDP)
			offer.Set("rtcp-mux", bencode.Strs(tc.flag))
			toB := testutil.NGOK(t, ctx, c, offer)
			toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", id, "B", answerSDP))
			t.Logf("offer as B gets it:\n%sanswer as A gets it:\n%s", toB, toA)
			dstA, rtcpA := sdpPorts(t, toA)
			dstB, rtcpB := sdpPorts(t, toB)

			if got := rtcpMuxLine.MatchString(toB); got != tc.toBMux {
				t.Errorf("a=rtcp-mux in the offer to B: %v, want %v", got, tc.toBMux)
			}
			if want := dstB.Port + 1 - b2i(tc.toBSingle); rtcpB.Port != want {
				t.Errorf("a=rtcp in the offer to B is %d, want %d (RTP port %d)", rtcpB.Port, want, dstB.Port)
			}
			if got := rtcpMuxLine.MatchString(toA); got != tc.toAMux {
				t.Errorf("a=rtcp-mux in the answer to A: %v, want %v", got, tc.toAMux)
			}
			if want := dstA.Port + 1 - b2i(tc.toAMux); rtcpA.Port != want {
				t.Errorf("a=rtcp in the answer to A is %d, want %d (RTP port %d)", rtcpA.Port, want, dstA.Port)
			}
			if t.Failed() {
				t.FailNow()
			}

			testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 1)
			testutil.Relay(t, bRTP, dstB, aRTP, 0xB, 1)

			// Where each party sends its RTCP and where it must receive it,
			// as its SDP says: muxed on the RTP port, else the RTCP port.
			aSrc, aDst, aRcv, aWrong := aRTCP, rtcpA, aRTCP, aRTP
			if tc.toAMux {
				aSrc, aDst, aRcv, aWrong = aRTP, dstA, aRTP, aRTCP
			}
			bSrc, bDst, bRcv, bWrong := bRTCP, rtcpB, bRTCP, bRTP
			if tc.bMux {
				bSrc, bDst, bRcv, bWrong = bRTP, dstB, bRTP, bRTCP
			}
			for seq := uint16(1); seq <= 3; seq++ {
				if from := deliver(t, aSrc, aDst, bRcv, rtcpRR(0xA, seq)); from.String() != bDst.String() {
					t.Errorf("A's RTCP reached B from %v, not from %v (where B sends its RTCP)", from, bDst)
				}
				if from := deliver(t, bSrc, bDst, aRcv, rtcpRR(0xB, seq)); from.String() != aDst.String() {
					t.Errorf("B's RTCP reached A from %v, not from %v (where A sends its RTCP)", from, aDst)
				}
			}
			never(t, bWrong, isPacket(rtcpRR(0xA, 3)), "A's RTCP reached B's other port")
			never(t, aWrong, isPacket(rtcpRR(0xB, 3)), "B's RTCP reached A's other port")
			// RTP still goes RTP port to RTP port.
			testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 2)
			testutil.Relay(t, bRTP, dstB, aRTP, 0xB, 2)
			neverRTP(t, []*net.UDPConn{aRTCP, bRTCP})
		})
	}
}

// neverRTP fails if RTP of the test's parties reached one of the conns.
func neverRTP(t *testing.T, conns []*net.UDPConn) {
	t.Helper()
	for _, c := range conns {
		never(t, c, func(p []byte) bool { return isRTP(0xA, 2)(p) || isRTP(0xB, 2)(p) }, "RTP reached an RTCP port")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
