package nodetest

import (
	"context"
	"fmt"
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

// TestPlayDTMF injects DTMF with play DTMF into a caller's audio through a
// whole node: as RFC 4733 events to a callee that takes telephone-event,
// as the tone in PCMU to one that does not; a call set up without
// inject-DTMF is refused with a reason.
func TestPlayDTMF(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 52400, 52499, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sdp := func(u *net.UDPConn, dtmf bool) string {
		s := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0", u.LocalAddr().(*net.UDPAddr).Port)
		if dtmf {
			return s + " 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
		}
		return s + "\r\na=sendrecv\r\n"
	}
	call := func(id string, calleeDTMF, inject bool) (a, b *net.UDPConn, toProxy *net.UDPAddr) {
		a, b = testutil.ListenUDP(t), testutil.ListenUDP(t)
		offer := testutil.NGCall("offer", id, "", sdp(a, true))
		answer := testutil.NGCall("answer", id, "B", sdp(b, calleeDTMF))
		if inject {
			offer.Set("flags", bencode.Strs("inject DTMF"))
			answer.Set("flags", bencode.Strs("inject DTMF"))
		}
		testutil.NGOK(t, ctx, c, offer)
		toA := testutil.NGOK(t, ctx, c, answer)
		return a, b, testutil.SDPMediaAddr(t, toA)
	}
	play := func(id string, digit string) bencode.Value {
		r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("play DTMF")},
			bencode.Pair{Key: "call-id", Value: bencode.Str(id)}, bencode.Pair{Key: "from-tag", Value: bencode.Str("A")},
			bencode.Pair{Key: "code", Value: bencode.Str(digit)}, bencode.Pair{Key: "duration", Value: bencode.Int(200)}))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xff
	}
	// talk sends the caller's silence for n packets, 20 ms apart, playing
	// the digit after the first five, and hands what the callee gets to fn.
	talk := func(id string, a, b *net.UDPConn, to *net.UDPAddr, digit string, fn func([]byte)) {
		got := make(chan []byte, 256)
		go readAll(b, got)
		for i := range 40 {
			if i == 5 {
				if res, why := ngclient.Result(play(id, digit)); res != "ok" {
					t.Fatalf("play DTMF: %s %s", res, why)
				}
			}
			pkt := rtppacket.RTP{PayloadType: 0, Seq: uint16(i), Timestamp: uint32(160 * i), SSRC: 0xa}.Packet(silence)
			if _, err := a.WriteToUDP(pkt, to); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		collect(t, got, 40, fn)
	}

	t.Run("RFC 4733", func(t *testing.T) {
		a, b, to := call("pd-rfc", true, true)
		var events []byte
		talk("pd-rfc", a, b, to, "4", func(p []byte) {
			if p[1]&0x7f == 101 && len(p) >= 16 {
				events = append(events, p[12])
				if p[13]&0x80 != 0 && p[12] != 4 {
					t.Errorf("end of event %d, want 4", p[12])
				}
			}
		})
		if len(events) < 5 || strings.Trim(string(events), "\x04") != "" {
			t.Fatalf("the callee got events %v, want 4s (200 ms of them)", events)
		}
	})
	t.Run("in-band", func(t *testing.T) {
		a, b, to := call("pd-inband", false, true)
		det, err := codec.NewDTMFDetector()
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := codec.NewDecoder(codec.Format{Name: "PCMU", Clock: 8000})
		heard := ""
		talk("pd-inband", a, b, to, "#", func(p []byte) {
			if p[1]&0x7f != 0 {
				t.Fatalf("the callee got payload type %d", p[1]&0x7f)
			}
			pcm, _ := dec.Decode(nil, p[12:])
			heard += det.Feed(pcm)
		})
		if heard != "#" {
			t.Fatalf("the callee's audio carries %q, want #", heard)
		}
	})
	t.Run("not set up", func(t *testing.T) {
		call("pd-none", true, false)
		r := play("pd-none", "1")
		if res, why := ngclient.Result(r); res != "error" || !strings.Contains(why, "inject-DTMF") {
			t.Fatalf("play DTMF without inject-DTMF: %s %q", res, why)
		}
	})
}

// TestDetectDTMFThroughNode: a caller without telephone-event, offered
// with transcode telephone-event, presses 3 in-band; the callee, which
// took telephone-event, gets the digit as RFC 4733 events, and the node
// reports it (--dtmf-log-dest).
func TestDetectDTMFThroughNode(t *testing.T) {
	logDest := testutil.ListenUDP(t)
	_, c, _ := testutil.StartLocalNode(t, 52500, 52599, "--delete-delay=0", "--dtmf-log-dest="+logDest.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	offer := testutil.NGCall("offer", "dd-1", "", fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=sendrecv\r\n", a.LocalAddr().(*net.UDPAddr).Port))
	offer.Set("codec", bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.Strs("telephone-event")}))
	toB := testutil.NGOK(t, ctx, c, offer)
	if !strings.Contains(toB, "RTP/AVP 0 96\r\n") || !strings.Contains(toB, "a=rtpmap:96 telephone-event/8000") {
		t.Fatalf("offer to the callee:\n%s", toB)
	}
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", "dd-1", "B", fmt.Sprintf("v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=sendrecv\r\n", b.LocalAddr().(*net.UDPAddr).Port)))
	if !strings.Contains(toA, "RTP/AVP 0\r\n") {
		t.Fatalf("answer to the caller:\n%s", toA)
	}
	to := testutil.SDPMediaAddr(t, toA)
	got := make(chan []byte, 256)
	go readAll(b, got)
	enc, _ := codec.NewEncoder(codec.Format{Name: "PCMU", Clock: 8000}, 20)
	g := codec.NewToneGen(8000, 3, 10)
	pcm := make([]int16, 160)
	for i := range 30 {
		if i >= 10 && i < 20 {
			g.Fill(pcm)
		} else {
			clear(pcm)
		}
		p, _ := enc.Encode(nil, pcm)
		if _, err := a.WriteToUDP(rtppacket.RTP{PayloadType: 0, Seq: uint16(i), Timestamp: uint32(160 * i), SSRC: 0xd}.Packet(p), to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	events, ends := 0, 0
	collect(t, got, 40, func(p []byte) {
		if p[1]&0x7f == 96 && len(p) >= 16 {
			events++
			if p[12] != 3 {
				t.Errorf("event %d, want 3", p[12])
			}
			if p[13]&0x80 != 0 {
				ends++
			}
		}
	})
	if events < 5 || ends != 3 {
		t.Fatalf("the callee got %d event packets, %d ends; want the digit's 200 ms of them and three ends", events, ends)
	}
	buf := make([]byte, 2048)
	_ = logDest.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := logDest.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), `"event":3`) || !strings.Contains(string(buf[:n]), `"source_tag":"A"`) {
		t.Fatalf("DTMF log %q %v", buf[:max(0, n)], err)
	}
}
