package testutil_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/bencode"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
	"github.com/rtpkit/rtpkit/pkg/testutil"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

// TestTestbedFailover runs two real nodes with the service address on both
// (anycast): ng and RTP through the service address reach node 0 until the
// router's route moves to node 1, which then answers on the service
// address without knowing node 0's call; each node's own address keeps
// answering. A kill -9 of a node's rtpctl takes its daemons down.
func TestTestbedFailover(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	start := time.Now()
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, ServiceOnAll: true})
	svc := tb.Service.String()
	var procs []*testutil.Proc
	for i, n := range tb.Nodes {
		procs = append(procs, tb.StartNode(t, i, "--interface="+svc,
			"--listen-ng="+svc+":2223", "--listen-ng="+n.Addr.String()+":2223",
			"--port-min=30000", "--port-max=30099"))
	}
	t.Logf("testbed and both nodes up in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	viaService := tb.NG(t, tb.Callers, svc+":2223")
	viaNode0 := tb.NG(t, tb.Callers, tb.Nodes[0].Addr.String()+":2223")
	viaNode1 := tb.NG(t, tb.Callers, tb.Nodes[1].Addr.String()+":2223")
	for _, c := range []*ngclient.Client{viaService, viaNode0, viaNode1} {
		c.SetRetransmit(100 * time.Millisecond)
	}
	ping(t, ctx, viaService)

	// A call through the service address, RTP both ways through node 0.
	a := tb.UDP(t, tb.Callers, tb.CallerAddrs[0].String()+":0")
	b := tb.UDP(t, tb.Callers, tb.CallerAddrs[1].String()+":0")
	const callID = "testbed-call-1"
	toB := testutil.NGOK(t, ctx, viaService, testutil.NGCall("offer", callID, "", sdpFor(a)))
	toA := testutil.NGOK(t, ctx, viaService, testutil.NGCall("answer", callID, "B", sdpFor(b)))
	dstB, dstA := mediaAddr(t, toB), mediaAddr(t, toA)
	if dstA.Addr() != tb.Service || dstB.Addr() != tb.Service {
		t.Fatalf("media addresses %s, %s; want the service address %s", dstA, dstB, svc)
	}
	for seq := uint16(1); seq <= 3; seq++ {
		relay(t, a, dstA, b, 1, seq)
		relay(t, b, dstB, a, 2, seq)
	}
	if r := query(t, ctx, viaService, callID); r != "ok" {
		t.Fatalf("query through the service address before the move: %s; want ok (node 0)", r)
	}
	if r := query(t, ctx, viaNode1, callID); r != "error" {
		t.Fatalf("query at node 1 before the move: %s; want error (node 1 has no such call)", r)
	}

	// The BGP move: the service address now routes to node 1.
	tb.Route(t, 1)
	if out := tb.Router.Run(t, "ip", "route", "show", svc+"/32"); !strings.Contains(out, "via "+tb.Nodes[1].Addr.String()) {
		t.Fatalf("router route after Route(1): %s", out)
	}
	ping(t, ctx, viaService)
	if r := query(t, ctx, viaService, callID); r != "error" {
		t.Fatalf("query through the service address after the move: %s; want error (node 1 answers and has no such call)", r)
	}
	if r := query(t, ctx, viaNode0, callID); r != "ok" {
		t.Fatalf("query at node 0's own address after the move: %s; want ok", r)
	}
	ping(t, ctx, viaNode1)
	ping(t, ctx, viaNode0)
	// Media to the service address goes to node 1 now, which has no such
	// port open: nothing comes back.
	drain(b)
	if _, err := a.WriteToUDPAddrPort(testutil.RTPPacket(1, 99, "after-move"), dstA); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := b.ReadFromUDPAddrPort(make([]byte, 2048)); err == nil {
		t.Fatalf("a %d-byte packet was relayed after the route moved away from node 0", n)
	}
	// And back.
	tb.Route(t, 0)
	relay(t, a, dstA, b, 1, 100)
	relay(t, b, dstB, a, 2, 100)

	// kill -9 of node 1's rtpctl (the pid StartNode tracks) ends its daemons.
	up := procs[1]
	var kids []int
	for _, m := range daemonLine.FindAllStringSubmatch(up.Output(), -1) {
		pid, _ := strconv.Atoi(m[2])
		if ppid := parentPID(pid); ppid != up.PID() {
			t.Fatalf("%s (pid %s) has parent %d, want rtpctl %d", m[1], m[2], ppid, up.PID())
		}
		kids = append(kids, pid)
	}
	if len(kids) < 3 {
		t.Fatalf("node 1 runs %d daemons, want at least 3 (portd, rtp-fwd, ng-ctl):\n%s", len(kids), up.Output())
	}
	if err := up.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.WaitGone(t, kids, 5*time.Second)
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// TestTestbedKeepalivedService moves the service address between nodes'
// lo (keepalived style) and checks where datagrams to it arrive.
func TestTestbedKeepalivedService(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2})
	svc := tb.Service.String()
	if out := tb.Nodes[1].NS.Run(t, "ip", "-4", "addr", "show", "dev", "lo"); strings.Contains(out, svc) {
		t.Fatalf("node 1 has the service address without ServiceOnAll:\n%s", out)
	}
	for _, k := range []string{"ip_forward", "conf/all/rp_filter"} {
		want := map[string]string{"ip_forward": "1", "conf/all/rp_filter": "0"}[k]
		if got := strings.TrimSpace(tb.Router.Run(t, "cat", "/proc/sys/net/ipv4/"+k)); got != want {
			t.Fatalf("router net.ipv4.%s = %s, want %s", k, got, want)
		}
	}
	srv0 := tb.UDP(t, tb.Nodes[0].NS, svc+":5000")
	cli := tb.UDP(t, tb.Callers, tb.CallerAddrs[2].String()+":0")
	dst := netip.AddrPortFrom(tb.Service, 5000)
	echoVia(t, cli, dst, srv0)

	// Move: node 0 drops the address, node 1 takes it, the route follows.
	tb.DelService(t, 0)
	tb.AddService(t, 1)
	tb.Route(t, 1)
	srv1 := tb.UDP(t, tb.Nodes[1].NS, svc+":5000")
	echoVia(t, cli, dst, srv1)

	// Each node reaches the callers and the other node through the router.
	n1 := tb.UDP(t, tb.Nodes[1].NS, tb.Nodes[1].Addr.String()+":5001")
	from0 := tb.UDP(t, tb.Nodes[0].NS, tb.Nodes[0].Addr.String()+":0")
	echoVia(t, from0, netip.AddrPortFrom(tb.Nodes[1].Addr, 5001), n1)
}

