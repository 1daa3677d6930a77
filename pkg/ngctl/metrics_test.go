package ngctl

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestNGMetricsBoundLabels: known commands count under their name, any
// other under "other", so a client cannot grow the label set.
func TestNGMetricsBoundLabels(t *testing.T) {
	m := newNGMetrics()
	m.observe("offer", time.Millisecond, false)
	m.observe("offer", 2*time.Millisecond, true)
	for i := range 100 {
		m.observe("block DTMF "+string(rune('a'+i%26)), time.Microsecond, true)
	}
	if n := counterValue(t, m.requests.WithLabelValues("offer")); n != 2 {
		t.Errorf("offer requests %v, want 2", n)
	}
	if n := counterValue(t, m.errors.WithLabelValues("offer")); n != 1 {
		t.Errorf("offer errors %v, want 1", n)
	}
	if n := counterValue(t, m.requests.WithLabelValues("other")); n != 100 {
		t.Errorf("other requests %v, want 100", n)
	}
	// 7 commands and "other".
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration} {
		if n := series(c); n != len(ngCommands)+1 {
			t.Errorf("%d series, want %d", n, len(ngCommands)+1)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
