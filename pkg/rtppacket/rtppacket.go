// Package rtppacket builds and reads the RTP and RTCP packets that rtpkit's
// tests and load tools (rtpctl bench media, pkg/mediabench) send through
// the proxy. It is a thin layer over github.com/pion/rtp and
// github.com/pion/rtcp, so that no test or tool lays out header bytes by
// hand.
//
// It is an ordinary package, not part of pkg/testutil: testutil imports
// "testing" and starts servers, and must not be linked into binaries,
// while pkg/mediabench (run by rtpctl) needs the same builder. testutil's
// RTP helpers are built on this package.
//
// The packets are RTP as rtpkit's own senders make it: version 2, no CSRC
// list, no header extension. [RTP.MarshalTo] and [RTP.WriteHeader] write
// into a caller's buffer and [Read] parses without allocating, so load
// loops can use them on every packet.
//
// The forwarding loop (pkg/fwd) and the eBPF fast path (pkg/fastpath) do
// not use this package: they read the few header bytes they need
// themselves (see pkg/fwd).
package rtppacket

import (
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// HeaderLen is the length of the RTP header that [RTP] writes: the 12-byte
// fixed header, with no CSRC and no extension.
const HeaderLen = 12

// RTP is the header of an RTP packet as rtpkit's tests and tools send it;
// the version (2) is implied, and there is no padding, CSRC or extension.
type RTP struct {
	// PayloadType is the 7-bit payload type (0 is PCMU).
	PayloadType uint8
	// Marker is the marker bit.
	Marker bool
	// Seq is the sequence number.
	Seq uint16
	// Timestamp is the RTP timestamp.
	Timestamp uint32
	// SSRC is the synchronisation source.
	SSRC uint32
}

// header is h as pion's header.
func (h RTP) header() rtp.Header {
	return rtp.Header{Version: 2, Marker: h.Marker, PayloadType: h.PayloadType,
		SequenceNumber: h.Seq, Timestamp: h.Timestamp, SSRC: h.SSRC}
}

// WriteHeader writes h into the first [HeaderLen] bytes of buf and leaves
// the rest of buf (the payload) as it is: a load loop fills its payload
// once and writes a new header for each packet. It fails only when buf is
// shorter than HeaderLen, and does not allocate.
func (h RTP) WriteHeader(buf []byte) error {
	_, err := h.header().MarshalTo(buf)
	return err
}

// MarshalTo writes the packet with header h and payload into buf and
// returns its length, HeaderLen+len(payload). It fails with
// io.ErrShortBuffer when buf is too short, and does not allocate.
func (h RTP) MarshalTo(buf, payload []byte) (int, error) {
	p := rtp.Packet{Header: h.header(), Payload: payload}
	return p.MarshalTo(buf)
}

// Packet returns a new packet with header h and payload.
func (h RTP) Packet(payload []byte) []byte {
	buf := make([]byte, HeaderLen+len(payload))
	n, err := h.MarshalTo(buf, payload)
	if err != nil { // cannot happen: buf has the packet's size
		panic("rtppacket: " + err.Error())
	}
	return buf[:n]
}

// Read parses b as an RTP packet and returns its header and payload (a
// slice of b, without padding). ok is false when b is not RTP as rtpkit
// sends it: shorter than HeaderLen, not version 2, with a CSRC list or a
// header extension, or with bad padding. It does not tell RTCP apart:
// a sender report, say, reads as RTP with the marker bit and payload type
// 72; where RTCP may arrive, ask [IsRTCP] first.
//
// Read does not allocate, whatever b holds, so a receive loop may call it
// on every packet, including malformed ones from the network. That is why
// it checks the first byte before it hands b to pion's parser: pion
// builds an error with fmt.Errorf (an allocation) for a CSRC list or an
// extension that b is too short for, while the packets that pass the
// check can fail only on padding, with pion's preallocated errors.
func Read(b []byte) (h RTP, payload []byte, ok bool) {
	// Version 2 (top two bits), no extension (bit 4), no CSRC (low four).
	if len(b) < HeaderLen || b[0]>>6 != 2 || b[0]&0x1f != 0 {
		return RTP{}, nil, false
	}
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return RTP{}, nil, false
	}
	return RTP{PayloadType: p.PayloadType, Marker: p.Marker, Seq: p.SequenceNumber,
		Timestamp: p.Timestamp, SSRC: p.SSRC}, p.Payload, true
}

// Report is one reception report block of an RTCP receiver report
// (RFC 3550 §6.4.1): the source it is about, loss, the extended highest
// sequence number, jitter and the SR timing.
type Report = rtcp.ReceptionReport

// ReceiverReport returns an RTCP receiver report (packet type 201) from
// ssrc with the given report blocks; without any it is the empty 8-byte
// report.
func ReceiverReport(ssrc uint32, reports ...Report) []byte {
	b, err := rtcp.ReceiverReport{SSRC: ssrc, Reports: reports}.Marshal()
	if err != nil { // only for more than 31 reports
		panic("rtppacket: receiver report: " + err.Error())
	}
	return b
}

// IsRTCP reports whether b is RTCP as RFC 5761 §4 tells it apart from RTP
// on a multiplexed port: version 2, a packet type (second byte) of
// 192–223, and at least the length that its header gives. It does not
// allocate.
func IsRTCP(b []byte) bool {
	var h rtcp.Header
	if h.Unmarshal(b) != nil {
		return false
	}
	return h.Type >= 192 && h.Type <= 223 && len(b) >= 4*(int(h.Length)+1)
}
