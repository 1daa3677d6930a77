package rtpfwd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtpkit/rtpkit/pkg/fwd"
	"github.com/rtpkit/rtpkit/pkg/metrics"
)

// Descriptions of rtp-fwd's metrics (docs/metrics.md). The totals are the
// sums of the engine's per-stream counters (those of removed streams kept),
// read at scrape time: nothing is counted on the packet path for them.
var (
	descPackets      = metrics.NewDesc("rtpkit_packets_total", "Packets accepted from the parties of this worker's streams (RTP and RTCP; strict-source, truncation and flood drops are not media and count only as errors or flood drops).", "worker")
	descBytes        = metrics.NewDesc("rtpkit_bytes_total", "UDP payload bytes of the packets in rtpkit_packets_total.", "worker")
	descErrors       = metrics.NewDesc("rtpkit_packet_errors_total", "Strict-source drops, truncated packets and failed sends.", "worker")
	descFloodDrops   = metrics.NewDesc("rtpkit_flood_drops_total", "Packets dropped because a party sent faster than the per-stream rate cap.", "worker")
	descKernelDrops  = metrics.NewDesc("rtpkit_kernel_drops_total", "Datagrams the kernel dropped on full receive queues of this worker's sockets (SO_RXQ_OVFL).", "worker")
	descStreams      = metrics.NewDesc("rtpkit_streams", "Streams installed in this worker's forwarding engine.", "worker")
	descSRTPFailures = metrics.NewDesc("rtpkit_srtp_failures_total", "SRTP and SRTCP packets of this worker's streams that failed authentication or decryption (wrong key, tampered, replayed): dropped, never forwarded or learned from.", "worker")
	descFastPath     = metrics.NewDesc("rtpkit_fast_path_packets_total", "Packets of this worker's streams forwarded by the in-kernel fast path (included in rtpkit_packets_total).", "worker")
	descRefused      = metrics.NewDesc("rtpkit_refused_destinations_total", "Signalled media destinations refused (multicast, broadcast, loopback, the node's own media sockets): the party got no media.", "worker")
	descOffloaded    = metrics.NewDesc("rtpkit_fast_path_streams", "Streams forwarded by the in-kernel fast path now.", "worker")
	descActSent      = metrics.NewDesc("rtpkit_activity_messages_total", "Activity messages this worker published on the bus.", "worker")
	descActFailed    = metrics.NewDesc("rtpkit_activity_publish_errors_total", "Activity messages the bus refused (payload too large, connection closed, reconnect buffer full).", "worker")
)

// totals returns the worker's counters summed over every stream it has
// had (fast-path packets included), how many streams are installed now,
// the fast path's share of the packets and how many streams it forwards.
func (r *reconciler) totals() (sum fwd.Counters, n int, fast uint64, offloaded int, refused uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum, fast, refused = r.retired, r.retiredFast, r.refused
	for local := range r.sockCall {
		st, ok := r.eng.Stats(r.ids[local])
		if !ok {
			continue
		}
		k, on := r.off.kernel(local)
		st = mergeKernel(st, k)
		fast += k.Packets
		if on {
			offloaded++
		}
		sum.Packets += st.Packets
		sum.Bytes += st.Bytes
		sum.Errors += st.Errors
		sum.FloodDrops += st.FloodDrops
		sum.KernelDrops += st.KernelDrops
		sum.SRTPFailures += st.SRTPFailures
	}
	return sum, len(r.sockCall), fast, offloaded, refused
}

// collector reads the worker's totals at scrape time.
func (r *reconciler) collector(worker string) prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		c, n, fast, offloaded, refused := r.totals()
		metrics.Counter(ch, descPackets, float64(c.Packets), worker)
		metrics.Counter(ch, descBytes, float64(c.Bytes), worker)
		metrics.Counter(ch, descErrors, float64(c.Errors), worker)
		metrics.Counter(ch, descFloodDrops, float64(c.FloodDrops), worker)
		metrics.Counter(ch, descKernelDrops, float64(c.KernelDrops), worker)
		metrics.Counter(ch, descSRTPFailures, float64(c.SRTPFailures), worker)
		metrics.Gauge(ch, descStreams, float64(n), worker)
		metrics.Counter(ch, descFastPath, float64(fast), worker)
		metrics.Gauge(ch, descOffloaded, float64(offloaded), worker)
		metrics.Counter(ch, descActSent, float64(r.act.published.Load()), worker)
		metrics.Counter(ch, descActFailed, float64(r.act.failed.Load()), worker)
		metrics.Counter(ch, descRefused, float64(refused), worker)
	}, descPackets, descBytes, descErrors, descFloodDrops, descKernelDrops, descSRTPFailures, descStreams, descFastPath, descOffloaded, descActSent, descActFailed, descRefused)
}
