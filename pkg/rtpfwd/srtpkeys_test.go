package rtpfwd

import (
	"testing"

	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// TestSRTPKeyPending: an SRTP media without a key for a direction (the
// answer brings it) is SRTPPending there, never plain RTP; a plain media
// without keys is plain; a key in the record is used. OSRTP (a plain
// protocol with keys) is pending while only one direction has keys (before
// the answer), SRTP once both have, plain with none.
func TestSRTPKeyPending(t *testing.T) {
	key := []string{"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}
	f8 := []string{"9 F8_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}
	for _, tc := range []struct {
		proto        string
		attrs, other []string
		want         srtp.ProtectionProfile
	}{
		{"RTP/SAVP", nil, nil, fwd.SRTPPending.Profile},
		{"RTP/SAVPF", nil, key, fwd.SRTPPending.Profile},
		{"rtp/savp", nil, nil, fwd.SRTPPending.Profile},
		{"RTP/AVP", nil, nil, 0},
		{"RTP/AVPF", nil, nil, 0},
		{"RTP/SAVP", key, nil, srtp.ProtectionProfileAes128CmHmacSha1_80},
		{"RTP/SAVP", f8, key, fwd.ProfileF8128HmacSha1_32},
		{"RTP/AVP", key, nil, fwd.SRTPPending.Profile},
		{"RTP/AVP", nil, key, fwd.SRTPPending.Profile},
		{"RTP/AVP", key, key, srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		k, err := srtpKey(tc.proto, tc.attrs, tc.other)
		if err != nil || k.Profile != tc.want {
			t.Errorf("%s %v: %v (%v), want profile %v", tc.proto, tc.attrs, k, err, tc.want)
		}
	}
}
