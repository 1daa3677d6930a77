package nodetest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/codec/names"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// sweepPCMU is a 300–3400 Hz sweep of n 20 ms PCMU packets' payloads and
// the samples they carry.
func sweepPCMU(t *testing.T, n int) ([][]byte, []int16) {
	t.Helper()
	enc, err := codec.NewEncoder(codec.Format{Name: "PCMU", Clock: 8000}, 20)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := codec.NewDecoder(codec.Format{Name: "PCMU", Clock: 8000})
	var payloads [][]byte
	var ref []int16
	phase := 0.0
	for i := range n {
		pcm := make([]int16, 160)
		for j := range pcm {
			f := 300 + 3100*float64(i*160+j)/float64(n*160)
			phase += 2 * math.Pi * f / 8000
			pcm[j] = int16(12000 * math.Sin(phase))
		}
		p, _ := enc.Encode(nil, pcm)
		payloads = append(payloads, p)
		ref, _ = dec.Decode(ref, p) // the signal as PCMU carries it
	}
	return payloads, ref
}

// snrDB is the SNR of got against ref at the best delay up to maxDelay.
func snrDB(ref, got []int16, maxDelay int) float64 {
	v, _ := snrAt(ref, got, maxDelay)
	return v
}

// snrAt is snrDB and the delay it found.
func snrAt(ref, got []int16, maxDelay int) (float64, int) {
	best, at := math.Inf(-1), 0
	for d := 0; d <= maxDelay; d++ {
		// The level is matched first (least squares): a proxy that
		// changes only the loudness is not scored as noisy.
		var rr, rg, gg float64
		for i := 800; i+d < len(got) && i < len(ref)-800; i++ {
			r, g := float64(ref[i]), float64(got[i+d])
			rr += r * r
			rg += r * g
			gg += g * g
		}
		if gg == 0 || rr == 0 {
			continue
		}
		noise := rr - rg*rg/gg // Σ(r − k·g)² at the best k = rg/gg
		if noise > 0 && 10*math.Log10(rr/noise) > best {
			best, at = 10*math.Log10(rr/noise), d
		}
	}
	return best, at
}

// spectralSNR compares the short-time magnitude spectra of ref and got
// (delayed by about delay samples): 256-sample Hann-windowed frames, half
// overlapping; the energy of the reference's spectra over that of the
// difference of the magnitudes, in dB. Unlike the waveform SNR it does not
// punish a delay of a fraction of a sample (a resampler's), only what
// changes what is heard. Each frame takes the best of delay-2..delay+2,
// and the level is matched as in snrAt.
func spectralSNR(ref, got []int16, delay int) float64 {
	const n = 256
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/n)
	}
	mag := func(x []int16, at int) []float64 {
		out := make([]float64, n/2)
		for k := range out {
			var re, im float64
			for i := range n {
				v := float64(x[at+i]) * win[i]
				re += v * math.Cos(2*math.Pi*float64(k*i)/n)
				im -= v * math.Sin(2*math.Pi*float64(k*i)/n)
			}
			out[k] = math.Hypot(re, im)
		}
		return out
	}
	// The frames' spectra, the best of the five delays each; then the
	// level matched over all of them (least squares), as snrAt does.
	var rr, rg, gg float64
	for at := 800; at+n < len(ref)-800; at += n / 2 {
		r := mag(ref, at)
		bestErr, bestRG, bestGG := math.Inf(1), 0.0, 0.0
		var frameRR float64
		for k := range r {
			frameRR += r[k] * r[k]
		}
		for d := delay - 2; d <= delay+2; d++ {
			if at+d < 0 || at+d+n > len(got) {
				continue
			}
			g := mag(got, at+d)
			var fg, ff float64
			for k := range r {
				fg += r[k] * g[k]
				ff += g[k] * g[k]
			}
			if ff == 0 {
				continue
			}
			if e := frameRR - fg*fg/ff; e < bestErr {
				bestErr, bestRG, bestGG = e, fg, ff
			}
		}
		if !math.IsInf(bestErr, 1) {
			rr += frameRR
			rg += bestRG
			gg += bestGG
		}
	}
	return 10 * math.Log10(rr/(rr-rg*rg/gg))
}

