package calls

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

const trickleOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=mid:a0\r\n" +
	"a=ice-ufrag:trkl\r\na=ice-pwd:tricklepassword012345678\r\na=ice-options:trickle\r\n"

// fragmentReq is an offer with the fragment flag and an RFC 8840 body.
func fragmentReq(call, from, body string) *Request {
	r := req("offer", call, from, "", body)
	r.Flags["fragment"] = true
	return r
}

// TestTrickleFragments: trickle ICE SDP fragments add the party's
// candidates (matched by a=mid) and change nothing else, with no SDP in
// the reply; a fragment that overtakes the offer waits and is applied
// after it; one with another ufrag (an older generation) is ignored.
func TestTrickleFragments(t *testing.T) {
	e := newTestEngine(newFakePorts())
	ctx := context.Background()
	early := "a=ice-options:trickle\r\nm=audio 9 RTP/AVP 0\r\na=mid:a0\r\na=ice-ufrag:trkl\r\n" +
		"a=candidate:1 1 UDP 2130706431 192.0.2.7 40000 typ host\r\n"
	if out, err := e.Offer(ctx, fragmentReq("tf", "A", early)); err != nil || len(out) != 0 {
		t.Fatalf("a fragment before the offer: %q, %v", out, err)
	}
	if _, ok := e.Record("tf"); ok {
		t.Fatal("a fragment made a call")
	}
	if _, err := e.Offer(ctx, req("offer", "tf", "A", "", trickleOffer)); err != nil {
		t.Fatal(err)
	}
	cands := func() []netip.AddrPort {
		r := e.mustRecord(t, "tf")
		for _, l := range r.Legs {
			if l.Tag == "A" {
				return l.Medias[0].ICE.Candidates
			}
		}
		t.Fatal("no leg A")
		return nil
	}
	if got := cands(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:40000")}) {
		t.Fatalf("after the offer, the early fragment's candidates: %v", got)
	}
	before := e.mustRecord(t, "tf")
	more := "m=audio 9 RTP/AVP 0\r\na=mid:a0\r\na=ice-ufrag:trkl\r\n" +
		"a=candidate:2 1 UDP 1694498815 203.0.113.9 41000 typ srflx raddr 192.0.2.7 rport 40000\r\n" +
		"a=candidate:3 1 TCP 1518280447 192.0.2.7 9 typ host tcptype active\r\n" +
		"a=candidate:4 1 UDP 2130706431 abcd-1234.local 40002 typ host\r\n"
	if out, err := e.Offer(ctx, fragmentReq("tf", "A", more)); err != nil || len(out) != 0 {
		t.Fatalf("a fragment: %q, %v", out, err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:40000"), netip.MustParseAddrPort("203.0.113.9:41000")}
	if got := cands(); !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v (UDP with addresses only)", got, want)
	}
	stale := "m=audio 9 RTP/AVP 0\r\na=mid:a0\r\na=ice-ufrag:old1\r\na=candidate:5 1 UDP 2130706431 192.0.2.99 1 typ host\r\n"
	if _, err := e.Offer(ctx, fragmentReq("tf", "A", stale)); err != nil {
		t.Fatal(err)
	}
	if got := cands(); !slices.Equal(got, want) {
		t.Fatalf("a fragment of another ufrag changed the candidates: %v", got)
	}
	after := e.mustRecord(t, "tf")
	if after.LastSignal != before.LastSignal || len(after.Legs) != len(before.Legs) ||
		after.Legs[1].Medias[0].Streams[0] != before.Legs[1].Medias[0].Streams[0] {
		t.Fatal("a fragment changed the call beyond the candidates")
	}
}
