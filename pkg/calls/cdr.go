package calls

import (
	"log/slog"
	"net/netip"
	"time"
)

// activityNow returns the installed activity source, nil if none.
func (e *Engine) activityNow() Activity {
	if p := e.activity.Load(); p != nil {
		return *p
	}
	return nil
}

// callActivity is the activity source as call c sees it: a report about
// one of its sockets made for another call (a port handed on before the
// worker heard that the old call ended) is not c's; nil if none.
func (e *Engine) callActivity(c *call) Activity {
	act := e.activityNow()
	if act == nil {
		return nil
	}
	return func(local netip.AddrPort) (Observed, bool) {
		o, ok := act(local)
		if ok && o.Call != "" && o.Call != c.id {
			return Observed{}, false
		}
		return o, ok
	}
}

// cdr returns the attributes that make the "call ended" line a CDR, as
// rtpengine logs one when a call ends: per party, in the call's order, a
// group mlN (N from 0, rtpengine's monologue index) with its tag, label,
// the packets, bytes and errors received from it on our sockets (RTP and
// RTCP, from the workers' latest reports) and the endpoint it sent from;
// then the call's totals. c is locked.
func (e *Engine) cdr(c *call) []any {
	act := e.callActivity(c)
	out := make([]any, 0, len(c.legs)+6)
	out = append(out, "last_signal", c.lastSignal.UTC().Format(time.RFC3339))
	var total Counters
	for i, l := range c.legs {
		var n Counters
		var from netip.AddrPort
		for _, m := range l.medias {
			for _, ap := range []netip.AddrPort{m.local.RTP, m.local.RTCP} {
				if !ap.IsValid() || act == nil {
					continue
				}
				o, ok := act(ap)
				if !ok {
					continue
				}
				add(&n, Counters{Packets: o.Packets, Bytes: o.Bytes, Errors: o.Errors, KernelDrops: o.KernelDrops, SRTPFailures: o.SRTPFailures})
				if !from.IsValid() && ap == m.local.RTP && o.Endpoint.IsValid() {
					from = o.Endpoint
				}
			}
			if !from.IsValid() && m.learned.IsValid() {
				from = m.learned
			}
		}
		if !from.IsValid() {
			for _, m := range l.medias {
				if m.signalled.IsValid() && m.signalled.Port() != 0 {
					from = m.signalled
					break
				}
			}
		}
		attrs := []any{"tag", l.tag}
		if l.label != "" {
			attrs = append(attrs, "label", l.label)
		}
		attrs = append(attrs, "packets", n.Packets, "bytes", n.Bytes, "errors", n.Errors)
		if from.IsValid() {
			attrs = append(attrs, "endpoint", from.String())
		}
		out = append(out, slog.Group("ml"+itoa(i), attrs...))
		add(&total, n)
	}
	out = append(out, "packets", total.Packets, "bytes", total.Bytes, "errors", total.Errors)
	if total.SRTPFailures > 0 {
		out = append(out, "srtp_failures", total.SRTPFailures)
	}
	if total.KernelDrops > 0 {
		out = append(out, "kernel_drops", total.KernelDrops)
	}
	return out
}
