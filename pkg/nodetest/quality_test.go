package nodetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/codec"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// transcodeSDP is an SDP for one audio stream on c's loopback port with
// the payload types given as "PT rtpmap" pairs.
func transcodeSDP(c *net.UDPConn, pts ...string) string {
	var nums, maps []string
	for _, p := range pts {
		n, m, _ := strings.Cut(p, " ")
		nums = append(nums, n)
		maps = append(maps, "a=rtpmap:"+n+" "+m+"\r\n")
	}
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n%sa=sendrecv\r\n",
		c.LocalAddr().(*net.UDPAddr).Port, strings.Join(nums, " "), strings.Join(maps, ""))
}

// transcodedCall sets up a call through proxy c from the party on from
// (offering fromPT, transcoding to toCodec) to the party on to (answering
// with toPT only) and returns where each party sends.
func transcodedCall(t *testing.T, ctx context.Context, c *ngclient.Client, id string, from, to *net.UDPConn, fromPT, toCodec, toPT string) (fromSends, toSends *net.UDPAddr) {
	t.Helper()
	offer := testutil.NGCall("offer", id, "", transcodeSDP(from, fromPT))
	offer.Set("codec", bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.List(bencode.Str(toCodec))}))
	offer.Set("ICE", bencode.Str("remove"))
	toSDP := testutil.NGOK(t, ctx, c, offer)
	answer := testutil.NGCall("answer", id, "B", transcodeSDP(to, toPT))
	answer.Set("ICE", bencode.Str("remove"))
	fromSDP := testutil.NGOK(t, ctx, c, answer)
	return testutil.SDPMediaAddr(t, fromSDP), testutil.SDPMediaAddr(t, toSDP)
}

// chainSNR sends a PCMU sweep from A through proxy c transcoded to Opus
// (call 1, to X1), relays what X1 gets into call 2 from X2, transcoded
// back to PCMU for B, and returns the SNR of what B hears against the
// sweep as PCMU carries it.
func chainSNR(t *testing.T, c *ngclient.Client, tag string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, x1, x2, b := testutil.ListenUDP(t), testutil.ListenUDP(t), testutil.ListenUDP(t), testutil.ListenUDP(t)
	aSends, _ := transcodedCall(t, ctx, c, tag+"-1", a, x1, "0 PCMU/8000", "opus", "96 opus/48000/2")
	x2Sends, _ := transcodedCall(t, ctx, c, tag+"-2", x2, b, "96 opus/48000/2", "PCMU", "0 PCMU/8000")
	go func() { // X1's Opus goes on from X2
		buf := make([]byte, 2048)
		for {
			_ = x1.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := x1.Read(buf)
			if err != nil {
				return
			}
			if _, err := x2.WriteToUDP(buf[:n], x2Sends); err != nil {
				return
			}
		}
	}()
	heard := make(chan []byte, 1024)
	go readAll(b, heard)

	// A second of silence (the calls reach the forwarding workers), then
	// the sweep, one packet each 20 ms as a phone sends.
	const warm, n = 50, 150
	payloads, ref := sweepPCMU(t, n)
	silence := make([]byte, 160)
	for i := range 160 {
		silence[i] = 0xff
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range warm + n {
		p := silence
		if i >= warm {
			p = payloads[i-warm]
		}
		pkt := rtppacket.RTP{PayloadType: 0, Seq: uint16(i), Timestamp: uint32(160 * i), SSRC: 0xabc}.Packet(p)
		if _, err := a.WriteToUDP(pkt, aSends); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	// B's audio placed by its timestamps (a lost packet leaves silence
	// rather than shifting what follows).
	var got []int16
	dec, _ := codec.NewDecoder(codec.Format{Name: "PCMU", Clock: 8000})
	nPkts, gaps := 0, 0
	var ts0, next uint32
	collect(t, heard, warm+n, func(pkt []byte) {
		if pkt[1]&0x7f != 0 || len(pkt) <= 12 {
			return
		}
		ts := binary.BigEndian.Uint32(pkt[4:8])
		if nPkts == 0 {
			ts0, next = ts, ts
		}
		if ts != next {
			gaps++
		}
		next = ts + uint32(len(pkt)-12)
		at := int(int32(ts - ts0))
		if at < 0 || at > 60*8000 {
			return
		}
		pcm, _ := dec.Decode(nil, pkt[12:])
		for len(got) < at+len(pcm) {
			got = append(got, 0)
		}
		copy(got[at:], pcm)
		nPkts++
	})
	// B's audio from shortly before the sweep's start (a proxy may drop
	// the first packets of the silence, or add delay), aligned by the
	// best SNR within 0.5 s.
	skip := max(0, len(got)-n*160-2000)
	wave, delay := snrAt(ref, got[skip:], 4000)
	var er, eg float64
	for i := 800; i < len(ref)-800 && i+delay < len(got[skip:]); i++ {
		er += float64(ref[i]) * float64(ref[i])
		eg += float64(got[skip+i+delay]) * float64(got[skip+i+delay])
	}
	level := 10 * math.Log10(eg/er)
	v := spectralSNR(ref, got[skip:], delay)
	t.Logf("%s: PCMU → Opus → PCMU, B got %d PCMU packets (%d timestamp jumps); spectral SNR %.2f dB (waveform SNR %.2f dB at a delay of %d samples), level %+.2f dB, both scores with the level matched",
		tag, nPkts, gaps, v, wave, delay-(len(got)-skip-n*160), level)
	for _, id := range []string{tag + "-1", tag + "-2"} {
		testutil.NGOK(t, ctx, c, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)}))
	}
	return v
}

// TestTranscodeQualityVsRtpengine measures the audio quality of
// transcoding against the reference in one run: a 300–3400 Hz sweep as
// PCMU, transcoded to Opus and back by two calls through the same proxy,
// once through rtpkit and once through rtpengine (Debian
// rtpengine-daemon, which transcodes with libavcodec); the score is the
// SNR of the short-time magnitude spectra (spectralSNR: rtpengine runs
// Opus at 48 kHz and resamples, which delays by a fraction of a sample, a
// waveform SNR would count against it), and rtpkit's must be within 1 dB
// of rtpengine's or better. The waveform SNR is logged beside it.
func TestTranscodeQualityVsRtpengine(t *testing.T) {
	rc, _ := startRtpengine(t, 52200, 52299)
	_, kc, _ := testutil.StartLocalNode(t, 52100, 52199, "--delete-delay=0")
	ref := chainSNR(t, rc, "rtpengine")
	got := chainSNR(t, kc, "rtpkit")
	t.Logf("spectral SNR: rtpkit %.2f dB, rtpengine %.2f dB (difference %+.2f dB)", got, ref, got-ref)
	if got < ref-1 {
		t.Fatalf("rtpkit's transcoding scores %.2f dB, more than 1 dB below rtpengine's %.2f dB", got, ref)
	}
}
