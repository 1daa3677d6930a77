package fwd

// SRTP on the packet path: a stream whose party speaks SRTP has its
// packets authenticated and decrypted as they arrive (SRTPIn) and the
// packets sent to it encrypted (SRTPOut), with pion/srtp, or with
// pkg/srtpctx for what pion does not carry (AES-192, AES-f8, SRTP without
// authentication tags). Contexts are
// built when a stream is set and kept while its keys stay the same, so the
// rollover counters and replay windows carry on across updates. The
// packet path does not allocate: decryption is in place, encryption into
// the loop's output buffers, and headers are checked here before pion
// parses them (its parser builds an error with fmt for some malformed
// headers, and this code runs on every packet from the network).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/rtpkit/rtpkit/pkg/srtpctx"
)

// Profiles of the SDES suites pion/srtp does not do, which pkg/srtpctx
// carries out; numbered outside pion's (and the DTLS-SRTP registry's)
// use.
const (
	ProfileAes192CmHmacSha1_80 srtp.ProtectionProfile = 0xf001 + iota
	ProfileAes192CmHmacSha1_32
	ProfileF8128HmacSha1_80
	ProfileF8128HmacSha1_32
)

// profileInfo is what the packet path needs of a profile: key and salt
// lengths, the pkg/srtpctx cipher and SRTP tag length of the HMAC-SHA1
// ones (which that package can do too), and whether it is one of pion's.
type profileInfo struct {
	keyLen, saltLen int
	cipher          srtpctx.Cipher
	tagLen          int
	null, aead      bool
	name            string // "": pion's, else ours and named so
}

// profiles are the profiles the packet path knows.
var profiles = map[srtp.ProtectionProfile]profileInfo{
	srtp.ProtectionProfileAes128CmHmacSha1_80: {keyLen: 16, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 10},
	srtp.ProtectionProfileAes128CmHmacSha1_32: {keyLen: 16, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 4},
	srtp.ProtectionProfileAes256CmHmacSha1_80: {keyLen: 32, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 10},
	srtp.ProtectionProfileAes256CmHmacSha1_32: {keyLen: 32, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 4},
	srtp.ProtectionProfileNullHmacSha1_80:     {keyLen: 16, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 10, null: true},
	srtp.ProtectionProfileNullHmacSha1_32:     {keyLen: 16, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 4, null: true},
	srtp.ProtectionProfileAeadAes128Gcm:       {keyLen: 16, saltLen: 12, aead: true},
	srtp.ProtectionProfileAeadAes256Gcm:       {keyLen: 32, saltLen: 12, aead: true},
	ProfileAes192CmHmacSha1_80:                {keyLen: 24, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 10, name: "SRTP_AES192_CM_HMAC_SHA1_80"},
	ProfileAes192CmHmacSha1_32:                {keyLen: 24, saltLen: 14, cipher: srtpctx.AESCM, tagLen: 4, name: "SRTP_AES192_CM_HMAC_SHA1_32"},
	ProfileF8128HmacSha1_80:                   {keyLen: 16, saltLen: 14, cipher: srtpctx.AESF8, tagLen: 10, name: "SRTP_F8_128_HMAC_SHA1_80"},
	ProfileF8128HmacSha1_32:                   {keyLen: 16, saltLen: 14, cipher: srtpctx.AESF8, tagLen: 4, name: "SRTP_F8_128_HMAC_SHA1_32"},
}

// ours reports whether k's context is pkg/srtpctx's rather than pion's:
// the profiles pion lacks, and SRTP without tags (the AEAD profiles
// always authenticate: NoAuthSRTP means nothing to them, as to rtpengine).
func (k SRTP) ours() bool {
	info := profiles[k.Profile]
	return info.name != "" || k.NoAuthSRTP && !info.aead
}

// srtpContext is a direction's SRTP context: pion's *srtp.Context or
// pkg/srtpctx's.
type srtpContext interface {
	DecryptRTP(dst, p []byte, h *rtp.Header) ([]byte, error)
	EncryptRTP(dst, p []byte, h *rtp.Header) ([]byte, error)
	DecryptRTCP(dst, p []byte, h *rtcp.Header) ([]byte, error)
	EncryptRTCP(dst, p []byte, h *rtcp.Header) ([]byte, error)
	ROC(ssrc uint32) (uint32, bool)
	SetROC(ssrc, roc uint32)
}

