package rtpfwd_test

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// learnWindow is rtp-fwd's learning window (fwd.Config.LearnWindow's
// default): delayed learning lasts this long after the last signalling.
const learnWindow = 3 * time.Second

// TestLatchingFlagsAndRTCPThroughTheNode runs one whole node (rtpctl up) and
// proves, with real sockets on both sides, what rtp-fwd does with the
// latching flags given over ng and with RTCP (reference §3.1, §3.2):
//
//   - in the learning window: without flags (and with strict-source, which
//     only acts after confirmation) a packet from a new source moves where
//     the other side's packets go; with asymmetric they still go to the
//     signalled (SDP) endpoint although the new source's packets are
//     forwarded;
//   - after confirmation: a new source's packets are forwarded (dropped with
//     strict-source), but only media-handover moves where the other side's
//     packets go; without it (the default), with strict-source and with
//     asymmetric they keep going to the confirmed or signalled endpoint;
//   - RTCP on separate ports (RTP port + 1, no a=rtcp in the offer) goes
//     from RTCP port to RTCP port, and with rtcp-mux on both sides RTCP on
//     the RTP port goes to the other side's RTP port.
//
// Every packet must arrive byte for byte (payload, SSRC, sequence number).
// The calls that need a confirmed source are set up first; the other
// subtests run while their learning window passes.
func TestLatchingFlagsAndRTCPThroughTheNode(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 40000, 40999)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// A packet from a second socket of A ("the stranger", same address,
	// another port) after A's source is confirmed. The flags are given in
	// the offer and the answer, so they cover both parties.
	confirmed := []struct {
		name  string
		flags []string
		// forwarded: the stranger's packet reaches B.
		forwarded bool
		// moves: B's next packet goes to the stranger instead of A.
		moves bool
	}{
		{name: "default", forwarded: true, moves: false},
		{name: "strict-source", flags: []string{"strict-source"}, forwarded: false, moves: false},
		{name: "media-handover", flags: []string{"media-handover"}, forwarded: true, moves: true},
		{name: "asymmetric", flags: []string{"asymmetric"}, forwarded: true, moves: false},
	}
	calls := make([]call, len(confirmed))
	for i, tc := range confirmed {
		calls[i] = setupCall(t, ctx, c, "flags-confirmed-"+tc.name, tc.flags...)
	}
	windowOver := time.Now().Add(learnWindow + 500*time.Millisecond)
	for _, cl := range calls { // the calls forward; A's source is learned, not confirmed
		testutil.Relay(t, cl.a, cl.dstA, cl.b, 0xA, 1)
		testutil.Relay(t, cl.b, cl.dstB, cl.a, 0xB, 1)
	}

	t.Run("learning window", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			flags []string
			moves bool // B's packets go to the stranger
		}{
			{name: "default", moves: true},
			{name: "strict-source", flags: []string{"strict-source"}, moves: true},
			{name: "asymmetric", flags: []string{"asymmetric"}, moves: false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				signalled := time.Now()
				cl := setupCall(t, ctx, c, "flags-window-"+tc.name, tc.flags...)
				stranger := testutil.ListenUDP(t)
				// A itself never sends: only the stranger does.
				testutil.Relay(t, stranger, cl.dstA, cl.b, 0x5, 1)
				if d := time.Since(signalled); d > learnWindow-500*time.Millisecond {
					t.Fatalf("inconclusive: the first packet got through %v after the signalling, at the end of the learning window", d)
				}
				to, notTo := cl.a, stranger
				if tc.moves {
					to, notTo = stranger, cl.a
				}
				if from := deliver(t, cl.b, cl.dstB, to, testutil.RTPPacket(0xB, 2, "to-A")); from.String() != cl.dstA.String() {
					t.Errorf("B's packet came from %v, not from %v (the port A was told)", from, cl.dstA)
				}
				never(t, notTo, isRTP(0xB, 2), "B's packet went to the wrong socket")
				// A's own packet takes the endpoint back (asymmetric: it
				// never left A's signalled one).
				testutil.Relay(t, cl.a, cl.dstA, cl.b, 0xA, 3)
				testutil.Relay(t, cl.b, cl.dstB, cl.a, 0xB, 4)
				never(t, stranger, isRTP(0xB, 4), "B's packet still went to the stranger after A sent")
			})
		}
	})

	t.Run("RTCP on separate ports", func(t *testing.T) {
		aRTP, aRTCP := listenPair(t)
		bRTP, bRTCP := listenPair(t)
		toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", "flags-rtcp", "", sdpFor(port(aRTP))))
		toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "flags-rtcp", "B", sdpFor(port(bRTP))))
		t.Logf("offer as B gets it:\n%sanswer as A gets it:\n%s", toB, toA)
		dstA, rtcpA := sdpPorts(t, toA)
		dstB, rtcpB := sdpPorts(t, toB)
		for _, s := range []string{toA, toB} {
			if rtcpMuxLine.MatchString(s) {
				t.Errorf("a=rtcp-mux although nobody offered it:\n%s", s)
			}
		}
		if rtcpA.Port != dstA.Port+1 || rtcpB.Port != dstB.Port+1 {
			t.Fatalf("a=rtcp is not the RTP port + 1: A %v/%v, B %v/%v", dstA, rtcpA, dstB, rtcpB)
		}

		testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 1)
		testutil.Relay(t, bRTP, dstB, aRTP, 0xB, 1)
		never(t, bRTCP, isRTP(0xA, 1), "A's RTP reached B's RTCP port")

		for seq := uint16(1); seq <= 3; seq++ {
			rr := rtcpRR(0xA, seq)
			if from := deliver(t, aRTCP, rtcpA, bRTCP, rr); from.String() != rtcpB.String() {
				t.Errorf("A's RTCP reached B from %v, not from %v (B's a=rtcp)", from, rtcpB)
			}
			rr = rtcpRR(0xB, seq)
			if from := deliver(t, bRTCP, rtcpB, aRTCP, rr); from.String() != rtcpA.String() {
				t.Errorf("B's RTCP reached A from %v, not from %v (A's a=rtcp)", from, rtcpA)
			}
		}
		never(t, bRTP, isPacket(rtcpRR(0xA, 3)), "A's RTCP reached B's RTP port")
		never(t, aRTP, isPacket(rtcpRR(0xB, 3)), "B's RTCP reached A's RTP port")
		testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 2) // RTP still goes to RTP
	})

	t.Run("rtcp-mux on both sides", func(t *testing.T) {
		// Each side also listens on RTP port + 1, where nothing may arrive.
		aRTP, aRTCP := listenPair(t)
		bRTP, bRTCP := listenPair(t)
		const mux = "a=rtcp-mux\r\n"
		toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", "flags-mux", "", sdpFor(port(aRTP))+mux))
		toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "flags-mux", "B", sdpFor(port(bRTP))+mux))
		t.Logf("offer as B gets it:\n%sanswer as A gets it:\n%s", toB, toA)
		dstA, rtcpA := sdpPorts(t, toA)
		dstB, _ := sdpPorts(t, toB)
		// B is offered mux onward (RFC 5761 style, with a separate a=rtcp
		// port as fallback); A is told that mux was accepted.
		if !rtcpMuxLine.MatchString(toB) {
			t.Errorf("the offer to B does not offer rtcp-mux:\n%s", toB)
		}
		if !rtcpMuxLine.MatchString(toA) || rtcpA.Port != dstA.Port {
			t.Errorf("the answer to A does not accept rtcp-mux on the RTP port:\n%s", toA)
		}

		testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 1)
		testutil.Relay(t, bRTP, dstB, aRTP, 0xB, 1)
		for seq := uint16(1); seq <= 3; seq++ {
			if from := deliver(t, aRTP, dstA, bRTP, rtcpRR(0xA, seq)); from.String() != dstB.String() {
				t.Errorf("A's RTCP reached B from %v, not from %v (B's RTP port)", from, dstB)
			}
			if from := deliver(t, bRTP, dstB, aRTP, rtcpRR(0xB, seq)); from.String() != dstA.String() {
				t.Errorf("B's RTCP reached A from %v, not from %v (A's RTP port)", from, dstA)
			}
		}
		never(t, bRTCP, isPacket(rtcpRR(0xA, 3)), "A's muxed RTCP reached B's RTP port + 1")
		never(t, aRTCP, isPacket(rtcpRR(0xB, 3)), "B's muxed RTCP reached A's RTP port + 1")
		testutil.Relay(t, aRTP, dstA, bRTP, 0xA, 2)
		testutil.Relay(t, bRTP, dstB, aRTP, 0xB, 2)
	})

	t.Run("after confirmation", func(t *testing.T) {
		time.Sleep(time.Until(windowOver))
		for i, tc := range confirmed {
			cl := calls[i]
			t.Run(tc.name, func(t *testing.T) {
				// A's first packet after the window confirms A's source.
				testutil.Relay(t, cl.a, cl.dstA, cl.b, 0xA, 10)
				stranger := testutil.ListenUDP(t)
				if tc.forwarded {
					testutil.Relay(t, stranger, cl.dstA, cl.b, 0x5, 11)
				} else {
					for range 5 {
						if _, err := stranger.WriteToUDP(testutil.RTPPacket(0x5, 11, "stranger"), cl.dstA); err != nil {
							t.Fatal(err)
						}
					}
					never(t, cl.b, isRTP(0x5, 11), "the stranger's packet was forwarded")
				}
				to, notTo := cl.a, stranger
				if tc.moves {
					to, notTo = stranger, cl.a
				}
				if from := deliver(t, cl.b, cl.dstB, to, testutil.RTPPacket(0xB, 12, "to-A")); from.String() != cl.dstA.String() {
					t.Errorf("B's packet came from %v, not from %v (the port A was told)", from, cl.dstA)
				}
				never(t, notTo, isRTP(0xB, 12), "B's packet went to the wrong socket")
				// A sends again: with media-handover it takes the endpoint
				// back; otherwise nothing changes.
				testutil.Relay(t, cl.a, cl.dstA, cl.b, 0xA, 13)
				testutil.Relay(t, cl.b, cl.dstB, cl.a, 0xB, 14)
				never(t, stranger, isRTP(0xB, 14), "B's packet went to the stranger after A sent again")
			})
		}
	})
}

