package nodetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// soakFDSlack is how many descriptors more than at the start a daemon may
// hold once the churn has drained (connection pools that grew under load).
const soakFDSlack = 8

// soakReport is the soak's closing note, printed and written as JSON.
type soakReport struct {
	Duration       string         `json:"duration"`
	Rate           float64        `json:"calls_per_second"`
	Life           string         `json:"call_life"`
	PPS            int            `json:"packets_per_second_per_direction"`
	GapBound       string         `json:"loss_gap_bound"`
	BusRestart     string         `json:"bus_restart_at"`
	BusOutage      string         `json:"bus_outage"`
	RedisRestart   string         `json:"redis_restart_at"`
	RedisOutage    string         `json:"redis_outage"`
	RedisData      string         `json:"redis_data"`
	Attempted      int64          `json:"setups_attempted"`
	SetUp          int64          `json:"calls_set_up"`
	EndedNormally  int64          `json:"calls_ended_normally"`
	Lost           int            `json:"calls_lost"`
	LostCalls      []lostCall     `json:"lost_calls,omitempty"`
	PacketsSent    int64          `json:"packets_sent"`
	PacketsArrived int64          `json:"packets_arrived"`
	GapP50         string         `json:"longest_silence_per_flow_p50"`
	GapP99         string         `json:"longest_silence_per_flow_p99"`
	GapMax         string         `json:"longest_silence_per_flow_max"`
	Standby        standbyCompare `json:"standby_at_end_of_churn"`
	PortsStart     *portFigures   `json:"ports_start"`
	PortsDrained   *portFigures   `json:"ports_drained"`
	PIDChanges     []string       `json:"daemon_restarts,omitempty"`
	Samples        []soakSample   `json:"samples"`
	Failures       []string       `json:"failures,omitempty"`
}

// soakEnvDur reads a duration knob (Go syntax, or plain seconds).
func soakEnvDur(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration (30m, 90s) or seconds", name, v)
	}
	return d
}