// TestTestbedRedis: the Redis in the router namespace runs there (not in
// the test's namespace), answers nodes at their router address, and Kill
// and Restart act on it by pid.
func TestTestbedRedis(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	tb := testutil.NewTestbed(t, testutil.TestbedOptions{Nodes: 2, Redis: true})
	r := tb.Redis
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	if want := fmt.Sprintf("10.77.2.1:%d/3", r.Port); tb.RedisURL(1, 3) != want {
		t.Fatalf("RedisURL(1, 3) = %q, want %q", tb.RedisURL(1, 3), want)
	}
	checkInNS := func() {
		t.Helper()
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID()) + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "redis-server" {
			t.Fatalf("pid %d is %q (%v), want redis-server itself", r.PID(), comm, err)
		}
		if got, want := inode(t, "/proc/"+strconv.Itoa(r.PID())+"/ns/net"), inode(t, tb.Router.Path()); got != want {
			t.Fatalf("redis-server runs in netns inode %d, want the router's %d", got, want)
		}
	}
	checkInNS()
	if cfg, err := r.WaitKeyspaceConfig(ctx); err != nil || cfg == "" {
		t.Fatalf("notify-keyspace-events = %q, %v", cfg, err)
	}

	// Written in the router namespace, read from both nodes.
	if err := r.Client(3).Set(ctx, "rtpkit:testbed", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range tb.Nodes {
		if v, err := tb.RedisClient(t, i, 3).Get(ctx, "rtpkit:testbed").Result(); err != nil || v != "v" {
			t.Fatalf("GET from node %d: %q, %v", i, v, err)
		}
		host, port, _ := strings.Cut(strings.TrimSuffix(tb.RedisURL(i, 3), "/3"), ":")
		if out := tb.Nodes[i].NS.Run(t, "redis-cli", "-h", host, "-p", port, "-n", "3", "get", "rtpkit:testbed"); strings.TrimSpace(out) != "v" {
			t.Fatalf("redis-cli from node %d: %q", i, out)
		}
	}
	node0 := tb.RedisClient(t, 0, 3)

	pid := r.PID()
	r.Kill()
	if testutil.Alive(pid) {
		t.Fatalf("redis-server %d alive after Kill", pid)
	}
	redisAddr, _, _ := strings.Cut(tb.RedisURL(0, 0), "/")
	if err := tb.Nodes[0].NS.Do(func() error {
		c, err := net.DialTimeout("tcp", redisAddr, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("%s still accepts connections", redisAddr)
		}
		return nil
	}); err != nil {
		t.Fatalf("after Kill: %v", err)
	}
	r.Restart()
	checkInNS()
	if pid == r.PID() {
		t.Fatalf("Restart kept pid %d", pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := node0.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PING from node 0 after Restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid = r.PID()
	r.Stop()
	if testutil.Alive(pid) {
		t.Fatalf("redis-server %d alive after Stop", pid)
	}
}

// daemonLine is a "  NAME  running, pid N" line of rtpctl up.
var daemonLine = regexp.MustCompile(`(?m)^  (\S+)\s+running, pid (\d+)$`)

// parentPID is pid's parent from /proc (0 if gone).
func parentPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// drain discards what c has queued (late duplicates of relayed packets).
func drain(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// echoVia sends from cli to dst until srv receives it, and srv's answer
// back, which must come from dst.
func echoVia(t *testing.T, cli *net.UDPConn, dst netip.AddrPort, srv *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 1500)
	msg := []byte("hello " + dst.String())
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Fatalf("%s: nothing arrived at %s", dst, srv.LocalAddr())
		}
		if _, err := cli.WriteToUDPAddrPort(msg, dst); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != string(msg) {
			continue
		}
		if _, err := srv.WriteToUDPAddrPort([]byte("back"), from); err != nil {
			t.Fatal(err)
		}
		_ = cli.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, src, err := cli.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != "back" {
			t.Fatalf("%s: answer %q, %v", dst, buf[:n], err)
		}
		if src != dst {
			t.Fatalf("answer from %s, want %s", src, dst)
		}
		return
	}
}

