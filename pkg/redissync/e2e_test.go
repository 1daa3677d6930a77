package redissync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// node is one rtpkit node of the test bed, seen from the test.
type node struct {
	i     int
	db    int
	proc  *testutil.Proc
	ng    *ngclient.Client
	bus   *bus.Conn
	calls *nodestate.Table[nodestate.Call]
	args  []string
}

const natsPort = "14222"

func startNode(t *testing.T, tb *testutil.Testbed, i, db int, follow ...int) *node {
	t.Helper()
	return startNodeArgs(t, tb, i, db, nil, follow...)
}

func startNodeArgs(t *testing.T, tb *testutil.Testbed, i, db int, extra []string, follow ...int) *node {
	t.Helper()
	n := &node{i: i, db: db}
	svc := tb.Service.String()
	n.args = []string{"--interface=" + svc, "--listen-ng=" + tb.Nodes[i].Addr.String() + ":2223",
		"--port-min=30000", "--port-max=39999", "--nats-listen=127.0.0.1:" + natsPort,
		"--redis=" + tb.RedisURL(i, db), "--delete-delay=0"}
	n.args = append(n.args, extra...)
	for _, f := range follow {
		n.args = append(n.args, "--subscribe-keyspace="+strconv.Itoa(f))
	}
	n.start(t, tb)
	return n
}

