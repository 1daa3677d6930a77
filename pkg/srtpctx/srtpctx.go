// Package srtpctx is SRTP and SRTCP (RFC 3711) for the transforms that
// github.com/pion/srtp does not carry and SDES peers still offer: AES in
// counter mode with a 192-bit key (RFC 6188), AES-f8 with a 128-bit key
// (RFC 3711 §4.1.2), and SRTP packets without an authentication tag
// (SDES's UNAUTHENTICATED_SRTP, RFC 4568 §6.3.2), with HMAC-SHA1 tags of
// 80 or 32 bits. rtp-fwd uses pion/srtp for every other suite; this
// package offers the same call shape (EncryptRTP, DecryptRTP, EncryptRTCP,
// DecryptRTCP, ROC, SetROC) so that the packet path treats both alike.
//
// A Context is one direction's state (session keys, rollover counters,
// replay windows) and is not safe for concurrent use. After New, the
// packet functions do not allocate except when a new SSRC is first seen,
// and their errors are preallocated values: they run on every packet from
// the network. Key material is never formatted by this package.
package srtpctx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // SRTP's authentication is HMAC-SHA1 (RFC 3711 §4.2.1).
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Cipher is an SRTP encryption transform.
type Cipher uint8

const (
	// AESCM is AES in counter mode (RFC 3711 §4.1.1), with a 16-, 24- or
	// 32-byte master key (RFC 6188 for the longer ones).
	AESCM Cipher = iota + 1
	// AESF8 is AES in f8 mode (RFC 3711 §4.1.2), with a 16-byte key.
	AESF8
)

// Config is the master key and options of a Context.
type Config struct {
	Cipher Cipher
	// Key is the master key (AESCM: 16, 24 or 32 bytes; AESF8: 16); Salt
	// the master salt (14 bytes).
	Key, Salt []byte
	// TagLen is the SRTP authentication tag length in bytes: 10 (80 bits)
	// or 4 (32 bits). SRTCP tags are always 10 bytes (RFC 3711 §5.2).
	TagLen int
	// NoAuthRTP sends and takes SRTP packets without a tag
	// (UNAUTHENTICATED_SRTP); SRTCP is authenticated all the same.
	NoAuthRTP bool
	// NoEncryptRTP and NoEncryptRTCP leave payloads in the clear,
	// authenticated only (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP).
	NoEncryptRTP, NoEncryptRTCP bool
	// MKI is the master key identifier carried in every packet (nil:
	// none).
	MKI []byte
	// Replay turns on replay protection (a 128-packet window per SSRC) for
	// the packets this context decrypts.
	Replay bool
}

// Errors of the packet functions (wrapped by none: compare with ==).
var (
	ErrShort    = errors.New("srtpctx: packet too short")
	ErrNotRTP   = errors.New("srtpctx: not an RTP or RTCP packet")
	ErrMKI      = errors.New("srtpctx: unknown MKI")
	ErrAuth     = errors.New("srtpctx: authentication failed")
	ErrReplayed = errors.New("srtpctx: replayed or too old")
	ErrSSRCs    = errors.New("srtpctx: too many SSRCs")
)

// maxSSRCs bounds the per-SSRC state of a context: a party does not send
// from more, and a flood of made-up SSRCs must not grow memory.
const maxSSRCs = 256

// srtcpTagLen is the SRTCP authentication tag length (bytes).
const srtcpTagLen = 10

// replayWindow is the replay window in packets (libsrtp's default).
const replayWindow = 128

// keys is the session keys of one of SRTP and SRTCP.
type keys struct {
	block cipher.Block // session encryption key
	f8    cipher.Block // AESF8: session key XOR (salt || 0x55…)
	salt  [14]byte
	mac   hash.Hash // HMAC-SHA1 with the session authentication key
}

// rtpState is one SSRC's SRTP state: the rollover counter, the highest
// sequence number under it, and (decrypting) the replay window below the
// highest index.
type rtpState struct {
	roc     uint32
	seq     uint16
	started bool
	window  [replayWindow / 64]uint64
}

// rtcpState is one SSRC's SRTCP state: the next index to send, or the
// highest index taken and the replay window below it.
type rtcpState struct {
	index   uint32
	started bool
	window  [replayWindow / 64]uint64
}

