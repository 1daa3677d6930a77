package portd_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/handoff"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// The test binary doubles as a forwarding worker: with PORTD_TEST_WORKER
// set it connects to portd's hand-off socket and answers every datagram a
// socket it was given receives with "<pid>:<payload>".
func TestMain(m *testing.M) {
	if dir := os.Getenv("PORTD_TEST_WORKER"); dir != "" {
		runEchoWorker(dir)
		return
	}
	code := m.Run()
	testutil.CleanupBinaries()
	os.Exit(code)
}

type echoHandler struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]net.PacketConn
	out   *bufio.Writer
}

func (h *echoHandler) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format+"\n", args...)
	_ = h.out.Flush()
}

func (h *echoHandler) Add(s handoff.Socket) {
	fd, err := syscall.Dup(s.FD)
	if err != nil {
		h.printf("error dup %v", err)
		return
	}
	f := os.NewFile(uintptr(fd), s.Local.String())
	pc, err := net.FilePacketConn(f)
	_ = f.Close()
	if err != nil {
		h.printf("error %v", err)
		return
	}
	h.mu.Lock()
	h.conns[s.Local] = pc
	h.mu.Unlock()
	h.printf("add %s %s", s.Local, s.Call)
	go func() {
		buf := make([]byte, 2048)
		prefix := strconv.Itoa(os.Getpid()) + ":"
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
		}
	}()
}

func (h *echoHandler) Remove(l netip.AddrPort) {
	h.mu.Lock()
	pc := h.conns[l]
	delete(h.conns, l)
	h.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
	h.printf("remove %s", l)
}

func runEchoWorker(runtimeDir string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	h := &echoHandler{conns: map[netip.AddrPort]net.PacketConn{}, out: bufio.NewWriter(os.Stdout)}
	w := handoff.NewWorker(os.Getenv("PORTD_TEST_WORKER_ID"), runtimeDir, h, nil)
	h.printf("worker %d up", os.Getpid())
	_ = w.Run(ctx)
	w.Close()
}

// node is one portd process with its bus, for a test.
type node struct {
	t          *testing.T
	url        string
	id         string
	runtimeDir string
	args       []string
	portd      *testutil.Proc
	conn       *bus.Conn
	calls      *nodestate.Table[nodestate.Call]
}

func newNode(t *testing.T, args ...string) *node {
	t.Helper()
	srv := testutil.StartNATS(t)
	n := &node{t: t, url: srv.URL(), id: "t" + strconv.Itoa(os.Getpid()), runtimeDir: testutil.ShortTempDir(t)}
	n.args = append([]string{"--nats-url=" + n.url, "--node-id=" + n.id, "--runtime-dir=" + n.runtimeDir, "--log-level=debug"}, args...)
	n.conn = testutil.Connect(t, n.url, n.id, "test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := nodestate.Open(ctx, n.conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.calls = nodestate.Calls(store)
	n.startPortd()
	return n
}

func (n *node) startPortd() {
	n.t.Helper()
	n.portd = testutil.StartProc(n.t, testutil.Binaries(n.t)+"/portd", n.args)
	n.waitPing()
}

func (n *node) waitPing() {
	n.t.Helper()
	testutil.AwaitPing(n.t, n.conn, portdapi.Daemon, n.portd)
}

func (n *node) startWorker(id string) *testutil.Proc {
	n.t.Helper()
	p := testutil.StartProc(n.t, os.Args[0], []string{"-test.run=^$"}, "PORTD_TEST_WORKER="+n.runtimeDir, "PORTD_TEST_WORKER_ID="+id)
	p.WaitMatch(n.t, testutil.MatchLine(`^worker \d+ up`), 10*time.Second)
	return p
}

func (n *node) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n.t.Cleanup(cancel)
	return ctx
}

func (n *node) lease(iface string, family, count int) []portdapi.Pair {
	n.t.Helper()
	r, err := bus.Request(n.ctx(), n.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "test", Interface: iface, Family: family, Count: count})
	if err != nil {
		n.t.Fatalf("lease %s/%d x%d: %v", iface, family, count, err)
	}
	return r.Pairs
}

// putCall writes a call record whose two legs use the given pairs, as
// ng-ctl would.
func (n *node) putCall(id string, pairs ...portdapi.Pair) {
	n.t.Helper()
	c := nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: n.id, Created: time.Now().UTC()}
	for i, p := range pairs {
		c.Legs = append(c.Legs, nodestate.Leg{Tag: "tag" + strconv.Itoa(i), Medias: []nodestate.Media{{
			Index: 1, Type: "audio", Protocol: "RTP/AVP", Interface: p.Interface,
			Streams: []nodestate.Stream{{Component: 1, Local: p.RTP}, {Component: 2, Local: p.RTCP}},
		}}})
	}
	if _, err := n.calls.Put(n.ctx(), id, c); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) list() portdapi.ListReply {
	n.t.Helper()
	r, err := bus.Request(n.ctx(), n.conn, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		n.t.Fatalf("list: %v", err)
	}
	return r
}

// echo sends payload to addr and returns the worker's answer.
func echo(t *testing.T, addr netip.AddrPort, payload string) string {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for attempt := 0; attempt < 50; attempt++ {
		if _, err := c.Write([]byte(payload)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
	}
	t.Fatalf("no echo from %s", addr)
	return ""
}

// fdCount counts a process's open descriptors.
func fdCount(t *testing.T, pid int) int { return testutil.FDCount(t, pid) }

func itoa(n int) string { return strconv.Itoa(n) }