var (
	rtcpLine    = regexp.MustCompile(`(?m)^a=rtcp:(\d+)\r?$`)
	rtcpMuxLine = regexp.MustCompile(`(?m)^a=rtcp-mux\r?$`)
)

// sdpPorts returns where a party sends RTP and RTCP according to our
// rewritten SDP: the m= port and the a=rtcp port, both on 127.0.0.1.
func sdpPorts(t *testing.T, sdp string) (rtp, rtcp *net.UDPAddr) {
	t.Helper()
	m, r := mPort.FindStringSubmatch(sdp), rtcpLine.FindStringSubmatch(sdp)
	if m == nil || r == nil {
		t.Fatalf("no m=audio port or no a=rtcp line in:\n%s", sdp)
	}
	return udpAddr(m[1]), udpAddr(r[1])
}

// listenPair opens two sockets on consecutive ports of 127.0.0.1: a party's
// RTP port and RTP port + 1, where RTCP goes when the SDP has no a=rtcp.
func listenPair(t *testing.T) (rtp, rtcp *net.UDPConn) {
	t.Helper()
	for range 50 {
		r := testutil.ListenUDP(t)
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port(r) + 1})
		if err != nil {
			continue // port + 1 is taken; try another
		}
		t.Cleanup(func() { _ = c.Close() })
		return r, c
	}
	t.Fatal("no two consecutive free UDP ports on 127.0.0.1")
	return nil, nil
}

