package sdp

import (
	"net/netip"
	"testing"
)

// benchOffer is a typical offer from a SIP phone: audio with a few codecs
// and DTMF, video with feedback, ICE to be removed.
var benchOffer = crlf(`
v=0
o=user 1712345678 1712345678 IN IP4 192.0.2.33
s=SIP Call
c=IN IP4 192.0.2.33
t=0 0
a=ice-ufrag:Fx9a
a=ice-pwd:0123456789abcdef0123456789
m=audio 16384 RTP/AVP 96 9 8 0 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:60
a=candidate:1 1 UDP 2130706431 192.0.2.33 16384 typ host
a=candidate:1 2 UDP 2130706430 192.0.2.33 16385 typ host
a=sendrecv
a=rtcp:16385
m=video 16386 RTP/AVPF 97
b=AS:1024
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42e01f;packetization-mode=1
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 ccm fir
a=sendrecv
`)

func benchPlan(b *testing.B, s *Session) Plan {
	addr := netip.MustParseAddr("203.0.113.1")
	p := Plan{SessionAddr: addr}
	for i, m := range s.Media() {
		pts, err := m.PayloadTypes()
		if err != nil {
			b.Fatal(err)
		}
		p.Media = append(p.Media, MediaPlan{Port: 30000 + 2*i, Addr: addr, Codecs: pts,
			Direction: m.SenderDirection(), RTCPPort: 30001 + 2*i, Ptime: m.Ptime()})
	}
	return p
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOffer)))
	for b.Loop() {
		if _, err := Parse(benchOffer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	s, err := Parse(benchOffer)
	if err != nil {
		b.Fatal(err)
	}
	p := benchPlan(b, s)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOffer)))
	for b.Loop() {
		if _, err := Rewrite(s, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOffer is the whole text work of an offer: parse, read the
// payload types and directions, rewrite.
func BenchmarkOffer(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOffer)))
	for b.Loop() {
		s, err := Parse(benchOffer)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Rewrite(s, benchPlan(b, s)); err != nil {
			b.Fatal(err)
		}
	}
}