// TestSoak is issue 24's soak: call churn at a steady rate with RTP both
// ways on an active node (its bus a separate nats-server, Redis behind
// redis-sync) with a standby node of its redundancy group restoring its
// calls, for RTPKIT_SOAK (a duration: 30m) — the bus is restarted (stop
// and start, same port and JetStream store) at a third of it and
// redis-server (SIGTERM and start, same port and data dir with its
// append-only file) at two thirds. Then the churn drains.
//
// Pass: no call lost (setup, answer or delete failing, media silent for
// longer than the gap bound before the call's planned end, or a call the
// proxy ended before the client deleted it), the standby holding exactly
// the active node's calls at the end of the churn, no port in a call after
// the drain (every port portd holds then is in ng-ctl's leased stock) and
// every daemon's descriptors within soakFDSlack of theirs. Memory, node-state size and Redis keys are
// sampled and reported, for a human to judge flatness.
//
// Knobs: RTPKIT_SOAK_RATE (calls/s, 2), RTPKIT_SOAK_LIFE (min-max
// seconds, 20-60), RTPKIT_SOAK_PPS (packets/s per direction, 25),
// RTPKIT_SOAK_GAP (loss bound, 5s), RTPKIT_SOAK_SAMPLE (1m, at most a
// sixth of the run), RTPKIT_SOAK_BUS_AT and RTPKIT_SOAK_REDIS_AT, and
// RTPKIT_SOAK_JSON, a file for the report.
func TestSoak(t *testing.T) {
	if os.Getenv("RTPKIT_SOAK") == "" {
		t.Skip("a soak run: set RTPKIT_SOAK to its duration (30m) to run it; bench/soak.sh does")
	}
	testutil.RequireRoot(t)
	total := soakEnvDur(t, "RTPKIT_SOAK", 0)
	cfg := churnConfig{Rate: 2, MinLife: 20 * time.Second, MaxLife: 60 * time.Second, PPS: testutil.EnvInt(t, "RTPKIT_SOAK_PPS", 25),
		GapBound: soakEnvDur(t, "RTPKIT_SOAK_GAP", 5*time.Second), MaxPending: 32}
	if v := os.Getenv("RTPKIT_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 100 {
			t.Fatalf("RTPKIT_SOAK_RATE=%q: want calls per second, above 0, at most 100", v)
		}
		cfg.Rate = r
	}
	if v := os.Getenv("RTPKIT_SOAK_LIFE"); v != "" {
		lo, hi, ok := strings.Cut(v, "-")
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if !ok || errA != nil || errB != nil || a <= 0 || b < a {
			t.Fatalf("RTPKIT_SOAK_LIFE=%q: want MIN-MAX seconds", v)
		}
		cfg.MinLife, cfg.MaxLife = time.Duration(a)*time.Second, time.Duration(b)*time.Second
	}
	sampleEvery := min(soakEnvDur(t, "RTPKIT_SOAK_SAMPLE", time.Minute), total/6)
	busAt := soakEnvDur(t, "RTPKIT_SOAK_BUS_AT", total/3)
	redisAt := soakEnvDur(t, "RTPKIT_SOAK_REDIS_AT", 2*total/3)

	// The bed: node 0 active (its bus a nats-server of its own in its
	// namespace), node 1 its standby (rtpctl up's embedded bus), one Redis
	// with an append-only file in the router's namespace.
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, ServiceOnAll: true, Redis: true, RedisPersist: true})
	nats := testutil.StartNATSServerIn(t, tb.Nodes[0].NS)
	svc := tb.Service.String()
	nodeArgs := func(i, db, follow int) []string {
		return []string{"--interface=" + svc, "--listen-ng=" + tb.Nodes[i].Addr.String() + ":2223",
			"--port-min=30000", "--port-max=39999", "--delete-delay=0",
			"--redis=" + tb.RedisURL(i, db), "--subscribe-keyspace=" + strconv.Itoa(follow)}
	}
	upA := tb.StartNode(t, 0, append(nodeArgs(0, 1, 2), "--nats-url="+nats.URL())...)
	upB := tb.StartNode(t, 1, nodeArgs(1, 2, 1)...)
	if !strings.Contains(upA.Output(), "(external)") {
		t.Fatalf("the active node does not use the external bus:\n%s", upA.Output())
	}
	bURL := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(upB.Output())
	connect := func(i int, url string) (*bus.Conn, *nodestate.Store) {
		var c *bus.Conn
		var st *nodestate.Store
		err := tb.Nodes[i].NS.Do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var err error
			// Reconnects after a bus restart dial from inside the
			// namespace too.
			dial := func(network, addr string) (net.Conn, error) {
				var c net.Conn
				err := tb.Nodes[i].NS.Do(func() error {
					var err error
					c, err = net.DialTimeout(network, addr, 2*time.Second)
					return err
				})
				return c, err
			}
			opts := bus.Options{URL: url, ConnectTimeout: 5 * time.Second, Dial: dial,
				NkeyFile: busauth.FindOperatorKey(url, "node"+strconv.Itoa(i))}
			if c, err = bus.Connect(ctx, opts, "node"+strconv.Itoa(i), "soak", testutil.Logger(t)); err != nil {
				return err
			}
			st, err = nodestate.Open(ctx, c, nodestate.Options{})
			return err
		})
		if err != nil {
			t.Fatalf("node%d's bus %s: %v", i, url, err)
		}
		t.Cleanup(c.Close)
		return c, st
	}
	aBus, aState := connect(0, nats.URL())
	_, bState := connect(1, bURL)
	probe := &soakProbe{aBus: aBus, aState: aState, aCalls: nodestate.Calls(aState), bCalls: nodestate.Calls(bState),
		stream:  "KV_" + nodestate.BucketName("node0"),
		redisDB: map[string]*redis.Client{"db1": tb.RedisClient(t, 0, 1), "db2": tb.RedisClient(t, 0, 2)}}
	for _, n := range []struct {
		tag string
		up  *testutil.Proc
	}{{"A", upA}, {"B", upB}} {
		for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync"} {
			probe.procs = append(probe.procs, soakProc{name: n.tag + "/" + d, parent: n.up.PID(), comm: d})
		}
	}
	probe.procs = append(probe.procs, soakProc{name: "nats-server(A)", pid: nats.PID}, soakProc{name: "redis-server", pid: tb.Redis.PID})

	rep := &soakReport{Duration: total.String(), Rate: cfg.Rate, Life: cfg.MinLife.String() + "-" + cfg.MaxLife.String(), PPS: cfg.PPS,
		GapBound: cfg.GapBound.String(), RedisData: "kept: same port and data dir, append-only file, stopped with SIGTERM"}
	startPorts := soakSettledPorts(t, probe)
	rep.PortsStart = &startPorts
	start := time.Now()
	first := probe.sample("start", 0, 0)
	rep.Samples = append(rep.Samples, first)

	ng := tb.NG(t, tb.Callers, tb.Nodes[0].Addr.String()+":2223")
	ng.SetRetransmit(500 * time.Millisecond)
	ch := newChurn(cfg, tb.Callers, tb.CallerAddrs[0], tb.CallerAddrs[1], tb.Service, ng)
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	churnDone := make(chan struct{})
	go func() { ch.run(ctx); close(churnDone) }()
	t.Logf("soak: %v of churn, %.1f calls/s living %v, %d packets/s per direction; bus restart at %v, Redis restart at %v",
		total, cfg.Rate, rep.Life, cfg.PPS, busAt, redisAt)

	// The run: samples, the restarts, the middle.
	events := []struct {
		at time.Duration
		do func()
	}{
		{busAt, func() {
			rep.BusRestart = time.Since(start).Round(time.Second).String()
			t0 := time.Now()
			nats.Stop()
			nats.Start()
			rep.BusOutage = soakWaitPing(t, aBus, "portd", t0).String()
			t.Logf("soak: bus restarted at %s, portd answering again after %s", rep.BusRestart, rep.BusOutage)
		}},
		{redisAt, func() {
			rep.RedisRestart = time.Since(start).Round(time.Second).String()
			t0 := time.Now()
			tb.Redis.Stop()
			tb.Redis.Restart()
			rep.RedisOutage = time.Since(t0).Round(time.Millisecond).String()
			t.Logf("soak: Redis restarted at %s (down %s)", rep.RedisRestart, rep.RedisOutage)
		}},
		{total / 2, func() { rep.Samples = append(rep.Samples, probe.sample("mid", time.Since(start), len(ch.liveIDs()))) }},
	}
	nextSample := sampleEvery
	for running := true; running; {
		next := nextSample
		for _, e := range events {
			if e.do != nil {
				next = min(next, e.at)
			}
		}
		select {
		case <-churnDone:
			running = false
			continue
		case <-time.After(time.Until(start.Add(next))):
		}
		for i := range events {
			if events[i].do != nil && time.Since(start) >= events[i].at {
				events[i].do()
				events[i].do = nil
			}
		}
		if time.Since(start) >= nextSample {
			rep.Samples = append(rep.Samples, probe.sample(fmt.Sprintf("%v", nextSample), time.Since(start), len(ch.liveIDs())))
			nextSample += sampleEvery
		}
	}
	rep.Samples = append(rep.Samples, probe.sample("churn end", time.Since(start), len(ch.liveIDs())))

	// The standby against the active node, as the churn stops (calls
	// still end, so a moment of agreement is looked for). 75 s: two
	// audits of the followed partition (--redis-audit-interval 30 s) and
	// the reads they queue, which repair what a lost keyspace
	// notification left.
	rep.Standby = probe.compareStandby(75 * time.Second)

	// The drain: every call ends at its planned time.
	if !ch.wait(cfg.MaxLife + 30*time.Second) {
		rep.Failures = append(rep.Failures, "the churn did not drain")
	}
	drainCtx, drainCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer drainCancel()
	soakUntil(drainCtx, func() bool {
		a, errA := ownCalls(drainCtx, probe.aCalls, false)
		b, errB := ownCalls(drainCtx, probe.bCalls, true)
		return errA == nil && errB == nil && len(a) == 0 && len(b) == 0
	})
	var drained portFigures
	soakUntil(drainCtx, func() bool {
		pf, err := probe.ports(drainCtx)
		drained = pf
		return err == nil && pf.Used <= startPorts.Used && pf.InCallPairs <= startPorts.InCallPairs
	})
	rep.PortsDrained = &drained
	var end soakSample
	soakUntil(drainCtx, func() bool {
		end = probe.sample("drained", time.Since(start), 0)
		for n, fds := range end.FDs {
			if fds > first.FDs[n]+soakFDSlack && !strings.HasPrefix(n, "redis") && !strings.HasPrefix(n, "nats") {
				return false
			}
		}
		return true
	})
	rep.Samples = append(rep.Samples, end)
	soakVerdict(t, ch, rep, first, end, startPorts, drained)
	soakPrint(t, rep)
	// The node's logs, for the lost calls' story.
	if p := os.Getenv("RTPKIT_SOAK_JSON"); p != "" {
		base := strings.TrimSuffix(p, ".json")
		for name, out := range map[string]string{"nodeA": upA.Output(), "nodeB": upB.Output(), "nats": nats.Output()} {
			if err := os.WriteFile(base+"."+name+".log", []byte(out), 0o644); err != nil {
				t.Errorf("write %s's log: %v", name, err)
			}
		}
	}
}