// Context is one direction's SRTP and SRTCP state.
type Context struct {
	cfg     Config
	mki     []byte
	rtp     keys
	rtcp    keys
	srtp    map[uint32]*rtpState
	srtcp   map[uint32]*rtcpState
	iv, ks  [16]byte
	f8iv    [16]byte
	sum     [sha1.Size]byte
	trailer [4]byte
}

// New derives the session keys of cfg's master key and returns a context.
func New(cfg Config) (*Context, error) {
	switch {
	case cfg.Cipher == AESCM && len(cfg.Key) != 16 && len(cfg.Key) != 24 && len(cfg.Key) != 32,
		cfg.Cipher == AESF8 && len(cfg.Key) != 16:
		return nil, fmt.Errorf("srtpctx: a %d-byte master key does not fit the cipher", len(cfg.Key))
	case cfg.Cipher != AESCM && cfg.Cipher != AESF8:
		return nil, fmt.Errorf("srtpctx: unknown cipher %d", cfg.Cipher)
	case len(cfg.Salt) != 14:
		return nil, fmt.Errorf("srtpctx: a %d-byte master salt, not 14", len(cfg.Salt))
	case cfg.TagLen != 10 && cfg.TagLen != 4:
		return nil, fmt.Errorf("srtpctx: tag length %d, not 10 or 4", cfg.TagLen)
	case len(cfg.MKI) > 16:
		return nil, fmt.Errorf("srtpctx: an MKI of %d bytes, at most 16", len(cfg.MKI))
	}
	master, err := aes.NewCipher(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("srtpctx: master key: %w", err)
	}
	c := &Context{
		cfg:   cfg,
		mki:   append([]byte(nil), cfg.MKI...),
		srtp:  map[uint32]*rtpState{},
		srtcp: map[uint32]*rtcpState{},
	}
	c.cfg.Key, c.cfg.Salt, c.cfg.MKI = nil, nil, nil // keep no master key
	// Labels 0–2 are SRTP's encryption key, authentication key and salt,
	// 3–5 SRTCP's (RFC 3711 §4.3.2); the key derivation rate is 0.
	for i, k := range []*keys{&c.rtp, &c.rtcp} {
		base := byte(3 * i)
		encKey := make([]byte, len(cfg.Key))
		authKey := make([]byte, 20)
		derive(master, cfg.Salt, base, encKey)
		derive(master, cfg.Salt, base+1, authKey)
		derive(master, cfg.Salt, base+2, k.salt[:])
		if k.block, err = aes.NewCipher(encKey); err != nil {
			return nil, fmt.Errorf("srtpctx: session key: %w", err)
		}
		if cfg.Cipher == AESF8 {
			// The f8 IV key: the session key XOR the session salt padded
			// with 0x55 to the key's length (RFC 3711 §4.1.2.1).
			m := make([]byte, len(encKey))
			for j := range m {
				m[j] = 0x55
			}
			copy(m, k.salt[:])
			subtle.XORBytes(m, m, encKey)
			if k.f8, err = aes.NewCipher(m); err != nil {
				return nil, fmt.Errorf("srtpctx: f8 IV key: %w", err)
			}
			clear(m)
		}
		k.mac = hmac.New(sha1.New, authKey)
		clear(encKey)
		clear(authKey)
	}
	return c, nil
}

// derive writes len(out) bytes of the session key with label into out:
// the AES-CM keystream of the master key from the IV (master salt XOR
// label·2^48)·2^16 (RFC 3711 §4.3.1 and §4.3.3 with a key derivation rate
// of 0; RFC 6188 §3 for longer keys).
func derive(master cipher.Block, salt []byte, label byte, out []byte) {
	var iv, ks [16]byte
	copy(iv[:], salt)
	iv[7] ^= label
	for off := 0; off < len(out); off += 16 {
		master.Encrypt(ks[:], iv[:])
		copy(out[off:], ks[:])
		binary.BigEndian.PutUint16(iv[14:], binary.BigEndian.Uint16(iv[14:])+1)
	}
}

