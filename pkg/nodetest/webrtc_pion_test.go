package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestWebRTCToSIPWithPion: a WebRTC endpoint we did not write
// (pion/webrtc: ICE, DTLS-SRTP, rtcp-mux, UDP/TLS/RTP/SAVPF) calls a
// plain RTP party through an rtpkit node with the flags a WebRTC gateway
// gives rtpengine (offer: transport-protocol RTP/AVP, ICE=remove,
// rtcp-mux demux): the browser-side handshake completes against rtpkit's
// answer (its ICE lines, a=setup:active and the node's fingerprint), and
// RTP flows both ways, decrypted towards the plain party and encrypted
// towards the WebRTC one. Then, in the same call: rtp-fwd is killed and
// goes on from the record; the WebRTC party restarts ICE (a re-offer with
// new credentials, which rtpkit answers with new ones of its own); the SIP
// party re-INVITEs from a new port (rtpkit re-offers to the WebRTC party,
// its media id and DTLS session kept); media flows both ways after each.
func TestWebRTCToSIPWithPion(t *testing.T) {
	up, c, _ := testutil.StartLocalNode(t, 51100, 51199, "--delete-delay=0", "--log-level=debug")
	defer func() {
		if t.Failed() {
			t.Logf("node output:\n%s", up.Output())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// The SIP party's SSRC is in no a=ssrc and rtpkit's answer carries no
	// MID header extension (the SIP party's SDP has none): like a browser,
	// take the one unsignalled stream of the only media section.
	se.SetHandleUndeclaredSSRCWithoutAnswer(true)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "rtpkit")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			got <- p.Payload
		}
	})
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) { t.Logf("ICE: %s", s) })
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		t.Logf("connection: %s", s)
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
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
	pt := opusPT(t, pc.LocalDescription().SDP)

	b := testutil.ListenUDP(t)
	toB := testutil.NGOK(t, ctx, c, ngDict("offer", "webrtc-1", "A", "", pc.LocalDescription().SDP,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
		bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
		bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("demux")}))
	if strings.Contains(toB, "a=ice-") || strings.Contains(toB, "a=fingerprint") || !strings.Contains(toB, " RTP/AVP ") {
		t.Fatalf("the SIP party's offer is not plain RTP/AVP:\n%s", toB)
	}
	bSDP := fmt.Sprintf("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %d\r\na=rtpmap:%d opus/48000/2\r\n",
		b.LocalAddr().(*net.UDPAddr).Port, pt, pt)
	toA := testutil.NGOK(t, ctx, c, ngDict("answer", "webrtc-1", "A", "B", bSDP))
	t.Logf("rtpkit's answer to the WebRTC party:\n%s", toA)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: toA}); err != nil {
		t.Fatalf("pion/webrtc refuses rtpkit's answer: %v", err)
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("ICE and DTLS did not connect: %s", pc.ConnectionState())
	}

	toRtpkit := testutil.SDPMediaAddr(t, toB)
	webrtcMedia(t, track, b, toRtpkit, got, 1)

	// The DTLS keys reach the call record (query names the suite then);
	// rtp-fwd is killed and restarted by rtpctl up, and goes on with the
	// keys from the record: media flows both ways again with no new
	// handshake (rtpkit is the DTLS client here and starts none when keyed).
	waitFor(t, 10*time.Second, "the DTLS suite in query", func() bool { return queryMatches(t, ctx, c, "webrtc-1", `12:crypto suite`) })
	if !queryMatches(t, ctx, c, "webrtc-1", `9:DTLS-SRTP16:DTLS role active3:ICE`) {
		t.Error("query does not show the WebRTC party's media as DTLS-SRTP, active, ICE")
	}
	old := daemonPID(t, up, "rtp-fwd")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "rtp-fwd restarted", func() bool { p := daemonPID(t, up, "rtp-fwd"); return p != 0 && p != old })
	webrtcMedia(t, track, b, toRtpkit, got, 100)

	// An ICE restart by the WebRTC party (a re-INVITE with new ICE
	// credentials, the same flags); the SIP party answers as before.
	oldUfrag := iceUfrag(t, toA)
	restart, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(restart); err != nil {
		t.Fatal(err)
	}
	<-gathered
	testutil.NGOK(t, ctx, c, ngDict("offer", "webrtc-1", "A", "", pc.LocalDescription().SDP,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
		bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
		bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("demux")}))
	toA = testutil.NGOK(t, ctx, c, ngDict("answer", "webrtc-1", "A", "B", strings.Replace(bSDP, "o=- 2 2", "o=- 2 3", 1)))
	if u := iceUfrag(t, toA); u == oldUfrag {
		t.Fatalf("rtpkit answered an ICE restart with its old credentials (%s)", u)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: toA}); err != nil {
		t.Fatalf("pion/webrtc refuses rtpkit's answer to its ICE restart: %v", err)
	}
	t.Log("media after the ICE restart")
	webrtcMedia(t, track, b, toRtpkit, got, 200)

	// A re-INVITE from the SIP party, from a new port, with the flags a
	// gateway gives rtpengine towards a WebRTC party.
	b2 := testutil.ListenUDP(t)
	b2SDP := fmt.Sprintf("v=0\r\no=- 2 4 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %d\r\na=rtpmap:%d opus/48000/2\r\n",
		b2.LocalAddr().(*net.UDPAddr).Port, pt, pt)
	reoffer := testutil.NGOK(t, ctx, c, ngDict("offer", "webrtc-1", "B", "A", b2SDP,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("UDP/TLS/RTP/SAVPF")},
		bencode.Pair{Key: "ICE", Value: bencode.Str("force")},
		bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("offer")},
		bencode.Pair{Key: "flags", Value: bencode.Strs("generate-mid", "SDES-off")}))
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: reoffer}); err != nil {
		t.Fatalf("pion/webrtc refuses rtpkit's re-offer:\n%s\n%v", reoffer, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	toB2 := testutil.NGOK(t, ctx, c, ngDict("answer", "webrtc-1", "B", "A", pc.LocalDescription().SDP,
		bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
		bencode.Pair{Key: "ICE", Value: bencode.Str("remove")}))
	if strings.Contains(toB2, "a=ice-") || !strings.Contains(toB2, " RTP/AVP ") {
		t.Fatalf("the SIP party's answer is not plain RTP/AVP:\n%s", toB2)
	}
	t.Logf("media after the SIP party's re-INVITE; rtpkit's re-offer:\n%s\nthe WebRTC party's answer:\n%s\nto the SIP party:\n%s", reoffer, pc.LocalDescription().SDP, toB2)
	webrtcMedia(t, track, b2, testutil.SDPMediaAddr(t, toB2), got, 300)
}

// iceUfrag is the a=ice-ufrag of an SDP.
func iceUfrag(t *testing.T, sdp string) string {
	t.Helper()
	m := regexp.MustCompile(`a=ice-ufrag:(\S+)`).FindStringSubmatch(sdp)
	if m == nil {
		t.Fatalf("no a=ice-ufrag in:\n%s", sdp)
	}
	return m[1]
}

// webrtcMedia sends RTP from the WebRTC party (track) to the SIP party b
// and from b to rtpkit (toRtpkit) for the WebRTC party (got), sequence
// numbers from seq0, until one packet each way arrives (bounded).
func webrtcMedia(t *testing.T, track *webrtc.TrackLocalStaticRTP, b *net.UDPConn, toRtpkit *net.UDPAddr, got chan []byte, seq0 uint16) {
	t.Helper()
	buf := make([]byte, 2048)
	var arrived bool
	for seq := seq0; seq < seq0+50 && !arrived; seq++ {
		payload := bytes.Repeat([]byte{byte(seq)}, 40)
		if err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: 960 * uint32(seq)}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
		_ = b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := b.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		p := &rtp.Packet{}
		if err := p.Unmarshal(buf[:n]); err != nil || !bytes.Equal(p.Payload, payload) {
			t.Fatalf("the SIP party got %x (%v), want plain RTP with payload %x", buf[:n], err, payload)
		}
		arrived = true
	}
	if !arrived {
		t.Fatal("no RTP from the WebRTC party reached the SIP party")
	}
	// SIP → WebRTC: plain RTP in, SRTP out, decrypted by pion/webrtc.
	for seq := seq0; seq < seq0+50; seq++ {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: 960 * uint32(seq), SSRC: 0x5151}, Payload: []byte("from the SIP party")}
		raw, _ := p.Marshal()
		if _, err := b.WriteToUDP(raw, toRtpkit); err != nil {
			t.Fatal(err)
		}
		select {
		case payload := <-got:
			if string(payload) != "from the SIP party" {
				t.Fatalf("the WebRTC party got %q", payload)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("no RTP from the SIP party reached the WebRTC party")
}

// daemonPID is the pid rtpctl up last reported for a daemon (0: none).
func daemonPID(t *testing.T, up *testutil.Proc, name string) int {
	t.Helper()
	pid := 0
	for _, m := range regexp.MustCompile(`(?m)^.*\b`+regexp.QuoteMeta(name)+`\b.*pid[ =](\d+)`).FindAllStringSubmatch(up.Output(), -1) {
		pid, _ = strconv.Atoi(m[1])
	}
	return pid
}

// opusPT is the payload type of opus in an SDP.
func opusPT(t *testing.T, sdp string) int {
	t.Helper()
	for _, ln := range strings.Split(sdp, "\r\n") {
		var pt int
		if _, err := fmt.Sscanf(ln, "a=rtpmap:%d opus/48000/2", &pt); err == nil {
			return pt
		}
	}
	t.Fatalf("no opus in:\n%s", sdp)
	return 0
}
