package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// chromiumPage is the browser side: getUserMedia (Chromium's fake audio
// device) and an RTCPeerConnection that either offers to the test's
// /offer, which answers with rtpkit's SDP, or (?mode=answer) takes
// rtpkit's offer from /incoming and posts its answer to /answer; then
// getStats until audio flows both ways, reported to /result.
const chromiumPage = `<!doctype html><html><body><script>
(async () => {
  const report = (o) => fetch('/result', {method: 'POST', body: JSON.stringify(o)});
  const gathered = (pc) => new Promise(r => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') r(); };
    setTimeout(r, 3000);
  });
  try {
    const pc = new RTCPeerConnection();
    const stream = await navigator.mediaDevices.getUserMedia({audio: true});
    if (new URLSearchParams(location.search).get('mode') === 'answer') {
      const offer = await fetch('/incoming');
      if (!offer.ok) return report({error: 'incoming: ' + await offer.text()});
      await pc.setRemoteDescription({type: 'offer', sdp: await offer.text()});
      const tr = pc.getTransceivers()[0];
      await tr.sender.replaceTrack(stream.getAudioTracks()[0]);
      tr.direction = 'sendrecv';
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      const resp = await fetch('/answer', {method: 'POST', body: pc.localDescription.sdp});
      if (!resp.ok) return report({error: 'answer: ' + await resp.text()});
    } else {
      stream.getTracks().forEach(t => pc.addTrack(t, stream));
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const resp = await fetch('/offer', {method: 'POST', body: pc.localDescription.sdp});
      if (!resp.ok) return report({error: 'offer: ' + await resp.text()});
      await pc.setRemoteDescription({type: 'answer', sdp: await resp.text()});
    }
    for (let i = 0; i < 100; i++) {
      await new Promise(r => setTimeout(r, 200));
      let rx = 0, tx = 0;
      (await pc.getStats()).forEach(s => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') rx = s.packetsReceived;
        if (s.type === 'outbound-rtp' && s.kind === 'audio') tx = s.packetsSent;
      });
      if (rx > 10 && tx > 10) return report({state: pc.connectionState, rx, tx});
    }
    report({state: pc.connectionState, error: 'no audio both ways'});
  } catch (e) { report({error: String(e)}); }
})();
</script></body></html>`

// TestWebRTCChromium: a real browser (Debian's Chromium, headless, its
// fake microphone) calls a plain RTP party through an rtpkit node with a
// WebRTC gateway's flags (offer: transport-protocol RTP/AVP, ICE=remove,
// rtcp-mux demux): Chromium's ICE, DTLS and SRTP complete against
// rtpkit's answer, Chromium's audio reaches the SIP party as plain RTP
// (opus), and the SIP party's RTP reaches Chromium, which counts it in
// its inbound-rtp statistics. Then the other way: the SIP party calls
// the browser (offer: transport-protocol UDP/TLS/RTP/SAVPF, ICE=force,
// rtcp-mux offer, generate-mid, SDES-off), Chromium answers rtpkit's offer
// (rtpkit the DTLS server, Chromium the controlled ICE agent), and audio
// flows both ways again. All on loopback (Chromium's
// --allow-loopback-in-peer-connection).
func TestWebRTCChromium(t *testing.T) {
	t.Run("the browser calls", func(t *testing.T) { chromiumCall(t, false, 51200) })
	t.Run("the SIP party calls the browser", func(t *testing.T) { chromiumCall(t, true, 51900) })
}