// ctr XORs data in place with the AES-CM keystream from c.iv.
func (c *Context) ctr(block cipher.Block, data []byte) {
	for len(data) > 0 {
		block.Encrypt(c.ks[:], c.iv[:])
		n := subtle.XORBytes(data, data, c.ks[:])
		data = data[n:]
		binary.BigEndian.PutUint16(c.iv[14:], binary.BigEndian.Uint16(c.iv[14:])+1)
	}
}

// f8 XORs data in place with the f8 keystream of IV c.iv (RFC 3711
// §4.1.2.2): IV' = E(k_e XOR m, IV), S(j) = E(k_e, IV' XOR j XOR S(j-1)).
func (c *Context) f8(k *keys, data []byte) {
	k.f8.Encrypt(c.f8iv[:], c.iv[:])
	clear(c.ks[:])
	for j := uint32(0); len(data) > 0; j++ {
		subtle.XORBytes(c.ks[:], c.ks[:], c.f8iv[:])
		c.ks[12] ^= byte(j >> 24)
		c.ks[13] ^= byte(j >> 16)
		c.ks[14] ^= byte(j >> 8)
		c.ks[15] ^= byte(j)
		k.block.Encrypt(c.ks[:], c.ks[:])
		n := subtle.XORBytes(data, data, c.ks[:])
		data = data[n:]
	}
}

// ROC returns the rollover counter of an SSRC's SRTP stream, if seen.
func (c *Context) ROC(ssrc uint32) (uint32, bool) {
	s, ok := c.srtp[ssrc]
	if !ok {
		return 0, false
	}
	return s.roc, true
}

// SetROC sets the rollover counter of an SSRC's SRTP stream (a stream
// continued after a restart or a failover).
func (c *Context) SetROC(ssrc, roc uint32) {
	s := c.rtpState(ssrc)
	if s == nil {
		return
	}
	s.roc = roc
}

func (c *Context) rtpState(ssrc uint32) *rtpState {
	s, ok := c.srtp[ssrc]
	if !ok {
		if len(c.srtp) >= maxSSRCs {
			return nil
		}
		s = &rtpState{}
		c.srtp[ssrc] = s
	}
	return s
}

func (c *Context) rtcpState(ssrc uint32) *rtcpState {
	s, ok := c.srtcp[ssrc]
	if !ok {
		if len(c.srtcp) >= maxSSRCs {
			return nil
		}
		s = &rtcpState{}
		c.srtcp[ssrc] = s
	}
	return s
}

// guessROC estimates the rollover counter of a packet with sequence
// number seq from an SSRC's state (RFC 3711 Appendix A).
func guessROC(s *rtpState, seq uint16) uint32 {
	if !s.started {
		return s.roc
	}
	switch {
	case s.seq < 0x8000 && seq > s.seq && seq-s.seq > 0x8000:
		return s.roc - 1
	case s.seq >= 0x8000 && s.seq-0x8000 > seq:
		return s.roc + 1
	}
	return s.roc
}

// grow returns dst extended to n bytes, reusing its array if it can.
func grow(dst []byte, n int) []byte {
	if cap(dst) >= n {
		return dst[:n]
	}
	out := make([]byte, n)
	copy(out, dst)
	return out
}

// tag computes the HMAC-SHA1 of data and trailer into c.sum.
func (c *Context) tag(k *keys, data, trailer []byte) []byte {
	k.mac.Reset()
	k.mac.Write(data)
	k.mac.Write(trailer)
	return k.mac.Sum(c.sum[:0])
}

// windowCheck reports whether index delta below the highest one (0: the
// highest itself) is new in a replay window.
func windowSeen(w *[replayWindow / 64]uint64, delta uint64) bool {
	return w[delta/64]&(1<<(delta%64)) != 0
}

// windowAdvance moves a replay window up by shift and marks the new
// highest index.
func windowAdvance(w *[replayWindow / 64]uint64, shift uint64) {
	switch {
	case shift >= replayWindow:
		*w = [replayWindow / 64]uint64{}
	case shift >= 64:
		w[1], w[0] = w[0]<<(shift-64), 0
	case shift > 0:
		w[1] = w[1]<<shift | w[0]>>(64-shift)
		w[0] <<= shift
	}
	w[0] |= 1
}