// TestTranscodeAndDTMF runs a call through a whole node that offers Opus
// to a PCMU caller (codec transcode) and gets an answer with Opus only:
// the SDP each side gets is rtpengine's, the caller's PCMU reaches the
// callee as Opus from the first packet on (sent right after the reply;
// another SSRC, the audio intact) and the callee's Opus
// reaches the caller as PCMU; the caller's RFC 4733 event reaches the
// callee, is reported once on the bus (rtpctl dtmf --follow) and to
// --dtmf-log-dest as rtpengine's JSON.
func TestTranscodeAndDTMF(t *testing.T) {
	if !names.Supported("opus") {
		t.Fatal("this build has no Opus: build with cgo and libopus (make build)")
	}
	logDest := testutil.ListenUDP(t)
	const node = "tcnode"
	up, c, _ := testutil.StartLocalNode(t, 52000, 52099, "--delete-delay=0", "--node-id="+node, "--dtmf-events",
		"--dtmf-log-dest="+logDest.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	natsURL := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(up.Output())
	follow := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), []string{"dtmf", "--follow", "--json",
		"--count=1", "--for=80s", "--nats-url=" + natsURL, "--node-id=" + node})
	follow.WaitMatch(t, testutil.MatchLine(`following the DTMF events`), 20*time.Second)

	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	sdpA := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n", a.LocalAddr().(*net.UDPAddr).Port)
	offer := testutil.NGCall("offer", "tc-1", "", sdpA)
	offer.Set("codec", bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.List(bencode.Str("opus"))}))
	toB := testutil.NGOK(t, ctx, c, offer)
	if !strings.Contains(toB, "RTP/AVP 0 96 97 101\r\n") || !strings.Contains(toB, "a=rtpmap:96 opus/48000/2\r\n") ||
		!strings.Contains(toB, "a=rtpmap:97 telephone-event/48000\r\n") {
		t.Fatalf("offer to the callee: want PCMU, Opus (96) and telephone-event at its rate (97) added, telephone-event:\n%s", toB)
	}
	sdpB := fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
		b.LocalAddr().(*net.UDPAddr).Port)
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "tc-1", "B", sdpB))
	if !strings.Contains(toA, "RTP/AVP 0 101\r\n") || strings.Contains(toA, "opus") {
		t.Fatalf("answer to the caller: want PCMU and telephone-event only:\n%s", toA)
	}
	portB, portA := testutil.SDPMediaAddr(t, toB), testutil.SDPMediaAddr(t, toA)

	// Caller → callee: PCMU in, Opus out.
	const n = 100
	payloads, ref := sweepPCMU(t, n)
	const ssrcA, ssrcB = 0x1111, 0x2222
	got := make(chan []byte, 4*n)
	go readAll(b, got)
	// Sent right after the answer's reply, before rtp-fwd has the update
	// that turns transcoding on: the first packets wait in the loop's
	// ring and go through the transcoder once it is there, like the rest.
	for i, p := range payloads {
		pkt := rtppacket.RTP{PayloadType: 0, Seq: uint16(1000 + i), Timestamp: uint32(800000 + 160*i), SSRC: ssrcA}.Packet(p)
		if _, err := a.WriteToUDP(pkt, portA); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	back, err := codec.NewTranscoder(codec.Spec{In: []codec.PT{{PT: 96, Format: codec.Format{Name: "opus", Clock: 48000, Channels: 2}}},
		Out: codec.PT{PT: 0, Format: codec.Format{Name: "PCMU", Clock: 8000}}})
	if err != nil {
		t.Fatal(err)
	}
	var opusPkts [][]byte
	var heard []int16
	dec, _ := codec.NewDecoder(codec.Format{Name: "PCMU", Clock: 8000})
	collect(t, got, n, func(pkt []byte) {
		if pkt[1]&0x7f != 96 || binary.BigEndian.Uint32(pkt[8:12]) != codec.SSRC(ssrcA) {
			t.Fatalf("callee got PT %d SSRC %#x, want 96 and %#x", pkt[1]&0x7f, binary.BigEndian.Uint32(pkt[8:12]), codec.SSRC(ssrcA))
		}
		opusPkts = append(opusPkts, pkt)
		back.Process(pkt, func(p []byte) { heard, _ = dec.Decode(heard, p[12:]) })
	})
	if len(opusPkts) != n {
		t.Fatalf("callee got %d Opus packets of %d", len(opusPkts), n)
	}
	if v := snrDB(ref, heard, 400); v < 15 {
		t.Fatalf("PCMU → Opus through the node, decoded: SNR %.1f dB, want ≥ 15", v)
	} else {
		t.Logf("PCMU → Opus through the node → PCMU here: SNR %.1f dB over %d packets", v, len(opusPkts))
	}

	// Callee → caller: Opus in (what the node made, sent back), PCMU out.
	gotA := make(chan []byte, 4*n)
	go readAll(a, gotA)
	for i, p := range opusPkts {
		q := rtppacket.RTP{PayloadType: 96, Seq: uint16(500 + i), Timestamp: uint32(48000 + 960*i), SSRC: ssrcB}.Packet(p[12:])
		if _, err := b.WriteToUDP(q, portB); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	pcmu := 0
	collect(t, gotA, len(opusPkts), func(pkt []byte) {
		if pkt[1]&0x7f != 0 || len(pkt) != 12+160 {
			t.Fatalf("caller got PT %d with %d bytes, want PCMU of 160", pkt[1]&0x7f, len(pkt)-12)
		}
		pcmu++
	})
	if pcmu < len(opusPkts)*9/10 {
		t.Fatalf("caller got %d PCMU packets of %d", pcmu, len(opusPkts))
	}

	// The caller's DTMF '5': start, continuation, three end packets.
	for i, end := range []bool{false, false, true, true, true} {
		ev := []byte{5, 10, 0, byte(160 * (i + 1))}
		if end {
			ev[1] |= 0x80
			ev[3] = 0xc0
			ev[2] = 3 // 0x3c0 = 960: 120 ms
		}
		pkt := rtppacket.RTP{PayloadType: 101, Seq: uint16(300 + i), Timestamp: 40000, SSRC: ssrcA, Marker: i == 0}.Packet(ev)
		if _, err := a.WriteToUDP(pkt, portA); err != nil {
			t.Fatal(err)
		}
	}
	events := 0
	collect(t, got, 5, func(pkt []byte) {
		if pkt[1]&0x7f == 101 {
			events++
		}
	})
	if events < 4 {
		t.Errorf("callee got %d of the 5 telephone-event packets", events)
	}
	buf := make([]byte, 2048)
	_ = logDest.SetReadDeadline(time.Now().Add(10 * time.Second))
	nr, err := logDest.Read(buf)
	if err != nil {
		t.Fatalf("no DTMF log datagram at --dtmf-log-dest: %v", err)
	}
	var logged struct {
		CallID    string   `json:"callid"`
		SourceTag string   `json:"source_tag"`
		Tags      []string `json:"tags"`
		Type      string   `json:"type"`
		Event     int      `json:"event"`
		Duration  int      `json:"duration"`
		Volume    int      `json:"volume"`
		SourceIP  string   `json:"source_ip"`
	}
	if err := json.Unmarshal(buf[:nr], &logged); err != nil {
		t.Fatalf("DTMF log %q: %v", buf[:nr], err)
	}
	if logged.CallID != "tc-1" || logged.SourceTag != "A" || logged.Type != "DTMF" || logged.Event != 5 || logged.Duration != 120 ||
		logged.Volume != 10 || logged.SourceIP != "127.0.0.1" {
		t.Errorf("DTMF log %s", buf[:nr])
	}
	_ = logDest.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if nr, err := logDest.Read(buf); err == nil {
		t.Errorf("a second DTMF log datagram for one event: %s", buf[:nr])
	}
	follow.WaitMatch(t, regexp.MustCompile(`"digit":"5"`), 10*time.Second)
	if code, err := follow.Wait(10 * time.Second); err != nil || code != 0 {
		t.Errorf("rtpctl dtmf --follow --count=1: exit %d %v", code, err)
	}

	// block DTMF: the caller's events stop reaching the callee (still
	// reported); unblock DTMF: they pass again.
	evTS := uint32(50000)
	event := func() (forwarded, logged bool) {
		evTS += 8000
		for i := range 3 {
			pkt := rtppacket.RTP{PayloadType: 101, Seq: uint16(400 + evTS/8000*3 + uint32(i)), Timestamp: evTS, SSRC: ssrcA}.Packet([]byte{7, 0x8a, 3, 0xc0})
			if _, err := a.WriteToUDP(pkt, portA); err != nil {
				t.Fatal(err)
			}
		}
		for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
			select {
			case p := <-got:
				forwarded = forwarded || p[1]&0x7f == 101
			case <-time.After(20 * time.Millisecond):
			}
		}
		_ = logDest.SetReadDeadline(time.Now().Add(time.Second))
		_, err := logDest.Read(buf)
		return forwarded, err == nil
	}
	dtmfCmd := func(cmd string) {
		testutil.NGOK(t, ctx, c, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)},
			bencode.Pair{Key: "call-id", Value: bencode.Str("tc-1")}, bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}))
	}
	settle := func(wantForwarded bool) {
		for i := 0; ; i++ {
			fwd, logged := event()
			if !logged {
				t.Fatal("an event was not reported")
			}
			if fwd == wantForwarded {
				return
			}
			if i == 10 {
				t.Fatalf("events still forwarded=%v after %d tries", fwd, i)
			}
		}
	}
	dtmfCmd("block DTMF")
	settle(false)
	for range 2 {
		if fwd, logged := event(); fwd || !logged {
			t.Fatalf("blocked: an event forwarded=%v reported=%v", fwd, logged)
		}
	}
	dtmfCmd("unblock DTMF")
	settle(true)

	del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str("tc-1")})
	testutil.NGOK(t, ctx, c, del)
}

// readAll copies every datagram c receives to out until c is closed.
func readAll(c *net.UDPConn, out chan<- []byte) {
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			close(out)
			return
		}
		out <- append([]byte(nil), buf[:n]...)
	}
}

// collect hands up to want packets from ch to fn, waiting at most 3 s
// after the last.
func collect(t *testing.T, ch <-chan []byte, want int, fn func([]byte)) {
	t.Helper()
	for range want {
		select {
		case p, ok := <-ch:
			if !ok {
				return
			}
			fn(p)
		case <-time.After(3 * time.Second):
			return
		}
	}
}