// chromiumCall runs one call between Chromium and a plain RTP party
// through a node with ports from portMin; sipCalls: the SIP party offers.
func chromiumCall(t *testing.T, sipCalls bool, portMin int) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
			t.Fatal("chromium not installed (Debian chromium; make test installs it)")
		}
		t.Skip("chromium not installed: no browser test")
	}
	_, c, _ := testutil.StartLocalNode(t, portMin, portMin+99, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	b := testutil.ListenUDP(t) // the SIP party
	var fromBrowser atomic.Int64
	var toRtpkit atomic.Pointer[net.UDPAddr]
	var opusPT atomic.Int32
	go func() { // it counts Chromium's RTP and sends its own every 20 ms
		buf := make([]byte, 2048)
		seq := uint16(0)
		for ctx.Err() == nil {
			_ = b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if n, _, err := b.ReadFromUDP(buf); err == nil {
				p := &rtp.Packet{}
				if p.Unmarshal(buf[:n]) == nil && int32(p.PayloadType) == opusPT.Load() {
					fromBrowser.Add(1)
				}
			}
			if to := toRtpkit.Load(); to != nil {
				seq++
				// An opus frame of silence (TOC 0xf8: CELT, 20 ms).
				p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: uint8(opusPT.Load()), SequenceNumber: seq, Timestamp: 960 * uint32(seq), SSRC: 0x5151},
					Payload: []byte{0xf8, 0xff, 0xfe}}
				raw, _ := p.Marshal()
				_, _ = b.WriteToUDP(raw, to)
			}
		}
	}()

	results := make(chan map[string]any, 4)
	var once sync.Once
	// sipSDP is the SIP party's SDP (version v, opus as pt); sipSendsTo
	// points it at rtpkit's address in the SDP it got (the first time).
	sipSDP := func(v, pt int) string {
		return fmt.Sprintf("v=0\r\no=- %d %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %d\r\na=rtpmap:%d opus/48000/2\r\n",
			v, v, b.LocalAddr().(*net.UDPAddr).Port, pt, pt)
	}
	sipSendsTo := func(toB string) {
		once.Do(func() {
			if a, err := net.ResolveUDPAddr("udp", mediaAddrOf(toB)); err == nil {
				toRtpkit.Store(a)
			}
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, chromiumPage)
	})
	mux.HandleFunc("POST /offer", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		offer := string(body)
		pt := -1
		for _, ln := range strings.Split(offer, "\r\n") {
			if _, err := fmt.Sscanf(ln, "a=rtpmap:%d opus/48000/2", &pt); err == nil {
				break
			}
		}
		if pt < 0 {
			http.Error(w, "no opus in the offer", http.StatusBadRequest)
			return
		}
		opusPT.Store(int32(pt))
		toB, err := ngSDP(ctx, c, ngDict("offer", "chromium-1", "A", "", offer,
			bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
			bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
			bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("demux")}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		toA, err := ngSDP(ctx, c, ngDict("answer", "chromium-1", "A", "B", sipSDP(2, pt)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		sipSendsTo(toB)
		_, _ = io.WriteString(w, toA)
	})
	const sipPT = 111 // the SIP party's opus when it calls
	mux.HandleFunc("GET /incoming", func(w http.ResponseWriter, _ *http.Request) {
		opusPT.Store(sipPT)
		toA, err := ngSDP(ctx, c, ngDict("offer", "chromium-1", "B", "", sipSDP(3, sipPT),
			bencode.Pair{Key: "transport-protocol", Value: bencode.Str("UDP/TLS/RTP/SAVPF")},
			bencode.Pair{Key: "ICE", Value: bencode.Str("force")},
			bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("offer")},
			bencode.Pair{Key: "flags", Value: bencode.Strs("generate-mid", "SDES-off")}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, toA)
	})
	mux.HandleFunc("POST /answer", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		toB, err := ngSDP(ctx, c, ngDict("answer", "chromium-1", "B", "A", string(body),
			bencode.Pair{Key: "transport-protocol", Value: bencode.Str("RTP/AVP")},
			bencode.Pair{Key: "ICE", Value: bencode.Str("remove")},
			bencode.Pair{Key: "rtcp-mux", Value: bencode.Strs("demux")}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		sipSendsTo(toB)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		results <- m
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	cmd := exec.Command(browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
		"--disable-features=WebRtcHideLocalIpsWithMdns", "http://"+ln.Addr().String()+"/"+map[bool]string{true: "?mode=answer"}[sipCalls])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the browser and the processes it started, which we started
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})

	select {
	case m := <-results:
		t.Logf("Chromium reports %v; the SIP party got %d RTP packets from it", m, fromBrowser.Load())
		if m["error"] != nil || m["state"] != "connected" {
			t.Fatalf("Chromium: %v", m)
		}
	case <-ctx.Done():
		t.Fatal("Chromium reported nothing")
	}
	waitFor(t, 5*time.Second, "Chromium's audio at the SIP party", func() bool { return fromBrowser.Load() > 10 })
	if queryMatches(t, ctx, c, "chromium-1", `13:SRTP failuresi[1-9]`) {
		t.Error("packets of Chromium's failed SRTP")
	}
}

// ngSDP sends an ng request and returns the SDP of an ok reply.
func ngSDP(ctx context.Context, c interface {
	Do(context.Context, bencode.Value) (bencode.Value, error)
}, d bencode.Value) (string, error) {
	r, err := c.Do(ctx, d)
	if err != nil {
		return "", err
	}
	sdp, _ := r.GetString("sdp")
	if res, _ := r.GetString("result"); res != "ok" {
		why, _ := r.GetString("error-reason")
		return "", fmt.Errorf("ng: %s %s", res, why)
	}
	return sdp, nil
}

// mediaAddrOf is the c= address and m=audio port of an SDP on loopback.
func mediaAddrOf(sdp string) string {
	port := ""
	for _, ln := range strings.Split(sdp, "\r\n") {
		if f := strings.Fields(ln); len(f) > 1 && f[0] == "m=audio" {
			port = f[1]
		}
	}
	return "127.0.0.1:" + port
}
