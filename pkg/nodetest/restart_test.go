package nodetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/rtppacket"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

const (
	nodeID   = "rst"
	numCalls = 100
	// settle is how long the load runs on after a daemon answers again
	// before the next one is killed.
	settle = 1500 * time.Millisecond
)

// TestRestartUnderLoad: a node started with `rtpctl up` (Redis behind
// redis-sync) carries 100 calls with RTP both ways at 50 packets/s per
// direction. Each daemon in turn — portd, ng-ctl, redis-sync, rtp-fwd — is
// killed with -9; `rtpctl up` restarts it, and the next is killed once it
// answers on the bus again. For every daemon no packet sent during the
// outage is lost (while rtp-fwd is down they wait in the sockets portd
// holds); for rtp-fwd the media gap per stream is measured (target < 1 s,
// logged, not asserted). No call is lost: the
// node lists the same calls after every restart, and Redis keeps them.
// The measurements are one log line starting with RESTART.
func TestRestartUnderLoad(t *testing.T) {
	redis := testutil.StartRedis(t, testutil.RedisOptions{})
	bin := testutil.Binaries(t)
	ngPort, err := testutil.FreePort("udp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ngAddr := "127.0.0.1:" + strconv.Itoa(ngPort)
	up := testutil.StartProc(t, filepath.Join(bin, "rtpctl"), []string{"up", "--node-id=" + nodeID,
		"--nats-listen=127.0.0.1:0", "--state-dir=" + testutil.ShortTempDir(t),
		"--interface=127.0.0.1", "--port-min=50200", "--port-max=51199", "--listen-ng=" + ngAddr,
		fmt.Sprintf("--redis=127.0.0.1:%d/1", redis.Port)})
	up.WaitMatch(t, testutil.MatchLine(`^Stop with Ctrl-C`), 30*time.Second)
	out := up.Output()
	natsURL := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(out)
	pids := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^  (\S+)\s+running, pid (\d+)$`).FindAllStringSubmatch(out, -1) {
		pids[m[1]], _ = strconv.Atoi(m[2])
	}
	for _, d := range []string{"portd", "rtp-fwd", "ng-ctl", "redis-sync"} {
		if pids[d] == 0 {
			t.Fatalf("rtpctl up does not show %s running:\n%s", d, out)
		}
	}
	node := &nodeCtl{t: t, bin: bin, url: natsURL, conn: testutil.Connect(t, natsURL, nodeID, "restart-test")}
	if st := node.status(); !samePIDs(st, pids) {
		t.Fatalf("rtpctl status %v disagrees with rtpctl up %v", st, pids)
	}

	// 100 calls, RTP both ways.
	ng, err := ngclient.Dial(ngAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ids []string
	l := &load{}
	for i := range numCalls {
		id := fmt.Sprintf("rst-%03d", i)
		ids = append(ids, id)
		ab, ba := mediaCall(t, ctx, ng, id)
		l.Flows = append(l.Flows, ab, ba)
	}
	l.Start(20 * time.Millisecond)
	defer l.Stop(200 * time.Millisecond)
	l.waitFlowing(t, time.Now(), 10, 10*time.Second)

	// Redis holds every call (redis-sync writes them in the background).
	rdb := redis.Client(1)
	waitFor(t, 10*time.Second, "every call in Redis", func() bool {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = rediscalls.CallKey(id)
		}
		n, err := rdb.Exists(ctx, keys...).Result()
		return err == nil && n == int64(len(ids))
	})
	if missing := node.missingSessions(ids); len(missing) > 0 {
		t.Fatalf("before any restart the node lacks %d calls: %v", len(missing), missing)
	}

	// Each daemon in turn.
	var outages []outage
	for _, d := range []string{"portd", "ng-ctl", "redis-sync", "rtp-fwd"} {
		o := outage{daemon: d, oldPID: node.status()[d]}
		if o.oldPID == 0 {
			t.Fatalf("%s not running before its kill", d)
		}
		o.kill = time.Now()
		if err := syscall.Kill(o.oldPID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %s (%d): %v", d, o.oldPID, err)
		}
		o.newPID, o.back = node.waitAnswering(d, o.oldPID, 20*time.Second)
		if st := node.status(); st[d] != o.newPID {
			t.Fatalf("after the restart of %s, rtpctl status shows pid %d, the bus %d", d, st[d], o.newPID)
		}
		if d == "rtp-fwd" {
			o.resumed = l.waitFlowing(t, o.back, 1, 10*time.Second)
		}
		time.Sleep(settle)
		if missing := node.missingSessions(ids); len(missing) > 0 {
			t.Errorf("after the restart of %s the node lacks %d calls: %v", d, len(missing), missing)
		}
		outages = append(outages, o)
	}
	// ng-ctl still knows the calls made before it died: a query works.
	if r, err := ng.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")},
		bencode.Pair{Key: "call-id", Value: bencode.Str(ids[0])})); err != nil {
		t.Errorf("query %s: %v", ids[0], err)
	} else if res, why := ngclient.Result(r); res != "ok" {
		t.Errorf("query %s after the restarts: %s %s", ids[0], res, why)
	}
	l.Stop(200 * time.Millisecond)
	// The node after all of it: a new call gets ports, carries media both
	// ways and reaches Redis.
	ab, ba := mediaCall(t, ctx, ng, "rst-new")
	for seq := uint16(1); seq <= 3; seq++ {
		relay(t, ab, seq)
		relay(t, ba, seq)
	}
	waitFor(t, 10*time.Second, "the new call in Redis", func() bool {
		n, err := rdb.Exists(ctx, rediscalls.CallKey("rst-new")).Result()
		return err == nil && n == 1
	})

	var parts []string
	for _, o := range outages {
		r := l.report(o)
		parts = append(parts, fmt.Sprintf("%s: answering %v after kill -9, media gap per stream p50 %v p99 %v max %v, %d of %d packets sent in the outage lost",
			o.daemon, o.back.Sub(o.kill).Round(time.Millisecond), r.gap(50), r.gap(99), r.gap(100), r.lost, r.sent))
		if o.daemon == "rtp-fwd" {
			if o.resumed.IsZero() {
				t.Errorf("rtp-fwd: media did not resume on every stream")
			}
			// Packets that arrive while no worker runs wait in the
			// sockets (portd holds them) and are forwarded late, not lost.
			if r.lost > 0 {
				t.Errorf("rtp-fwd: %d of %d packets sent while it was down never arrived (first: %s)", r.lost, r.sent, r.firstLost)
			}
			continue
		}
		if r.sent == 0 {
			t.Errorf("%s: no packet was sent during its outage: nothing was measured", o.daemon)
		}
		if r.lost > 0 {
			t.Errorf("%s: %d of %d packets sent while it was down never arrived (first: %s)", o.daemon, r.lost, r.sent, r.firstLost)
		}
	}
	parts = append(parts, "calls listed with rtpctl list sessions")
	t.Logf("RESTART %d calls, %d streams at 50 packets/s: %s", numCalls, len(l.Flows), strings.Join(parts, "; "))
	if rdbN, err := rdb.Exists(ctx, rediscalls.CallKey(ids[0]), rediscalls.CallKey(ids[len(ids)-1])).Result(); err != nil || rdbN != 2 {
		t.Errorf("calls gone from Redis after the restarts: %d, %v", rdbN, err)
	}
}

// outage is one daemon's kill and return.
type outage struct {
	daemon         string
	oldPID, newPID int
	kill           time.Time // kill -9 sent
	back           time.Time // the new process answered its ping
	resumed        time.Time // rtp-fwd: every stream had a packet after back
}

// nodeCtl asks the node about its daemons and calls.
type nodeCtl struct {
	t        *testing.T
	bin, url string
	conn     *bus.Conn
}

// rtpctl runs `rtpctl args... --nats-url --node-id`.
func (n *nodeCtl) rtpctl(args ...string) (string, int) {
	cmd := exec.Command(filepath.Join(n.bin, "rtpctl"), append(args, "--nats-url="+n.url, "--node-id="+nodeID)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		n.t.Fatalf("rtpctl %v: %v", args, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// status is `rtpctl status --json`: daemon → pid.
func (n *nodeCtl) status() map[string]int {
	n.t.Helper()
	out, code := n.rtpctl("status", "--json")
	if code != 0 {
		n.t.Fatalf("rtpctl status: exit %d\n%s", code, out)
	}
	var hellos []api.Hello
	if err := json.Unmarshal([]byte(out), &hellos); err != nil {
		n.t.Fatalf("rtpctl status --json: %v\n%s", err, out)
	}
	pids := map[string]int{}
	for _, h := range hellos {
		pids[h.Daemon] = h.PID
	}
	return pids
}

func samePIDs(a, b map[string]int) bool {
	for d, pid := range b {
		if a[d] != pid {
			return false
		}
	}
	return true
}

// waitAnswering pings daemon on the bus until a process other than old
// answers, and returns its pid and when it answered.
func (n *nodeCtl) waitAnswering(daemon string, old int, timeout time.Duration) (int, time.Time) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		h, err := bus.Request(ctx, n.conn, api.Ping(daemon), api.Empty{})
		cancel()
		if err == nil && h.PID != old && h.PID != 0 {
			return h.PID, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("%s did not answer again within %v of its kill", daemon, timeout)
	return 0, time.Time{}
}

// missingSessions returns the ids `rtpctl list sessions --json` does not
// list.
func (n *nodeCtl) missingSessions(ids []string) []string {
	n.t.Helper()
	out, code := n.rtpctl("list", "sessions", "--json")
	if code != 0 {
		n.t.Fatalf("rtpctl list sessions: exit %d\n%s", code, out)
	}
	var missing []string
	for _, id := range ids {
		if !strings.Contains(out, strconv.Quote(id)) {
			missing = append(missing, id)
		}
	}
	return missing
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- calls and their media ---

var mPort = regexp.MustCompile(`m=audio (\d+) `)

// mediaCall sets up a call over ng between two new loopback sockets and
// returns its two flows.
func mediaCall(t *testing.T, ctx context.Context, ng *ngclient.Client, id string) (*testutil.RTPFlow, *testutil.RTPFlow) {
	t.Helper()
	ua, ub := listenUDP(t), listenUDP(t)
	toB := offerAnswer(t, ctx, ng, "offer", id, "", ua.LocalAddr().(*net.UDPAddr).Port)   // where B sends
	toA := offerAnswer(t, ctx, ng, "answer", id, "B", ub.LocalAddr().(*net.UDPAddr).Port) // where A sends
	return testutil.NewRTPFlow(id+" A→B", ua, ub, toA), testutil.NewRTPFlow(id+" B→A", ub, ua, toB)
}

func offerAnswer(t *testing.T, ctx context.Context, ng *ngclient.Client, cmd, id, toTag string, port int) *net.UDPAddr {
	t.Helper()
	sdp := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", port)
	d := bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str(cmd)}, bencode.Pair{Key: "call-id", Value: bencode.Str(id)},
		bencode.Pair{Key: "from-tag", Value: bencode.Str("A")}, bencode.Pair{Key: "sdp", Value: bencode.Str(sdp)})
	if toTag != "" {
		d.Set("to-tag", bencode.Str(toTag))
	}
	r, err := ng.Do(ctx, d)
	if res, why := ngclient.Result(r); err != nil || res != "ok" {
		t.Fatalf("%s %s: %s %s %v", cmd, id, res, why, err)
	}
	s, _ := r.GetString("sdp")
	m := mPort.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s %s: no m= line in %q", cmd, id, s)
	}
	p, _ := strconv.Atoi(m[1])
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(1 << 20)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// relay sends one packet on f until it arrives.
func relay(t *testing.T, f *testutil.RTPFlow, seq uint16) {
	t.Helper()
	pkt := rtppacket.RTP{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: 0xfeed}.Packet(make([]byte, 160))
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 50; attempt++ {
		if _, err := f.Src.WriteToUDP(pkt, f.To); err != nil {
			t.Fatal(err)
		}
		_ = f.Dst.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := f.Dst.ReadFromUDP(buf); err == nil && n == len(pkt) {
			if h, _, ok := rtppacket.Read(buf[:n]); ok && h.Seq == seq {
				return
			}
		}
	}
	t.Fatalf("%s: packet %d not forwarded", f.Name, seq)
}

// load is RTP both ways on many calls at 50 packets/s per direction.
type load struct{ testutil.RTPLoad }

// waitFlowing waits until every flow has had n packets arrive after since
// and returns when the last flow got there (zero after timeout).
func (l *load) waitFlowing(t *testing.T, since time.Time, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, f := range l.Flows {
			_, arrived := f.Times()
			c := 0
			for _, at := range arrived {
				if at.After(since) {
					c++
				}
			}
			if c < n {
				all = false
				break
			}
		}
		if all {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Errorf("not every flow had %d packets within %v", n, timeout)
			return time.Time{}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outageReport is what the load saw around one outage.
type outageReport struct {
	sent, lost int             // packets sent between the kill and the daemon answering again; those never arrived
	firstLost  string          // the first lost one, for the failure message
	gaps       []time.Duration // per stream: the longest silence between arrivals around the outage, sorted
}

func (l *load) report(o outage) outageReport {
	var r outageReport
	end := o.back
	if o.resumed.After(end) {
		end = o.resumed
	}
	for _, f := range l.Flows {
		sent, arrived := f.Times()
		for seq, at := range sent {
			if at.Before(o.kill) || at.After(o.back) {
				continue
			}
			r.sent++
			if _, ok := arrived[uint16(seq)]; !ok {
				r.lost++
				if r.firstLost == "" {
					r.firstLost = fmt.Sprintf("%s seq %d sent %v after the kill", f.Name, seq, at.Sub(o.kill).Round(time.Millisecond))
				}
			}
		}
		times := f.Arrivals()
		var worst time.Duration
		for i := 1; i < len(times); i++ {
			// Silences that overlap [kill, end].
			if times[i].After(o.kill) && times[i-1].Before(end) {
				worst = max(worst, times[i].Sub(times[i-1]))
			}
		}
		r.gaps = append(r.gaps, worst)
	}
	sort.Slice(r.gaps, func(i, j int) bool { return r.gaps[i] < r.gaps[j] })
	return r
}

// gap is the p-th percentile of the per-stream gaps (100: the largest).
func (r outageReport) gap(p int) time.Duration {
	if len(r.gaps) == 0 {
		return 0
	}
	return r.gaps[min(len(r.gaps)-1, len(r.gaps)*p/100)].Round(time.Millisecond)
}