// SRTP is one direction's SRTP master key: the protection profile (pion's
// numbering; 0 for plain RTP) and the master key and salt, in the first
// KeyLen and SaltLen bytes of the arrays. It is comparable, so a Stream
// is too.
type SRTP struct {
	Profile srtp.ProtectionProfile
	Key     [32]byte
	Salt    [14]byte
	// MKI is the master key identifier carried in every packet (RFC 3711
	// §3.1), its first MKILen bytes; MKILen 0: none.
	MKI    [maxMKI]byte
	MKILen uint8
	// PlainSRTP and PlainSRTCP leave RTP or RTCP payloads unencrypted
	// (authenticated only): SDES's UNENCRYPTED_SRTP and UNENCRYPTED_SRTCP.
	PlainSRTP, PlainSRTCP bool
	// NoAuthSRTP sends and takes SRTP packets without an authentication
	// tag (SDES's UNAUTHENTICATED_SRTP; SRTCP stays authenticated); the
	// AEAD profiles ignore it.
	NoAuthSRTP bool
	// ROC is the rollover counter to start from for SSRCs this context has
	// not seen yet (a call continued after a restart or a failover); 0
	// for a new call.
	ROC uint32
}

// maxMKI is the longest MKI the packet path takes (bytes).
const maxMKI = 16

// Enabled reports whether k protects anything (SRTPPending too).
func (k SRTP) Enabled() bool { return k.Profile != 0 }

// pendingProfile is SRTPPending's profile, none of pion's.
const pendingProfile srtp.ProtectionProfile = 0xfffe

// SRTPPending is the key of a direction that speaks SRTP but whose key is
// not known yet (an SRTP party before the answer: the keys it sends with,
// or those it is to be sent with, come in the answer): nothing passes that
// way as plain RTP. Packets from the party and for it wait in the loop's
// hold ring (hold.go) for the key, at most holdFor: then what the party
// sent is authenticated before anything else (one that fails is an SRTP
// failure, dropped) and what it was sent goes out encrypted.
var SRTPPending = SRTP{Profile: pendingProfile}

// String hides the key.
func (k SRTP) String() string {
	switch {
	case !k.Enabled():
		return "plain"
	case k == SRTPPending:
		return "SRTP, key pending"
	}
	name := profiles[k.Profile].name
	if name == "" {
		name = k.Profile.String()
	}
	return name + " [key hidden]"
}

// GoString hides the key from %#v too.
func (k SRTP) GoString() string { return "fwd.SRTP{" + k.String() + "}" }

// NewSRTP builds an SRTP value from a profile, key and salt of the
// profile's lengths, and an MKI (nil: none; at most 16 bytes).
func NewSRTP(profile srtp.ProtectionProfile, key, salt, mki []byte) (SRTP, error) {
	k := SRTP{Profile: profile}
	if err := k.check(len(key), len(salt)); err != nil {
		return SRTP{}, err
	}
	if len(mki) > maxMKI {
		return SRTP{}, fmt.Errorf("%w: an MKI of %d bytes, at most %d", ErrSRTP, len(mki), maxMKI)
	}
	copy(k.Key[:], key)
	copy(k.Salt[:], salt)
	k.MKILen = uint8(copy(k.MKI[:], mki))
	return k, nil
}

// ErrSRTP is returned (wrapped) for an unusable SRTP configuration.
var ErrSRTP = errors.New("fwd: bad SRTP configuration")

func (k SRTP) check(keyLen, saltLen int) error {
	if !k.Enabled() || k == SRTPPending {
		return nil
	}
	info, ok := profiles[k.Profile]
	kl, sl := info.keyLen, info.saltLen
	switch {
	case !ok:
		return fmt.Errorf("%w: profile %d", ErrSRTP, k.Profile)
	case int(k.MKILen) > maxMKI:
		return fmt.Errorf("%w: MKI length %d", ErrSRTP, k.MKILen)
	case kl > len(k.Key) || sl > len(k.Salt):
		return fmt.Errorf("%w: %s needs a longer key or salt than this build holds", ErrSRTP, k.Profile)
	case keyLen >= 0 && (keyLen != kl || saltLen != sl):
		return fmt.Errorf("%w: %s takes a %d-byte key and %d-byte salt, not %d and %d", ErrSRTP, k.Profile, kl, sl, keyLen, saltLen)
	}
	return nil
}

