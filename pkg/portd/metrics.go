package portd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtpkit/rtpkit/pkg/metrics"
)

// Descriptions of portd's metrics (docs/metrics.md).
var (
	descPorts            = metrics.NewDesc("rtpkit_ports", "Ports in the range of a local address.", "interface", "address")
	descPortsUsed        = metrics.NewDesc("rtpkit_ports_used", "Ports of a local address that are bound (leased or in calls).", "interface", "address")
	descPortsFree        = metrics.NewDesc("rtpkit_ports_free", "Ports of a local address that can be allocated now.", "interface", "address")
	descPortsQuarantined = metrics.NewDesc("rtpkit_ports_quarantined", "Released ports of a local address resting before reuse.", "interface", "address")
	descPairsLeased      = metrics.NewDesc("rtpkit_port_pairs_leased", "Port pairs (or single ports) of a local address leased to ng-ctl and not used by a call yet.", "interface", "address")
	descPairsAssigned    = metrics.NewDesc("rtpkit_port_pairs_assigned", "Port pairs (or single ports) of a local address used by calls.", "interface", "address")
	descAddrPresent      = metrics.NewDesc("rtpkit_address_present", "1 if the local address is configured on the host now, 0 if not (a failover address not taken yet).", "interface", "address")
	descSockets          = metrics.NewDesc("rtpkit_sockets_open", "Media sockets portd holds.")
	descSocketsLimit     = metrics.NewDesc("rtpkit_sockets_limit", "Most media sockets portd opens: the open-file limit less --fd-reserve.")
	descWorkers          = metrics.NewDesc("rtpkit_workers_connected", "Forwarding workers (rtp-fwd) connected to the hand-off socket.")
	descWorkerSockets    = metrics.NewDesc("rtpkit_worker_sockets", "Media sockets a connected worker holds.", "worker")
	descLeaseWaits       = metrics.NewDesc("rtpkit_port_lease_waits_total", "Times a lease found no usable port (range empty, or ports still bound by a worker) and waited for ports on their way back.")
)

// collector reads portd's table and workers at scrape time.
func (d *daemon) collector() prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		ifs, n := d.t.status(hostHas())
		for _, ifc := range ifs {
			for _, a := range ifc.Addresses {
				lv := []string{ifc.Name, a.Local.String()}
				metrics.Gauge(ch, descPorts, float64(a.PortMax-a.PortMin+1), lv...)
				metrics.Gauge(ch, descPortsUsed, float64(a.Used), lv...)
				metrics.Gauge(ch, descPortsFree, float64(a.Free), lv...)
				metrics.Gauge(ch, descPortsQuarantined, float64(a.Quarantined), lv...)
				metrics.Gauge(ch, descPairsLeased, float64(a.Leased), lv...)
				metrics.Gauge(ch, descPairsAssigned, float64(a.Assigned), lv...)
				present := 0.0
				if a.Present {
					present = 1
				}
				metrics.Gauge(ch, descAddrPresent, present, lv...)
			}
		}
		metrics.Gauge(ch, descSockets, float64(n))
		metrics.Gauge(ch, descSocketsLimit, float64(d.t.maxSockets))
		ws := d.ws.status()
		metrics.Gauge(ch, descWorkers, float64(len(ws)))
		for _, w := range ws {
			metrics.Gauge(ch, descWorkerSockets, float64(w.Sockets), w.ID)
		}
		metrics.Counter(ch, descLeaseWaits, float64(d.leaseWaits.Load()))
	}, descLeaseWaits, descPorts, descPortsUsed, descPortsFree, descPortsQuarantined, descPairsLeased, descPairsAssigned, descAddrPresent,
		descSockets, descSocketsLimit, descWorkers, descWorkerSockets)
}
