package rtpfwd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/fastpath"
	"github.com/rtpkit/rtpkit/pkg/mediabench"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
	xipv4 "golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The measurement's modes: the node with its fast path, the node with the
// fast path off (rtp-fwd's userspace engine), and no proxy at all (the
// node's namespace routes between the callers: the floor that the load
// generator and the veth hops cost).
const (
	fpmFast      = "fast"
	fpmUserspace = "userspace"
	fpmRouting   = "routing"
)

// The measurement's topology:
//
//	A 10.91.1.2 --- 10.91.1.1 [node, ip_forward] 10.91.2.1 --- 10.91.2.2 B
//
// The node's media and ng address is 10.91.1.1; B reaches it through the
// node's B-side link. A's and B's sockets are one each, shared by every
// call (the node's ports tell the calls apart), so that the load
// generator can send and receive in batches.
var (
	fpmNodeA = netip.MustParseAddr("10.91.1.1")
	fpmA     = netip.MustParseAddr("10.91.1.2")
	fpmNodeB = netip.MustParseAddr("10.91.2.1")
	fpmB     = netip.MustParseAddr("10.91.2.2")
)

const (
	fpmPartyPort = 40000 // A's and B's socket
	fpmNGPort    = 2223
	fpmPktLen    = 172 // 12-byte RTP header + 160 bytes of payload
	fpmSendBatch = 256 // most packets one sendmmsg carries
	fpmRecvBatch = 64
)

// fpmConfig is the measurement's configuration, from the environment.
type fpmConfig struct {
	Calls   int   `json:"calls"`
	Seconds int   `json:"seconds"`
	Rounds  int   `json:"rounds"`
	Warmup  int   `json:"warmup_seconds"`
	Rates   []int `json:"rates_pps"`
	// Retries is how many times a run is repeated at most while unrelated
	// processes used more than a tenth of the machine's CPU in it.
	Retries int `json:"retries"`
}

// fpmResult is one measured run: one mode at one rate in one round.
type fpmResult struct {
	Mode  string `json:"mode"`
	Round int    `json:"round"`
	Rate  int    `json:"rate_pps"`
	fpmStats
	// NodeDatagrams is how many datagrams reached sockets of the node's
	// namespace during the run (UDP InDatagrams): about none when the fast
	// path forwards everything.
	NodeDatagrams int64 `json:"node_socket_datagrams"`
}

// fpmStats is what one run of the load measured.
type fpmStats struct {
	Sent      int64 `json:"sent"`
	Received  int64 `json:"received"` // distinct packets of this run, byte-identical
	Lost      int64 `json:"lost"`
	LostFlows int   `json:"flows_with_loss"`
	Bad       int64 `json:"bad"` // corrupted, unknown or from the wrong source
	Dup       int64 `json:"duplicates"`
	Stale     int64 `json:"stale"` // packets of an earlier run
	// Wall is the measured window: from the first packet sent until the
	// last one arrived (or the drain gave up).
	Wall float64 `json:"wall_seconds"`
	// Busy is the whole machine's CPU time in the window (/proc/stat,
	// all CPUs, everything but idle and iowait); Softirq is its softirq part.
	Busy    float64 `json:"machine_cpu_seconds"`
	Softirq float64 `json:"softirq_cpu_seconds"`
	// Node is the CPU time of rtpctl up and its daemons, Load that of this
	// test process (the load generator).
	Node float64 `json:"node_cpu_seconds"`
	Load float64 `json:"load_cpu_seconds"`
	// Other is the CPU time of processes that are neither this one nor its
	// descendants nor kernel threads (a build or test running meanwhile):
	// noise in Busy. Clean is (Busy − Other) per packet.
	Other        float64 `json:"other_processes_cpu_seconds"`
	Clean        float64 `json:"clean_cpu_us_per_packet"`
	PerPacket    float64 `json:"cpu_us_per_packet"`
	SoftirqPerPk float64 `json:"softirq_us_per_packet"`
	NodePerPk    float64 `json:"node_us_per_packet"`
	LoadPerPk    float64 `json:"load_us_per_packet"`
	P50          float64 `json:"latency_p50_us"`
	P99          float64 `json:"latency_p99_us"`
	SendErr      string  `json:"send_error,omitempty"`
}