// soakSettledPorts waits until portd's figures are the same twice a
// second apart (the stock has filled) and returns them.
func soakSettledPorts(t *testing.T, p *soakProbe) portFigures {
	t.Helper()
	var last portFigures
	for range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		pf, err := p.ports(ctx)
		cancel()
		if err == nil && pf == last {
			return pf
		}
		last = pf
		time.Sleep(time.Second)
	}
	t.Fatalf("portd's figures did not settle: %+v", last)
	return last
}

// soakWaitPing waits until daemon answers on conn again and returns the
// time since t0.
func soakWaitPing(t *testing.T, conn *bus.Conn, daemon string, t0 time.Time) time.Duration {
	t.Helper()
	for time.Since(t0) < 60*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := bus.Request(ctx, conn, api.Ping(daemon), api.Empty{})
		cancel()
		if err == nil {
			return time.Since(t0).Round(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s did not answer on the bus within 60 s of the bus restart", daemon)
	return time.Since(t0).Round(time.Millisecond)
}

// soakUntil polls ok every 200 ms until it holds or ctx ends.
func soakUntil(ctx context.Context, ok func() bool) bool {
	for !ok() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true
}

// soakVerdict fills in the figures and checks the pass criteria.
func soakVerdict(t *testing.T, ch *churn, rep *soakReport, first, end soakSample, startPorts, drained portFigures) {
	rep.Attempted, rep.SetUp, rep.EndedNormally = ch.attempts.Load(), ch.setUp.Load(), ch.ended.Load()
	lost := ch.lostCalls()
	rep.Lost = len(lost)
	rep.LostCalls = lost[:min(len(lost), 100)]
	rep.PacketsSent, rep.PacketsArrived = ch.pktSent.Load(), ch.pktRecv.Load()
	p50, p99, mx := ch.gapQuantiles()
	rep.GapP50, rep.GapP99, rep.GapMax = p50.String(), p99.String(), mx.String()
	seen := map[string]int{}
	for n, pid := range first.PIDs {
		seen[n] = pid
	}
	for _, s := range rep.Samples[1:] {
		for _, n := range slices.Sorted(maps.Keys(s.PIDs)) {
			pid := s.PIDs[n]
			if pid != seen[n] && !strings.HasPrefix(n, "redis") && !strings.HasPrefix(n, "nats") {
				rep.PIDChanges = append(rep.PIDChanges, fmt.Sprintf("%s: pid %d, then %d at %s", n, seen[n], pid, s.Elapsed))
				seen[n] = pid
			}
		}
	}
	fail := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }
	if rep.Lost > 0 {
		fail("%d calls lost (first: %s at %s: %s)", rep.Lost, lost[0].ID, ch.since(lost[0].At), lost[0].Reason)
	}
	if rep.SetUp == 0 {
		fail("no call was set up")
	}
	if !rep.Standby.Matched {
		fail("the standby's restored calls never matched the active node's: %d active, %d restored, missing %v, extra %v",
			rep.Standby.Active, rep.Standby.Restored, rep.Standby.Missing, rep.Standby.Extra)
	}
	// After the drain no pair is in a call, and every port portd holds is
	// one of ng-ctl's leased stock: its size follows the call rate (it
	// grows when it runs empty, shrinks after 10 s without), so it is not
	// compared with the start; the descriptor check below bounds it.
	if drained.InCallPairs > startPorts.InCallPairs || drained.Used > 2*(drained.LeasedPairs+drained.InCallPairs) {
		fail("ports not back after the drain: %+v (every used port should be leased or in a call, none in a call), at start %+v", drained, startPorts)
	}
	for n, fds := range end.FDs {
		if strings.HasPrefix(n, "redis") || strings.HasPrefix(n, "nats") {
			continue
		}
		if fds < 0 || fds > first.FDs[n]+soakFDSlack {
			fail("%s: %d descriptors after the drain, %d at start (slack %d)", n, fds, first.FDs[n], soakFDSlack)
		}
	}
	for _, f := range rep.Failures {
		t.Error(f)
	}
}

// soakPrint logs the report as text and JSON (and writes the JSON to
// RTPKIT_SOAK_JSON if set).
func soakPrint(t *testing.T, rep *soakReport) {
	var names []string
	for _, s := range rep.Samples[:1] {
		for n := range s.FDs {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "SOAK %s of churn at %.1f calls/s (life %s), %d packets/s per direction; loss bound %s\n",
		rep.Duration, rep.Rate, rep.Life, rep.PPS, rep.GapBound)
	fmt.Fprintf(&b, "  bus restart at %s (portd answering after %s); Redis restart at %s (down %s; %s)\n",
		rep.BusRestart, rep.BusOutage, rep.RedisRestart, rep.RedisOutage, rep.RedisData)
	fmt.Fprintf(&b, "  calls: %d setups attempted, %d set up, %d ended normally, %d LOST\n", rep.Attempted, rep.SetUp, rep.EndedNormally, rep.Lost)
	for _, l := range rep.LostCalls[:min(len(rep.LostCalls), 20)] {
		fmt.Fprintf(&b, "    lost %s at %s: %s\n", l.ID, l.At.Format("15:04:05.000"), l.Reason)
	}
	fmt.Fprintf(&b, "  packets: %d sent, %d arrived; longest silence per flow p50 %s p99 %s max %s\n",
		rep.PacketsSent, rep.PacketsArrived, rep.GapP50, rep.GapP99, rep.GapMax)
	fmt.Fprintf(&b, "  standby at churn end: %d active calls, %d restored, matched %v\n", rep.Standby.Active, rep.Standby.Restored, rep.Standby.Matched)
	fmt.Fprintf(&b, "  ports: start %+v, drained %+v\n", *rep.PortsStart, *rep.PortsDrained)
	fmt.Fprintf(&b, "  samples:")
	for _, s := range rep.Samples {
		fmt.Fprintf(&b, " %s@%s", s.Label, s.Elapsed)
	}
	fmt.Fprintf(&b, "\n  live calls (client/node):")
	for _, s := range rep.Samples {
		fmt.Fprintf(&b, " %d/%d", s.LiveCalls, s.NodeCalls)
	}
	fmt.Fprintf(&b, "\n  node state (msgs/bytes):")
	for _, s := range rep.Samples {
		fmt.Fprintf(&b, " %d/%d", s.StateMsgs, s.StateBytes)
	}
	fmt.Fprintf(&b, "\n  redis keys (db1/db2):")
	for _, s := range rep.Samples {
		fmt.Fprintf(&b, " %d/%d", s.RedisKeys["db1"], s.RedisKeys["db2"])
	}
	fmt.Fprintf(&b, "\n  RSS:%s", figureLine(rep.Samples, func(s soakSample) map[string]int { return s.RSSKB }, names, "KiB"))
	fmt.Fprintf(&b, "\n  fds:%s", figureLine(rep.Samples, func(s soakSample) map[string]int { return s.FDs }, names, ""))
	for _, c := range rep.PIDChanges {
		fmt.Fprintf(&b, "\n  restarted: %s", c)
	}
	verdict := "PASS"
	if len(rep.Failures) > 0 {
		verdict = "FAIL: " + strings.Join(rep.Failures, "; ")
	}
	fmt.Fprintf(&b, "\n  verdict: %s", verdict)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\nSOAK-JSON %s", b.String(), js)
	if p := os.Getenv("RTPKIT_SOAK_JSON"); p != "" {
		if err := os.WriteFile(p, append(js, '\n'), 0o644); err != nil {
			t.Errorf("write %s: %v", p, err)
		}
	}
}
