package srtpctx

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/pion/rtp"
)

// HeaderLen is the length of the RTP header at the start of p (fixed
// part, CSRCs, extension), or 0 if p is too short for it or not RTP
// version 2. It allocates nothing (pkg/fwd checks every packet with it).
func HeaderLen(p []byte) int {
	if len(p) < 12 || p[0]>>6 != 2 {
		return 0
	}
	n := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 {
		if len(p) < n+4 {
			return 0
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(p[n+2:n+4]))
	}
	if len(p) < n {
		return 0
	}
	return n
}

// fillHeader sets the fields of h the packet path reads (no CSRC list
// and no extensions: those would allocate).
func fillHeader(h *rtp.Header, p []byte) {
	if h == nil {
		return
	}
	h.Version = 2
	h.Padding = p[0]&0x20 != 0
	h.Marker = p[1]&0x80 != 0
	h.PayloadType = p[1] & 0x7f
	h.SequenceNumber = binary.BigEndian.Uint16(p[2:4])
	h.Timestamp = binary.BigEndian.Uint32(p[4:8])
	h.SSRC = binary.BigEndian.Uint32(p[8:12])
}

// rtpIV sets c.iv for an SRTP packet with header hdr and rollover counter
// roc.
func (c *Context) rtpIV(hdr []byte, roc uint32) {
	if c.cfg.Cipher == AESF8 {
		// 0x00 || M || PT || SEQ || TS || SSRC || ROC (RFC 3711 §4.1.2.2).
		c.iv[0] = 0
		copy(c.iv[1:12], hdr[1:12])
		binary.BigEndian.PutUint32(c.iv[12:], roc)
		return
	}
	// (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16) (RFC 3711 §4.1.1).
	copy(c.iv[:14], c.rtp.salt[:])
	c.iv[14], c.iv[15] = 0, 0
	for j := 0; j < 4; j++ {
		c.iv[4+j] ^= hdr[8+j]
	}
	var idx [6]byte
	binary.BigEndian.PutUint32(idx[:4], roc)
	copy(idx[4:], hdr[2:4])
	subtle.XORBytes(c.iv[8:14], c.iv[8:14], idx[:])
}

// crypt encrypts or decrypts an SRTP payload in place.
func (c *Context) cryptRTP(hdr, payload []byte, roc uint32) {
	if c.cfg.NoEncryptRTP || len(payload) == 0 {
		return
	}
	c.rtpIV(hdr, roc)
	if c.cfg.Cipher == AESF8 {
		c.f8(&c.rtp, payload)
		return
	}
	c.ctr(c.rtp.block, payload)
}

// tagLen is the SRTP tag length in use.
func (c *Context) rtpTagLen() int {
	if c.cfg.NoAuthRTP {
		return 0
	}
	return c.cfg.TagLen
}

// EncryptRTP protects the RTP packet plain into dst (grown if too small;
// dst may be plain[:0]) and returns the SRTP packet. header, if not nil,
// gets the fixed header fields.
func (c *Context) EncryptRTP(dst, plain []byte, header *rtp.Header) ([]byte, error) {
	hl := HeaderLen(plain)
	if hl == 0 {
		return nil, ErrNotRTP
	}
	ssrc := binary.BigEndian.Uint32(plain[8:12])
	seq := binary.BigEndian.Uint16(plain[2:4])
	s := c.rtpState(ssrc)
	if s == nil {
		return nil, ErrSSRCs
	}
	roc := guessROC(s, seq)
	n := len(plain)
	tl := c.rtpTagLen()
	out := grow(dst, n+len(c.mki)+tl)
	copy(out, plain)
	c.cryptRTP(out[:hl], out[hl:n], roc)
	copy(out[n:], c.mki)
	if tl > 0 {
		binary.BigEndian.PutUint32(c.trailer[:], roc)
		sum := c.tag(&c.rtp, out[:n], c.trailer[:])
		copy(out[n+len(c.mki):], sum[:tl])
	}
	c.advanceRTP(s, roc, seq)
	fillHeader(header, out)
	return out, nil
}

// DecryptRTP authenticates and decrypts the SRTP packet enc into dst
// (grown if too small; dst may be enc[:0], decrypting in place) and
// returns the RTP packet. header, if not nil, gets the fixed header
// fields.
func (c *Context) DecryptRTP(dst, enc []byte, header *rtp.Header) ([]byte, error) {
	hl := HeaderLen(enc)
	if hl == 0 {
		return nil, ErrNotRTP
	}
	tl := c.rtpTagLen()
	n := len(enc) - len(c.mki) - tl // end of the payload
	if n < hl {
		return nil, ErrShort
	}
	if len(c.mki) > 0 && subtle.ConstantTimeCompare(enc[n:n+len(c.mki)], c.mki) != 1 {
		return nil, ErrMKI
	}
	ssrc := binary.BigEndian.Uint32(enc[8:12])
	seq := binary.BigEndian.Uint16(enc[2:4])
	s, ok := c.srtp[ssrc]
	if !ok {
		if len(c.srtp) >= maxSSRCs {
			return nil, ErrSSRCs
		}
		s = &rtpState{}
	}
	roc := guessROC(s, seq)
	index := uint64(roc)<<16 | uint64(seq)
	if c.cfg.Replay && s.started {
		highest := uint64(s.roc)<<16 | uint64(s.seq)
		if index <= highest && (highest-index >= replayWindow || windowSeen(&s.window, highest-index)) {
			return nil, ErrReplayed
		}
	}
	if tl > 0 {
		binary.BigEndian.PutUint32(c.trailer[:], roc)
		sum := c.tag(&c.rtp, enc[:n], c.trailer[:])
		if subtle.ConstantTimeCompare(sum[:tl], enc[n+len(c.mki):]) != 1 {
			return nil, ErrAuth
		}
	}
	if !ok {
		c.srtp[ssrc] = s
	}
	out := grow(dst, n)
	copy(out, enc[:n])
	c.cryptRTP(out[:hl], out[hl:], roc)
	c.advanceRTP(s, roc, seq)
	fillHeader(header, out)
	return out, nil
}

// advanceRTP notes a packet of index roc·2^16+seq as handled: the highest
// index and its window move up if it is above the highest.
func (c *Context) advanceRTP(s *rtpState, roc uint32, seq uint16) {
	index := uint64(roc)<<16 | uint64(seq)
	if !s.started {
		s.started, s.roc, s.seq = true, roc, seq
		s.window = [replayWindow / 64]uint64{1}
		return
	}
	highest := uint64(s.roc)<<16 | uint64(s.seq)
	switch {
	case index > highest:
		windowAdvance(&s.window, index-highest)
		s.roc, s.seq = roc, seq
	case highest-index < replayWindow:
		d := highest - index
		s.window[d/64] |= 1 << (d % 64)
	}
}
