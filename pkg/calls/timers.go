package calls

import (
	"context"
	"net/netip"
	"time"
)

// Observed is what the forwarding workers report of one of our sockets.
type Observed struct {
	LastPacket             time.Time
	Packets, Bytes, Errors uint64
	// KernelDrops counts datagrams the kernel dropped on the socket's full
	// receive queue.
	KernelDrops uint64
	// SRTPFailures counts the party's packets that failed SRTP
	// authentication.
	SRTPFailures uint64
	// Call is the call the worker had the socket under ("": not said);
	// a report for another call is not this one's.
	Call string
	// SRTPInROC and SRTPOutROC are the SRTP rollover counters the worker
	// reached (kept in the call record).
	SRTPInROC, SRTPOutROC uint32
	// DTLSIn and DTLSOut are the SRTP keys of the stream's DTLS handshake
	// (a=crypto values; "" until the worker reported them), kept in the
	// call record.
	DTLSIn, DTLSOut string
	// Endpoint is the party's learned (or signalled) address.
	Endpoint netip.AddrPort
	// Confirmed: the worker has latched Endpoint (rtpengine's
	// "confirmed" stream flag).
	Confirmed bool
	// Offloaded: the in-kernel fast path forwards the stream now
	// (rtpengine's "kernelized").
	Offloaded bool
	// SSRC is the SSRC of the RTP packets last received on the socket
	// (0: none seen, or not RTP).
	SSRC uint32
}

// Activity reports what is known of one of our sockets' traffic; ok false
// means nothing.
type Activity func(local netip.AddrPort) (o Observed, ok bool)

// SetActivity installs the source of packet activity for the timers and
// query. The media timers wait grace after this call before they judge a
// call (the workers report once a second; a restarted ng-ctl has heard
// nothing yet).
func (e *Engine) SetActivity(a Activity, grace time.Duration) {
	e.activity.Store(&a)
	e.graceUntil.Store(e.now().Add(grace).UnixNano())
}

// News reports, for one of our sockets, when ng-ctl last heard from the
// forwarding worker that holds it (any activity message) and since when it
// has heard from that worker without a gap; ok false means no worker has
// been heard from at all.
type News func(local netip.AddrPort) (heard, since time.Time, ok bool)

// newsSource is an installed News with its staleness limit.
type newsSource struct {
	news       News
	staleAfter time.Duration
}

// SetNews installs the source of news for the media timers: a call with a
// stream whose worker ng-ctl has not heard from for longer than staleAfter
// is not judged for lack of media (no news is not no media); a stream's
// silence is known only up to when ng-ctl last heard from its worker, and
// counts from when news of that worker resumed at the earliest.
func (e *Engine) SetNews(n News, staleAfter time.Duration) {
	e.news.Store(&newsSource{news: n, staleAfter: staleAfter})
}

// RunTimers checks the calls' timers about once a second until ctx ends.
func (e *Engine) RunTimers(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Tick(e.now())
		}
	}
}

// Tick applies delete-delay, final-timeout and the no-media timers at now
// (reference §3.3). Foreign calls obey final-timeout only.
func (e *Engine) Tick(now time.Time) {
	e.mu.Lock()
	entries := make([]*entry, 0, len(e.calls))
	for _, en := range e.calls {
		entries = append(entries, en)
	}
	e.mu.Unlock()
	tm := e.Timers()
	for _, en := range entries {
		en.mu.Lock()
		if !en.c.gone {
			e.tickCall(en, tm, now)
		}
		en.mu.Unlock()
	}
}

func (e *Engine) tickCall(en *entry, tm Timers, now time.Time) {
	c := en.c
	if tm.FinalTimeout > 0 && now.Sub(c.created) >= time.Duration(tm.FinalTimeout)*time.Second {
		e.end(en, "final timeout", now)
		return
	}
	if c.foreign {
		return
	}
	mediaTimers := now.UnixNano() >= e.graceUntil.Load()
	if !c.deleteAt.IsZero() {
		if !now.Before(c.deleteAt) {
			e.end(en, "regular", now)
		}
		return // a pending deletion suspends the media timers
	}
	pending := false
	for _, l := range append([]*leg(nil), c.legs...) {
		if l.deleteAt.IsZero() {
			continue
		}
		pending = true
		if !now.Before(l.deleteAt) {
			e.dropLeg(en, l, now)
			if c.gone {
				return
			}
		}
	}
	if pending {
		return
	}
	e.keepROCs(c)
	if !mediaTimers {
		return // just started: the workers' activity is not known yet
	}
	reason, expired := e.mediaExpired(c, tm, now)
	if expired {
		e.end(en, reason, now)
	}
}