// srtpOverhead is the most SRTP adds to a packet: a 16-byte GCM tag or a
// 10-byte HMAC tag, the SRTCP index (4 bytes) and an MKI.
const srtpOverhead = 16 + 4 + maxMKI

// obufSize is the size of one SRTP output buffer of a loop: the largest
// packet received, protected.
const obufSize = bufSize + srtpOverhead

// unprotect decrypts a packet from s's party (rtcp: muxed RTCP on an RTP
// socket; an RTCP stream's packets are all RTCP).
func (s *stream) unprotect(p []byte, rtcp bool) ([]byte, bool) {
	if s.srtpBroken {
		return nil, false
	}
	return s.in.unprotect(p, rtcp || s.cfg.Flags&RTCP != 0)
}

// protect encrypts a packet for s's party into dst.
func (s *stream) protect(dst, p []byte, rtcp bool) ([]byte, bool) {
	if s.srtpBroken {
		return nil, false
	}
	return s.out.protect(dst, p, rtcp)
}

// crypt is a stream's SRTP context for one direction.
type crypt struct {
	keys SRTP
	ctx  srtpContext // nil for SRTPPending
	rtpH rtp.Header
	rtcH rtcp.Header
	roc  map[uint32]bool // SSRCs whose starting ROC was set
	// lastSSRC and lastSeq are of the last RTP packet; a sequence number
	// below the last one may mean a rollover, so the ROC is read again
	// then and published in pubROC (a stream's counters).
	lastSSRC uint32
	lastSeq  uint16
	pubROC   *atomic.Uint32
}

// replayWindow is the replay window of decrypting contexts, in packets
// (libsrtp's default).
const replayWindow = 128

// newCrypt builds a context for k, nil for plain RTP; a decrypting one
// (inbound) refuses replayed packets.
func newCrypt(k SRTP, inbound bool, pub *atomic.Uint32) (*crypt, error) {
	if !k.Enabled() {
		return nil, nil
	}
	if err := k.check(-1, -1); err != nil {
		return nil, err
	}
	if k == SRTPPending {
		return &crypt{keys: k}, nil // no context: every packet fails
	}
	info := profiles[k.Profile]
	if k.ours() {
		ctx, err := srtpctx.New(srtpctx.Config{
			Cipher: info.cipher, Key: k.Key[:info.keyLen], Salt: k.Salt[:info.saltLen], TagLen: info.tagLen,
			NoAuthRTP: k.NoAuthSRTP, NoEncryptRTP: k.PlainSRTP || info.null, NoEncryptRTCP: k.PlainSRTCP || info.null,
			MKI: k.MKI[:k.MKILen], Replay: inbound,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSRTP, err)
		}
		pub.Store(k.ROC)
		return &crypt{keys: k, ctx: ctx, roc: map[uint32]bool{}, pubROC: pub}, nil
	}
	kl, sl := info.keyLen, info.saltLen
	var opts []srtp.ContextOption
	if k.MKILen > 0 {
		opts = append(opts, srtp.MasterKeyIndicator(k.MKI[:k.MKILen]))
	}
	if k.PlainSRTP {
		opts = append(opts, srtp.SRTPNoEncryption())
	}
	if k.PlainSRTCP {
		opts = append(opts, srtp.SRTCPNoEncryption())
	}
	if inbound {
		opts = append(opts, srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	}
	ctx, err := srtp.CreateContext(k.Key[:kl], k.Salt[:sl], k.Profile, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSRTP, err)
	}
	pub.Store(k.ROC)
	return &crypt{keys: k, ctx: ctx, roc: map[uint32]bool{}, pubROC: pub}, nil
}

// pending reports whether c is a direction whose key is still to come.
func (c *crypt) pending() bool { return c != nil && c.ctx == nil }

