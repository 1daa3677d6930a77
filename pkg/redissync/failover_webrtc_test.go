package redissync_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestFailoverWebRTC: a WebRTC call (pion/webrtc: ICE, DTLS-SRTP) to a
// plain RTP party goes through node A; A dies and the service address
// moves to standby node B, which restored the call from Redis with the
// ICE credentials, the pair ICE nominated and the keys of the DTLS
// handshake A made: media flows both ways again through B with no new
// handshake (the WebRTC party's connection never leaves "connected").
func TestFailoverWebRTC(t *testing.T) {
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, ServiceOnAll: true, Redis: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := tb.Service.String()
	ngArgs := []string{"--listen-ng=" + svc + ":2223", "--active-switchover"}
	a := startNodeArgs(t, tb, 0, 1, ngArgs, 2)
	b := startNodeArgs(t, tb, 1, 2, ngArgs, 1)
	dumpOnFailure(t, a, b)
	ng := tb.NG(t, tb.Callers, svc+":2223")
	ng.SetRetransmit(200 * time.Millisecond)

	// The WebRTC party: pion/webrtc on one socket in the callers'
	// namespace (its ICE, DTLS and SRTP all go through it).
	wconn := tb.UDP(t, tb.Callers, tb.CallerAddrs[0].String()+":0")
	var se webrtc.SettingEngine
	se.SetICEUDPMux(ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: wconn}))
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "failover")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 64)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case got <- p.Payload:
			default:
			}
		}
	})
	connected := make(chan struct{})
	left := make(chan webrtc.PeerConnectionState, 4)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			close(connected)
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
			left <- s
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered

	sip := tb.UDP(t, tb.Callers, tb.CallerAddrs[1].String()+":0")
	toB := ngOK(t, ctx, ng, "offer", pc.LocalDescription().SDP,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
		bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
		bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("demux")})
	bSDP := fmt.Sprintf("v=0\r\no=- 2 2 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio %[2]d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
		tb.CallerAddrs[1], sip.LocalAddr().(*net.UDPAddr).Port)
	toA := ngOK(t, ctx, ng, "answer", bSDP)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: toA}); err != nil {
		t.Fatalf("pion/webrtc refuses the answer: %v", err)
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("ICE and DTLS did not connect: %s", pc.ConnectionState())
	}
	toRtpkit := &net.UDPAddr{IP: net.IP(tb.Service.AsSlice()), Port: mPort(t, toB)}
	mediaBothWays(t, track, sip, toRtpkit, got, 1, "through A")

	// B holds the call with the DTLS keys and the ICE pair (A's workers →
	// A's record → Redis → B).
	eventually(t, "the DTLS keys and the ICE pair in B's record", 20*time.Second, func() error {
		c, ok := b.list(t)["webrtc-failover"]
		if !ok {
			return fmt.Errorf("no call on B")
		}
		for _, leg := range c.Legs {
			for _, m := range leg.Medias {
				if m.DTLS != nil && m.DTLS.KeyIn != "" && m.DTLS.KeyOut != "" && m.ICE != nil && m.ICE.Selected.IsValid() {
					return nil
				}
			}
		}
		return fmt.Errorf("B's record has no DTLS keys or ICE pair yet")
	})

	_ = a.proc.Cmd.Process.Kill()
	tb.Route(t, 1)
	moved := time.Now()
	mediaBothWays(t, track, sip, toRtpkit, got, 1000, "through B")
	// A figure, not an assertion: the first packet each way through B, at
	// the 100 ms granularity of mediaBothWays (docs/redundancy.md).
	t.Logf("media both ways through B %v after the route change", time.Since(moved).Round(time.Microsecond))
	select {
	case s := <-left:
		t.Errorf("the WebRTC connection went %s", s)
	default:
	}
}

// ngOK sends one offer or answer of the test's call and returns its SDP.
func ngOK(t *testing.T, ctx context.Context, ng interface {
	Do(context.Context, bencode.Value) (bencode.Value, error)
}, cmd, sdp string, extra ...bencode.Pair) string {
	t.Helper()
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str("webrtc-failover")},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
	if cmd == "answer" {
		d.Set("to-tag", bencode.Str("B"))
	}
	for _, p := range extra {
		d.Set(p.Key, p.Value)
	}
	r, err := ng.Do(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := r.GetString("result"); res != "ok" {
		why, _ := r.GetString("error-reason")
		t.Fatalf("%s: %s %s", cmd, res, why)
	}
	s, _ := r.GetString("sdp")
	return s
}

func mPort(t *testing.T, sdp string) int {
	t.Helper()
	m := mPortRe.FindStringSubmatch(sdp)
	if m == nil {
		t.Fatalf("no m=audio in:\n%s", sdp)
	}
	var p int
	fmt.Sscan(m[1], &p)
	return p
}

// mediaBothWays sends RTP from the WebRTC party to the SIP party and back
// until one packet each way arrives (bounded: 100 tries of 100 ms).
func mediaBothWays(t *testing.T, track *webrtc.TrackLocalStaticRTP, sip *net.UDPConn, toRtpkit *net.UDPAddr, got chan []byte, seq0 uint16, what string) {
	t.Helper()
	buf := make([]byte, 2048)
	arrived := false
	for seq := seq0; seq < seq0+100 && !arrived; seq++ {
		payload := bytes.Repeat([]byte{byte(seq)}, 40)
		if err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: 960 * uint32(seq)}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		_ = sip.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := sip.ReadFromUDP(buf); err == nil {
			p := &rtp.Packet{}
			arrived = p.Unmarshal(buf[:n]) == nil && bytes.Equal(p.Payload, payload)
		}
	}
	if !arrived {
		t.Fatalf("%s: no RTP from the WebRTC party reached the SIP party", what)
	}
	for seq := seq0; seq < seq0+100; seq++ {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: 960 * uint32(seq), SSRC: 0x5151}, Payload: []byte("from the SIP party")}
		raw, _ := p.Marshal()
		if _, err := sip.WriteToUDP(raw, toRtpkit); err != nil {
			t.Fatal(err)
		}
		select {
		case payload := <-got:
			if !strings.HasPrefix(string(payload), "from the SIP party") {
				t.Fatalf("%s: the WebRTC party got %q", what, payload)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: no RTP from the SIP party reached the WebRTC party", what)
}
