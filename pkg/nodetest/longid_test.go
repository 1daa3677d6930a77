package nodetest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestLongCallID: a node started with `rtpctl up` (Redis behind
// redis-sync, following a second partition) gets offers whose Call-IDs are
// long: one at the documented limit works; one of 3000 dots and one of 3000
// letters get an ng error. A record with an over-long id waiting in the
// followed Redis partition is not restored. Afterwards a normal call
// carries RTP both ways, and ng-ctl and redis-sync still answer their
// pings on the bus as the same processes (nothing cut them off the bus).
func TestLongCallID(t *testing.T) {
	const node = "lid"
	redis := testutil.StartRedis(t, testutil.RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A call of another node, with an over-long id, in the partition
	// this node follows.
	long := strings.Repeat(".", 3000)
	now := time.Now().UTC().Truncate(time.Second)
	// rtpkit itself refuses to write such a record (rediscalls' caps), so
	// the test writes a short one and moves it to the long id by hand, as
	// a foreign writer could.
	const short = "short-id"
	client := redis.Client(2)
	rs := rediscalls.New(client, time.Hour)
	res, err := rs.Apply(ctx, []rediscalls.Op{{Kind: rediscalls.OpWrite, Part: rediscalls.Partition{DB: 2}, ID: short,
		Entry: &rediscalls.Entry{Call: nodestate.Call{Schema: nodestate.CallSchema, ID: short, Owner: "other", Created: now, LastSignal: now}, Updated: now}}})
	if err != nil || res[0] != nil {
		t.Fatalf("write the call to Redis: %v %v", err, res)
	}
	fields, err := client.HGetAll(ctx, rediscalls.CallKey(short)).Result()
	if err != nil || len(fields) == 0 {
		t.Fatalf("read the call back: %v %v", fields, err)
	}
	var kv []any
	for k, v := range fields {
		if v == short {
			v = long
		}
		kv = append(kv, k, v)
	}
	if err := client.HSet(ctx, rediscalls.CallKey(long), kv...).Err(); err != nil {
		t.Fatalf("write the long-id call to Redis: %v", err)
	}
	if err := client.Del(ctx, rediscalls.CallKey(short)).Err(); err != nil {
		t.Fatal(err)
	}

	bin := testutil.Binaries(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	up := testutil.StartProc(t, filepath.Join(bin, "rtpctl"), []string{"up", "--node-id=" + node,
		"--nats-listen=127.0.0.1:0", "--state-dir=" + testutil.ShortTempDir(t),
		"--interface=127.0.0.1", "--port-min=51400", "--port-max=51599", "--listen-ng=" + ngAddr,
		fmt.Sprintf("--redis=127.0.0.1:%d/1", redis.Port), "--subscribe-keyspace=2"})
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	natsURL := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(up.Output())
	conn := testutil.Connect(t, natsURL, node, "longid-test")
	pids := map[string]int{}
	for _, d := range []string{"ng-ctl", "redis-sync"} {
		pids[d] = ping(ctx, conn, d)
		if pids[d] == 0 {
			t.Errorf("%s does not answer its ping after start:\n%s", d, grepLines(up.Output(), "control line"))
		}
	}

	ng, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.Close()
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"at the limit", strings.Repeat(".", nodestate.MaxIDLen), true},
		{"3000 dots", strings.Repeat(".", 3000), false},
		{"3000 letters", strings.Repeat("a", 3000), false},
	}
	for _, tt := range tests {
		port := listenUDP(t).LocalAddr().(*net.UDPAddr).Port
		r, err := ng.Do(ctx, offerDoc(tt.id, port))
		if err != nil {
			t.Fatalf("%s: offer: %v", tt.name, err)
		}
		res, why := ngclient.Result(r)
		t.Logf("%s: offer answered %q %q", tt.name, res, why)
		switch {
		case tt.ok && res != "ok":
			t.Errorf("%s: offer answered %s %s, want ok", tt.name, res, why)
		case !tt.ok && (res != "error" || !strings.Contains(why, "call-id")):
			t.Errorf("%s: offer answered %q %q, want an error naming the call-id", tt.name, res, why)
		}
		if res == "ok" {
			_, _ = ng.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("delete")},
				bencode.Pair{Key: "call-id", Value: bencode.Str(tt.id)}, bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}))
		}
	}

	// A normal call afterwards: media flows both ways.
	ab, ba := mediaCall(t, ctx, ng, "lid-normal")
	for seq := uint16(1); seq <= 3; seq++ {
		relay(t, ab, seq)
		relay(t, ba, seq)
	}
	// Still the same processes, still on the bus.
	for _, d := range []string{"ng-ctl", "redis-sync"} {
		if pid := ping(ctx, conn, d); pid != pids[d] {
			t.Errorf("%s answers its ping as pid %d, want %d (the process that started)", d, pid, pids[d])
		}
	}
	if out := up.Output(); strings.Contains(out, "maximum control line exceeded") {
		t.Errorf("a daemon was closed by the bus:\n%s", grepLines(out, "maximum control line"))
	}
	if !strings.Contains(up.Output(), "call record in Redis not restored") {
		t.Errorf("redis-sync did not log the over-long id it skipped")
	}
}

// offerDoc is an offer of call id from tag A with SDP to port.
func offerDoc(id string, port int) bencode.Value {
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", port)
	return bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("offer")}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
}

// ping returns the pid daemon answers its bus ping with, 0 if it does not
// answer within a few tries.
func ping(ctx context.Context, conn *bus.Conn, daemon string) int {
	for range 10 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		h, err := bus.Request(pctx, conn, api.Ping(daemon), api.Empty{})
		cancel()
		if err == nil {
			return h.PID
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0
}

// grepLines returns the lines of out that contain s.
func grepLines(out, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			b.WriteString(l[:min(len(l), 300)])
			b.WriteByte('\n')
		}
	}
	return b.String()
}