func ping(t *testing.T, ctx context.Context, c *ngclient.Client) {
	t.Helper()
	r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("ping")}))
	if err != nil {
		t.Fatalf("ng ping: %v", err)
	}
	if res, _ := ngclient.Result(r); res != "pong" {
		t.Fatalf("ng ping: result %q", res)
	}
}

func query(t *testing.T, ctx context.Context, c *ngclient.Client, callID string) string {
	t.Helper()
	r, err := c.Do(ctx, bencode.NewDict(bencode.Pair{Key: "command", Value: bencode.Str("query")},
		bencode.Pair{Key: "call-id", Value: bencode.Str(callID)}))
	if err != nil {
		t.Fatalf("ng query: %v", err)
	}
	res, _ := ngclient.Result(r)
	return res
}

func sdpFor(c *net.UDPConn) string {
	a := c.LocalAddr().(*net.UDPAddr).AddrPort()
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", a.Addr(), a.Addr(), a.Port())
}

var (
	sdpConn = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)\r?$`)
	sdpPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)
)

// mediaAddr is the c= address and m= port of a one-stream SDP.
func mediaAddr(t *testing.T, sdp string) netip.AddrPort {
	t.Helper()
	c, m := sdpConn.FindStringSubmatch(sdp), sdpPort.FindStringSubmatch(sdp)
	if c == nil || m == nil {
		t.Fatalf("no c= or m= line in SDP:\n%s", sdp)
	}
	ap, err := netip.ParseAddrPort(c[1] + ":" + m[1])
	if err != nil {
		t.Fatalf("SDP media address: %v\n%s", err, sdp)
	}
	return ap
}

// relay relays one packet through the service address and checks that it
// came from there.
func relay(t *testing.T, src *net.UDPConn, dst netip.AddrPort, rcv *net.UDPConn, ssrc uint32, seq uint16) {
	t.Helper()
	if from := testutil.Relay(t, src, net.UDPAddrFromAddrPort(dst), rcv, ssrc, seq); from.Addr() != dst.Addr() {
		t.Fatalf("packet %d arrived from %s, want from %s", seq, from, dst.Addr())
	}
}
