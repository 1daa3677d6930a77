package rtpfwd

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// activityStats counts the worker's activity messages (metrics).
type activityStats struct {
	published, failed atomic.Uint64
}

// publishActivity reports the streams' counters until ctx ends: every
// interval the streams that changed (every FullEvery intervals all of
// them), in messages of at most fwdapi.MaxStreamsPerMessage streams, and
// at least one message per interval even when nothing changed.
func (r *reconciler) publishActivity(ctx context.Context, c *bus.Conn, worker string) {
	t := time.NewTicker(fwdapi.ActivityInterval)
	defer t.Stop()
	last := map[netip.AddrPort]fwd.Counters{}
	var lastWarn time.Time
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		full := n%fwdapi.FullEvery == 0
		streams := r.changedStreams(last, full)
		for _, msg := range splitActivity(worker, uint64(n)+1, full, streams) {
			err := bus.Publish(c, fwdapi.ActivityEvent, msg)
			if err == nil {
				r.act.published.Add(1)
				continue
			}
			r.act.failed.Add(1)
			// Send these streams again next interval: a delta must not
			// skip what nobody heard.
			for _, s := range msg.Streams {
				delete(last, s.Local)
			}
			if now := time.Now(); now.Sub(lastWarn) >= time.Minute {
				lastWarn = now
				r.log.Warn("activity report not published", "seq", msg.Seq, "part", msg.Part, "parts", msg.Parts,
					"streams", len(msg.Streams), "failed_total", r.act.failed.Load(), "err", err)
			} else {
				r.log.Debug("activity report not published", "seq", msg.Seq, "part", msg.Part, "err", err)
			}
		}
	}
}

// changedStreams returns the streams whose counters changed since last
// (all of them if full), updating last and forgetting removed streams.
func (r *reconciler) changedStreams(last map[netip.AddrPort]fwd.Counters, full bool) []fwdapi.StreamActivity {
	var out []fwdapi.StreamActivity
	r.mu.Lock()
	seen := make(map[netip.AddrPort]bool, len(r.sockCall))
	for local := range r.sockCall {
		seen[local] = true
		st, ok := r.eng.Stats(r.ids[local])
		if !ok {
			continue
		}
		k, on := r.off.kernel(local)
		st = mergeKernel(st, k)
		kin, kout, keyed := r.eng.DTLSKeys(r.ids[local])
		newKeys := keyed && r.sentKeys[local] != kin
		if prev, ok := last[local]; !full && !newKeys && ok && prev.Packets == st.Packets && prev.Errors == st.Errors && prev.Endpoint == st.Endpoint && prev.KernelDrops == st.KernelDrops && prev.SRTPFailures == st.SRTPFailures &&
			prev.SRTPInROC == st.SRTPInROC && prev.SRTPOutROC == st.SRTPOutROC {
			continue
		}
		last[local] = st
		sa := fwdapi.StreamActivity{Local: local, Call: r.sockCall[local], LastPacket: st.LastPacket, Packets: st.Packets,
			Bytes: st.Bytes, Errors: st.Errors, Endpoint: st.Endpoint, Confirmed: st.Confirmed, SSRC: st.SSRC, KernelDrops: st.KernelDrops,
			SRTPFailures: st.SRTPFailures, SRTPInROC: st.SRTPInROC, SRTPOutROC: st.SRTPOutROC, Offloaded: on, FastPathPackets: k.Packets}
		if keyed && (newKeys || full) {
			sa.DTLSIn, sa.DTLSOut = cryptoValue(kin), cryptoValue(kout)
			r.sentKeys[local] = kin
		}
		out = append(out, sa)
	}
	r.mu.Unlock()
	for local := range last {
		if !seen[local] {
			delete(last, local)
		}
	}
	for local := range r.sentKeys {
		if !seen[local] {
			delete(r.sentKeys, local)
		}
	}
	return out
}

// splitActivity cuts one report (seq) into messages of at most
// fwdapi.MaxStreamsPerMessage streams, numbered Part 1..Parts; a report
// without streams is one empty message.
func splitActivity(worker string, seq uint64, full bool, streams []fwdapi.StreamActivity) []fwdapi.Activity {
	parts := max(1, (len(streams)+fwdapi.MaxStreamsPerMessage-1)/fwdapi.MaxStreamsPerMessage)
	msgs := make([]fwdapi.Activity, 0, parts)
	for i := range parts {
		lo := i * fwdapi.MaxStreamsPerMessage
		hi := min(len(streams), lo+fwdapi.MaxStreamsPerMessage)
		msgs = append(msgs, fwdapi.Activity{Worker: worker, Full: full, Streams: streams[lo:hi:hi], Seq: seq, Part: i + 1, Parts: parts})
	}
	return msgs
}
