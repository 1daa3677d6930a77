package fwd

// Packets held for a party whose address is not known yet.
//
// ng-ctl answers an offer or an answer before rtp-fwd has the updated call
// (node state carries it, a few milliseconds later under load): a packet
// that a party sends at once to the port the reply advertised could find
// its peer's stream without an address (the callee before the answer has
// reached rtp-fwd) and be dropped. Such packets are held instead: copied
// into a small ring of the loop, and sent when the call's streams are next
// set (the update that brings the address), if they are at most holdFor
// old. A party on hold (an address that is present but unusable: 0.0.0.0,
// port 0) is not waited for: its packets are dropped as before.

import (
	"net/netip"
	"time"
)

const (
	// holdSlots is how many packets a loop holds at most (the oldest
	// goes first when full).
	holdSlots = 64
	// holdFor is how long a held packet may wait for its peer's address.
	holdFor = int64(500 * time.Millisecond)
)

// held is one packet waiting in the loop's ring.
type held struct {
	from *stream        // ingress stream; nil: the slot is free
	src  netip.AddrPort // where it came from
	rtcp bool           // RTCP on an RTP socket
	// encrypted: SRTP as the party sent it, its key still to come; it is
	// authenticated (and decrypted) first when released.
	encrypted bool
	// uncounted: not in the stream's counters yet (an encrypted one is
	// counted once it is decrypted and accepted).
	uncounted bool
	size      int
	at        int64 // loop.mono when it arrived
}

// waitsForAddress reports whether a packet for sink should be held rather
// than dropped: the peer's address is not known yet, as opposed to known
// and unusable (hold). A stream without a sink (no peer) holds nothing:
// its packets would be copied for nothing, one by one.
//
// A party under ICE whose pair is not nominated yet is waited for too:
// the nomination is often a moment behind the first media (the peer sees
// its nominating check succeed, or answers ours, before rtpkit's loop has
// the nomination).
func waitsForAddress(sink *stream) bool {
	return sink != nil && (!sink.cfg.Signalled.IsValid() || sink.cfg.ICE.Enabled() && !sink.nominated.IsValid())
}

// waitsForPeer reports whether s's packets have no sink because its peer
// is named but not installed yet (a re-INVITE moved the other party to new
// ports whose socket is still on its way from portd): they are held too,
// and go once the peer's stream is set.
func waitsForPeer(s, sink *stream) bool {
	return sink == nil && s.peer == nil && s.cfg.Peer != 0 && s.cfg.Flags&Echo == 0
}

// hold copies pkt, accepted from stream from (or, encrypted, not looked
// at yet), into the ring (allocated with the loop: the packet path
// allocates nothing).
func (l *loop) hold(from *stream, src netip.AddrPort, rtcp bool, pkt []byte, encrypted bool) {
	i := l.holdNext
	l.holdNext = (l.holdNext + 1) % holdSlots
	if l.holds[i].from == nil {
		l.holdCount++
	}
	copy(l.holdBuf[i*bufSize:], pkt)
	l.holds[i] = held{from: from, src: src, rtcp: rtcp, encrypted: encrypted, uncounted: encrypted, size: len(pkt), at: l.mono}
}

// release sends the held packets of call whose peer now has an address,
// drops those older than holdFor, and keeps the rest. It runs between two
// epoll waits (control commands), when the send buffers are free.
func (l *loop) release(call string) {
	if l.holdCount == 0 {
		return
	}
	t := time.Now()
	now, wall := int64(t.Sub(l.epoch)), t.UnixNano()
	for k := range holdSlots {
		i := (l.holdNext + k) % holdSlots // oldest first: sent in order of arrival
		h := &l.holds[i]
		if h.from == nil {
			continue
		}
		if now-h.at > holdFor {
			l.unhold(h)
			continue
		}
		if h.from.cfg.Call != call {
			continue
		}
		if h.encrypted {
			if h.from.in.pending() {
				continue // still no key
			}
			// A party whose SRTP was undecided (OSRTP before the answer)
			// may have turned out plain: its packet is then taken as is.
			if h.from.in != nil || h.from.srtpBroken {
				plain, ok := h.from.unprotect(l.holdBuf[i*bufSize:i*bufSize+h.size], h.rtcp)
				if !ok {
					h.from.srtpFails++
					h.from.publish()
					l.unhold(h)
					continue
				}
				h.size = len(plain)
			}
			h.encrypted = false
		}
		to := h.from.sink(h.rtcp)
		if to == nil || to.dest.len == 0 || to.out.pending() {
			if !waitsForAddress(to) && (to == nil || !to.out.pending()) && !waitsForPeer(h.from, to) {
				l.unhold(h) // the peer is known now, and on hold
			}
			continue
		}
		// The packet was sent after the reply that brought this update:
		// it is learned from again under the new signalling (which
		// unconfirms the source), as it would have been had the update
		// come first; otherwise the next packet, a stranger's maybe,
		// would be the one confirmed.
		if !h.from.accept(h.src, h.rtcp, wall) {
			h.from.errors++
			h.from.publish()
			l.unhold(h)
			continue
		}
		if h.from.changed {
			h.from.changed = false
			l.notify(h.from.id)
		}
		pkt := l.holdBuf[i*bufSize : i*bufSize+h.size]
		if h.uncounted {
			h.uncounted = false
			l.count(h.from, pkt, h.rtcp)
		}
		if h.from.cfg.Media != "" && !h.rtcp && h.from.cfg.Flags&RTCP == 0 {
			// The update that let it go made the party's media
			// transcoded: it goes through the transcoder like the
			// packets after it (media.go).
			h.from.mediaSeen = true
			l.toMedia(h.from, h.src, pkt, 0, h.from.cfg.Media)
			l.unhold(h)
			continue
		}
		if to.out != nil || to.srtpBroken {
			enc, ok := to.protect(l.obuf[:obufSize], pkt, h.rtcp || h.from.cfg.Flags&RTCP != 0)
			if !ok {
				h.from.errors++
				h.from.publish()
				l.unhold(h)
				continue
			}
			pkt = enc
		}
		l.siov[0].Base = &pkt[0]
		l.siov[0].SetLen(len(pkt))
		l.sname[0] = to.dest.raw
		l.sh[0].Hdr.Namelen = to.dest.len
		l.flush(to, 1)
		l.unhold(h)
	}
}

// forget drops the held packets of a stream that is removed.
func (l *loop) forget(s *stream) {
	for i := range l.holds {
		if l.holds[i].from == s {
			l.unhold(&l.holds[i])
		}
	}
}

func (l *loop) unhold(h *held) {
	h.from = nil
	l.holdCount--
}
