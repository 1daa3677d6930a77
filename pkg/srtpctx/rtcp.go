package srtpctx

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/pion/rtcp"
)

// fillRTCPHeader sets h from the first RTCP header of p.
func fillRTCPHeader(h *rtcp.Header, p []byte) {
	if h == nil {
		return
	}
	h.Padding = p[0]&0x20 != 0
	h.Count = p[0] & 0x1f
	h.Type = rtcp.PacketType(p[1])
	h.Length = binary.BigEndian.Uint16(p[2:4])
}

// cryptRTCP encrypts or decrypts the part of an SRTCP packet after its
// first 8 bytes (hdr) in place; word is the E flag and SRTCP index.
func (c *Context) cryptRTCP(hdr, body []byte, word uint32) {
	if len(body) == 0 {
		return
	}
	if c.cfg.Cipher == AESF8 {
		// 0x00000000 || E || SRTCP index || V P RC PT length SSRC (RFC
		// 3711 §4.1.2.3).
		clear(c.iv[:4])
		binary.BigEndian.PutUint32(c.iv[4:8], word)
		copy(c.iv[8:], hdr[:8])
		c.f8(&c.rtcp, body)
		return
	}
	copy(c.iv[:14], c.rtcp.salt[:])
	c.iv[14], c.iv[15] = 0, 0
	subtle.XORBytes(c.iv[4:8], c.iv[4:8], hdr[4:8])
	var idx [4]byte
	binary.BigEndian.PutUint32(idx[:], word&0x7fffffff)
	subtle.XORBytes(c.iv[10:14], c.iv[10:14], idx[:])
	c.ctr(c.rtcp.block, body)
}

// EncryptRTCP protects the RTCP compound packet plain into dst (grown if
// too small; dst may be plain[:0]) and returns the SRTCP packet.
func (c *Context) EncryptRTCP(dst, plain []byte, header *rtcp.Header) ([]byte, error) {
	if len(plain) < 8 || plain[0]>>6 != 2 {
		return nil, ErrNotRTP
	}
	s := c.rtcpState(binary.BigEndian.Uint32(plain[4:8]))
	if s == nil {
		return nil, ErrSSRCs
	}
	// The first index is 1, as libsrtp and pion send.
	index := (s.index + 1) & 0x7fffffff
	s.index = index
	word := index
	if !c.cfg.NoEncryptRTCP {
		word |= 1 << 31
	}
	n := len(plain)
	out := grow(dst, n+4+len(c.mki)+srtcpTagLen)
	copy(out, plain)
	if !c.cfg.NoEncryptRTCP {
		c.cryptRTCP(out[:8], out[8:n], word)
	}
	binary.BigEndian.PutUint32(out[n:], word)
	copy(out[n+4:], c.mki)
	sum := c.tag(&c.rtcp, out[:n+4], nil)
	copy(out[n+4+len(c.mki):], sum[:srtcpTagLen])
	fillRTCPHeader(header, out)
	return out, nil
}

// DecryptRTCP authenticates and decrypts the SRTCP packet enc into dst
// (grown if too small; dst may be enc[:0]) and returns the RTCP compound
// packet.
func (c *Context) DecryptRTCP(dst, enc []byte, header *rtcp.Header) ([]byte, error) {
	if len(enc) < 8 || enc[0]>>6 != 2 {
		return nil, ErrNotRTP
	}
	n := len(enc) - srtcpTagLen - len(c.mki) - 4 // end of the compound packet
	if n < 8 {
		return nil, ErrShort
	}
	if len(c.mki) > 0 && subtle.ConstantTimeCompare(enc[n+4:n+4+len(c.mki)], c.mki) != 1 {
		return nil, ErrMKI
	}
	ssrc := binary.BigEndian.Uint32(enc[4:8])
	word := binary.BigEndian.Uint32(enc[n : n+4])
	index := word & 0x7fffffff
	s, ok := c.srtcp[ssrc]
	if !ok {
		if len(c.srtcp) >= maxSSRCs {
			return nil, ErrSSRCs
		}
		s = &rtcpState{}
	}
	if c.cfg.Replay && s.started && index <= s.index {
		if d := uint64(s.index - index); d >= replayWindow || windowSeen(&s.window, d) {
			return nil, ErrReplayed
		}
	}
	sum := c.tag(&c.rtcp, enc[:n+4], nil)
	if subtle.ConstantTimeCompare(sum[:srtcpTagLen], enc[n+4+len(c.mki):]) != 1 {
		return nil, ErrAuth
	}
	if !ok {
		c.srtcp[ssrc] = s
	}
	out := grow(dst, n)
	copy(out, enc[:n])
	if word>>31 != 0 {
		c.cryptRTCP(out[:8], out[8:], word)
	}
	switch {
	case !s.started:
		s.started, s.index = true, index
		s.window = [replayWindow / 64]uint64{1}
	case index > s.index:
		windowAdvance(&s.window, uint64(index-s.index))
		s.index = index
	case s.index-index < replayWindow:
		d := uint64(s.index - index)
		s.window[d/64] |= 1 << (d % 64)
	}
	fillRTCPHeader(header, out)
	return out, nil
}
