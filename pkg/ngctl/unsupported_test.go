package ngctl

import (
	"strings"
	"testing"

	"github.com/rtpkit/rtpkit/pkg/bencode"
)

// TestUnsupportedOptions: what rtpkit does not carry out is named in a
// warning, or refused where the endpoints could not use the media.
func TestUnsupportedOptions(t *testing.T) {
	p := newTestProtocol()
	calls := 0
	offer := func(extra ...bencode.Pair) string {
		calls++ // a call of its own each: a re-offer keeps the keys offered before
		d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")},
			bencode.Pair{Key: "call-id", Value: bencode.Str("u" + itoa(calls))}, bencode.Pair{Key: "from-tag", Value: bencode.Str("a")},
			bencode.Pair{Key: "sdp", Value: bencode.Str("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=ice-ufrag:x\r\n")})
		for _, e := range extra {
			d.Set(e.Key, e.Value)
		}
		return handle(p, string(bencode.Encode(d)))
	}
	for _, tt := range []struct {
		name  string
		extra []bencode.Pair
		want  []string // in the reply
		not   []string
	}{
		{name: "everything carried out", extra: []bencode.Pair{{Key: "flags", Value: bencode.Strs("trust-address", "strict-source")},
			{Key: "replace", Value: bencode.Strs("origin")}, {Key: "ICE", Value: bencode.Str("remove")}},
			want: []string{"6:result2:ok"}, not: []string{"warning"}},
		{name: "flags and keys not carried out", extra: []bencode.Pair{{Key: "flags", Value: bencode.Strs("generate-RTCP", "codec-ignore-PCMA", "bogus")},
			{Key: "replace", Value: bencode.Strs("everything")}, {Key: "TOS", Value: bencode.Int(184)}, {Key: "nonsense", Value: bencode.Str("1")}},
			want: []string{"6:result2:ok", "flag generate-RTCP is not supported", "flag codec-ignore-PCMA is not supported", `unknown flag "bogus"`,
				`replace "everything" is not supported`, "TOS is not supported", `unknown key "nonsense"`}},
		{name: "ICE in the SDP, ICE default", extra: []bencode.Pair{{Key: "ICE", Value: bencode.Str("default")}},
			want: []string{"6:result2:ok", "a=ice-ufrag:", "a=candidate:"}, not: []string{"warning", "a=ice-ufrag:x\r\n"}},
		{name: "ICE force", extra: []bencode.Pair{{Key: "ICE", Value: bencode.Str("force")}},
			want: []string{"6:result2:ok", "a=ice-pwd:", " 1 UDP 2130706431 "}, not: []string{"warning"}},
		{name: "ICE force-relay", extra: []bencode.Pair{{Key: "ICE", Value: bencode.Str("force-relay")}},
			want: []string{"5:error", "ICE=force-relay is not supported"}},
		{name: "SRTP transport, SDES keys offered", extra: []bencode.Pair{{Key: "transport-protocol", Value: bencode.Str("RTP/SAVP")}},
			want: []string{"6:result2:ok", "RTP/SAVP 0", "a=crypto:1 AEAD_AES_256_GCM inline:", "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:",
				"a=crypto:5 AES_192_CM_HMAC_SHA1_80 inline:", "a=crypto:10 F8_128_HMAC_SHA1_32 inline:"}, not: []string{"warning"}},
		{name: "SRTP transport, SDES off", extra: []bencode.Pair{{Key: "transport-protocol", Value: bencode.Str("RTP/SAVP")}, {Key: "SDES", Value: bencode.Strs("off")}},
			want: []string{"5:error", "without an SDES crypto suite"}},
		{name: "DTLS-SRTP transport without a certificate", extra: []bencode.Pair{{Key: "transport-protocol", Value: bencode.Str("UDP/TLS/RTP/SAVPF")}},
			want: []string{"5:error", "UDP/TLS media without DTLS"}},
		{name: "SDES options", extra: []bencode.Pair{{Key: "transport-protocol", Value: bencode.Str("RTP/SAVP")}, {Key: "SDES", Value: bencode.Strs("no-NULL_HMAC_SHA1_80", "pad", "nonsense")},
			{Key: "flags", Value: bencode.Strs("SDES-no-NULL_HMAC_SHA1_32", "SDES-unencrypted_srtcp", "SDES-unauthenticated_srtp")}},
			want: []string{"6:result2:ok", `SDES option "nonsense" is not supported`,
				"inline:", " UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP\r\n"}, not: []string{"NULL_HMAC", "flag SDES-unencrypted_srtcp", "flag SDES-unauthenticated_srtp"}},
		{name: "DTLS passive on plain RTP", extra: []bencode.Pair{{Key: "DTLS", Value: bencode.Str("passive")}}, want: []string{"6:result2:ok"}, not: []string{"warning", "a=setup"}},
		{name: "DTLS nonsense", extra: []bencode.Pair{{Key: "DTLS", Value: bencode.Str("sideways")}}, want: []string{"6:result2:ok", "DTLS=sideways is not a DTLS mode"}},
		{name: "transcoding to a codec rtpkit lacks", extra: []bencode.Pair{{Key: "codec", Value: bencode.NewDict(bencode.Pair{Key: "transcode", Value: bencode.Strs("AMR-WB")})}},
			want: []string{"5:error", "Transcoding to AMR-WB is not supported"}},
		{name: "T.38", extra: []bencode.Pair{{Key: "T.38", Value: bencode.Strs("decode")}}, want: []string{"5:error", "T.38"}},
		{name: "replace-origin as a flag", extra: []bencode.Pair{{Key: "flags", Value: bencode.Strs("replace-origin")}},
			want: []string{"6:result2:ok"}, not: []string{"warning"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := offer(tt.extra...)
			for _, w := range tt.want {
				if !strings.Contains(r, w) {
					t.Errorf("no %q in %s", w, r)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(r, w) {
					t.Errorf("%q in %s", w, r)
				}
			}
		})
	}
	// Counted by name, with a bounded label set.
	if n := p.unsupported.counter.WithLabelValues("unknown-flag"); n == nil {
		t.Fatal("no counter")
	}
	if got := labelOf("some-client-invented-name"); got != "other" {
		t.Errorf("label of an invented name: %q", got)
	}
}
