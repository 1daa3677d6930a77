package metrics_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/metrics"
)

// TestServeScrapeTimeMetrics: a registry with an OnScrape collector served
// by Start; the scrape has the Go and process collectors, build info, and
// the values as they are at scrape time.
func TestServeScrapeTimeMetrics(t *testing.T) {
	gauge := metrics.NewDesc("rtpkit_test_things", "Things.", "kind")
	counter := metrics.NewDesc("rtpkit_test_events_total", "Events.")
	n := 1.0
	reg := metrics.NewRegistry("test")
	reg.MustRegister(metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		metrics.Gauge(ch, gauge, n, "a")
		metrics.Counter(ch, counter, 10*n)
	}, gauge, counter))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := metrics.Start(ctx, "127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr().String() + metrics.Path

	mfs := scrape(t, url)
	for _, name := range []string{"go_goroutines", "process_open_fds", "rtpkit_build_info", "rtpkit_test_things", "rtpkit_test_events_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if v := mfs["rtpkit_test_things"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("rtpkit_test_things = %v, want 1", v)
	}
	if got := labelValue(mfs["rtpkit_build_info"].GetMetric()[0], "daemon"); got != "test" {
		t.Errorf("build info daemon = %q", got)
	}
	n = 2
	mfs = scrape(t, url)
	if v := mfs["rtpkit_test_events_total"].GetMetric()[0].GetCounter().GetValue(); v != 20 {
		t.Errorf("rtpkit_test_events_total = %v, want 20 (read at scrape time)", v)
	}

	// The context's end stops the server.
	cancel()
	if err := srv.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("server still answers after its context ended")
	}
}

// TestWrongLabelCountIsAScrapeError: a collector bug shows in the scrape
// error log, not as a panic of the daemon.
func TestWrongLabelCountIsAScrapeError(t *testing.T) {
	d := metrics.NewDesc("rtpkit_test_bad", "Bad.", "a", "b")
	ok := metrics.NewDesc("rtpkit_test_good", "Good.")
	reg := metrics.NewRegistry("test")
	reg.MustRegister(metrics.OnScrape(func(ch chan<- prometheus.Metric) {
		metrics.Gauge(ch, d, 1, "only-one")
		metrics.Gauge(ch, ok, 1)
	}, d, ok))
	mfs, err := reg.Gather()
	if err == nil {
		t.Fatal("no error for a wrong number of label values")
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "rtpkit_test_good"
	}
	if !found {
		t.Fatal("the good metric was lost with the bad one")
	}
}

func TestStartOffAndListenError(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	srv, err := metrics.Start(context.Background(), "", prometheus.NewRegistry(), log)
	if srv != nil || err != nil {
		t.Fatalf("empty address: %v, %v; want off", srv, err)
	}
	if srv.Addr() != nil || srv.Close() != nil {
		t.Fatal("nil server methods")
	}
	a, err := metrics.Start(context.Background(), "127.0.0.1:0", prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := metrics.Start(context.Background(), a.Addr().String(), prometheus.NewRegistry(), log); err == nil {
		t.Fatal("a taken port gave no error")
	}
}

func TestOptionAndValidate(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var v string
	metrics.RegisterFlag(fs, &v, "ng-ctl")
	if err := fs.Parse([]string{"--metrics-ng-ctl=127.0.0.1:9101"}); err != nil || v != "127.0.0.1:9101" {
		t.Fatalf("parse: %v %q", err, v)
	}
	for _, good := range []string{"", "127.0.0.1:9100", "[::1]:9100", "localhost:9100", ":9100", "0.0.0.0:0"} {
		if err := metrics.ValidateAddr("portd", good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"127.0.0.1", "::1:9100", "host:port", "127.0.0.1:70000"} {
		err := metrics.ValidateAddr("portd", bad)
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--metrics-portd") {
			t.Errorf("%q: %v, want a usage error naming --metrics-portd", bad, err)
		}
	}
}

// scrape GETs url and parses the text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return mfs
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