// fpmSummary is one rate's medians over the rounds.
type fpmSummary struct {
	Rate      int     `json:"rate_pps"`
	Fast      float64 `json:"fast_us_per_packet"`
	Userspace float64 `json:"userspace_us_per_packet"`
	Routing   float64 `json:"routing_us_per_packet"`
	// Ratio is fast / userspace; AboveRouting is (fast − routing) /
	// (userspace − routing): the share of the forwarding's own cost.
	Ratio        float64 `json:"ratio"`
	AboveRouting float64 `json:"ratio_above_routing"`
	Lost         int64   `json:"lost"`
	Bad          int64   `json:"bad"`
	FastP50      float64 `json:"fast_p50_us"`
	FastP99      float64 `json:"fast_p99_us"`
	UserP50      float64 `json:"userspace_p50_us"`
	UserP99      float64 `json:"userspace_p99_us"`
	RoutingP50   float64 `json:"routing_p50_us"`
	RoutingP99   float64 `json:"routing_p99_us"`
	NodeFast     float64 `json:"fast_node_us_per_packet"`
	NodeUser     float64 `json:"userspace_node_us_per_packet"`
	SoftirqFast  float64 `json:"fast_softirq_us_per_packet"`
	SoftirqUser  float64 `json:"userspace_softirq_us_per_packet"`
	SoftirqRoute float64 `json:"routing_softirq_us_per_packet"`
	// The same figures without the CPU of unrelated processes (see
	// fpmStats.Other).
	CleanFast         float64 `json:"clean_fast_us_per_packet"`
	CleanUser         float64 `json:"clean_userspace_us_per_packet"`
	CleanRouting      float64 `json:"clean_routing_us_per_packet"`
	CleanRatio        float64 `json:"clean_ratio"`
	CleanAboveRouting float64 `json:"clean_ratio_above_routing"`
	// Other is the median CPU of unrelated processes per packet, over all
	// modes' runs at this rate.
	Other float64 `json:"other_processes_us_per_packet"`
}