// start runs the node and connects the test to its ng port and its bus.
func (n *node) start(t *testing.T, tb *testutil.Testbed) {
	t.Helper()
	n.proc = tb.StartNode(t, n.i, n.args...)
	n.proc.WaitMatch(t, regexp.MustCompile(`(?m)^  redis-sync\s+running, pid \d+$`), 30*time.Second)
	n.ng = tb.NG(t, tb.Callers, tb.Nodes[n.i].Addr.String()+":2223")
	n.ng.SetRetransmit(200 * time.Millisecond)
	if err := tb.Nodes[n.i].NS.Do(func() error {
		n.bus = testutil.Connect(t, "nats://127.0.0.1:"+natsPort, "node"+strconv.Itoa(n.i), "test")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, err := nodestate.Open(context.Background(), n.bus, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.calls = nodestate.Calls(st)
}

// list returns the node's call records by id.
func (n *node) list(t *testing.T) map[string]nodestate.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	es, err := n.calls.List(ctx)
	if err != nil {
		t.Fatalf("node%d: list calls: %v", n.i, err)
	}
	out := make(map[string]nodestate.Call, len(es))
	for _, e := range es {
		out[e.Value.ID] = e.Value
	}
	return out
}

const sdpTmpl = "v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\n" +
	"m=audio %[2]d RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"

func ngCall(t testing.TB, ctx context.Context, c *ngclient.Client, cmd, id, toTag string, port int) {
	t.Helper()
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A-" + id)})
	if cmd != "delete" {
		d.Set("sdp", bencode.Str(fmt.Sprintf(sdpTmpl, "10.78.0.2", port)))
	}
	if toTag != "" {
		d.Set("to-tag", bencode.Str(toTag))
	}
	r, err := c.Do(ctx, d)
	if err != nil {
		t.Fatalf("%s %s: %v", cmd, id, err)
	}
	if res, why := ngclient.Result(r); res != "ok" {
		t.Fatalf("%s %s: %s %s", cmd, id, res, why)
	}
}

func newCall(t *testing.T, ctx context.Context, c *ngclient.Client, id string, port int) {
	t.Helper()
	ngCall(t, ctx, c, "offer", id, "", port)
	ngCall(t, ctx, c, "answer", id, "B-"+id, port+2)
}

// ports lists a record's local sockets.
func ports(c nodestate.Call) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			for _, s := range m.Streams {
				out = append(out, s.Local)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sameCalls checks that b holds exactly a's own calls, as foreign, on the
// same ports.
func sameCalls(t *testing.T, a, b *node, owner string) error {
	own := map[string]nodestate.Call{}
	for id, c := range a.list(t) {
		if !c.Foreign && c.Owner == owner {
			own[id] = c
		}
	}
	got := b.list(t)
	for id, c := range own {
		g, ok := got[id]
		if !ok {
			return fmt.Errorf("node%d lacks call %s (has %d of %d)", b.i, id, len(got), len(own))
		}
		if !g.Foreign || g.Owner != owner {
			return fmt.Errorf("node%d: call %s foreign=%v owner=%q", b.i, id, g.Foreign, g.Owner)
		}
		if !reflect.DeepEqual(ports(g), ports(c)) {
			return fmt.Errorf("node%d: call %s on %v, owner has %v", b.i, id, ports(g), ports(c))
		}
	}
	for id, g := range got {
		if _, ok := own[id]; !ok && g.Foreign {
			return fmt.Errorf("node%d still holds call %s", b.i, id)
		}
	}
	return nil
}

// TestRedundancy: node A's calls appear on B (which follows A's database)
// as foreign calls on the same ports with the same payload types, and go
// when A deletes them; C, which follows only B's database, never holds
// them. B ends with exactly A's calls after Redis is killed and restarted
// and after B's redis-sync is killed, both while calls change; a restarted
// node A gets its own calls back on the same ports; `active` on B moves
// the calls to B's database. Keys that are not ours are never touched.
func TestRedundancy(t *testing.T) {
	testutil.RequireRoot(t)
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 3, ServiceOnAll: true, Redis: true, RedisPersist: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := tb.RedisClient(t, 0, 0)
	notOurs := map[int]string{1: "call-1", 2: "rtpkit:v2:call:x", 3: "session:abc"}
	for db, k := range notOurs {
		c := tb.RedisClient(t, 0, db)
		if err := c.Set(ctx, k, "theirs", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_ = admin

	a := startNode(t, tb, 0, 1, 2)
	b := startNode(t, tb, 1, 2, 1)
	// C's media timers are short: the foreign calls it restores must not
	// be ended by them.
	c := startNodeArgs(t, tb, 2, 3, []string{"--timeout=2", "--silent-timeout=2"}, 2)

	// B watches its node state: when does each call of A arrive?
	seen := map[string]time.Time{}
	var seenMu sync.Mutex
	w, err := b.calls.Watch(ctx, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	go func() {
		for ev := range w.C() {
			if !ev.Synced && ev.Op == nodestate.OpPut && ev.Value.Foreign {
				seenMu.Lock()
				if _, ok := seen[ev.ID]; !ok {
					seen[ev.ID] = time.Now()
				}
				seenMu.Unlock()
			}
		}
	}()

	// Media through A on a few calls while A writes the 1000 calls below.
	streams := startMedia(t, ctx, tb, a, 5)

	// 1000 calls at 200/s on A.
	const n = 1000
	answered := map[string]time.Time{}
	tick := time.NewTicker(5 * time.Millisecond)
	for i := range n {
		<-tick.C
		id := fmt.Sprintf("call-%04d", i)
		newCall(t, ctx, a.ng, id, 20000+4*i)
		answered[id] = time.Now()
	}
	tick.Stop()
	streams.stop(t)
	eventually(t, "B restores A's calls", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })
	var lags []time.Duration
	seenMu.Lock()
	for id, at := range answered {
		if s, ok := seen[id]; ok {
			lags = append(lags, max(0, s.Sub(at)))
		}
	}
	seenMu.Unlock()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	if len(lags) > 0 {
		t.Logf("restore lag over %d calls at 200/s: p50 %v, p99 %v, max %v", len(lags),
			lags[len(lags)/2].Round(time.Microsecond), lags[len(lags)*99/100].Round(time.Microsecond), lags[len(lags)-1].Round(time.Microsecond))
	}

	// Payload types: a hash per media in A's database.
	db1 := tb.RedisClient(t, 0, 1)
	pts, err := db1.HGetAll(ctx, rediscalls.PayloadTypesKey("call-0007", 0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"0": "0/PCMU/8000", "1": "8/PCMA/8000", "2": "101/telephone-event/8000//0-16"}; !reflect.DeepEqual(pts, want) {
		t.Errorf("HGETALL payload types = %v, want %v", pts, want)
	}
	// B's foreign call has them too.
	if bc := b.list(t)["call-0007"]; len(bc.Legs) == 0 || len(bc.Legs[0].Medias) == 0 || len(bc.Legs[0].Medias[0].PayloadTypes) != 3 {
		t.Errorf("B's call-0007 payload types: %+v", bc.Legs)
	}
	// C follows only B's database: it holds none of A's calls.
	for id, cc := range c.list(t) {
		t.Errorf("node2 holds call %s (owner %s)", id, cc.Owner)
	}

	// Deleting on A removes the call on B.
	for i := 0; i < 100; i++ {
		ngCall(t, ctx, a.ng, "delete", fmt.Sprintf("call-%04d", i), "", 0)
	}
	eventually(t, "B drops A's deleted calls", 20*time.Second, func() error { return sameCalls(t, a, b, "node0") })

	// Redis killed and started again (data kept) while calls change.
	tb.Redis.Kill()
	for i := 100; i < 150; i++ {
		ngCall(t, ctx, a.ng, "delete", fmt.Sprintf("call-%04d", i), "", 0)
	}
	for i := n; i < n+50; i++ {
		newCall(t, ctx, a.ng, fmt.Sprintf("call-%04d", i), 20000+4*i)
	}
	tb.Redis.Restart()
	dumpOnFailure(t, a, b)
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range []string{"call-1010", "call-1045", "call-1038", "call-1000", "call-1049"} {
				n, err := tb.RedisClient(t, 0, 1).Exists(context.Background(), rediscalls.CallKey(id)).Result()
				t.Logf("db1 %s exists=%d %v", id, n, err)
			}
		}
	})
	eventually(t, "B holds exactly A's calls after Redis came back", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })

	// B's redis-sync killed (rtpctl up restarts it) while calls change.
	pid := daemonPID(t, b.proc, "redis-sync")
	if err := killPID(pid); err != nil {
		t.Fatal(err)
	}
	for i := 150; i < 200; i++ {
		ngCall(t, ctx, a.ng, "delete", fmt.Sprintf("call-%04d", i), "", 0)
	}
	for i := n + 50; i < n+100; i++ {
		newCall(t, ctx, a.ng, fmt.Sprintf("call-%04d", i), 20000+4*i)
	}
	eventually(t, "B holds exactly A's calls after its redis-sync restarted", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })

	// Node A killed as a whole and started again (fresh node state):
	// it restores its own calls, as own, on the same ports.
	before := a.list(t)
	_ = a.proc.Cmd.Process.Kill()
	if _, err := a.proc.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	a.start(t, tb)
	eventually(t, "A restores its own calls", 30*time.Second, func() error {
		after := a.list(t)
		for id, c := range before {
			if c.Foreign {
				continue
			}
			g, ok := after[id]
			if !ok {
				return fmt.Errorf("A lacks %s after restart (%d calls)", id, len(after))
			}
			if g.Foreign || g.Owner != "node0" || !reflect.DeepEqual(ports(g), ports(c)) {
				return fmt.Errorf("A's %s: foreign=%v owner=%s ports %v, were %v", id, g.Foreign, g.Owner, ports(g), ports(c))
			}
		}
		return nil
	})
	// The restored call answers signalling on A.
	ngCall(t, ctx, a.ng, "delete", "call-0500", "", 0)
	eventually(t, "B follows A after A's restart", 30*time.Second, func() error { return sameCalls(t, a, b, "node0") })

	// rtpctl keyspace: C follows A's database too, then stops.
	if out := rtpctl(t, tb, c, "keyspace", "add", "1"); !strings.Contains(out, "Now following keyspace 1.") || !strings.Contains(out, "Followed keyspaces: 1 2") {
		t.Errorf("keyspace add:\n%s", out)
	}
	eventually(t, "C restores A's calls after keyspace add", 30*time.Second, func() error { return sameCalls(t, a, c, "node0") })
	time.Sleep(3500 * time.Millisecond) // past C's 2 s timeouts, no media
	if err := sameCalls(t, a, c, "node0"); err != nil {
		t.Errorf("C's foreign calls after its media timeouts passed: %v", err)
	}
	if out := rtpctl(t, tb, c, "keyspace", "remove", "1"); !strings.Contains(out, "Stopped following keyspace 1;") {
		t.Errorf("keyspace remove:\n%s", out)
	}
	eventually(t, "C drops A's calls after keyspace remove", 30*time.Second, func() error {
		if n := len(c.list(t)); n != 0 {
			return fmt.Errorf("C holds %d calls", n)
		}
		return nil
	})
	if out := rtpctl(t, tb, c, "keyspace", "list", "--json"); !strings.Contains(out, `"dbs": [`) {
		t.Errorf("keyspace list --json:\n%s", out)
	}

	// `rtpctl active` on B: the calls move to B's database in one step.
	var rep syncapi.OwnershipReply
	if err := json.Unmarshal([]byte(rtpctl(t, tb, b, "active", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("active on B took over %d calls", rep.Calls)
	db2 := tb.RedisClient(t, 0, 2)
	eventually(t, "calls move to B's database", 30*time.Second, func() error {
		n1, n2 := countCalls(t, ctx, db1), countCalls(t, ctx, db2)
		if n1 != 0 || n2 != rep.Calls {
			return fmt.Errorf("A's DB holds %d calls, B's %d; want 0 and %d", n1, n2, rep.Calls)
		}
		return nil
	})
	eventually(t, "A holds B's calls as foreign", 30*time.Second, func() error { return sameCalls(t, b, a, "node1") })

	for db, k := range notOurs {
		c := tb.RedisClient(t, 0, db)
		if v, err := c.Get(ctx, k).Result(); err != nil || v != "theirs" {
			t.Errorf("DB %d: key %q that is not ours: %q, %v", db, k, v, err)
		}
	}
}

func countCalls(t *testing.T, ctx context.Context, c *redis.Client) int {
	t.Helper()
	n := 0
	iter := c.Scan(ctx, 0, rediscalls.KeyPrefix+"call:*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// daemonPID finds a daemon's pid in rtpctl up's output (the latest).
func daemonPID(t *testing.T, p *testutil.Proc, name string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^  ` + name + `\s+running, pid (\d+)$`)
	m := re.FindAllStringSubmatch(p.Output(), -1)
	if len(m) == 0 {
		t.Fatalf("no pid of %s in:\n%s", name, p.Output())
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	return pid
}

func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// dumpOnFailure prints the nodes' redis-sync logs if the test fails.
func dumpOnFailure(t *testing.T, nodes ...*node) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range nodes {
			f := filepath.Join(os.TempDir(), fmt.Sprintf("rtpkit-%s-node%d.log", strings.ReplaceAll(t.Name(), "/", "_"), n.i))
			if err := os.WriteFile(f, []byte(n.proc.Output()), 0o600); err == nil {
				t.Logf("node%d's output is in %s", n.i, f)
			}
		}
	})
}

// rtpctl runs an rtpctl client command inside the node's namespace.
func rtpctl(t *testing.T, tb *testutil.Testbed, n *node, args ...string) string {
	t.Helper()
	full := append(args, "--nats-url=nats://127.0.0.1:"+natsPort, "--node-id=node"+strconv.Itoa(n.i), "--wait=10s")
	out, err := tb.Nodes[n.i].NS.Command(filepath.Join(testutil.Binaries(t), "rtpctl"), full...).CombinedOutput()
	if err != nil {
		t.Fatalf("rtpctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// media is RTP flowing both ways through a node at 50 packets/s per
// direction, with every arrival time recorded.
type media struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	flows  []*flow
}

type flow struct {
	name     string
	sent     int
	arrivals []time.Time
}

const mediaSDP = "v=0\r\no=- 1 1 IN IP4 %[1]s\r\ns=-\r\nc=IN IP4 %[1]s\r\nt=0 0\r\nm=audio %[2]d RTP/AVP 0\r\na=sendrecv\r\n"

var mPortRe = regexp.MustCompile(`(?m)^m=audio (\d+) `)

func startMedia(t *testing.T, ctx context.Context, tb *testutil.Testbed, n *node, calls int) *media {
	t.Helper()
	m := &media{}
	mctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for i := range calls {
		ua := tb.UDP(t, tb.Callers, tb.CallerAddrs[0].String()+":0")
		ub := tb.UDP(t, tb.Callers, tb.CallerAddrs[1].String()+":0")
		id := fmt.Sprintf("media-%d", i)
		req := func(cmd, addr, toTag string, port int) string {
			d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
				bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(fmt.Sprintf(mediaSDP, addr, port))})
			if toTag != "" {
				d.Set("to-tag", bencode.Str(toTag))
			}
			r, err := n.ng.Do(ctx, d)
			if res, why := ngclient.Result(r); err != nil || res != "ok" {
				t.Fatalf("%s %s: %s %s %v", cmd, id, res, why, err)
			}
			sdp, _ := r.GetString("sdp")
			mm := mPortRe.FindStringSubmatch(sdp)
			if mm == nil {
				t.Fatalf("%s %s: no m= line in %q", cmd, id, sdp)
			}
			return mm[1]
		}
		toB := req("offer", tb.CallerAddrs[0].String(), "", ua.LocalAddr().(*net.UDPAddr).Port)
		toA := req("answer", tb.CallerAddrs[1].String(), "B", ub.LocalAddr().(*net.UDPAddr).Port)
		dstA := net.JoinHostPort(tb.Service.String(), toA)
		dstB := net.JoinHostPort(tb.Service.String(), toB)
		for _, d := range []struct {
			name     string
			src, dst *net.UDPConn
			to       string
		}{{id + " A→B", ua, ub, dstA}, {id + " B→A", ub, ua, dstB}} {
			f := &flow{name: d.name}
			m.flows = append(m.flows, f)
			to, err := net.ResolveUDPAddr("udp", d.to)
			if err != nil {
				t.Fatal(err)
			}
			m.wg.Add(2)
			go func() { // sender: 50 packets/s
				defer m.wg.Done()
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				pkt := make([]byte, rtppacket.HeaderLen+160)
				for seq := uint16(0); ; seq++ {
					select {
					case <-mctx.Done():
						return
					case <-tick.C:
					}
					h := rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160}
					_ = h.WriteHeader(pkt) // cannot fail: pkt is longer than a header
					if _, err := d.src.WriteToUDP(pkt, to); err == nil {
						f.sent++
					}
				}
			}()
			go func() { // receiver
				defer m.wg.Done()
				buf := make([]byte, 2048)
				for {
					_ = d.dst.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					_, _, err := d.dst.ReadFromUDP(buf)
					if err != nil {
						if mctx.Err() != nil {
							return
						}
						continue
					}
					f.arrivals = append(f.arrivals, time.Now())
				}
			}()
		}
	}
	return m
}

// stop ends the media, checks that no packet was lost and logs the
// longest gap between two arrivals of any stream.
func (m *media) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	m.wg.Wait()
	var worst time.Duration
	var worstName string
	for _, f := range m.flows {
		// The first packets may go before the peer's source is learned
		// (symmetric latching): count from the first arrival.
		if len(f.arrivals) == 0 {
			t.Errorf("%s: nothing arrived of %d packets", f.name, f.sent)
			continue
		}
		if lost := f.sent - len(f.arrivals); lost > 2 {
			t.Errorf("%s: %d of %d packets lost", f.name, lost, f.sent)
		}
		for i := 1; i < len(f.arrivals); i++ {
			if g := f.arrivals[i].Sub(f.arrivals[i-1]); g > worst {
				worst, worstName = g, f.name
			}
		}
	}
	t.Logf("media through the node while it wrote to Redis: %d streams at 50 packets/s, longest gap between packets %v (%s; 20 ms is none)",
		len(m.flows), worst.Round(time.Microsecond), worstName)
}
