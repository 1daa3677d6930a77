package fwd

import (
	"encoding/binary"
	"github.com/rtpkit/rtpkit/pkg/icecheck"

	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// StreamID names a stream within an [Engine]. 0 is not a valid id: in
// Stream.Peer and Stream.RTCP it means "none".
type StreamID uint32

// Flags are per-stream options. Like rtpengine's latching flags they apply
// to packets from the stream's own party.
type Flags uint32

const (
	// Asymmetric: never learn; always send to the signalled endpoint. The
	// stream counts as confirmed from the start (same as [Off]).
	Asymmetric Flags = 1 << iota
	// StrictSource: once the endpoint is confirmed, packets from any other
	// source are dropped and counted in Errors. With
	// [Asymmetric] or [Off] the signalled endpoint is the only accepted
	// source.
	StrictSource
	// MediaHandover: once the endpoint is confirmed, an RTP packet from a
	// new source makes that source the endpoint at once. Takes precedence
	// over StrictSource; has no effect with Asymmetric or Off.
	MediaHandover
	// RTCPMux: the party multiplexes RTCP on this RTP socket (RFC 5761).
	// Incoming packets with a second byte of 194–223 are RTCP and go to the
	// peer's RTCP destination; outgoing RTCP for this party is sent here.
	RTCPMux
	// RTCP: this stream is a separate RTCP socket. Its packets are not
	// parsed as RTP (no SSRC) and take part in learning like RTP does.
	RTCP
	// Echo: packets from this party go back to it, out of this stream's
	// socket, instead of to Peer (rtpengine's media-echo); RTP goes with
	// its SSRC changed ([EchoSSRC]), so that the party does not take its
	// own packets for an SSRC collision or a loop (RFC 3550 §8.2). A
	// stream with Echo stays in userspace.
	Echo
	// BlockDTMF: RFC 4733 packets of the payload type Stream.DTMF are
	// not forwarded (rtpengine's block DTMF); their events are still
	// reported.
	BlockDTMF
	// RTCPSenderSSRC and RTCPReportSSRC: this party's RTCP has its own
	// SSRCs (sender fields, SDES, BYE), or those of the reports it makes
	// on what it receives (report blocks, feedback's media SSRC), mapped
	// with [MapSSRC]: the party's RTP, or its peer's, reaches the other
	// side transcoded, under the mapped SSRC (pkg/codec's).
	RTCPSenderSSRC
	RTCPReportSSRC
)

// MapSSRC is the SSRC a transcoder sends for a party that sends with ssrc,
// and back (the same mapping as pkg/codec.SSRC).
func MapSSRC(ssrc uint32) uint32 { return ssrc ^ 0x5a17c0de }

// mapRTCP rewrites the SSRCs of a compound RTCP packet in place: sender
// fields with sender, report blocks and feedback targets with reports.
func mapRTCP(p []byte, sender, reports bool) {
	for len(p) >= 8 && p[0]>>6 == 2 {
		n := 4 * (int(binary.BigEndian.Uint16(p[2:4])) + 1)
		if n > len(p) {
			return
		}
		pkt := p[:n]
		count := int(pkt[0] & 0x1f)
		xor := func(off int, on bool) {
			if on && off+4 <= len(pkt) {
				binary.BigEndian.PutUint32(pkt[off:], MapSSRC(binary.BigEndian.Uint32(pkt[off:])))
			}
		}
		switch pkt[1] {
		case 200, 201: // SR, RR: sender, then report blocks
			xor(4, sender)
			first := 8
			if pkt[1] == 200 {
				first = 28
			}
			for i := range count {
				xor(first+24*i, reports)
			}
		case 202: // SDES: each chunk starts with its SSRC
			off := 4
			for range count {
				xor(off, sender)
				off += 4
				for off < len(pkt) && pkt[off] != 0 { // items up to the end item
					if off+1 >= len(pkt) {
						break
					}
					off += 2 + int(pkt[off+1])
				}
				off = (off + 4) &^ 3 // the end item and padding to a word
			}
		case 203: // BYE
			for i := range count {
				xor(4+4*i, sender)
			}
		case 205, 206: // feedback: sender, media source
			xor(4, sender)
			xor(8, reports)
		}
		p = p[n:]
	}
}

// EchoSSRC is the SSRC of an echoed RTP packet whose SSRC was ssrc: the
// same mapping on every node and after every restart, so a party's echo
// keeps one SSRC for the whole call, never its own.
func EchoSSRC(ssrc uint32) uint32 { return ssrc ^ echoSSRCMask }

const echoSSRCMask = 0x9e3779b9

// Learning is a stream's endpoint-learning mode (rtpengine's
// endpoint-learning).
type Learning uint8

const (
	// Delayed (the default): until Config.LearnWindow after LastSignal,
	// every packet's source becomes the endpoint (unconfirmed); the source
	// of the first packet after the window is confirmed.
	Delayed Learning = iota
	// Immediate: the source of the first packet is confirmed.
	Immediate
	// Off: never learn; always send to the signalled endpoint.
	Off
	// Heuristic: like Delayed, but the sources seen since the last
	// signalling are ranked, and the endpoint (learned, and confirmed by
	// the first packet after the window) is the best-ranked one: the
	// source that matches the signalled address and port, else one with
	// the signalled address, else one with the signalled port, else the
	// latest of any source. (rtpengine 10.5 resets its ranking on every
	// poller pass, so in practice it mostly follows the latest packet; this
	// keeps the ranking until the next signalling, as its documentation
	// describes.)
	Heuristic
)

// String returns the mode's name as rtpengine's --endpoint-learning
// spells it.
func (m Learning) String() string {
	switch m {
	case Delayed:
		return "delayed"
	case Immediate:
		return "immediate"
	case Off:
		return "off"
	case Heuristic:
		return "heuristic"
	}
	return "Learning(" + strconv.Itoa(int(m)) + ")"
}

// ParseLearning parses an rtpengine --endpoint-learning value (delayed,
// immediate, off, heuristic; case-insensitive as rtpengine's).
func ParseLearning(s string) (Learning, bool) {
	for _, m := range []Learning{Delayed, Immediate, Off, Heuristic} {
		if strings.EqualFold(s, m.String()) {
			return m, true
		}
	}
	return Delayed, false
}

// Stream is one party's leg on one of our sockets, as configured by the
// control side.
type Stream struct {
	// Call groups the streams of one call. Every stream named in Peer or
	// RTCP must have the same Call; the key picks the loop and cannot
	// change for an existing stream.
	Call string
	// FD is our socket that this party sends to and that we send to this
	// party from: a bound, UDP socket owned by the caller.
	FD int
	// Peer is the stream of the party that receives what this party
	// sends: packets arriving on FD are sent out of Peer's FD to Peer's
	// endpoint. 0: packets from this party are counted and dropped.
	Peer StreamID
	// RTCP is this party's separate RTCP stream, where RTCP that arrives
	// muxed on the peer's RTP socket is sent when this party does not
	// mux. 0 when there is none.
	RTCP StreamID
	// Signalled is the party's endpoint from its SDP. Until something is
	// learned packets for this party go there. An invalid value, port 0 or
	// an all-zero address means "do not send to this party" (hold, or no
	// answer yet) and also stops learning from this party's packets (it has
	// not signalled media yet).
	Signalled netip.AddrPort
	// Flags are this stream's options.
	Flags Flags
	// Learning is this stream's endpoint-learning mode.
	Learning Learning
	// LastSignal is the time of the last offer/answer concerning this
	// stream. A zero time means the learning window is already over.
	// Setting a different time on an existing stream unconfirms it (a new
	// learning window opens) but keeps the learned endpoint.
	LastSignal time.Time
	// SRTPIn is the SRTP key this party protects its packets with: they
	// are authenticated and decrypted on arrival, and one that fails is
	// dropped and counted (SRTPFailures) before it can be learned from.
	// SRTPOut is the key packets sent to this party are protected with.
	// Zero values: plain RTP. Unchanged keys keep the contexts (rollover
	// counters, replay windows) across updates.
	SRTPIn, SRTPOut SRTP
	// ICE are this stream's ICE credentials: with them, STUN messages on
	// FD are connectivity checks answered by the engine's control path
	// (ice.go), and the pair nominated becomes the party's endpoint; until
	// one is, nothing is sent to the party (media goes only to a pair that
	// passed its check, RFC 8445 §12) and its packets set no endpoint.
	// Zero: STUN is forwarded like any other packet.
	ICE icecheck.Creds
	// ICESelected, with ICE, is a pair nominated before (the call record's,
	// after a restart or a failover): the endpoint from the start, until
	// the agent's consent on it lapses or another pair is nominated.
	ICESelected netip.AddrPort
	// ICECandidates are the party's candidates for this stream's
	// component from its SDP (and trickle ICE), checked by the agent
	// besides the signalled address and the peer-reflexive ones it learns
	// (the first MaxICECandidates; zero entries unused).
	ICECandidates [MaxICECandidates]netip.AddrPort
	// DTLS is this stream's DTLS-SRTP setup (dtls.go): with a role, DTLS
	// records on FD go to the engine's control path, and the handshake's
	// keys replace SRTPIn and SRTPOut (give them as SRTPPending until
	// then; a Set with the same DTLS keeps the handshake's keys).
	DTLS DTLS
	// AltFD is the party's second socket, on the interface's address of
	// the other family (rtpkit's second ICE host candidate), and AltLocal
	// its local address (required with it): packets arriving on it are
	// the party's as on FD, and packets to an endpoint of its family
	// leave from it. 0: none.
	AltFD    int
	AltLocal netip.AddrPort
	// Media, when not empty, is the media processing of this party's RTP
	// (transcoding), a spec Config.Media builds the processor from: the
	// party's RTP goes to a media goroutine and what the processor makes
	// goes to the peer instead (media.go). RTCP is forwarded as it is.
	Media string
	// DTMF is the payload type of the party's RFC 4733 events (0: none):
	// their events are reported through Config.DTMF.
	DTMF uint8
	// Local is FD's local address when the caller knows it (rtp-fwd: from
	// portd, which bound the socket); the engine then takes the socket's
	// family from it. Invalid: the engine asks the socket (two system
	// calls, which with four streams per call count at a few thousand
	// calls a second).
	Local netip.AddrPort
}

// MaxICECandidates is how many of a party's candidates a stream carries.
const MaxICECandidates = 8

// usable reports whether ap can be sent to: valid, non-zero port, not the
// all-zero address.
func usable(ap netip.AddrPort) bool {
	return ap.IsValid() && ap.Port() != 0 && !ap.Addr().IsUnspecified()
}

// Counters are a stream's statistics; the packet counters are for packets
// received from the stream's party (the ingress side), except that errors
// sending to this party are added to Errors as well.
type Counters struct {
	// Packets and Bytes count the packets accepted from this party (UDP
	// payload bytes), muxed RTCP included: not truncated, from a source
	// that latching accepts, within the flood cap. Dropped packets are
	// counted in Errors or FloodDrops only.
	Packets, Bytes uint64
	// Errors counts strict-source drops, truncated packets (larger than
	// the 2 KiB receive buffers) and failures sending to this party.
	Errors uint64
	// FloodDrops counts packets from an accepted source dropped because
	// the party sent faster than Config.MaxStreamPPS (packets that strict
	// source drops do not use up the party's budget).
	FloodDrops uint64
	// KernelDrops is the socket's count of datagrams the kernel dropped
	// because the receive queue was full (SO_RXQ_OVFL), as last reported
	// with a received packet: it covers the socket's whole life.
	KernelDrops uint64
	// LastPacket is when the loop last accepted a packet from this party
	// (one counted in Packets), to the loop's wakeup; zero if never. The
	// no-media timers read it: dropped packets do not keep a call alive.
	LastPacket time.Time
	// SRTPFailures counts packets from this party that failed SRTP or
	// SRTCP authentication or decryption (wrong key, tampered, replayed,
	// not SRTP at all): dropped, never forwarded, never learned from.
	SRTPFailures uint64
	// ICEDropped counts ICE checks from this party's side that the control
	// path could not take (its queue full, or too large to be a check).
	ICEDropped uint64
	// MediaDrops counts this party's packets that its media goroutine
	// (transcoding, DTMF events) could not take: its queue was full.
	MediaDrops uint64
	// SRTPInROC and SRTPOutROC are the SRTP rollover counters of the last
	// SSRC this party sent from and of the last one sent to it (0 until a
	// sequence number wraps, or the ROC a continued call started from): a
	// call continued elsewhere starts from them (SRTP.ROC).
	SRTPInROC, SRTPOutROC uint32
	// SSRC is the SSRC of the last RTP packet from this party (0 if none
	// yet, and always for RTCP streams).
	SSRC uint32
	// Endpoint is where packets for this party go now: the learned source
	// or the signalled endpoint (invalid when there is none).
	Endpoint netip.AddrPort
	// Confirmed reports whether Endpoint is confirmed (always true with
	// Asymmetric or Off).
	Confirmed bool
}

// published holds a stream's counters as the loop publishes them for
// Stats. The loop is the only writer. The endpoint words are guarded by a
// sequence lock so a reader never sees a torn address.
type published struct {
	packets, bytes, errors, drops atomic.Uint64
	kdrops, srtpFails, iceDropped atomic.Uint64
	mediaDrops                    atomic.Uint64
	rocIn, rocOut                 atomic.Uint32 // SRTP rollover counters (srtp.go)
	last                          atomic.Int64  // Unix ns; 0: never
	ssrc                          atomic.Uint32

	seq    atomic.Uint32 // odd while the endpoint words change
	ep     [2]atomic.Uint64
	epMeta atomic.Uint64 // port | epValid | epIs4 | epConfirmed
}

const (
	epValid     = 1 << 16
	epIs4       = 1 << 17
	epConfirmed = 1 << 18
)

func (p *published) setEndpoint(ap netip.AddrPort, confirmed bool) {
	a := ap.Addr()
	b := a.As16()
	meta := uint64(ap.Port())
	if ap.IsValid() {
		meta |= epValid
	}
	if a.Is4() {
		meta |= epIs4
	}
	if confirmed {
		meta |= epConfirmed
	}
	p.seq.Add(1)
	p.ep[0].Store(be64(b[:8]))
	p.ep[1].Store(be64(b[8:]))
	p.epMeta.Store(meta)
	p.seq.Add(1)
}

func (p *published) read() Counters {
	c := Counters{
		Packets:      p.packets.Load(),
		Bytes:        p.bytes.Load(),
		Errors:       p.errors.Load(),
		FloodDrops:   p.drops.Load(),
		KernelDrops:  p.kdrops.Load(),
		SRTPFailures: p.srtpFails.Load(),
		ICEDropped:   p.iceDropped.Load(),
		MediaDrops:   p.mediaDrops.Load(),
		SRTPInROC:    p.rocIn.Load(),
		SRTPOutROC:   p.rocOut.Load(),
		SSRC:         p.ssrc.Load(),
	}
	if ns := p.last.Load(); ns != 0 {
		c.LastPacket = time.Unix(0, ns)
	}
	var hi, lo, meta uint64
	for {
		s := p.seq.Load()
		if s&1 == 0 {
			hi, lo, meta = p.ep[0].Load(), p.ep[1].Load(), p.epMeta.Load()
			if p.seq.Load() == s {
				break
			}
		}
		runtime.Gosched()
	}
	if meta&epValid != 0 {
		var b [16]byte
		putBE64(b[:8], hi)
		putBE64(b[8:], lo)
		a := netip.AddrFrom16(b)
		if meta&epIs4 != 0 {
			a = a.Unmap()
		}
		c.Endpoint = netip.AddrPortFrom(a, uint16(meta))
	}
	c.Confirmed = meta&epConfirmed != 0
	return c
}

func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// stream is the loop's state for one Stream. Only the owning loop touches
// it (the control side only holds pub).
type stream struct {
	id     StreamID
	cfg    Stream
	family int
	slot   int32
	// altFamily and altSlot are those of the second socket (cfg.AltFD;
	// altSlot -1 without one); sendFD is the socket that sends to the
	// endpoint.
	altFamily int
	altSlot   int32
	sendFD    int
	// armed: the socket is waited on (see loop.set).
	armed bool
	// demux: the stream has ICE or DTLS, whose packets go to the control
	// path (set by configure).
	demux bool
	pub   *published

	peer *stream // cfg.Peer, resolved within the call; nil if absent
	rtcp *stream // cfg.RTCP, resolved within the call; nil if absent

	// Latching.
	endpoint  netip.AddrPort // where this party is sent to
	confirmed bool
	fixed     bool  // Asymmetric or Off: endpoint is always the signalled one
	canLearn  bool  // the signalled endpoint is usable
	windowEnd int64 // Unix ns at which Delayed learning stops
	dest      sockaddr
	// changed is set by accept when a packet changed the endpoint or its
	// confirmation; the loop clears it when it sends the notice.
	changed bool
	// detected holds, for Heuristic learning, the latest source seen since
	// the last signalling per rank (see rank).
	detected [4]netip.AddrPort

	// Flood cap (GCRA): theoretical arrival time of the next packet,
	// monotonic ns (loop.mono).
	tat int64

	// SRTP contexts: in decrypts what the party sends, out encrypts what
	// it is sent (nil: plain). srtpBroken: the keys could not be used;
	// nothing is forwarded from or to the party.
	in, out    *crypt
	srtpBroken bool
	// dtlsIn and dtlsOut are the keys of the DTLS handshake made under
	// setup dtlsFor (dtls.go); they stand for the configured keys while
	// the stream keeps that setup.
	dtlsIn, dtlsOut SRTP
	dtlsFor         DTLS
	// nominated is the pair the ICE agent nominated under credentials
	// nominatedFor: the endpoint while they stay (loopctl.go's nominate).
	nominated    netip.AddrPort
	nominatedFor icecheck.Creds

	// Counters, published after every batch.
	packets, bytes, errors, drops uint64
	kdrops, srtpFails, iceDropped uint64
	mediaDrops                    uint64
	mediaSeen                     bool // packets went to a media goroutine
	ssrc                          uint32
	last                          int64
}

// sink is the stream whose party gets what s's party sends: s itself with
// Echo, else the peer, or the peer's RTCP stream for muxed RTCP when the
// peer does not mux; nil for none.
func (s *stream) sink(rtcp bool) *stream {
	to := s.peer
	switch {
	case s.cfg.Flags&Echo != 0:
		to = s
	case rtcp && to != nil && s.cfg.Flags&RTCPMux != 0 && to.cfg.Flags&RTCPMux == 0:
		to = to.rtcp
	}
	return to
}

// configure applies a new Stream (and the socket's family) to s, keeping
// the learned state as rtpengine does: a changed signalled endpoint resets
// the endpoint to it; a new signalling time (or a change of learning mode)
// only unconfirms.
func (s *stream) configure(ns Stream, family int, window time.Duration, isNew bool) {
	old, oldFixed := s.cfg, s.fixed
	s.cfg, s.family = ns, family
	s.altFamily = 0
	if ns.AltFD != 0 {
		s.altFamily = addrFamily(ns.AltLocal.Addr().Unmap())
	}
	s.demux = ns.ICE.Enabled() || ns.DTLS.Role != 0
	s.fixed = ns.Flags&Asymmetric != 0 || ns.Learning == Off
	s.canLearn = usable(ns.Signalled)
	s.windowEnd = 0
	if !ns.LastSignal.IsZero() {
		s.windowEnd = ns.LastSignal.Add(window).UnixNano()
	}
	if isNew || ns.Signalled != old.Signalled || !ns.LastSignal.Equal(old.LastSignal) || ns.Learning != old.Learning {
		s.detected = [4]netip.AddrPort{} // a new ranking per signalling
	}
	switch {
	case isNew || s.fixed || ns.Signalled != old.Signalled:
		s.endpoint = netip.AddrPort{}
		if s.canLearn {
			s.endpoint = ns.Signalled
		}
		s.confirmed = s.fixed
	case !ns.LastSignal.Equal(old.LastSignal) || ns.Learning != old.Learning || oldFixed:
		s.confirmed = false
	}
	switch {
	case ns.ICE.Enabled() && s.nominated.IsValid() && ns.ICE == s.nominatedFor:
	case ns.ICE.Enabled() && usable(ns.ICESelected) && ns.ICESelected != old.ICESelected:
		s.nominated, s.nominatedFor = ns.ICESelected, ns.ICE
	default:
		s.nominated, s.nominatedFor = netip.AddrPort{}, icecheck.Creds{}
	}
	if ns.ICE.Enabled() {
		// Under ICE only the nominated pair is sent to, and learning
		// from packets sets nothing.
		s.canLearn = s.nominated.IsValid()
		s.endpoint, s.confirmed = s.nominated, s.nominated.IsValid()
	}
	s.refresh()
	in, out := ns.SRTPIn, ns.SRTPOut
	switch {
	case ns.DTLS.Role == 0 || ns.DTLS != s.dtlsFor:
		s.dtlsIn, s.dtlsOut, s.dtlsFor = SRTP{}, SRTP{}, DTLS{}
	case s.dtlsIn.Enabled():
		in, out = s.dtlsIn, s.dtlsOut
		in.ROC, out.ROC = ns.SRTPIn.ROC, ns.SRTPOut.ROC
	}
	var errIn, errOut error
	s.in, errIn = s.in.update(in, true, &s.pub.rocIn)
	s.out, errOut = s.out.update(out, false, &s.pub.rocOut)
	s.srtpBroken = errIn != nil || errOut != nil // check() refuses such keys first
}

// setEndpoint records a new endpoint or confirmation.
func (s *stream) setEndpoint(ap netip.AddrPort, confirmed bool) {
	s.endpoint, s.confirmed = ap, confirmed
	s.refresh()
}

// refresh recomputes the send destination and publishes the endpoint.
func (s *stream) refresh() {
	s.dest.len = 0
	s.sendFD = s.cfg.FD
	if s.canLearn && s.endpoint.IsValid() {
		if s.altFamily != 0 && addrFamily(s.endpoint.Addr().Unmap()) == s.altFamily {
			s.sendFD = s.cfg.AltFD
			s.dest.set(s.altFamily, s.endpoint)
		} else {
			s.dest.set(s.family, s.endpoint)
		}
	}
	s.pub.setEndpoint(s.endpoint, s.confirmed)
}

// accept applies endpoint learning to a packet from src at now (Unix ns).
// rtcp marks RTCP that arrived on an RTP socket. It returns false when the
// packet must be dropped as an error (strict source).
func (s *stream) accept(src netip.AddrPort, rtcp bool, now int64) bool {
	if s.fixed {
		return s.cfg.Flags&StrictSource == 0 || src == s.endpoint
	}
	if !s.confirmed {
		if rtcp || !s.canLearn {
			return true
		}
		confirm := s.cfg.Learning == Immediate || now >= s.windowEnd
		ep := src
		if s.cfg.Learning == Heuristic {
			ep = s.rank(src)
		}
		if confirm || ep != s.endpoint {
			s.setEndpoint(ep, confirm)
			s.changed = true
		}
		return true
	}
	if src == s.endpoint {
		return true
	}
	if s.cfg.Flags&MediaHandover != 0 {
		if !rtcp {
			s.setEndpoint(src, true)
			s.changed = true
		}
		return true
	}
	return s.cfg.Flags&StrictSource == 0
}

// rank records src among the sources Heuristic learning has seen and
// returns the best-ranked one: rank 0 matches the signalled address and
// port, 1 the address only, 2 the port only, 3 neither.
func (s *stream) rank(src netip.AddrPort) netip.AddrPort {
	sig := s.cfg.Signalled
	r := 0
	if src.Port() != sig.Port() {
		r |= 1
	}
	if src.Addr().Unmap() != sig.Addr().Unmap() {
		r |= 2
	}
	s.detected[r] = src
	for _, d := range s.detected {
		if d.IsValid() {
			return d
		}
	}
	return src
}

// admit applies the flood cap (a GCRA with the given emission interval and
// burst tolerance, both ns) to one packet at now (monotonic ns).
func (s *stream) admit(now, interval, tau int64) bool {
	if interval == 0 {
		return true
	}
	t := max(s.tat, now)
	if t-now > tau {
		return false
	}
	s.tat = t + interval
	return true
}

// publish makes the counters visible to Stats.
func (s *stream) publish() {
	p := s.pub
	p.packets.Store(s.packets)
	p.bytes.Store(s.bytes)
	p.errors.Store(s.errors)
	p.drops.Store(s.drops)
	p.kdrops.Store(s.kdrops)
	p.srtpFails.Store(s.srtpFails)
	p.iceDropped.Store(s.iceDropped)
	p.mediaDrops.Store(s.mediaDrops)
	p.ssrc.Store(s.ssrc)
	p.last.Store(s.last)
}

// isRTCP reports whether a packet on an RTP socket is RTCP (RFC 5761 §4):
// its second byte, the RTCP packet type, is 194–223. RTP with the marker
// bit set would need payload types 66–95 to look like that, and RFC 5761
// rules those out for muxed sessions.
func isRTCP(p []byte) bool {
	return len(p) >= 2 && p[1] >= 194 && p[1] <= 223
}
