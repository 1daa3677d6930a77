package ngctl

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/ngctl/portstock"
)

// ngCommands are the commands ng-ctl serves; requests of any other command
// are counted as "other", so that a client cannot grow the label set.
var ngCommands = []string{"ping", "offer", "answer", "delete", "query", "list", "statistics"}

// requestBuckets are the latency buckets of ng requests, in seconds: most
// are answered in well under a millisecond.
var requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// ngMetrics counts ng requests as they are answered (protocol.account).
type ngMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	known    map[string]bool
}

func newNGMetrics() *ngMetrics {
	m := &ngMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtpkit_ng_requests_total", Help: "ng requests answered, by command (unknown commands as \"other\").",
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtpkit_ng_errors_total", Help: "ng requests answered with result \"error\", by command.",
		}, []string{"command"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rtpkit_ng_request_duration_seconds", Help: "Time from a decoded ng request to its reply, by command.",
			Buckets: requestBuckets,
		}, []string{"command"}),
		known: map[string]bool{},
	}
	for _, c := range ngCommands {
		m.known[c] = true
		m.requests.WithLabelValues(c)
		m.errors.WithLabelValues(c)
		m.duration.WithLabelValues(c)
	}
	return m
}

// observe counts one answered request.
func (m *ngMetrics) observe(cmd string, d time.Duration, failed bool) {
	if !m.known[cmd] {
		cmd = "other"
	}
	m.requests.WithLabelValues(cmd).Inc()
	if failed {
		m.errors.WithLabelValues(cmd).Inc()
	}
	m.duration.WithLabelValues(cmd).Observe(d.Seconds())
}

// Descriptions of the call engine's metrics, read at scrape time.
var (
	descSessions       = metrics.NewDesc("rtpkit_sessions", "Calls this ng-ctl holds, own or foreign (restored from another node).", "type")
	descSessionsTotal  = metrics.NewDesc("rtpkit_managed_sessions_total", "Calls created by offers since ng-ctl started (rtpengine_sessions_total; renamed so as not to clash with rtpkit_sessions in OpenMetrics).")
	descClosedSessions = metrics.NewDesc("rtpkit_closed_sessions_total", "Calls ended, by reason (rejected: refused by --max-sessions).", "reason")
	descCallDuration   = metrics.NewDesc("rtpkit_call_duration_seconds_total", "Summed duration of the calls ended.")
	descCallDurationAv = metrics.NewDesc("rtpkit_call_duration_avg_seconds", "Average duration of the calls ended.")
)

// engineCollector reads the call engine's statistics (those of the ng
// statistics command) at scrape time.
func engineCollector(e *calls.Engine) prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		st := e.Stats()
		metrics.Gauge(ch, descSessions, float64(st.SessionsOwn), "own")
		metrics.Gauge(ch, descSessions, float64(st.SessionsForeign), "foreign")
		metrics.Counter(ch, descSessionsTotal, float64(st.Managed))
		for _, r := range []struct {
			reason string
			n      int64
		}{
			{"terminated", st.Regular}, {"force_terminated", st.Forced}, {"timeout", st.Timeout},
			{"silent_timeout", st.SilentTimeout}, {"offer_timeout", st.OfferTimeout}, {"final_timeout", st.FinalTimeout},
			{"rejected", st.Rejected},
		} {
			metrics.Counter(ch, descClosedSessions, float64(r.n), r.reason)
		}
		metrics.Counter(ch, descCallDuration, st.TotalCallsDuration.Seconds())
		metrics.Gauge(ch, descCallDurationAv, st.AvgCallDuration.Seconds())
	}, descSessions, descSessionsTotal, descClosedSessions, descCallDuration, descCallDurationAv)
}

var descStockMisses = metrics.NewDesc("rtpkit_port_stock_misses_total",
	"Offers (or re-offers needing new ports) that found ng-ctl's stock of leased ports empty and waited on portd.")

// stockCollector reads the port stock's counters at scrape time.
func stockCollector(st *portstock.Stock) prometheus.Collector {
	return metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		metrics.Counter(ch, descStockMisses, float64(st.Misses()))
	}, descStockMisses)
}