// rtcpRR is a minimal RTCP receiver report (RFC 3550 §6.4.2, 32 bytes),
// built with rtppacket: the sender's SSRC and one report block whose
// extended highest sequence number is seq.
func rtcpRR(ssrc uint32, seq uint16) []byte {
	return rtppacket.ReceiverReport(ssrc, rtppacket.Report{
		SSRC: ^ssrc, FractionLost: 0x10, LastSequenceNumber: uint32(seq), Jitter: 0x12345678})
}

// deliver sends pkt from src to dst until it arrives unchanged at rcv (at
// most 50 sends, 100 ms apart) and returns the address it came from.
func deliver(t *testing.T, src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, pkt []byte) *net.UDPAddr {
	t.Helper()
	buf := make([]byte, 2048)
	for range 50 {
		if _, err := src.WriteToUDP(pkt, dst); err != nil {
			t.Fatal(err)
		}
		_ = rcv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for { // until the deadline; other packets are skipped
			n, from, err := rcv.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if bytes.Equal(buf[:n], pkt) {
				return from
			}
		}
	}
	t.Fatalf("%x sent from %s to %s never reached %s", pkt, src.LocalAddr(), dst, rcv.LocalAddr())
	return nil
}

// never fails the test if a packet that match accepts arrives at rcv
// within 250 ms.
func never(t *testing.T, rcv *net.UDPConn, match func([]byte) bool, what string) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = rcv.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	for {
		n, from, err := rcv.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if match(buf[:n]) {
			t.Fatalf("%s: %s got %x from %s", what, rcv.LocalAddr(), buf[:n], from)
		}
	}
}

// isRTP matches RTP packets with the given SSRC and sequence number.
func isRTP(ssrc uint32, seq uint16) func([]byte) bool {
	return func(p []byte) bool {
		h, _, ok := rtppacket.Read(p)
		return ok && h.Seq == seq && h.SSRC == ssrc
	}
}

// isPacket matches exactly pkt.
func isPacket(pkt []byte) func([]byte) bool {
	return func(p []byte) bool { return bytes.Equal(p, pkt) }
}