// TestMeasureFastPathNode is issue 10's measurement through the real
// daemons: the whole machine's CPU per forwarded packet (/proc/stat, all
// CPUs, since in-kernel forwarding is charged to whatever runs the
// softirq) of a node (rtpctl up) forwarding RTP of calls set up over ng,
// with its fast path (--fast-path=on, every stream offloaded before the
// measurement starts) and without it (--fast-path=off), and, as a floor,
// with no proxy (the node's namespace routes A's packets straight to B).
// Each mode runs on a fresh topology and node, the modes alternate over
// the rounds, and the medians are reported, at each rate.
//
// It is a measurement, not a check: it runs only with
// RTPKIT_FASTPATH_MEASURE=1, and fails only on loss, corrupted payloads
// or a stream not offloaded. Tuning: RTPKIT_FASTPATH_CALLS (1000),
// RTPKIT_FASTPATH_RATES (total packets/s, both directions, comma
// separated: 20000,40000), RTPKIT_FASTPATH_SECONDS per run (5),
// RTPKIT_FASTPATH_ROUNDS (3), RTPKIT_FASTPATH_WARMUP seconds of load
// before measuring (4: past the node's 3 s learning window),
// RTPKIT_FASTPATH_RETRIES (3: a run in which other processes used more
// than a tenth of the machine's CPU is measured again, that many times at
// most), and RTPKIT_FASTPATH_JSON, a file to write the results to.
func TestMeasureFastPathNode(t *testing.T) {
	if os.Getenv("RTPKIT_FASTPATH_MEASURE") != "1" {
		t.Skip("a measurement: set RTPKIT_FASTPATH_MEASURE=1 to run it")
	}
	testutil.RequireRoot(t)
	// The kernel must be able to load the program (rtp-fwd --fast-path=on
	// refuses to start otherwise).
	fp, err := fastpath.Open(fastpath.Options{})
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
		t.Skipf("the fast path cannot be loaded here: %v", err)
	}
	if err != nil {
		t.Fatalf("fast path: %v", err)
	}
	_ = fp.Close()
	cfg := fpmConfig{
		Calls:   testutil.EnvInt(t, "RTPKIT_FASTPATH_CALLS", 1000),
		Seconds: testutil.EnvInt(t, "RTPKIT_FASTPATH_SECONDS", 5),
		Rounds:  testutil.EnvInt(t, "RTPKIT_FASTPATH_ROUNDS", 3),
		Warmup:  testutil.EnvInt(t, "RTPKIT_FASTPATH_WARMUP", 4),
		Rates:   fpmEnvInts(t, "RTPKIT_FASTPATH_RATES", []int{20000, 40000}),
		Retries: testutil.EnvInt(t, "RTPKIT_FASTPATH_RETRIES", 3),
	}
	if cfg.Calls > 2000 {
		t.Fatalf("RTPKIT_FASTPATH_CALLS=%d: at most 2000 (the node's port range holds 2500 calls)", cfg.Calls)
	}
	for _, r := range cfg.Rates {
		if r/2*cfg.Seconds/cfg.Calls >= 1<<16 {
			t.Fatalf("rate %d for %d s over %d calls: more than 65536 packets per stream", r, cfg.Seconds, cfg.Calls)
		}
	}
	testutil.Binaries(t) // build once, before the first measurement
	t.Logf("%d calls, rates %v packets/s (both directions), %d s per run, %d rounds, %d s of warm-up", cfg.Calls, cfg.Rates, cfg.Seconds, cfg.Rounds, cfg.Warmup)

	var results []fpmResult
	modes := []string{fpmFast, fpmUserspace, fpmRouting}
	for round := 1; round <= cfg.Rounds; round++ {
		for j := range modes {
			mode := modes[(j+round-1)%len(modes)] // each round starts with another mode
			t.Run(fmt.Sprintf("round%d-%s", round, mode), func(t *testing.T) {
				results = append(results, fpmRunMode(t, cfg, mode, round)...)
			})
		}
	}

	sums := fpmSummarize(cfg, results)
	t.Logf("whole-machine CPU per forwarded packet, medians of %d rounds (%d calls, %d s per run, 172-byte RTP):", cfg.Rounds, cfg.Calls, cfg.Seconds)
	t.Logf("%8s %10s %10s %10s %11s %15s %6s %4s %16s %16s %16s %12s %12s",
		"rate", "fast µs", "user µs", "route µs", "fast/user", "above routing", "lost", "bad",
		"fast p50/p99", "user p50/p99", "route p50/p99", "node f/u µs", "sirq f/u/r")
	for _, s := range sums {
		t.Logf("%8d %10.2f %10.2f %10.2f %10.0f%% %14.0f%% %6d %4d %16s %16s %16s %12s %12s",
			s.Rate, s.Fast, s.Userspace, s.Routing, 100*s.Ratio, 100*s.AboveRouting, s.Lost, s.Bad,
			fmt.Sprintf("%.0f/%.0f", s.FastP50, s.FastP99), fmt.Sprintf("%.0f/%.0f", s.UserP50, s.UserP99),
			fmt.Sprintf("%.0f/%.0f", s.RoutingP50, s.RoutingP99),
			fmt.Sprintf("%.2f/%.2f", s.NodeFast, s.NodeUser),
			fmt.Sprintf("%.1f/%.1f/%.1f", s.SoftirqFast, s.SoftirqUser, s.SoftirqRoute))
	}
	for _, s := range sums {
		if s.Fast == 0 || s.Userspace == 0 || s.Routing == 0 {
			t.Logf("%d pps: a mode has no measurement; no verdict", s.Rate)
			continue
		}
		verdict := "met"
		if s.Ratio > 0.30 {
			verdict = "NOT met"
		}
		above := "met"
		if s.AboveRouting > 0.30 {
			above = "NOT met"
		}
		t.Logf("%d pps: fast path / userspace = %.0f %% (target ≤ 30 %%: %s); above the routing floor %.2f / %.2f µs = %.0f %% (%s)",
			s.Rate, 100*s.Ratio, verdict, s.Fast-s.Routing, s.Userspace-s.Routing, 100*s.AboveRouting, above)
		t.Logf("%d pps, without unrelated processes' CPU (median %.2f µs/pkt): fast %.2f, userspace %.2f, routing %.2f µs/pkt; fast / userspace = %.0f %%, above routing = %.0f %%",
			s.Rate, s.Other, s.CleanFast, s.CleanUser, s.CleanRouting, 100*s.CleanRatio, 100*s.CleanAboveRouting)
	}
	if path := os.Getenv("RTPKIT_FASTPATH_JSON"); path != "" {
		b, err := json.MarshalIndent(struct {
			Config  fpmConfig    `json:"config"`
			Summary []fpmSummary `json:"summary"`
			Runs    []fpmResult  `json:"runs"`
		}{cfg, sums, results}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fpmSummarize takes the medians of each mode's runs at each rate.
func fpmSummarize(cfg fpmConfig, results []fpmResult) []fpmSummary {
	var out []fpmSummary
	for _, rate := range cfg.Rates {
		med := func(mode string, f func(r *fpmResult) float64) float64 {
			var v []float64
			for i := range results {
				if r := &results[i]; r.Mode == mode && r.Rate == rate {
					v = append(v, f(r))
				}
			}
			if len(v) == 0 {
				return 0
			}
			slices.Sort(v)
			if len(v)%2 == 0 {
				return (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
			return v[len(v)/2]
		}
		cpu := func(r *fpmResult) float64 { return r.PerPacket }
		s := fpmSummary{Rate: rate, Fast: med(fpmFast, cpu), Userspace: med(fpmUserspace, cpu), Routing: med(fpmRouting, cpu)}
		if s.Userspace > 0 {
			s.Ratio = s.Fast / s.Userspace
		}
		if s.Userspace > s.Routing {
			s.AboveRouting = (s.Fast - s.Routing) / (s.Userspace - s.Routing)
		}
		for _, r := range results {
			if r.Rate == rate {
				s.Lost += r.Lost
				s.Bad += r.Bad
			}
		}
		p50 := func(r *fpmResult) float64 { return r.P50 }
		p99 := func(r *fpmResult) float64 { return r.P99 }
		s.FastP50, s.FastP99 = med(fpmFast, p50), med(fpmFast, p99)
		s.UserP50, s.UserP99 = med(fpmUserspace, p50), med(fpmUserspace, p99)
		s.RoutingP50, s.RoutingP99 = med(fpmRouting, p50), med(fpmRouting, p99)
		node := func(r *fpmResult) float64 { return r.NodePerPk }
		s.NodeFast, s.NodeUser = med(fpmFast, node), med(fpmUserspace, node)
		clean := func(r *fpmResult) float64 { return r.Clean }
		s.CleanFast, s.CleanUser, s.CleanRouting = med(fpmFast, clean), med(fpmUserspace, clean), med(fpmRouting, clean)
		if s.CleanUser > 0 {
			s.CleanRatio = s.CleanFast / s.CleanUser
		}
		if s.CleanUser > s.CleanRouting {
			s.CleanAboveRouting = (s.CleanFast - s.CleanRouting) / (s.CleanUser - s.CleanRouting)
		}
		var other []float64
		for _, r := range results {
			if r.Rate == rate && r.Received > 0 {
				other = append(other, r.Other*1e6/float64(r.Received))
			}
		}
		if len(other) > 0 {
			slices.Sort(other)
			s.Other = other[len(other)/2]
		}
		sirq := func(r *fpmResult) float64 { return r.SoftirqPerPk }
		s.SoftirqFast, s.SoftirqUser, s.SoftirqRoute = med(fpmFast, sirq), med(fpmUserspace, sirq), med(fpmRouting, sirq)
		out = append(out, s)
	}
	return out
}

// fpmRunMode builds a fresh topology, starts the node for mode (none for
// routing), sets up the calls, warms them up (until every stream is in the
// kernel, for the fast path) and measures each rate; the topology and the
// node are gone when the (sub)test ends.
func fpmRunMode(t *testing.T, cfg fpmConfig, mode string, round int) []fpmResult {
	bed := fpmNewBed(t)
	load := bed.newLoad(t, cfg.Calls)
	var node *testutil.Proc
	var ng *ngclient.Client
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if mode == fpmRouting {
		for i := range cfg.Calls {
			load.dst[0][i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(fpmB, fpmPartyPort))
			load.dst[1][i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(fpmA, fpmPartyPort))
			load.from[0][i] = netip.AddrPortFrom(fpmA, fpmPartyPort)
			load.from[1][i] = netip.AddrPortFrom(fpmB, fpmPartyPort)
		}
	} else {
		fp := "off"
		if mode == fpmFast {
			fp = "on"
		}
		node = bed.startNode(t, "--fast-path="+fp)
		if err := bed.a.Do(func() error {
			var err error
			ng, err = ngclient.Dial(netip.AddrPortFrom(fpmNodeA, fpmNGPort).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ng.Close()
		start := time.Now()
		ids = fpmSetupCalls(t, ctx, ng, load)
		t.Logf("%d calls set up in %s", cfg.Calls, time.Since(start).Round(time.Millisecond))
	}

	// Warm-up: past the learning window, so that every endpoint is
	// confirmed (and, with the fast path, every stream offloaded); the
	// neighbours are resolved in every mode.
	load.run(t, cfg.Rates[0], time.Duration(cfg.Warmup)*time.Second, nil)
	if mode != fpmRouting {
		deadline := time.Now().Add(30 * time.Second)
		for {
			k, n := fpmKernelized(t, ctx, ng, ids)
			if mode == fpmUserspace {
				if k != 0 {
					t.Fatalf("--fast-path=off: %d of %d RTP streams kernelized", k, n)
				}
				break
			}
			if k == n && n == 2*cfg.Calls {
				t.Logf("all %d RTP streams kernelized", n)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("--fast-path=on: only %d of %d RTP streams (want %d) kernelized after the warm-up and 30 s more", k, n, 2*cfg.Calls)
			}
			t.Logf("%d of %d RTP streams kernelized; one more second of load", k, n)
			load.run(t, cfg.Rates[0], time.Second, nil)
		}
	}

	var out []fpmResult
	for _, rate := range cfg.Rates {
		time.Sleep(time.Second) // let the machine settle
		dg0 := bed.nodeDatagrams(t)
		st := load.run(t, rate, time.Duration(cfg.Seconds)*time.Second, node)
		// A build or test running meanwhile on this machine drowns the
		// figure: measure again, a few times at most.
		for try := 0; try < cfg.Retries && st.Other > 0.1*st.Busy; try++ {
			t.Logf("%s at %d pps: other processes used %.2f of the machine's %.2f CPU seconds; measuring again", mode, rate, st.Other, st.Busy)
			time.Sleep(2 * time.Second)
			dg0 = bed.nodeDatagrams(t)
			st = load.run(t, rate, time.Duration(cfg.Seconds)*time.Second, node)
		}
		r := fpmResult{Mode: mode, Round: round, Rate: rate, fpmStats: st, NodeDatagrams: bed.nodeDatagrams(t) - dg0}
		t.Logf("%-9s %6d pps: sent %d, received %d, lost %d (%d flows), bad %d, dup %d, stale %d in %.2fs; machine CPU %.2fs = %.2f µs/pkt (softirq %.2f, node %.2f, load %.2f; without other processes' %.2fs: %.2f); p50/p99 %.0f/%.0f µs; node socket datagrams %d",
			mode, rate, r.Sent, r.Received, r.Lost, r.LostFlows, r.Bad, r.Dup, r.Stale, r.Wall, r.Busy, r.PerPacket, r.SoftirqPerPk, r.NodePerPk, r.LoadPerPk, r.Other, r.Clean, r.P50, r.P99, r.NodeDatagrams)
		if r.Lost != 0 || r.Bad != 0 || r.Dup != 0 || r.SendErr != "" {
			t.Errorf("%s at %d pps: %d lost, %d bad, %d duplicated (send error: %q)", mode, rate, r.Lost, r.Bad, r.Dup, r.SendErr)
		}
		out = append(out, r)
	}
	return out
}

// fpmBed is the measurement's topology; see fpmNodeA.
type fpmBed struct {
	a, node, b *testutil.NetNS
}

// fpmNewBed builds the three namespaces and their links; all of it is
// removed when t ends.
func fpmNewBed(t *testing.T) *fpmBed {
	t.Helper()
	bed := &fpmBed{a: testutil.NewNetNS(t, "fpm-a"), node: testutil.NewNetNS(t, "fpm-n"), b: testutil.NewNetNS(t, "fpm-b")}
	// Before the links, so that they inherit "default".
	testutil.SetSysctls(t, bed.node, map[string]string{"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"})
	for _, ns := range []*testutil.NetNS{bed.a, bed.b} {
		testutil.SetSysctls(t, ns, map[string]string{"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"})
	}
	// ("a" alone would be taken for "address" by ip link.)
	testutil.Veth(t, bed.node, "to-a", bed.a, "uplink")
	testutil.Veth(t, bed.node, "to-b", bed.b, "uplink")
	testutil.AddAddr(t, bed.node, "to-a", fpmNodeA.String()+"/24")
	testutil.AddAddr(t, bed.node, "to-b", fpmNodeB.String()+"/24")
	testutil.AddAddr(t, bed.a, "uplink", fpmA.String()+"/24")
	testutil.AddAddr(t, bed.b, "uplink", fpmB.String()+"/24")
	testutil.AddRoute(t, bed.a, "default", fpmNodeA.String())
	testutil.AddRoute(t, bed.b, "default", fpmNodeB.String())
	return bed
}

// startNode runs rtpctl up in the node's namespace, as
// testutil.Testbed.StartNode does (a bpffs of the test's own for the fast
// path's pins), and stops it, with its daemons, when t ends.
func (bed *fpmBed) startNode(t *testing.T, extra ...string) *testutil.Proc {
	t.Helper()
	state := testutil.ShortTempDir(t)
	testutil.MountBPFFS(t, filepath.Join(state, "run", "bpf"))
	args := []string{"netns", "exec", bed.node.Name, filepath.Join(testutil.Binaries(t), "rtpctl"), "up",
		"--nats-listen=127.0.0.1:0", "--state-dir=" + state, "--node-id=fpm",
		"--interface=" + fpmNodeA.String(), "--listen-ng=" + netip.AddrPortFrom(fpmNodeA, fpmNGPort).String(),
		"--port-min=30000", "--port-max=39999", "--delete-delay=0", "--log-level=warn"}
	p := testutil.StartProc(t, "ip", append(args, extra...))
	// Runs before StartProc's cleanup: kill rtpctl, then wait until its
	// daemons (PDEATHSIG) are gone, before the bpffs and namespaces go.
	t.Cleanup(func() {
		kids := testutil.Children(p.PID())
		_ = p.Signal(unix.SIGKILL)
		if _, err := p.Wait(10 * time.Second); err != nil {
			t.Error(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, pid := range kids {
			for testutil.Alive(pid) {
				if time.Now().After(deadline) {
					t.Errorf("daemon %d outlived its rtpctl by 10 s", pid)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	p.WaitMatch(t, testutil.MatchLine(`^rtpkit node "[^"]*" is up`), 30*time.Second)
	p.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	return p
}

// nodeDatagrams is the node namespace's UDP InDatagrams: datagrams
// delivered to its sockets.
func (bed *fpmBed) nodeDatagrams(t *testing.T) int64 {
	t.Helper()
	var b []byte
	if err := bed.node.Do(func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var head []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		if i := slices.Index(head, "InDatagrams"); i > 0 && i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			return n
		}
	}
	t.Fatalf("no Udp InDatagrams in the node's /proc/net/snmp")
	return 0
}

// fpmLoad is the load generator: A's and B's sockets and, for each
// direction d (0: A to B, 1: B to A) and call i, where d's packets are
// sent (dst) and where they must come from when they arrive (from).
type fpmLoad struct {
	calls int
	conn  [2]*net.UDPConn // 0: A's, 1: B's; direction d sends on conn[d], arrives on conn[1-d]
	pc    [2]*xipv4.PacketConn
	dst   [2][]net.Addr
	from  [2][]netip.AddrPort
	tag   uint32 // the current run's tag, in every packet
}

// newLoad opens A's and B's sockets in their namespaces.
func (bed *fpmBed) newLoad(t *testing.T, calls int) *fpmLoad {
	t.Helper()
	l := &fpmLoad{calls: calls}
	for d, p := range []struct {
		ns   *testutil.NetNS
		addr netip.Addr
	}{{bed.a, fpmA}, {bed.b, fpmB}} {
		if err := p.ns.Do(func() error {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, fpmPartyPort)))
			if err != nil {
				return err
			}
			l.conn[d] = c
			rc, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := rc.Control(func(fd uintptr) {
				// Root may exceed rmem_max/wmem_max: a whole run can queue.
				serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20))
			}); err != nil {
				return err
			}
			return serr
		}); err != nil {
			t.Fatalf("party socket: %v", err)
		}
		t.Cleanup(func() { _ = l.conn[d].Close() })
		l.pc[d] = xipv4.NewPacketConn(l.conn[d])
		l.dst[d] = make([]net.Addr, calls)
		l.from[d] = make([]netip.AddrPort, calls)
	}
	return l
}

// fpmSDP is a party's offer or answer: one audio stream, PCMU.
func fpmSDP(a netip.AddrPort) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", a.Addr(), a.Addr(), a.Port())
}

var (
	fpmSDPConn  = regexp.MustCompile(`c=IN IP4 (\S+)`)
	fpmSDPAudio = regexp.MustCompile(`m=audio (\d+) `)
)

// fpmSDPDest is where an SDP says to send media.
func fpmSDPDest(sdp string) (netip.AddrPort, error) {
	c, m := fpmSDPConn.FindStringSubmatch(sdp), fpmSDPAudio.FindStringSubmatch(sdp)
	if c == nil || m == nil {
		return netip.AddrPort{}, fmt.Errorf("no c= or m=audio in %q", sdp)
	}
	return netip.ParseAddrPort(c[1] + ":" + m[1])
}

// fpmNG sends d and returns the reply's destination (from its SDP).
func fpmNG(ctx context.Context, ng *ngclient.Client, d bencode.Value) (netip.AddrPort, error) {
	r, err := ng.Do(ctx, d)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if res, why := ngclient.Result(r); res != "ok" {
		return netip.AddrPort{}, fmt.Errorf("%s: %s", res, why)
	}
	sdp, _ := r.GetString("sdp")
	return fpmSDPDest(sdp)
}

// fpmSetupCalls sets up the load's calls (offer from A, answer from B)
// over ng, eight at a time, and fills in the load's destinations; it
// returns the call-ids.
func fpmSetupCalls(t *testing.T, ctx context.Context, ng *ngclient.Client, l *fpmLoad) []string {
	t.Helper()
	ids := make([]string, l.calls)
	sdpA, sdpB := fpmSDP(netip.AddrPortFrom(fpmA, fpmPartyPort)), fpmSDP(netip.AddrPortFrom(fpmB, fpmPartyPort))
	err := fpmParallel(l.calls, func(i int) error {
		ids[i] = "fpm-" + strconv.Itoa(i)
		forB, err := fpmNG(ctx, ng, testutil.NGCall("offer", ids[i], "", sdpA))
		if err != nil {
			return fmt.Errorf("offer %s: %w", ids[i], err)
		}
		forA, err := fpmNG(ctx, ng, testutil.NGCall("answer", ids[i], "B", sdpB))
		if err != nil {
			return fmt.Errorf("answer %s: %w", ids[i], err)
		}
		l.dst[0][i], l.dst[1][i] = net.UDPAddrFromAddrPort(forA), net.UDPAddrFromAddrPort(forB)
		// B sees A's packets come from the port B sends to, and back.
		l.from[0][i], l.from[1][i] = forB, forA
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// fpmParallel runs f(0..n-1) on eight goroutines and returns the first
// error.
func fpmParallel(n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = f(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fpmKernelized queries every call and counts its RTP streams, and those
// of them that are kernelized.
func fpmKernelized(t *testing.T, ctx context.Context, ng *ngclient.Client, ids []string) (kernelized, rtp int) {
	t.Helper()
	var k, n atomic.Int64
	err := fpmParallel(len(ids), func(i int) error {
		r, err := ng.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")}, bencode.Pair{Key: "call-id", Value: bencode.Str(ids[i])}))
		if err != nil {
			return err
		}
		if res, why := ngclient.Result(r); res != "ok" {
			return fmt.Errorf("query %s: %s %s", ids[i], res, why)
		}
		tags, _ := r.Get("tags")
		for _, tp := range tags.Dict {
			medias, _ := tp.Value.Get("medias")
			for _, m := range medias.List {
				streams, _ := m.Get("streams")
				for _, s := range streams.List {
					fl, _ := s.Get("flags")
					flags, _ := fl.StringList()
					if slices.Contains(flags, "RTP") {
						n.Add(1)
						if slices.Contains(flags, "kernelized") {
							k.Add(1)
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(k.Load()), int(n.Load())
}

// fpmDir is one direction's state during a run. The sender stamps each
// packet's send time (ns since the run's start, +1) in sentAt, indexed by
// the packet's number k; packet k belongs to call k mod calls and has
// sequence number k / calls. The receiver alone touches seen and lat.
type fpmDir struct {
	sentAt  []atomic.Int64
	sent    atomic.Int64
	got     atomic.Int64
	seen    []bool
	lat     []int64
	bad     int64
	dup     int64
	stale   int64
	sendErr error
	recvErr error
}

// fpmPacket writes packet k of direction d into b (fpmPktLen bytes): an
// RTP header written by rtppacket (PT 0, sequence k/calls, timestamp
// seq×160, SSRC d<<31 | call), then in the payload the run's tag, the send
// time, and a filler that depends on all of them.
func (l *fpmLoad) fpmPacket(b []byte, d, k int, at int64) {
	call, seq := k%l.calls, uint16(k/l.calls)
	h := rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: uint32(d)<<31 | uint32(call)}
	_ = h.WriteHeader(b) // cannot fail: b is longer than a header
	pay := b[rtppacket.HeaderLen:]
	binary.BigEndian.PutUint32(pay[0:], l.tag)
	binary.BigEndian.PutUint64(pay[4:], uint64(at))
	x := byte(call*7) ^ byte(seq*13) ^ byte(l.tag)
	for j := 12; j < len(pay); j++ {
		pay[j] = x + byte(rtppacket.HeaderLen+j)
	}
}

// run sends pps packets/s (half each way, round robin over the calls) for
// dur, checks every packet that arrives, and returns what it measured. The
// CPU window runs from the first packet sent until the last one arrived (or
// two seconds after the last send). node, if not nil, is rtpctl up, whose
// process tree's CPU is reported apart.
func (l *fpmLoad) run(t *testing.T, pps int, dur time.Duration, node *testutil.Proc) fpmStats {
	t.Helper()
	l.tag++
	perDir := int(int64(pps) / 2 * int64(dur) / int64(time.Second))
	var dirs [2]*fpmDir
	for d := range dirs {
		dirs[d] = &fpmDir{sentAt: make([]atomic.Int64, perDir), seen: make([]bool, perDir), lat: make([]int64, 0, perDir)}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := make(chan struct{})
	var t0 time.Time
	for d := range dirs {
		wg.Go(func() { l.receive(d, dirs[d], &stop, start, &t0) })
	}

	node0 := fpmNodeCPU(t, node)
	load0 := fpmSelfCPU(t)
	other0 := fpmOtherCPU(t)
	busy0, sirq0 := fpmMachineCPU(t)
	t0 = time.Now()
	close(start)
	var send sync.WaitGroup
	for d := range dirs {
		send.Go(func() { l.send(d, dirs[d], perDir, float64(pps)/2, t0) })
	}
	send.Wait()
	drainUntil := time.Now().Add(2 * time.Second)
	for time.Now().Before(drainUntil) && (dirs[0].got.Load() < dirs[0].sent.Load() || dirs[1].got.Load() < dirs[1].sent.Load()) {
		time.Sleep(time.Millisecond)
	}
	wall := time.Since(t0)
	busy1, sirq1 := fpmMachineCPU(t)
	other1 := fpmOtherCPU(t)
	load1 := fpmSelfCPU(t)
	node1 := fpmNodeCPU(t, node)
	stop.Store(true)
	for _, c := range l.conn {
		_ = c.SetReadDeadline(time.Now())
	}
	wg.Wait()

	var st fpmStats
	var lat []int64
	for d, dir := range dirs {
		st.Sent += dir.sent.Load()
		st.Received += dir.got.Load()
		st.Bad += dir.bad
		st.Dup += dir.dup
		st.Stale += dir.stale
		lat = append(lat, dir.lat...)
		lostFlows := map[int]bool{}
		for k := range int(dir.sent.Load()) {
			if !dir.seen[k] {
				lostFlows[k%l.calls] = true
			}
		}
		st.LostFlows += len(lostFlows)
		for _, err := range []error{dir.sendErr, dir.recvErr} {
			if err != nil {
				st.SendErr += fmt.Sprintf("direction %d: %v; ", d, err)
			}
		}
	}
	st.Lost = st.Sent - st.Received
	st.Wall = wall.Seconds()
	st.Busy, st.Softirq = (busy1 - busy0).Seconds(), (sirq1 - sirq0).Seconds()
	st.Node, st.Load, st.Other = node1-node0, load1-load0, max(other1-other0, 0)
	if st.Received > 0 {
		per := 1e6 / float64(st.Received)
		st.PerPacket, st.SoftirqPerPk, st.NodePerPk, st.LoadPerPk = st.Busy*per, st.Softirq*per, st.Node*per, st.Load*per
		st.Clean = (st.Busy - st.Other) * per
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		st.P50 = float64(lat[len(lat)/2]) / 1e3
		st.P99 = float64(lat[len(lat)*99/100]) / 1e3
	}
	return st
}

// send is direction d's sender: every millisecond, the packets due by
// then, in one sendmmsg (up to fpmSendBatch).
func (l *fpmLoad) send(d int, dir *fpmDir, total int, rate float64, t0 time.Time) {
	msgs := make([]xipv4.Message, fpmSendBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, fpmPktLen)}
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	giveUp := t0.Add(time.Duration(float64(total)/rate*float64(time.Second)) + 10*time.Second)
	sent := 0
	for sent < total {
		now := <-tick.C
		if now.After(giveUp) {
			dir.sendErr = fmt.Errorf("sent only %d of %d packets in time", sent, total)
			return
		}
		due := min(int(time.Since(t0).Seconds()*rate)-sent, total-sent, len(msgs))
		if due <= 0 {
			continue
		}
		at := int64(time.Since(t0)) + 1
		for j := range due {
			k := sent + j
			l.fpmPacket(msgs[j].Buffers[0], d, k, at)
			msgs[j].Addr = l.dst[d][k%l.calls]
			dir.sentAt[k].Store(at)
		}
		for off := 0; off < due; {
			n, err := l.pc[d].WriteBatch(msgs[off:due], 0)
			if err != nil {
				dir.sendErr = err
				return
			}
			off += n
			dir.sent.Add(int64(n))
		}
		sent += due
	}
}

// receive is direction d's receiver, on the other party's socket: it
// checks every packet byte for byte against the one sent, and its source
// against where the call's packets must come from.
func (l *fpmLoad) receive(d int, dir *fpmDir, stop *atomic.Bool, start <-chan struct{}, t0 *time.Time) {
	<-start
	c, pc := l.conn[1-d], l.pc[1-d]
	msgs := make([]xipv4.Message, fpmRecvBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	want := make([]byte, fpmPktLen)
	var deadline time.Time
	for !stop.Load() {
		if now := time.Now(); deadline.Sub(now) < 100*time.Millisecond {
			deadline = now.Add(200 * time.Millisecond)
			_ = c.SetReadDeadline(deadline)
		}
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				deadline = time.Time{}
				continue
			}
			dir.recvErr = err
			return
		}
		arrived := int64(time.Since(*t0)) + 1
		var got int64
		for _, m := range msgs[:n] {
			b := m.Buffers[0][:m.N]
			h, pay, ok := rtppacket.Read(b)
			if ok && len(pay) >= 4 && binary.BigEndian.Uint32(pay) != l.tag {
				dir.stale++
				continue
			}
			if !ok || len(b) != fpmPktLen {
				dir.bad++
				continue
			}
			ssrc := h.SSRC
			call := int(ssrc &^ (1 << 31))
			k := int(h.Seq)*l.calls + call
			if int(ssrc>>31) != d || call >= l.calls || k >= len(dir.seen) {
				dir.bad++
				continue
			}
			at := dir.sentAt[k].Load()
			l.fpmPacket(want, d, k, at)
			ua, _ := m.Addr.(*net.UDPAddr)
			if at == 0 || !bytes.Equal(b, want) || ua == nil || ua.AddrPort() != l.from[d][call] {
				dir.bad++
				continue
			}
			if dir.seen[k] {
				dir.dup++
				continue
			}
			dir.seen[k] = true
			dir.lat = append(dir.lat, arrived-at)
			got++
		}
		dir.got.Add(got)
	}
}

// fpmMachineCPU returns the time all CPUs spent busy (everything but idle
// and iowait) since boot, and the softirq part of it, from /proc/stat.
func fpmMachineCPU(t *testing.T) (busy, softirq time.Duration) {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		t.Fatalf("/proc/stat: %q", line)
	}
	var ticks, sirq uint64
	// user nice system idle iowait irq softirq steal guest guest_nice; guest
	// time is already counted in user and nice.
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: %q: %v", line, err)
		}
		if i == 3 || i == 4 {
			continue
		}
		ticks += n
		if i == 6 {
			sirq = n
		}
	}
	const userHZ = 100
	return time.Duration(ticks) * time.Second / userHZ, time.Duration(sirq) * time.Second / userHZ
}

// fpmSelfCPU is this process's CPU time (user + system), in seconds.
func fpmSelfCPU(t *testing.T) float64 {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// fpmOtherCPU is the CPU time, in seconds, that processes other than this
// one, its descendants and kernel threads have used so far, counting that
// of their reaped children (utime + stime + cutime + cstime).
func fpmOtherCPU(t *testing.T) float64 {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		ppid  int
		ticks uint64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var ticks uint64
		for _, v := range f[11:15] { // utime stime cutime cstime
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		procs[pid] = proc{ppid, ticks}
	}
	ours := func(pid int) bool {
		for range 64 {
			switch {
			case pid == os.Getpid():
				return true
			case pid <= 2: // init, kthreadd
				return pid == 2
			}
			p, ok := procs[pid]
			if !ok {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	var ticks uint64
	for pid, p := range procs {
		if pid != 1 && pid != 2 && !ours(pid) {
			ticks += p.ticks
		}
	}
	const userHZ = 100
	return float64(ticks) / userHZ
}

// fpmNodeCPU is the CPU time of node (rtpctl up) and its daemons, in
// seconds; 0 without a node.
func fpmNodeCPU(t *testing.T, node *testutil.Proc) float64 {
	t.Helper()
	if node == nil {
		return 0
	}
	s, err := mediabench.TreeCPU([]int{node.PID()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fpmEnvInts is the comma-separated list of positive integers in name, or
// def if it is unset.
func fpmEnvInts(t *testing.T, name string, def []int) []int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 1 {
			t.Fatalf("%s=%q: want comma-separated rates (packets/s)", name, v)
		}
		out = append(out, n)
	}
	return out
}
