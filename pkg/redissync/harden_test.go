package redissync_test

// Hardening (issue 24): calls that ended while redis-sync was down stay
// ended, a restore whose bind portd refuses never takes a live call's
// sockets, and hostile records of other nodes are skipped and counted.
// Every daemon runs from the built binaries against a real nats-server and
// a real redis-server, on 127.0.0.1.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// stack is one node run daemon by daemon, so that the test can stop and
// start redis-sync on its own.
type stack struct {
	bin, nats, node string
	redis           *testutil.Redis
	own             int
	follow          []int
	ngctl, sync     *testutil.Proc
	syncArgs        []string // more options of redis-sync
	ng              *ngclient.Client
	bus             *bus.Conn
	calls           *nodestate.Table[nodestate.Call]
}

// startStack runs nats-server, portd (127.0.0.1, ports 45000-45999),
// rtp-fwd, ng-ctl and redis-sync writing database own and following
// follow.
func startStack(t *testing.T, own int, follow ...int) *stack {
	t.Helper()
	return startStackArgs(t, nil, own, follow...)
}

// startStackArgs is startStack with more options for redis-sync.
func startStackArgs(t *testing.T, syncArgs []string, own int, follow ...int) *stack {
	t.Helper()
	natsd := testutil.StartNATSServer(t)
	s := &stack{bin: testutil.Binaries(t), nats: natsd.URL(), node: "hard", own: own, follow: follow, syncArgs: syncArgs,
		redis: testutil.StartRedis(t, testutil.RedisOptions{})}
	run := testutil.ShortTempDir(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	common := s.common()
	testutil.StartProc(t, filepath.Join(s.bin, "portd"), append(common, "--runtime-dir="+run, "--interface=127.0.0.1",
		"--port-min=45000", "--port-max=45999"))
	fwd := testutil.StartProc(t, filepath.Join(s.bin, "rtp-fwd"), append(common, "--runtime-dir="+run, "--loops=1", "--fast-path=off"))
	s.ngctl = testutil.StartProc(t, filepath.Join(s.bin, "ng-ctl"), append(common, "--listen-ng="+ngAddr, "--delete-delay=0"))
	s.ngctl.WaitMatch(t, testutil.MatchLine(`msg="port leases ready"`), 20*time.Second)
	fwd.WaitMatch(t, testutil.MatchLine(`msg="connected to portd"`), 20*time.Second)
	s.startSync(t)
	if s.ng, err = ngclient.Dial(ngAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ng.Close() })
	s.bus = testutil.Connect(t, s.nats, s.node, "test")
	st, err := nodestate.Open(context.Background(), s.bus, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.calls = nodestate.Calls(st)
	return s
}

func (s *stack) common() []string {
	return []string{"--nats-url=" + s.nats, "--node-id=" + s.node}
}

// startSync starts redis-sync and waits until it has loaded its own
// partition.
func (s *stack) startSync(t *testing.T) {
	t.Helper()
	args := append(s.common(), "--redis="+s.redis.Addr+"/"+strconv.Itoa(s.own))
	args = append(args, s.syncArgs...)
	for _, f := range s.follow {
		args = append(args, "--subscribe-keyspace="+strconv.Itoa(f))
	}
	s.sync = testutil.StartProc(t, filepath.Join(s.bin, "redis-sync"), args)
	s.sync.WaitMatch(t, testutil.MatchLine(`msg="own partition loaded"`), 20*time.Second)
}

// killSync kills redis-sync with -9 and waits for it to be gone.
func (s *stack) killSync(t *testing.T) {
	t.Helper()
	if err := s.sync.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sync.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// record returns the call's node-state record, if there is one.
func (s *stack) record(t *testing.T, id string) (nodestate.Call, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := s.calls.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Value.ID == id {
			return e.Value, true
		}
	}
	return nodestate.Call{}, false
}

// status reads redis-sync's counters.
func (s *stack) status(t *testing.T) syncapi.Counters {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := bus.Request(ctx, s.bus, syncapi.StatusEndpoint, api.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Counters
}

// inRedis reports whether the call's key is in database db.
func (s *stack) inRedis(t *testing.T, db int, id string) bool {
	t.Helper()
	n, err := s.redis.Client(db).Exists(context.Background(), rediscalls.CallKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

const hardSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=sendrecv\r\n"

// mediaCall makes a call between two sockets of the test and returns the
// proxy's addresses for each side to send to (toA: where A sends).
func (s *stack) mediaCall(t *testing.T, id string, a, b *net.UDPConn) (toA, toB *net.UDPAddr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sdpB := testutil.NGOK(t, ctx, s.ng, testutil.NGCall("offer", id, "", fmt.Sprintf(hardSDP, udpPort(a))))
	sdpA := testutil.NGOK(t, ctx, s.ng, testutil.NGCall("answer", id, "B", fmt.Sprintf(hardSDP, udpPort(b))))
	return testutil.SDPMediaAddr(t, sdpA), testutil.SDPMediaAddr(t, sdpB)
}

func udpPort(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// arrives sends RTP from src to dst until a copy reaches rcv (at most 20
// tries, 100 ms apart) and says whether one did.
func arrives(t *testing.T, src *net.UDPConn, dst *net.UDPAddr, rcv *net.UDPConn, seq uint16) bool {
	t.Helper()
	want := testutil.RTPPacket(77, seq, "hard")
	buf := make([]byte, 2048)
	for range 20 {
		if _, err := src.WriteToUDP(want, dst); err != nil {
			t.Fatal(err)
		}
		_ = rcv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := rcv.ReadFromUDPAddrPort(buf); err == nil && string(buf[:n]) == string(want) {
			return true
		}
	}
	return false
}

// cdrs counts ng-ctl's "call ended" lines for a call.
func (s *stack) cdrs(id string) int {
	return len(regexp.MustCompile(`(?m)msg="call ended" .*\bcall=`+regexp.QuoteMeta(id)+` `).FindAllString(s.ngctl.Output(), -1))
}

// TestDeletedWhileSyncDownStaysDeleted: a call deleted through ng while
// redis-sync is down is not brought back when redis-sync starts again;
// it is deleted from Redis instead, and ng-ctl writes one CDR for it.
func TestDeletedWhileSyncDownStaysDeleted(t *testing.T) {
	s := startStack(t, 1)
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	const id = "ended-while-down"
	s.mediaCall(t, id, a, b)
	eventually(t, "call written to Redis", 10*time.Second, func() error {
		if !s.inRedis(t, 1, id) {
			return fmt.Errorf("not in db 1 yet")
		}
		return nil
	})

	s.killSync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testutil.NGOK(t, ctx, s.ng, testutil.NGCall("delete", id, "", ""))
	eventually(t, "call gone from node state", 5*time.Second, func() error {
		if _, ok := s.record(t, id); ok {
			return fmt.Errorf("still there")
		}
		return nil
	})
	s.startSync(t)

	// Once the own partition is loaded, a restored call is in node state
	// (PutAsync), and a deletion is on the writer's queue.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := s.record(t, id); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, ok := s.record(t, id); ok {
		t.Errorf("call deleted while redis-sync was down is back in node state: owner %q foreign %v source %q", c.Owner, c.Foreign, c.Source)
	}
	for end := time.Now().Add(5 * time.Second); s.inRedis(t, 1, id) && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	if s.inRedis(t, 1, id) {
		t.Errorf("db 1 still holds %s after redis-sync came back", id)
	}
	r, err := s.ng.Do(ctx, testutil.NGCall("query", id, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := ngclient.Result(r); res == "ok" {
		t.Errorf("query of the ended call succeeded: ng-ctl holds it again")
	}
	if n := s.cdrs(id); n != 1 {
		t.Errorf("%d CDR lines (call ended) for %s, want 1:\n%s", n, id, grepLines(s.ngctl.Output(), id))
	}
}

// TestRefusedBindKeepsLiveCall: a foreign record naming the ports of a
// live own call is refused by portd's bind; it must not reach node state
// with those sockets, and the live call's media keeps flowing between its
// parties.
func TestRefusedBindKeepsLiveCall(t *testing.T) {
	s := startStack(t, 1, 2)
	a, b := testutil.ListenUDP(t), testutil.ListenUDP(t)
	toA, toB := s.mediaCall(t, "live", a, b)
	if !arrives(t, a, toA, b, 1) || !arrives(t, b, toB, a, 2) {
		t.Fatal("no media through the live call")
	}
	live, ok := s.record(t, "live")
	if !ok {
		t.Fatal("live call not in node state")
	}
	// Another node's record of a call on the same ports, with other peers.
	thief := live
	thief.ID, thief.Owner, thief.Foreign, thief.Source, thief.Partition = "thief", "other", false, "", ""
	thief.Legs = append([]nodestate.Leg(nil), live.Legs...)
	other := testutil.ListenUDP(t)
	for i := range thief.Legs {
		thief.Legs[i].Medias = append([]nodestate.Media(nil), live.Legs[i].Medias...)
		for j := range thief.Legs[i].Medias {
			m := &thief.Legs[i].Medias[j]
			m.Streams = append([]nodestate.Stream(nil), m.Streams...)
			for k := range m.Streams {
				m.Streams[k].Signalled = other.LocalAddr().(*net.UDPAddr).AddrPort()
			}
		}
	}
	before := s.status(t)
	writeForeign(t, s.redis.Client(2), 2, &rediscalls.Entry{Call: thief, Updated: time.Now()})

	eventually(t, "redis-sync handles the foreign record", 10*time.Second, func() error {
		if _, ok := s.record(t, "thief"); ok {
			return nil
		}
		if c := s.status(t); c.Rejected > before.Rejected {
			return nil
		}
		return fmt.Errorf("neither restored nor rejected yet")
	})
	if c, ok := s.record(t, "thief"); ok {
		t.Errorf("foreign record with a live call's ports reached node state: %v", ports(c))
	}
	for seq := uint16(10); seq < 13; seq++ {
		if !arrives(t, a, toA, b, seq) {
			t.Errorf("packet %d from A no longer reaches B", seq)
		}
		if !arrives(t, b, toB, a, seq+100) {
			t.Errorf("packet %d from B no longer reaches A", seq+100)
		}
	}
	if c := s.status(t); c.Rejected <= before.Rejected {
		t.Errorf("refused restore not counted: rejected %d before, %d after", before.Rejected, c.Rejected)
	}

	// The other node ends its call: the live call keeps its sockets.
	if err := s.redis.Client(2).Del(context.Background(), rediscalls.CallKey("thief")).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "foreign record gone", 10*time.Second, func() error {
		if _, ok := s.record(t, "thief"); ok {
			return fmt.Errorf("still in node state")
		}
		return nil
	})
	if _, ok := s.record(t, "live"); !ok {
		t.Errorf("live call gone from node state")
	}
	for seq := uint16(20); seq < 23; seq++ {
		if !arrives(t, a, toA, b, seq) {
			t.Errorf("after the foreign call ended: packet %d from A no longer reaches B", seq)
		}
		if !arrives(t, b, toB, a, seq+100) {
			t.Errorf("after the foreign call ended: packet %d from B no longer reaches A", seq+100)
		}
	}
}

// writeForeign writes an entry into partition db as another node would.
func writeForeign(t *testing.T, rdb *redis.Client, db int, e *rediscalls.Entry) {
	t.Helper()
	st := rediscalls.New(rdb, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := st.Apply(ctx, []rediscalls.Op{{Kind: rediscalls.OpWrite, Part: rediscalls.Partition{DB: db}, ID: e.Call.ID, Entry: e}})
	if err == nil {
		err = res[0]
	}
	if err != nil {
		t.Fatalf("write %s into db %d: %v", e.Call.ID, db, err)
	}
}

func grepLines(out, s string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// hostileCall is a foreign call record of n medias on the given local
// sockets (RTP, RTCP on the next port; none if local is invalid).
func hostileCall(id string, medias int, local netip.AddrPort) nodestate.Call {
	c := nodestate.Call{Schema: 1, ID: id, Owner: "other", Created: time.Now(), LastSignal: time.Now()}
	leg := nodestate.Leg{ID: 0, Tag: "A", Peer: -1, Family: 4, Created: time.Now()}
	for i := range medias {
		m := nodestate.Media{Index: i + 1, Type: "audio", Protocol: "RTP/AVP", Interface: "default",
			PayloadTypes: []nodestate.PayloadType{{PT: 0, Encoding: "PCMU", Clock: 8000}}}
		if local.IsValid() {
			m.Streams = []nodestate.Stream{{Component: 1, Local: local}, {Component: 2, Local: netip.AddrPortFrom(local.Addr(), local.Port()+1)}}
		}
		leg.Medias = append(leg.Medias, m)
	}
	c.Legs = []nodestate.Leg{leg}
	return c
}

// hgetalls reads how many HGETALL commands Redis has run.
func hgetalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_hgetall:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestHostileRecordsSkipped: records of another node's partition that
// are over the caps (too many medias, a `medias` field that would make
// the read script loop), or name ports outside this node's range or an
// address it does not have, are skipped and counted; a good record next
// to them is restored.
func TestHostileRecordsSkipped(t *testing.T) {
	s := startStack(t, 1, 2)
	rdb := s.redis.Client(2)
	before, calls0 := s.status(t), hgetalls(t, rdb)

	const loopMedias = 200000
	bad := map[string]func(){
		"many-medias": func() { rawWrite(t, rdb, hostileCall("many-medias", 5000, netip.AddrPort{})) },
		// One HSET, so that redis-sync never sees the record before its
		// media count is the hostile one (written in two steps, the first
		// could be restored before the second arrived).
		"loop-medias": func() { rawWriteMedias(t, rdb, hostileCall("loop-medias", 1, netip.AddrPort{}), loopMedias) },
		"port-out-of-range": func() {
			writeForeign(t, rdb, 2, &rediscalls.Entry{Call: hostileCall("port-out-of-range", 1, netip.MustParseAddrPort("127.0.0.1:40000")), Updated: time.Now()})
		},
		"foreign-address": func() {
			writeForeign(t, rdb, 2, &rediscalls.Entry{Call: hostileCall("foreign-address", 1, netip.MustParseAddrPort("192.0.2.77:45600")), Updated: time.Now()})
		},
		strings.Repeat("x", 2000): func() { rawWrite(t, rdb, hostileCall(strings.Repeat("x", 2000), 1, netip.AddrPort{})) },
	}
	for _, write := range bad {
		write()
	}
	writeForeign(t, rdb, 2, &rediscalls.Entry{Call: hostileCall("good", 1, netip.MustParseAddrPort("127.0.0.1:45500")), Updated: time.Now()})

	eventually(t, "good record restored", 20*time.Second, func() error {
		if c, ok := s.record(t, "good"); !ok || !c.Foreign {
			return fmt.Errorf("not in node state as foreign")
		}
		return nil
	})
	// Rejections are counted per read: wait until each bad record has had
	// a chance (or the test fails below with what it found).
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if s.status(t).Rejected-before.Rejected >= uint64(len(bad)) {
			break
		}
	}
	for id := range bad {
		if c, ok := s.record(t, id); ok {
			t.Errorf("hostile record %.40s restored: %d legs, %d medias in leg 0, sockets %v", id, len(c.Legs), len(c.Legs[0].Medias), ports(c))
		}
	}
	if got := s.status(t).Rejected - before.Rejected; got < uint64(len(bad)) {
		t.Errorf("%d records counted as rejected, want at least %d", got, len(bad))
	}
	if n := hgetalls(t, rdb) - calls0; n >= loopMedias {
		t.Errorf("read script ran HGETALL %d times for records with at most %d medias and one claiming %d", n, 5000, loopMedias)
	}
	if !testutil.Alive(s.sync.PID()) {
		t.Fatalf("redis-sync died:\n%s", s.sync.Output())
	}
	if n := strings.Count(s.sync.Output(), "call=many-medias "); n > 1 {
		t.Errorf("the rejected record was logged %d times, want once", n)
	}
}

// rawWrite stores a call hash as a writer that ignores the caps would
// (rtpkit's own writes refuse records over them); payload types are left
// out.
func rawWrite(t *testing.T, rdb *redis.Client, c nodestate.Call) {
	t.Helper()
	rawWriteMedias(t, rdb, c, 0)
}

// rawWriteMedias is rawWrite with the count of payload-type hashes the
// record claims.
func rawWriteMedias(t *testing.T, rdb *redis.Client, c nodestate.Call, medias int) {
	t.Helper()
	for i := range c.Legs {
		for j := range c.Legs[i].Medias {
			c.Legs[i].Medias[j].PayloadTypes = nil
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	err = rdb.HSet(context.Background(), rediscalls.CallKey(c.ID), "schema", rediscalls.Schema, "owner", c.Owner, "rev", 1,
		"updated", time.Now().UnixMilli(), "call", string(b), "endpoints", "{}", "medias", medias).Err()
	if err != nil {
		t.Fatalf("write %.40s: %v", c.ID, err)
	}
}

// TestLostNotificationAudited: Redis delivers keyspace notifications at
// most once. With none delivered while a foreign call is deleted and
// another written (notifications switched off meanwhile, as a lost
// message would do), the periodic audit of the followed partition removes
// the first and restores the second. Before the audit a standby kept such
// a call (the 30-minute soak's soak-002704) until its next resync.
func TestLostNotificationAudited(t *testing.T) {
	s := startStackArgs(t, []string{"--redis-audit-interval=300ms"}, 1, 2)
	rdb := s.redis.Client(2)
	ctx := context.Background()
	writeForeign(t, rdb, 2, &rediscalls.Entry{Call: hostileCall("lost-1", 1, netip.MustParseAddrPort("127.0.0.1:45500")), Updated: time.Now()})
	eventually(t, "lost-1 restored", 20*time.Second, func() error {
		if _, ok := s.record(t, "lost-1"); !ok {
			return fmt.Errorf("not in node state")
		}
		return nil
	})
	before := s.status(t)

	cfg, err := s.redis.WaitKeyspaceConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "").Err(); err != nil {
		t.Fatal(err)
	}
	st := rediscalls.New(rdb, time.Hour)
	if _, err := st.Apply(ctx, []rediscalls.Op{{Kind: rediscalls.OpDelete, Part: rediscalls.Partition{DB: 2}, ID: "lost-1"}}); err != nil {
		t.Fatal(err)
	}
	writeForeign(t, rdb, 2, &rediscalls.Entry{Call: hostileCall("lost-2", 1, netip.MustParseAddrPort("127.0.0.1:45502")), Updated: time.Now()})
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", cfg).Err(); err != nil {
		t.Fatal(err)
	}

	eventually(t, "lost-1 removed and lost-2 restored by the audit", 10*time.Second, func() error {
		if _, ok := s.record(t, "lost-1"); ok {
			return fmt.Errorf("lost-1 (deleted from Redis) still in node state")
		}
		if _, ok := s.record(t, "lost-2"); !ok {
			return fmt.Errorf("lost-2 (written to Redis) not restored")
		}
		return nil
	})
	after := s.status(t)
	if n := after.AuditFixes - before.AuditFixes; n != 2 {
		t.Errorf("audit fixes counted %d, want 2", n)
	}
	if n := after.Removals - before.Removals; n != 1 {
		t.Errorf("removals %d, want 1", n)
	}
}
