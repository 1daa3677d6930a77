package portd_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func addLines(p *testutil.Proc) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^add (\S+) `).FindAllStringSubmatch(p.Output(), -1) {
		out[m[1]] = true
	}
	return out
}

func waitAdds(t *testing.T, p *testutil.Proc, want []netip.AddrPort) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := addLines(p)
		missing := 0
		for _, w := range want {
			if !got[w.String()] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker did not get %v; output:\n%s", want, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pairAddrs(pairs ...portdapi.Pair) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range pairs {
		out = append(out, p.RTP, p.RTCP)
	}
	return out
}

// TestWorkerRestartAndPortdCrash: a worker in a separate process carries
// the packets of the sockets it was handed; a restarted worker gets the same
// sockets; kill -9 of portd loses no allocation and closes nothing in use.
func TestWorkerRestartAndPortdCrash(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=37000", "--port-max=37099")
	worker := n.startWorker("0")

	pairs := n.lease("", 4, 3)
	if len(pairs) != 3 {
		t.Fatalf("leased %d pairs", len(pairs))
	}
	for _, p := range pairs {
		if p.RTP.Port()%2 != 0 || p.RTCP.Port() != p.RTP.Port()+1 || p.RTP.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("bad pair %+v", p)
		}
	}
	n.putCall("call-1@example.com", pairs[0], pairs[1])
	waitAdds(t, worker, pairAddrs(pairs[0], pairs[1]))
	if got, want := echo(t, pairs[0].RTP, "hello"), fmt.Sprintf("%d:hello", worker.PID()); got != want {
		t.Fatalf("echo %q, want %q", got, want)
	}
	// The worker dies and comes back: it gets the same sockets.
	_ = worker.Signal(syscall.SIGKILL)
	_, _ = worker.Wait(5 * time.Second)
	worker = n.startWorker("0")
	waitAdds(t, worker, pairAddrs(pairs[0], pairs[1]))
	if got, want := echo(t, pairs[1].RTCP, "again"), fmt.Sprintf("%d:again", worker.PID()); got != want {
		t.Fatalf("echo after worker restart %q, want %q", got, want)
	}

	// portd dies: the worker's sockets keep working while it is down.
	before := n.list()
	_ = n.portd.Signal(syscall.SIGKILL)
	_, _ = n.portd.Wait(5 * time.Second)
	if got := echo(t, pairs[0].RTP, "portd down"); !strings.HasSuffix(got, ":portd down") {
		t.Fatalf("echo with portd down: %q", got)
	}
	n.startPortd()
	// The worker reconnects and hands its sockets back. The unused lease
	// died with the old run (holders drop it when they see the new one).
	deadline := time.Now().Add(10 * time.Second)
	var after portdapi.ListReply
	for {
		after = n.list()
		if len(after.Workers) == 1 && after.Sockets == before.Sockets-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after portd restart: %+v (before %+v)\n%s", after, before, n.portd.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	a, b := before.Interfaces[0].Addresses[0], after.Interfaces[0].Addresses[0]
	if b.Used != a.Used-2 || a.Assigned != 2 || b.Assigned != 2 || a.Leased != 1 || b.Leased != 0 || after.Instance == before.Instance {
		t.Fatalf("across the portd crash: before %+v after %+v (instances %s, %s)", a, b, before.Instance, after.Instance)
	}
	if got, want := echo(t, pairs[0].RTP, "after"), fmt.Sprintf("%d:after", worker.PID()); got != want {
		t.Fatalf("echo after portd restart %q, want %q", got, want)
	}
	// No double allocation: new leases avoid every port a call uses (the
	// unused lease of the old run may come back).
	used := map[netip.AddrPort]bool{pairs[0].RTP: true, pairs[1].RTP: true}
	for _, p := range n.lease("", 4, 20) {
		if used[p.RTP] {
			t.Fatalf("port %s handed out twice", p.RTP)
		}
	}

	// The call ends: the worker closes its copies and the ports are free.
	deadline = time.Now().Add(5 * time.Second)
	if err := n.calls.Delete(n.ctx(), "call-1@example.com", 0); err != nil {
		t.Fatal(err)
	}
	worker.WaitMatch(t, regexp.MustCompile(`(?m)^remove `+regexp.QuoteMeta(pairs[0].RTP.String())+`$`), 10*time.Second)
	for {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(pairs[0].RTP))
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s still bound after the call ended: %v", pairs[0].RTP, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestErrorsLeakNothing: exhaustion, unknown interface, bad requests each
// give a clear error and leave portd's descriptors as they were.
func TestErrorsLeakNothing(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--interface=other/127.0.0.2", "--port-min=17200", "--port-max=17203")
	pid := n.portd.PID()
	if got := n.lease("", 4, 2); len(got) != 2 {
		t.Fatalf("leased %d of the 2 pairs", len(got))
	}
	before := fdCount(t, pid)
	for _, tt := range []struct {
		name string
		req  portdapi.LeaseRequest
		code string
		want string
	}{
		{"exhausted", portdapi.LeaseRequest{Holder: "h", Family: 4, Count: 1}, bus.CodeUnavailable, "no free port pair in 17200-17203"},
		{"unknown interface", portdapi.LeaseRequest{Holder: "h", Interface: "nope", Family: 4, Count: 1}, bus.CodeBadRequest, `unknown interface "nope"`},
		{"no IPv6 address", portdapi.LeaseRequest{Holder: "h", Family: 6, Count: 1}, bus.CodeBadRequest, "IPv6"},
		{"bad family", portdapi.LeaseRequest{Holder: "h", Family: 5, Count: 1}, bus.CodeBadRequest, "family 5"},
		{"no holder", portdapi.LeaseRequest{Family: 4, Count: 1}, bus.CodeBadRequest, "holder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bus.Request(n.ctx(), n.conn, portdapi.LeaseEndpoint, tt.req)
			if !bus.IsCode(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want code %s with %q", err, tt.code, tt.want)
			}
		})
	}
	if _, err := bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: "c", Pairs: []portdapi.Pair{{RTP: netip.MustParseAddrPort("192.0.2.1:17200")}}}); !bus.IsCode(err, bus.CodeBadRequest) {
		t.Fatalf("bind of a foreign address: %v", err)
	}
	if after := fdCount(t, pid); after != before {
		t.Fatalf("portd fds %d → %d after failed requests", before, after)
	}
	// The other address has its own pool over the same range.
	if got := n.lease("other", 4, 2); len(got) != 2 || got[0].RTP.Port() != 17200 {
		t.Fatalf("second address: %+v", got)
	}
}

func TestBadInterfaceSpecsExit2(t *testing.T) {
	bin := testutil.Binaries(t) + "/portd"
	for _, tt := range []struct{ args, want string }{
		{"--interface=0.0.0.0", "wildcard address 0.0.0.0 is not allowed"},
		{"--interface=pub/::", "wildcard"},
		{"--interface=no-such-if0", `no such system interface "no-such-if0"`},
		{"--interface=a/127.0.0.1!::1", "family"},
		{"--interface-ports=zz/30000-30100", `unknown interface "zz"`},
	} {
		cmd := exec.Command(bin, tt.args)
		out, _ := cmd.CombinedOutput()
		first, _, _ := strings.Cut(string(out), "\n")
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(first, tt.want) {
			t.Errorf("portd %s: exit %d, first line %q; want 2 and %q", tt.args, cmd.ProcessState.ExitCode(), first, tt.want)
		}
	}
}

// TestRestoreBindsExactPorts: a call from another node gets its exact
// address:port pairs, and a port in use by another call is refused.
func TestRestoreBindsExactPorts(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=17300", "--port-max=17399")
	worker := n.startWorker("0")
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:17350"), netip.MustParseAddrPort("127.0.0.1:17351"), netip.MustParseAddrPort("127.0.0.1:17362"), netip.MustParseAddrPort("127.0.0.1:17363")}
	mux := netip.MustParseAddrPort("127.0.0.1:17371") // a single rtcp-mux port, odd
	r, err := bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: "foreign-1", Pairs: []portdapi.Pair{
		{RTP: want[0], RTCP: want[1]}, {RTP: want[2], RTCP: want[3]}, {RTP: mux}}})
	if err != nil || len(r.Pairs) != 3 || r.Pairs[2].RTCP.IsValid() {
		t.Fatalf("bind: %+v %v", r, err)
	}
	waitAdds(t, worker, append(want, mux))
	if got := echo(t, mux, "mux"); !strings.HasSuffix(got, ":mux") {
		t.Fatalf("echo on the single port: %q", got)
	}
	// 17370 stays free: a single port holds one port only.
	if c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:17370"))); err != nil {
		t.Fatalf("the port below a single port is taken: %v", err)
	} else {
		_ = c.Close()
	}
	if got := echo(t, want[2], "x"); !strings.HasSuffix(got, ":x") {
		t.Fatalf("echo %q", got)
	}
	if _, err := bus.Request(n.ctx(), n.conn, portdapi.BindEndpoint, portdapi.BindRequest{Call: "other", Pairs: []portdapi.Pair{{RTP: want[0], RTCP: want[1]}}}); !bus.IsCode(err, bus.CodeConflict) {
		t.Fatalf("bind of a port of another call: %v", err)
	}
	rel, err := bus.Request(n.ctx(), n.conn, portdapi.ReleaseEndpoint, portdapi.ReleaseRequest{Locals: append(want, mux)})
	if err != nil || rel.Released != 3 {
		t.Fatalf("release: %+v %v", rel, err)
	}
	worker.WaitMatch(t, regexp.MustCompile(`(?m)^remove 127\.0\.0\.1:17363$`), 10*time.Second)
}

func TestWrongUIDPeerRejected(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "--interface=127.0.0.1", "--port-min=37400", "--port-max=37499")
	pid := n.portd.PID()
	sock := n.runtimeDir + "/portd.sock"
	before := fdCount(t, pid)
	// Let uid 65534 reach the socket file, so that only portd's peer check
	// stands in its way.
	if err := exec.Command("chmod", "0755", n.runtimeDir).Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chmod", "0666", sock).Run(); err != nil {
		t.Fatal(err)
	}
	helper := testutil.CopyExecutable(t, "nc-seqpacket")
	cmd := exec.Command(helper, "-test.run=^$")
	cmd.Env = []string{"PORTD_TEST_WORKER=" + n.runtimeDir, "PORTD_TEST_WORKER_ID=intruder", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.portd.WaitMatch(t, regexp.MustCompile(`hand-off peer rejected.*uid 65534`), 10*time.Second)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if len(n.list().Workers) != 0 {
		t.Fatal("the rejected peer became a worker")
	}
	deadline := time.Now().Add(3 * time.Second)
	for fdCount(t, pid) != before {
		if time.Now().After(deadline) {
			t.Fatalf("portd fds %d → %d", before, fdCount(t, pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRTCPMuxSinglePort: single-port leases for rtcp-mux streams; a call
// record whose media muxes RTCP takes exactly one socket.
func TestRTCPMuxSinglePort(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=37600", "--port-max=37699")
	worker := n.startWorker("0")
	r, err := bus.Request(n.ctx(), n.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "ng-ctl", Family: 4, Count: 2, Single: true})
	if err != nil || len(r.Pairs) != 2 || r.Pairs[0].RTCP.IsValid() {
		t.Fatalf("single lease: %+v %v", r, err)
	}
	if got := n.list().Sockets; got != 2 {
		t.Fatalf("sockets after 2 single leases: %d", got)
	}
	c := nodestate.Call{Schema: nodestate.CallSchema, ID: "mux", Owner: n.id, Legs: []nodestate.Leg{
		{Tag: "a", Medias: []nodestate.Media{{Index: 1, RTCPMux: true, Streams: []nodestate.Stream{{Component: 1, Local: r.Pairs[0].RTP}}}}},
		{Tag: "b", Medias: []nodestate.Media{{Index: 1, RTCPMux: true, Streams: []nodestate.Stream{{Component: 1, Local: r.Pairs[1].RTP}}}}},
	}}
	if _, err := n.calls.Put(n.ctx(), c.ID, c); err != nil {
		t.Fatal(err)
	}
	waitAdds(t, worker, []netip.AddrPort{r.Pairs[0].RTP, r.Pairs[1].RTP})
	if got := echo(t, r.Pairs[1].RTP, "m"); !strings.HasSuffix(got, ":m") {
		t.Fatalf("echo %q", got)
	}
	if adds := addLines(worker); len(adds) != 2 {
		t.Fatalf("worker got %d sockets, want 2: %v", len(adds), adds)
	}
	a := n.list().Interfaces[0].Addresses[0]
	if a.Used != 2 || a.Assigned != 2 || a.Leased != 0 {
		t.Fatalf("counts %+v", a)
	}
}

// TestLeaseWaitsForPortsOnTheirWay: a lease that finds the range empty
// waits (up to portd.LeaseWait) for ports coming back instead of failing
// at once, and fails with the same clear error when none do. A port
// coming back here is a holder dropping its lease while the request
// waits (the quarantine of 0 makes it usable at once).
func TestLeaseWaitsForPortsOnTheirWay(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=17300", "--port-max=17303", "--port-quarantine=0")
	held := n.lease("", 4, 2)
	if len(held) != 2 {
		t.Fatalf("leased %d of the 2 pairs", len(held))
	}
	start := time.Now()
	_, err := bus.Request(n.ctx(), n.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "h", Family: 4, Count: 1})
	if !bus.IsCode(err, bus.CodeUnavailable) || !strings.Contains(err.Error(), "no free port pair in 17300-17303") {
		t.Fatalf("lease of an exhausted range: %v", err)
	}
	if waited := time.Since(start); waited < portd.LeaseWait*3/4 {
		t.Errorf("exhausted lease failed after %v, want it to wait about %v", waited, portd.LeaseWait)
	}
	go func() {
		time.Sleep(portd.LeaseWait / 5)
		if _, err := bus.Request(context.Background(), n.conn, portdapi.ReturnEndpoint, portdapi.ReturnRequest{Holder: "test", RTP: []netip.AddrPort{held[1].RTP}}); err != nil {
			t.Errorf("return: %v", err)
		}
	}()
	r, err := bus.Request(n.ctx(), n.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "h", Family: 4, Count: 1})
	if err != nil || len(r.Pairs) != 1 || r.Pairs[0].RTP != held[1].RTP {
		t.Fatalf("lease while a pair came back: %+v, %v; want %s", r.Pairs, err, held[1].RTP)
	}
}
