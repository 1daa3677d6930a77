package rtpfwd

import (
	"fmt"
	"strings"

	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/sdes"
)

// srtpProfiles maps the SDES suites to the packet path's profiles
// (pion's, and pkg/fwd's for AES-192 and F8, which pkg/srtpctx does).
var srtpProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AES_256_CM_HMAC_SHA1_80": srtp.ProtectionProfileAes256CmHmacSha1_80,
	"AES_256_CM_HMAC_SHA1_32": srtp.ProtectionProfileAes256CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
	"NULL_HMAC_SHA1_80":       srtp.ProtectionProfileNullHmacSha1_80,
	"NULL_HMAC_SHA1_32":       srtp.ProtectionProfileNullHmacSha1_32,
	"AES_192_CM_HMAC_SHA1_80": fwd.ProfileAes192CmHmacSha1_80,
	"AES_192_CM_HMAC_SHA1_32": fwd.ProfileAes192CmHmacSha1_32,
	"F8_128_HMAC_SHA1_80":     fwd.ProfileF8128HmacSha1_80,
	"F8_128_HMAC_SHA1_32":     fwd.ProfileF8128HmacSha1_32,
}

// errNoProfile is a suite the packet path cannot do.
var errNoProfile = fmt.Errorf("%w: crypto suite not supported by the packet path", fwd.ErrSRTP)

// srtpKey is the key a media record's SDES list (attrs) puts first (the
// one in use); other is the list of the other direction. With none,
// zero (plain RTP) if the media's transport protocol is plain, else
// fwd.SRTPPending (an SRTP party before the answer brings the key of this
// direction: its packets must not pass as plain RTP). A plain-protocol
// media with keys in one direction only is OSRTP not settled yet (before
// the answer): pending too, until the answer gives keys both ways (SRTP)
// or none (plain). The error never contains key material.
func srtpKey(protocol string, attrs, other []string) (fwd.SRTP, error) {
	savp := strings.EqualFold(protocol, "RTP/SAVP") || strings.EqualFold(protocol, "RTP/SAVPF") ||
		strings.EqualFold(protocol, "UDP/TLS/RTP/SAVP") || strings.EqualFold(protocol, "UDP/TLS/RTP/SAVPF")
	switch {
	case len(attrs) == 0 && (savp || len(other) > 0):
		return fwd.SRTPPending, nil
	case len(attrs) == 0:
		return fwd.SRTP{}, nil
	case !savp && len(other) == 0:
		return fwd.SRTPPending, nil
	}
	c, err := sdes.Parse(attrs[0])
	if err != nil {
		return fwd.SRTP{Profile: 0xffff}, fmt.Errorf("%w: unreadable crypto attribute", fwd.ErrSRTP)
	}
	p, ok := srtpProfiles[c.Suite.Name]
	if !ok {
		return fwd.SRTP{Profile: 0xffff}, errNoProfile
	}
	k, err := fwd.NewSRTP(p, c.Key, c.Salt, c.MKI)
	k.PlainSRTP, k.PlainSRTCP, k.NoAuthSRTP = c.UnencryptedSRTP, c.UnencryptedSRTCP, c.UnauthenticatedSRTP
	return k, err
}

// cryptoValue is an a=crypto value (tag 1) of a key the packet path holds
// (a DTLS handshake's), for the call record; "" for a key no SDES suite
// names.
func cryptoValue(k fwd.SRTP) string {
	for name, p := range srtpProfiles {
		if p != k.Profile {
			continue
		}
		s := sdes.SuiteByName(name)
		if s == nil {
			return ""
		}
		c := sdes.Crypto{Tag: 1, Suite: s, Key: k.Key[:s.KeyLen], Salt: k.Salt[:s.SaltLen]}
		return c.Attribute(sdes.FormatOptions{Pad: true})
	}
	return ""
}