// keepROCs writes the SRTP rollover counters the workers reached into the
// call record when they went up (once per 65 536 packets of a stream), and
// the keys of DTLS handshakes and the pairs ICE nominated when they are
// new, so that a restarted worker or a standby node continues the call.
func (e *Engine) keepROCs(c *call) {
	act := e.callActivity(c)
	if act == nil {
		return
	}
	changed := false
	for _, l := range c.legs {
		for _, m := range l.medias {
			if len(m.sdesIn) == 0 && len(m.sdesOut) == 0 && m.dtls == nil && m.ice == nil || !m.local.RTP.IsValid() {
				continue
			}
			o, ok := act(m.local.RTP)
			if !ok {
				continue
			}
			if m.ice != nil && o.Confirmed && o.Endpoint.IsValid() && o.Endpoint.Port() != 0 && o.Endpoint != m.ice.Selected {
				m.ice.Selected, changed = o.Endpoint, true
			}
			if m.dtls != nil && o.DTLSIn != "" && o.DTLSOut != "" && (o.DTLSIn != m.dtls.KeyIn || o.DTLSOut != m.dtls.KeyOut) {
				m.dtls.KeyIn, m.dtls.KeyOut, changed = o.DTLSIn, o.DTLSOut, true
			}
			if o.SRTPInROC > m.rocIn {
				m.rocIn, changed = o.SRTPInROC, true
			}
			if o.SRTPOutROC > m.rocOut {
				m.rocOut, changed = o.SRTPOutROC, true
			}
		}
	}
	if changed {
		e.save(c)
	}
}

// mediaExpired reports whether every stream of the call is past its limit,
// and the reason to give: that of the stream that expired last.
func (e *Engine) mediaExpired(c *call, tm Timers, now time.Time) (string, bool) {
	timeout := secondsOr(tm.Timeout, 60)
	silent := secondsOr(tm.SilentTimeout, 3600)
	offerT := secondsOr(tm.OfferTimeout, 3600)
	act := e.callActivity(c)
	news := e.news.Load()
	streams := 0
	reason := ""
	var latest time.Time // the expiry of the stream that lived longest
	for _, l := range c.legs {
		for i, m := range l.medias {
			if !m.local.RTP.IsValid() {
				continue
			}
			streams++
			// last: the latest sign of life; asOf: how far the news
			// about the stream reaches (a worker's report says what it saw
			// when ng-ctl heard it, not now).
			last, asOf := c.lastSignal, now
			for _, ap := range []netip.AddrPort{m.local.RTP, m.local.RTCP} {
				if !ap.IsValid() {
					continue
				}
				if act != nil {
					if o, ok := act(ap); ok && o.LastPacket.After(last) {
						last = o.LastPacket
					}
				}
				if news != nil {
					heard, since, ok := news.news(ap)
					if ok && now.Sub(heard) > news.staleAfter {
						return "", false // no news of this stream: wait for it
					}
					if ok && since.After(last) {
						last = since
					}
					if ok && heard.Before(asOf) {
						asOf = heard
					}
				}
			}
			limit, why := timeout, "timeout"
			switch {
			case !expectedToSend(l, i):
				limit, why = silent, "silent timeout"
			case !l.sdp:
				limit, why = offerT, "offer timeout"
			}
			if asOf.Sub(last) < limit {
				return "", false
			}
			if exp := last.Add(limit); reason == "" || exp.After(latest) {
				reason, latest = why, exp
			}
		}
	}
	return reason, streams > 0
}

// expectedToSend says whether party l is expected to send on media i: its
// own direction sends, and the other side said it receives.
func expectedToSend(l *leg, i int) bool {
	m := l.medias[i]
	if m.direction == "recvonly" || m.direction == "inactive" {
		return false
	}
	if l.peer != nil && i < len(l.peer.medias) {
		switch l.peer.medias[i].direction {
		case "sendonly", "inactive":
			return false
		}
	}
	return true
}

func secondsOr(v, def int) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}
