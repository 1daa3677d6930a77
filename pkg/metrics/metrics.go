// Package metrics is the part of Prometheus metrics that rtpkit's daemons
// share: a registry of their own with the Go and process collectors, the
// per-daemon --metrics-<daemon> option, an HTTP server for /metrics, and
// helpers to build metrics from existing state at scrape time.
//
// Daemons do not count into metrics on their hot paths. They register a
// collector (OnScrape) that reads the counters and tables they already keep
// when Prometheus scrapes; only ng-ctl observes its requests as they are
// answered. Every name starts with rtpkit_ and counters end in _total
// (docs/metrics.md lists them all).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rtpkit/rtpkit/pkg/version"
)

// Namespace is the prefix of every rtpkit metric name (rtpkit_...).
const Namespace = "rtpkit"

// NewRegistry returns a registry of daemon's own (never the global one)
// holding the Go runtime and process collectors and rtpkit_build_info,
// a gauge of 1 labelled with the daemon's name and version.
func NewRegistry(daemon string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   Namespace,
			Name:        "build_info",
			Help:        "Always 1; labelled with the daemon and its version.",
			ConstLabels: prometheus.Labels{"daemon": daemon, "version": version.Version},
		}, func() float64 { return 1 }),
	)
	return reg
}

// NewDesc describes one metric family: name is the full name (rtpkit_...),
// labels the names of its variable labels, in the order values are given
// to Gauge and Counter.
func NewDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// OnScrape returns a collector that calls read at every scrape; read sends
// the current values (with Gauge and Counter) of metrics described by descs,
// which must list every family read may send.
func OnScrape(read func(ch chan<- prometheus.Metric), descs ...*prometheus.Desc) prometheus.Collector {
	return &scrapeCollector{read: read, descs: descs}
}

type scrapeCollector struct {
	read  func(ch chan<- prometheus.Metric)
	descs []*prometheus.Desc
}

// Describe sends the descriptions given to OnScrape.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect calls the read function.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) { c.read(ch) }

// Gauge sends a gauge of desc with value v and the label values, in the
// order of desc's labels. A wrong number of label values becomes a scrape
// error of that metric, not a panic.
func Gauge(ch chan<- prometheus.Metric, desc *prometheus.Desc, v float64, labels ...string) {
	constMetric(ch, desc, prometheus.GaugeValue, v, labels)
}

// Counter sends a counter of desc with value v and the label values, in
// the order of desc's labels. v must only grow over the life of the
// process.
func Counter(ch chan<- prometheus.Metric, desc *prometheus.Desc, v float64, labels ...string) {
	constMetric(ch, desc, prometheus.CounterValue, v, labels)
}

func constMetric(ch chan<- prometheus.Metric, desc *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	m, err := prometheus.NewConstMetric(desc, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}
