package nodetest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestMediaEcho runs media-echo through a whole node, as rtpengine's
// "echo=fwd" and "echo=bkw" cases do: with forward on the offer the
// callee gets its own media back (another SSRC, from the port it sent
// to) and the caller's media goes nowhere; with backward the other way
// round; a mode rtpengine does not know either is named in a warning and
// the call forwards as usual.
func TestMediaEcho(t *testing.T) {
	_, c, _ := testutil.StartLocalNode(t, 49200, 49299, "--delete-delay=0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name, key, mode string
		echoA, echoB    bool // whose media comes back to it
		forward         bool // no echo: forwarded as usual
		warning         string
	}{
		{name: "forward", key: "media-echo", mode: "fw", echoB: true},
		{name: "backward", key: "media echo", mode: "bkw", echoA: true},
		{name: "both", key: "media-echo", mode: "both", echoA: true, echoB: true},
		{name: "blackhole", key: "media-echo", mode: "sinkhole"},
		{name: "unknown", key: "media-echo", mode: "sideways", forward: true, warning: "media-echo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
			id := "echo-" + tc.name
			offer := testutil.NGCall("offer", id, "", testutil.AudioSDP(a))
			offer.Set(tc.key, bencode.Str(tc.mode))
			r, err := c.Do(ctx, offer)
			if res, why := ngclient.Result(r); err != nil || res != "ok" {
				t.Fatalf("offer: %s %s %v", res, why, err)
			}
			if w, _ := r.GetString("warning"); (tc.warning == "") != (w == "") || !strings.Contains(w, tc.warning) {
				t.Errorf("offer's warning %q, want one naming %q", w, tc.warning)
			}
			toB, _ := r.GetString("sdp") // where B sends
			toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", id, "B", testutil.AudioSDP(b)))
			portB, portA := testutil.SDPMediaAddr(t, toB), testutil.SDPMediaAddr(t, toA)

			checkEcho(t, "A", a, b, portA, 0x1000, tc.echoA, tc.forward)
			checkEcho(t, "B", b, a, portB, 0x2000, tc.echoB, tc.forward)

			del := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)})
			testutil.NGOK(t, ctx, c, del)
		})
	}
}

// checkEcho sends RTP from party `from` to our port `to` until something
// arrives (the stream may still be installing), then checks where it went:
// back to `from` with the echo SSRC, to `other` unchanged, or nowhere.
func checkEcho(t *testing.T, name string, from, other *net.UDPConn, to *net.UDPAddr, ssrc uint32, echo, forward bool) {
	t.Helper()
	want, wantSSRC := other, ssrc
	if echo {
		want, wantSSRC = from, fwd.EchoSSRC(ssrc)
	}
	buf := make([]byte, 2048)
	for seq := uint16(1); seq <= 20; seq++ {
		if _, err := from.WriteToUDP(testutil.RTPPacket(ssrc, seq, "hello"), to); err != nil {
			t.Fatal(err)
		}
		if !echo && !forward {
			continue
		}
		_ = want.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, src, err := want.ReadFromUDP(buf)
		if err != nil {
			continue
		}
		h, payload, ok := rtppacket.Read(buf[:n])
		if !ok || h.SSRC != wantSSRC || string(payload) != "hello" {
			t.Fatalf("%s's packet arrived as %x (SSRC %#x, want %#x)", name, buf[:n], h.SSRC, wantSSRC)
		}
		if echo && src.Port != to.Port {
			t.Errorf("%s's echo came from port %d, not the port it sent to (%d)", name, src.Port, to.Port)
		}
		drain(t, name, from, other, want)
		return
	}
	if echo || forward {
		t.Fatalf("%s's packets never arrived", name)
	}
	drain(t, name, from, other, nil)
}

// drain checks that, after the packets seen, nothing more arrives at
// either party except at want.
func drain(t *testing.T, name string, a, b, want *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 2048)
	for _, c := range []*net.UDPConn{a, b} {
		_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				break
			}
			if c != want {
				t.Fatalf("%s's packets reached a party they should not", name)
			}
		}
	}
}
