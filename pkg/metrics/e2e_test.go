package metrics_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// TestNodeMetrics runs a node with every daemon's metrics option on (and
// ng-ctl's HTTP listener), makes a call with RTP both ways, and checks what
// each /metrics says; then ends the call and checks that sessions go back
// to zero while the packet totals do not go down.
func TestNodeMetrics(t *testing.T) {
	free := func(network string) int {
		t.Helper()
		p, err := testutil.FreePort(network, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	ngAddr := addr(free("udp"))
	urls := map[string]string{}
	args := []string{"up", "--nats-listen=127.0.0.1:0", "--state-dir=" + testutil.ShortTempDir(t),
		"--interface=127.0.0.1", "--port-min=43000", "--port-max=43199", "--listen-ng=" + ngAddr}
	for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync"} {
		a := addr(free("tcp"))
		urls[d] = "http://" + a + "/metrics"
		args = append(args, "--metrics-"+d+"="+a)
	}
	httpAddr := addr(free("tcp"))
	urls["ng-ctl http"] = "http://" + httpAddr + "/metrics"
	args = append(args, "--listen-http="+httpAddr)
	// redis-sync persists to a real Redis when there is one (make test
	// installs it); without one it idles and says so.
	withRedis := false
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("RTPKIT_REQUIRE_DEPS") != "" {
		r := testutil.StartRedis(t, testutil.RedisOptions{})
		args = append(args, "--redis="+r.URL(1), "--subscribe-keyspace=2")
		withRedis = true
	}

	start := time.Now()
	up := testutil.StartProc(t, filepath.Join(testutil.Binaries(t), "rtpctl"), args)
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 60*time.Second)
	t.Logf("node up in %v", time.Since(start).Round(time.Millisecond))

	// Every daemon serves its metrics before any call: lint them all.
	for name, url := range urls {
		mfs := scrape(t, url)
		for _, f := range []string{"go_goroutines", "process_open_fds", "rtpkit_build_info"} {
			if mfs[f] == nil {
				t.Errorf("%s: no %s", name, f)
			}
		}
		lint(t, name, mfs)
	}

	// A call with RTP both ways.
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	c, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	toB := testutil.NGOK(t, ctx, c, testutil.NGCall("offer", callID, "", testutil.AudioSDP(a)))
	toA := testutil.NGOK(t, ctx, c, testutil.NGCall("answer", callID, "B", testutil.AudioSDP(b)))
	dstA, dstB := testutil.SDPMediaAddr(t, toA), testutil.SDPMediaAddr(t, toB)
	const rounds = 5
	for seq := uint16(1); seq <= rounds; seq++ {
		testutil.Relay(t, a, dstA, b, 0x1111, seq)
		testutil.Relay(t, b, dstB, a, 0x2222, seq)
	}
	testutil.NGOK(t, ctx, c, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("ping")}))

	// ng-ctl, on its metrics option and on its ng HTTP listener.
	for _, name := range []string{"ng-ctl", "ng-ctl http"} {
		mfs := scrape(t, urls[name])
		expect(t, name, mfs, "rtpkit_sessions", `type="own"`, eq(1))
		expect(t, name, mfs, "rtpkit_sessions", `type="foreign"`, eq(0))
		expect(t, name, mfs, "rtpkit_managed_sessions_total", "", eq(1))
		expect(t, name, mfs, "rtpkit_ng_requests_total", `command="offer"`, eq(1))
		expect(t, name, mfs, "rtpkit_ng_requests_total", `command="answer"`, eq(1))
		expect(t, name, mfs, "rtpkit_ng_requests_total", `command="ping"`, atLeast(1))
		expect(t, name, mfs, "rtpkit_ng_errors_total", `command="offer"`, eq(0))
		expect(t, name, mfs, "rtpkit_ng_request_duration_seconds", `command="offer"`, eq(1))
		expect(t, name, mfs, "rtpkit_closed_sessions_total", `reason="terminated"`, eq(0))
		expect(t, name, mfs, "rtpkit_port_stock_misses_total", "", eq(0)) // warmed at start
	}
	// rtp-fwd: its totals are read from the engine at scrape time.
	fwd := scrape(t, urls["rtp-fwd"])
	expect(t, "rtp-fwd", fwd, "rtpkit_packets_total", `worker="0"`, atLeast(2*rounds))
	expect(t, "rtp-fwd", fwd, "rtpkit_bytes_total", `worker="0"`, atLeast(2*rounds*12))
	expect(t, "rtp-fwd", fwd, "rtpkit_packet_errors_total", `worker="0"`, eq(0))
	expect(t, "rtp-fwd", fwd, "rtpkit_flood_drops_total", `worker="0"`, eq(0))
	expect(t, "rtp-fwd", fwd, "rtpkit_kernel_drops_total", `worker="0"`, eq(0))
	expect(t, "rtp-fwd", fwd, "rtpkit_refused_destinations_total", `worker="0"`, eq(0))
	expect(t, "rtp-fwd", fwd, "rtpkit_streams", `worker="0"`, eq(4)) // RTP and RTCP of both parties
	packets := value(t, fwd, "rtpkit_packets_total", `worker="0"`)
	// portd.
	pd := scrape(t, urls["portd"])
	at := `interface="default",address="127.0.0.1"`
	expect(t, "portd", pd, "rtpkit_ports", at, eq(200))
	expect(t, "portd", pd, "rtpkit_ports_used", at, atLeast(4))
	expect(t, "portd", pd, "rtpkit_ports_free", at, atLeast(1))
	expect(t, "portd", pd, "rtpkit_port_pairs_assigned", at, eq(2))
	expect(t, "portd", pd, "rtpkit_address_present", at, eq(1))
	expect(t, "portd", pd, "rtpkit_workers_connected", "", eq(1))
	expect(t, "portd", pd, "rtpkit_worker_sockets", `worker="0"`, atLeast(4))
	expect(t, "portd", pd, "rtpkit_sockets_open", "", atLeast(4))
	expect(t, "portd", pd, "rtpkit_sockets_limit", "", atLeast(1))
	if used, free := value(t, pd, "rtpkit_ports_used", at), value(t, pd, "rtpkit_ports_free", at); used+free+value(t, pd, "rtpkit_ports_quarantined", at) != 200 {
		t.Errorf("portd: used %v + free %v + quarantined != 200 ports", used, free)
	}
	// redis-sync: the write reaches Redis off the call's path.
	if withRedis {
		eventually(t, 10*time.Second, func() string {
			rs := scrape(t, urls["redis-sync"])
			if value(t, rs, "rtpkit_redis_writes_total", "") < 1 || value(t, rs, "rtpkit_redis_calls", `partition="db:1"`) != 1 {
				return "redis-sync: no write or no call in db:1 yet"
			}
			expect(t, "redis-sync", rs, "rtpkit_redis_enabled", "", eq(1))
			expect(t, "redis-sync", rs, "rtpkit_redis_write_errors_total", "", eq(0))
			expect(t, "redis-sync", rs, "rtpkit_redis_followed_partitions", "", eq(1))
			expect(t, "redis-sync", rs, "rtpkit_redis_calls", `partition="db:2"`, eq(0))
			expect(t, "redis-sync", rs, "rtpkit_redis_resyncs_total", "", atLeast(1))
			expect(t, "redis-sync", rs, "rtpkit_redis_queue_capacity", "", eq(100000))
			return ""
		})
	} else {
		t.Log("no redis-server: redis-sync checked idle only")
		expect(t, "redis-sync", scrape(t, urls["redis-sync"]), "rtpkit_redis_enabled", "", eq(0))
	}

	// The call ends: sessions and streams go to zero, totals stay.
	del := testutil.NGCall("delete", callID, "", "")
	del.Set("delete-delay", bencode.Int(0))
	testutil.NGOK(t, ctx, c, del)
	eventually(t, 10*time.Second, func() string {
		fwd := scrape(t, urls["rtp-fwd"])
		if n := value(t, fwd, "rtpkit_streams", `worker="0"`); n != 0 {
			return fmt.Sprintf("rtp-fwd still has %v streams", n)
		}
		expect(t, "rtp-fwd", fwd, "rtpkit_packets_total", `worker="0"`, atLeast(packets))
		return ""
	})
	ng := scrape(t, urls["ng-ctl"])
	expect(t, "ng-ctl", ng, "rtpkit_sessions", `type="own"`, eq(0))
	expect(t, "ng-ctl", ng, "rtpkit_closed_sessions_total", `reason="terminated"`, eq(1))
	expect(t, "ng-ctl", ng, "rtpkit_ng_requests_total", `command="delete"`, eq(1))
	eventually(t, 10*time.Second, func() string {
		if n := value(t, scrape(t, urls["portd"]), "rtpkit_port_pairs_assigned", at); n != 0 {
			return fmt.Sprintf("portd: %v pairs still assigned", n)
		}
		return ""
	})
	for name, url := range urls {
		lint(t, name, scrape(t, url))
	}
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// --- metric checks ---

