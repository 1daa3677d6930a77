package rtpfwd

import (
	"testing"

	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// TestSRTPKeyPending: an SRTP media without a key for a direction (the
// answer brings it) is SRTPPending there, never plain RTP; a plain media
// without keys is plain; a key in the record is used.
func TestSRTPKeyPending(t *testing.T) {
	for _, tc := range []struct {
		proto string
		attrs []string
		want  srtp.ProtectionProfile
	}{
		{"RTP/SAVP", nil, fwd.SRTPPending.Profile},
		{"RTP/SAVPF", nil, fwd.SRTPPending.Profile},
		{"rtp/savp", nil, fwd.SRTPPending.Profile},
		{"RTP/AVP", nil, 0},
		{"RTP/AVPF", nil, 0},
		{"RTP/SAVP", []string{"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"}, srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		k, err := srtpKey(tc.proto, tc.attrs)
		if err != nil || k.Profile != tc.want {
			t.Errorf("%s %v: %v (%v), want profile %v", tc.proto, tc.attrs, k, err, tc.want)
		}
	}
}
