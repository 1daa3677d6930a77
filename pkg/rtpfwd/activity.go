package rtpfwd

import (
	"context"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// publishActivity reports the streams' counters until ctx ends.
func (r *reconciler) publishActivity(ctx context.Context, c *bus.Conn, worker string) {
	t := time.NewTicker(fwdapi.ActivityInterval)
	defer t.Stop()
	last := map[netip.AddrPort]fwd.Counters{}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		full := n%fwdapi.FullEvery == 0
		msg := fwdapi.Activity{Worker: worker, Full: full}
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
			if prev, ok := last[local]; !full && ok && prev.Packets == st.Packets && prev.Errors == st.Errors && prev.Endpoint == st.Endpoint && prev.KernelDrops == st.KernelDrops {
				continue
			}
			last[local] = st
			msg.Streams = append(msg.Streams, fwdapi.StreamActivity{Local: local, LastPacket: st.LastPacket, Packets: st.Packets,
				Bytes: st.Bytes, Errors: st.Errors, Endpoint: st.Endpoint, Confirmed: st.Confirmed, SSRC: st.SSRC, KernelDrops: st.KernelDrops,
				Offloaded: on, FastPathPackets: k.Packets})
		}
		r.mu.Unlock()
		for local := range last {
			if !seen[local] {
				delete(last, local)
			}
		}
		if len(msg.Streams) > 0 || full {
			_ = bus.Publish(c, fwdapi.ActivityEvent, msg)
		}
	}
}