type check struct {
	what string
	ok   func(float64) bool
}

func eq(v float64) check {
	return check{fmt.Sprintf("== %v", v), func(x float64) bool { return x == v }}
}
func atLeast(v float64) check {
	return check{fmt.Sprintf(">= %v", v), func(x float64) bool { return x >= v }}
}

// value is the value of family name's metric whose labels, written as
// `a="x",b="y"` in any order, are labels ("" for none): a gauge's or
// counter's value, a histogram's sample count.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name, labels string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no family %s", name)
	}
	want := strings.Split(labels, ",")
	slices.Sort(want)
	var seen []string
	for _, m := range mf.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		slices.Sort(ls)
		if got := strings.Join(ls, ","); got != strings.Join(want, ",") {
			seen = append(seen, got)
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s{%s} not found; it has %q", name, labels, seen)
	return 0
}

func expect(t *testing.T, daemon string, mfs map[string]*dto.MetricFamily, name, labels string, c check) {
	t.Helper()
	if v := value(t, mfs, name, labels); !c.ok(v) {
		t.Errorf("%s: %s{%s} = %v, want %s", daemon, name, labels, v, c.what)
	}
}

// lint runs promlint over the rtpkit_ families.
func lint(t *testing.T, daemon string, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	var ours []*dto.MetricFamily
	for name, mf := range mfs {
		if strings.HasPrefix(name, "rtpkit_") {
			ours = append(ours, mf)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: lint %s: %s", daemon, p.Metric, p.Text)
	}
}

// eventually retries f (which returns what is still wrong, "" when done)
// until it passes or the time is up.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- a call through ng ---

const callID = "metrics-1"