// update keeps c when k is the same key, else builds a new context.
func (c *crypt) update(k SRTP, inbound bool, pub *atomic.Uint32) (*crypt, error) {
	if c != nil && c.keys.Profile == k.Profile && c.keys.Key == k.Key && c.keys.Salt == k.Salt && c.keys.MKI == k.MKI && c.keys.MKILen == k.MKILen &&
		c.keys.PlainSRTP == k.PlainSRTP && c.keys.PlainSRTCP == k.PlainSRTCP && c.keys.NoAuthSRTP == k.NoAuthSRTP {
		c.keys.ROC = k.ROC
		return c, nil
	}
	return newCrypt(k, inbound, pub)
}

// seen notes an RTP packet handled under the context: after a sequence
// number that went down (a wrap, most likely) it publishes the SSRC's
// ROC, which pion has advanced.
func (c *crypt) seen(ssrc uint32, seq uint16) {
	if ssrc == c.lastSSRC && seq >= c.lastSeq {
		c.lastSeq = seq
		return
	}
	c.lastSSRC, c.lastSeq = ssrc, seq
	if roc, ok := c.ctx.ROC(ssrc); ok {
		c.pubROC.Store(roc)
	}
}

// rtpHeaderLen is the length of the RTP header at the start of p, or 0 if
// p is too short for it or not RTP version 2 (srtpctx.HeaderLen).
func rtpHeaderLen(p []byte) int { return srtpctx.HeaderLen(p) }

// startROC sets the configured starting ROC the first time an SSRC is
// seen (before its first packet is processed).
func (c *crypt) startROC(ssrc uint32) {
	if c.keys.ROC == 0 || c.roc[ssrc] {
		return
	}
	if len(c.roc) < 64 { // bounded: a party does not send from many SSRCs
		c.roc[ssrc] = true
		c.ctx.SetROC(ssrc, c.keys.ROC)
	}
}

// unprotect authenticates and decrypts p in place; it returns the
// plaintext (a prefix of p) or false if p fails (bad tag, replay, too
// short, not RTP/RTCP).
func (c *crypt) unprotect(p []byte, isRTCP bool) ([]byte, bool) {
	if c.ctx == nil {
		return nil, false
	}
	if isRTCP {
		// Header (8), the sender's SSRC, the SRTCP index (4) and a tag.
		if len(p) < 8+4 || p[0]>>6 != 2 {
			return nil, false
		}
		// pion parses the header (its errors are preallocated).
		out, err := c.ctx.DecryptRTCP(p[:0], p, &c.rtcH)
		return out, err == nil
	}
	hl := rtpHeaderLen(p)
	if hl == 0 || len(p) < hl+4 {
		return nil, false
	}
	// pion parses the header once (rtpHeaderLen has ruled out the short
	// headers its parser builds errors for); the SSRC is read here only
	// to start its ROC.
	c.startROC(binary.BigEndian.Uint32(p[8:12]))
	out, err := c.ctx.DecryptRTP(p[:0], p, &c.rtpH)
	if err != nil {
		return nil, false
	}
	c.seen(c.rtpH.SSRC, c.rtpH.SequenceNumber)
	return out, true
}

// protect encrypts p into dst (which has room for p and srtpOverhead); it
// returns the packet to send or false if p cannot be protected (not RTP or
// RTCP, or the key is used up).
func (c *crypt) protect(dst, p []byte, isRTCP bool) ([]byte, bool) {
	if c.ctx == nil {
		return nil, false
	}
	if isRTCP {
		if len(p) < 8 || p[0]>>6 != 2 {
			return nil, false
		}
		out, err := c.ctx.EncryptRTCP(dst[:0], p, &c.rtcH)
		return out, err == nil
	}
	if rtpHeaderLen(p) == 0 {
		return nil, false
	}
	c.startROC(binary.BigEndian.Uint32(p[8:12]))
	out, err := c.ctx.EncryptRTP(dst[:0], p, &c.rtpH)
	if err != nil {
		return nil, false
	}
	c.seen(c.rtpH.SSRC, c.rtpH.SequenceNumber)
	return out, true
}
