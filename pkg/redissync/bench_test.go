package redissync_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// BenchmarkRestoreBurst measures how fast a follower restores a burst of
// calls another node wrote: N calls (RTPKIT_BENCH_CALLS, default 10000, or
// fewer if the open-file limit cannot hold their sockets) are written to
// partition 1 in pipelines of 500, as a busy owner would; node B, which
// follows partition 1, binds their ports and installs them. It reports
// calls restored per second and the lag from each call's write to its
// arrival in B's node state.
//
//	go test -run '^$' -bench RestoreBurst -benchtime 1x ./pkg/redissync
func BenchmarkRestoreBurst(b *testing.B) {
	testutil.RequireRoot(b)
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("RTPKIT_BENCH_CALLS")); err == nil && v > 0 {
		n = v
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		// Two sockets per call, held by portd and by rtp-fwd.
		if fit := int(lim.Max/2) - 1000; fit < n {
			b.Logf("open-file limit %d: %d calls instead of %d", lim.Max, fit, n)
			n = fit
		}
	}
	tb := testutil.NewTestbed(b, testutil.TestbedOptions{Nodes: 2, ServiceOnAll: true, Redis: true})
	svc := tb.Service.String()
	tb.StartNode(b, 1, "--interface="+svc, "--port-min=20000", "--port-max=59999",
		"--redis="+tb.RedisURL(1, 2), "--subscribe-keyspace=1", "--nats-listen=127.0.0.1:"+natsPort)
	var calls *nodestate.Table[nodestate.Call]
	if err := tb.Nodes[1].NS.Do(func() error {
		c := testutil.Connect(b, "nats://127.0.0.1:"+natsPort, "node1", "bench")
		st, err := nodestate.Open(context.Background(), c, nodestate.Options{})
		if err != nil {
			return err
		}
		calls = nodestate.Calls(st)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	store := rediscalls.New(tb.RedisClient(b, 0, 0), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := store.Load(ctx); err != nil {
		b.Fatal(err)
	}

	seen := make(map[string]time.Time, n)
	var mu sync.Mutex
	all := make(chan struct{})
	w, err := calls.Watch(ctx, testutil.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	go func() {
		for ev := range w.C() {
			if ev.Synced || ev.Op != nodestate.OpPut {
				continue
			}
			mu.Lock()
			if _, ok := seen[ev.ID]; !ok {
				seen[ev.ID] = time.Now()
				if len(seen) == n {
					close(all)
				}
			}
			mu.Unlock()
		}
	}()

	addr := tb.Service
	written := make(map[string]time.Time, n)
	b.ResetTimer()
	start := time.Now()
	const batch = 500
	for i := 0; i < n; i += batch {
		var ops []rediscalls.Op
		for j := i; j < min(i+batch, n); j++ {
			c := burstCall(fmt.Sprintf("burst-%05d", j), addr, uint16(20000+2*j))
			ops = append(ops, rediscalls.Op{Kind: rediscalls.OpWrite, Part: rediscalls.Partition{DB: 1}, ID: c.ID,
				Entry: &rediscalls.Entry{Call: c, Updated: time.Now()}})
		}
		res, err := store.Apply(ctx, ops)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for k, r := range res {
			if r != nil {
				b.Fatal(r)
			}
			written[ops[k].ID] = now
		}
	}
	wrote := time.Since(start)
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		b.Fatalf("B restored %d of %d calls", len(seen), n)
	}
	took := time.Since(start)
	b.StopTimer()
	mu.Lock()
	var lags []time.Duration
	for id, at := range written {
		lags = append(lags, max(0, seen[id].Sub(at)))
	}
	mu.Unlock()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(n)/took.Seconds(), "calls/s")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-lag-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-lag-ms")
	b.Logf("restore burst: %d calls written in %v, all restored on B after %v (%.0f calls/s); lag p50 %v p99 %v",
		n, wrote.Round(time.Millisecond), took.Round(time.Millisecond), float64(n)/took.Seconds(),
		lags[len(lags)/2].Round(time.Microsecond), lags[len(lags)*99/100].Round(time.Microsecond))
}

// burstCall is a two-party call with one rtcp-mux audio stream per party.
func burstCall(id string, addr netip.Addr, port uint16) nodestate.Call {
	now := time.Now().UTC()
	c := nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: "node0", Created: now, LastSignal: now}
	for leg := range 2 {
		c.Legs = append(c.Legs, nodestate.Leg{ID: leg, Tag: []string{"ft", "tt"}[leg], Peer: 1 - leg, Family: 4, Interface: "default",
			Medias: []nodestate.Media{{Index: 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default", RTCPMux: true,
				PayloadTypes: []nodestate.PayloadType{{PT: 0, Encoding: "PCMU", Clock: 8000}, {PT: 8, Encoding: "PCMA", Clock: 8000}},
				Streams: []nodestate.Stream{{Component: 1, Local: netip.AddrPortFrom(addr, port+uint16(leg)),
					Signalled: netip.MustParseAddrPort("10.78.0.2:4000")}}}}})
	}
	return c
}

// BenchmarkCommandsPerEvent counts the Redis commands a node sends per
// signalling event (offer, answer, delete) with nobody following it:
// INFO commandstats before and after cycles driven over ng.
//
//	go test -run '^$' -bench CommandsPerEvent -benchtime 1x ./pkg/redissync
func BenchmarkCommandsPerEvent(b *testing.B) {
	testutil.RequireRoot(b)
	tb := testutil.NewTestbed(b, testutil.TestbedOptions{Nodes: 1, Redis: true})
	svc := tb.Service.String()
	tb.StartNode(b, 0, "--interface="+svc, "--listen-ng="+tb.Nodes[0].Addr.String()+":2223", "--port-min=30000", "--port-max=39999",
		"--redis="+tb.RedisURL(0, 1), "--delete-delay=0")
	ng := tb.NG(b, tb.Callers, tb.Nodes[0].Addr.String()+":2223")
	admin := tb.RedisClient(b, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const cycles = 1000
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range cycles {
		id := fmt.Sprintf("cpe-%d", i)
		ngCall(b, ctx, ng, "offer", id, "", 20000+4*i)
		ngCall(b, ctx, ng, "answer", id, "B-"+id, 20002+4*i)
		ngCall(b, ctx, ng, "delete", id, "", 0)
	}
	// Let the writer drain.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := tb.RedisClient(b, 0, 1).DBSize(ctx).Result(); n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	b.StopTimer()
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	total, byCmd := 0, map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		v, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "config|resetstat" || name == "dbsize" || name == "ping" || name == "client|setinfo" || name == "hello" {
			continue
		}
		total += v
		byCmd[name] = v
	}
	events := 3 * cycles
	b.ReportMetric(float64(total)/float64(events), "cmds/event")
	b.Logf("%d signalling events (offer, answer, delete x %d): %d Redis commands (%.2f per event): %v", events, cycles, total,
		float64(total)/float64(events), byCmd)
}
