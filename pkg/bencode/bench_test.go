package bencode

import (
	"strings"
	"testing"
)

// benchSDP is a 300-byte SDP offer like a SIP phone's.
var benchSDP = "v=0\r\n" +
	"o=alice-p1ph0ne 53655765 2353687637 IN IP4 198.51.100.5\r\n" +
	"s=-\r\n" +
	"c=IN IP4 198.51.100.5\r\n" +
	"t=0 0\r\n" +
	"m=audio 7300 RTP/AVP 0 8 9 101\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\n" +
	"a=ptime:20\r\n" +
	"a=maxptime:150\r\n" +
	"a=sendrecv\r\n" +
	"a=rtcp:7301\r\n"

// benchOffer is a Kamailio-style offer of about 1 KB.
func benchOffer() []byte {
	d := NewDict()
	d.Set("supports", Strs("load limit"))
	d.Set("sdp", Str(benchSDP))
	d.Set("call-id", Str("a84b4c76e66710@pc33.atlanta.example.com-"+strings.Repeat("x", 20)))
	d.Set("via-branch", Str("z9hG4bK776asdhds.0"))
	d.Set("received-from", Strs("IP4", "198.51.100.5"))
	d.Set("from-tag", Str("1928301774"))
	d.Set("flags", Strs("trust-address", "SIP-source-address", "loop-protect", "strict-source", "no-redis-update"))
	d.Set("replace", Strs("origin", "session-connection", "SDP-version"))
	d.Set("rtcp-mux", Strs("demux"))
	d.Set("ICE", Str("remove"))
	d.Set("transport-protocol", Str("RTP/AVP"))
	d.Set("direction", Strs("external", "internal"))
	d.Set("record call", Str("no"))
	d.Set("codec", NewDict(Pair{"strip", Strs("G722")}, Pair{"offer", Strs("PCMU", "PCMA")}))
	d.Set("metadata", Str("customer=1234|site=fra1|"+strings.Repeat("m", 160)))
	d.Set("TOS", Int(184))
	d.Set("command", Str("offer"))
	return Encode(d)
}

func benchReply() Value {
	d := NewDict()
	d.Set("sdp", Str(benchSDP)).Set("result", Str("ok"))
	return d
}

func TestBenchOfferShape(t *testing.T) {
	if n := len(benchSDP); n != 300 {
		t.Errorf("SDP is %d bytes, want 300", n)
	}
	if n := len(benchOffer()); n < 900 || n > 1200 {
		t.Errorf("offer is %d bytes, want about 1 KB", n)
	}
}

func BenchmarkDecodeOffer(b *testing.B) {
	in := benchOffer()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitOffer(b *testing.B) {
	in := benchOffer()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Split(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromJSONOffer(b *testing.B) {
	v, err := Decode(benchOffer(), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	in := ToJSON(v)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromJSON(in, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReply encodes an offer reply into a fresh buffer (Encode).
func BenchmarkEncodeReply(b *testing.B) {
	r := benchReply()
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(r)
	}
}

// BenchmarkAppendReply builds the reply and appends it to a reused buffer,
// as a UDP server would.
func BenchmarkAppendReply(b *testing.B) {
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		r := NewDict(Pair{"sdp", Str(benchSDP)}, Pair{"result", Str("ok")})
		buf = r.AppendTo(append(buf[:0], "5323_2 "...))
	}
}

func BenchmarkToJSONReply(b *testing.B) {
	r := benchReply()
	b.ReportAllocs()
	for b.Loop() {
		_ = ToJSON(r)
	}
}
