package rtpfwd

import (
	"context"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/fwd"
)

// SubjectActivity is where workers publish stream activity
// (rtpkit.v1.<node>.rtp-fwd.activity).
const SubjectActivity = "activity"

// ActivityInterval is how often a worker publishes the streams that
// changed; every FullEvery intervals it publishes all of them.
const (
	ActivityInterval = time.Second
	FullEvery        = 10
)

// Activity is a worker's report of its streams' counters, published off the
// packet path: ng-ctl's timers and query use it.
type Activity struct {
	Worker  string           `json:"worker"`
	Full    bool             `json:"full,omitempty"`
	Streams []StreamActivity `json:"streams"`
}

// StreamActivity is one stream: packets received on our socket Local.
type StreamActivity struct {
	Local      netip.AddrPort `json:"local"`
	LastPacket time.Time      `json:"last_packet,omitzero"`
	Packets    uint64         `json:"packets"`
	Bytes      uint64         `json:"bytes"`
	Errors     uint64         `json:"errors"`
	// Endpoint is the learned (or signalled) address of the party.
	Endpoint  netip.AddrPort `json:"endpoint,omitzero"`
	Confirmed bool           `json:"confirmed,omitempty"`
	SSRC      uint32         `json:"ssrc,omitempty"`
	// KernelDrops counts datagrams the kernel dropped on the socket's full
	// receive queue (SO_RXQ_OVFL), over the socket's life.
	KernelDrops uint64 `json:"kernel_drops,omitempty"`
	// Offloaded reports whether the stream is forwarded by the in-kernel
	// fast path now.
	Offloaded bool `json:"offloaded,omitempty"`
	// FastPathPackets counts the packets the fast path forwarded for this
	// stream (included in Packets; Packets minus FastPathPackets went
	// through rtp-fwd's socket).
	FastPathPackets uint64 `json:"fast_path_packets,omitempty"`
}

// publishActivity reports the streams' counters until ctx ends.
func (r *reconciler) publishActivity(ctx context.Context, c *bus.Conn, worker string) {
	t := time.NewTicker(ActivityInterval)
	defer t.Stop()
	last := map[netip.AddrPort]fwd.Counters{}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		full := n%FullEvery == 0
		msg := Activity{Worker: worker, Full: full}
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
			msg.Streams = append(msg.Streams, StreamActivity{Local: local, LastPacket: st.LastPacket, Packets: st.Packets,
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
			_ = bus.Publish(c, c.Subject("rtp-fwd", SubjectActivity), msg)
		}
	}
}
