package testutil

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rtpkit/rtpkit/pkg/ngclient"
)

// DefaultTestbedService is the service address of a [Testbed] unless
// [TestbedOptions.Service] names another.
var DefaultTestbedService = netip.MustParseAddr("10.255.255.1")

// Interface names inside a testbed's namespaces. Names are per namespace,
// and every namespace has a unique name, so parallel tests never collide.
const (
	// TestbedUplink is the interface of a node and of the callers towards
	// the router.
	TestbedUplink = "uplink"
	// TestbedCallersLink is the router's interface towards the callers.
	TestbedCallersLink = "callers"
)

// TestbedNodeLink is the router's interface towards node i ("n0", "n1", ...).
func TestbedNodeLink(i int) string { return "n" + strconv.Itoa(i) }

// nodeStartTimeout bounds how long StartNode waits for "rtpctl up".
const nodeStartTimeout = 30 * time.Second

// Testbed is a small routed network of namespaces for failover tests: a
// router, N nodes each on its own link to the router, and a callers
// namespace on another link. The service address lives on the nodes'
// loopback (on every node for anycast, or on one for a keepalived-style
// move) and the router's host route for it decides which node gets the
// traffic, as a BGP announcement would.
//
//	callers 10.78.0.2-5/24 --- 10.78.0.1 [router] 10.77.<i+1>.1 --- 10.77.<i+1>.2 node i (service on lo)
//
// Build one with [NewTestbed]; everything is removed at test end.
type Testbed struct {
	// Router forwards between the callers and the nodes and holds the
	// route for the service address; Redis runs here if asked for.
	Router *NetNS
	// Callers is where test endpoints (ng clients, RTP sockets) live.
	Callers *NetNS
	// CallerAddrs are the callers' addresses on their link; the first is
	// the primary one (source of connected sockets by default).
	CallerAddrs []netip.Addr
	// CallersRouterAddr is the router's address on the callers' link.
	CallersRouterAddr netip.Addr
	// Nodes are the nodes, in order.
	Nodes []*TestbedNode
	// Service is the service address (a /32 on the nodes' lo).
	Service netip.Addr
	// Redis is a redis-server in the Router namespace listening on all of
	// its addresses, if TestbedOptions.Redis was set; nodes reach it at
	// their RouterAddr and Redis.Port (see RedisURL).
	Redis *Redis
}

// TestbedNode is one node of a [Testbed].
type TestbedNode struct {
	// Index is the node's position in Testbed.Nodes.
	Index int
	// NS is the node's namespace.
	NS *NetNS
	// Addr is the node's own address on its link to the router
	// (10.77.<Index+1>.2).
	Addr netip.Addr
	// RouterAddr is the router's address on that link (10.77.<Index+1>.1),
	// the node's default gateway.
	RouterAddr netip.Addr
	// StateDir is the --state-dir of the node's last StartNode (its
	// runtime dir is StateDir/run, the fast path's pins StateDir/run/bpf).
	StateDir string
}

// TestbedOptions tunes [NewTestbed].
type TestbedOptions struct {
	// Nodes is the number of nodes (default 2, at most 250).
	Nodes int
	// ServiceOnAll puts the service address on the lo of every node
	// (anycast); otherwise only node 0 has it (keepalived style; see
	// AddService and DelService).
	ServiceOnAll bool
	// Redis starts a redis-server in the router namespace (see
	// Testbed.Redis). The test is skipped as StartRedis does if none is
	// installed.
	Redis bool
	// RedisPersist keeps Redis's data across Kill and Restart (append-only
	// file).
	RedisPersist bool
	// Service is the service address (default DefaultTestbedService); IPv4.
	Service netip.Addr
}

// NewTestbed builds a [Testbed]: the namespaces, veth links and addresses,
// IP forwarding in the router, default routes via the router in the nodes
// and the callers, the service address on the nodes' lo and a router route
// for it to node 0. Reverse path filtering is off in every namespace (a
// node answering from the service address while the route points elsewhere
// must not be dropped by a strict host default inherited from the init
// namespace). It needs root: call [RequireRoot] first to skip otherwise.
// All of it is removed at test end, also on failure.
func NewTestbed(t testing.TB, opts TestbedOptions) *Testbed {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.Nodes < 1 || opts.Nodes > 250 {
		t.Fatalf("testbed: %d nodes; want 1 to 250", opts.Nodes)
	}
	if !opts.Service.IsValid() {
		opts.Service = DefaultTestbedService
	}
	if !opts.Service.Is4() {
		t.Fatalf("testbed: service address %s: only IPv4 is supported", opts.Service)
	}
	tb := &Testbed{
		Router:            NewNetNS(t, "tb-r"),
		Callers:           NewNetNS(t, "tb-c"),
		CallersRouterAddr: netip.AddrFrom4([4]byte{10, 78, 0, 1}),
		Service:           opts.Service,
	}
	for i := range opts.Nodes {
		tb.Nodes = append(tb.Nodes, &TestbedNode{
			Index:      i,
			NS:         NewNetNS(t, "tb-n"+strconv.Itoa(i)),
			Addr:       netip.AddrFrom4([4]byte{10, 77, byte(i + 1), 2}),
			RouterAddr: netip.AddrFrom4([4]byte{10, 77, byte(i + 1), 1}),
		})
	}

	// Sysctls first, so that the interfaces created next inherit "default".
	noRPFilter := map[string]string{"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"}
	routerSys := map[string]string{"net/ipv4/ip_forward": "1"}
	for k, v := range noRPFilter {
		routerSys[k] = v
	}
	SetSysctls(t, tb.Router, routerSys)
	SetSysctls(t, tb.Callers, noRPFilter)
	for _, n := range tb.Nodes {
		SetSysctls(t, n.NS, noRPFilter)
	}

	// Callers.
	Veth(t, tb.Router, TestbedCallersLink, tb.Callers, TestbedUplink)
	AddAddr(t, tb.Router, TestbedCallersLink, tb.CallersRouterAddr.String()+"/24")
	for i := byte(2); i <= 5; i++ {
		a := netip.AddrFrom4([4]byte{10, 78, 0, i})
		AddAddr(t, tb.Callers, TestbedUplink, a.String()+"/24")
		tb.CallerAddrs = append(tb.CallerAddrs, a)
	}
	AddRoute(t, tb.Callers, "default", tb.CallersRouterAddr.String())

	// Nodes.
	for _, n := range tb.Nodes {
		Veth(t, tb.Router, TestbedNodeLink(n.Index), n.NS, TestbedUplink)
		AddAddr(t, tb.Router, TestbedNodeLink(n.Index), n.RouterAddr.String()+"/24")
		AddAddr(t, n.NS, TestbedUplink, n.Addr.String()+"/24")
		AddRoute(t, n.NS, "default", n.RouterAddr.String())
		if opts.ServiceOnAll || n.Index == 0 {
			tb.AddService(t, n.Index)
		}
	}
	AddRoute(t, tb.Router, tb.servicePrefix(), tb.Nodes[0].Addr.String())

	if opts.Redis {
		tb.Redis = StartRedis(t, RedisOptions{Host: "0.0.0.0", NetNS: tb.Router, Persist: opts.RedisPersist})
	}
	return tb
}

// SetSysctls writes /proc/sys entries (keys like "net/ipv4/ip_forward")
// from a thread inside ns: /proc/sys/net shows the writer's namespace.
func SetSysctls(t testing.TB, ns *NetNS, kv map[string]string) {
	t.Helper()
	if err := ns.Do(func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v+"\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("testbed: sysctl: %v", err)
	}
}

func (tb *Testbed) servicePrefix() string { return tb.Service.String() + "/32" }

func (tb *Testbed) node(t testing.TB, i int) *TestbedNode {
	t.Helper()
	if i < 0 || i >= len(tb.Nodes) {
		t.Fatalf("testbed: no node %d (have %d)", i, len(tb.Nodes))
	}
	return tb.Nodes[i]
}

// Route points the router's host route for the service address at node
// ("ip route replace SERVICE/32 via NODE-ADDR"), as a BGP move does.
func (tb *Testbed) Route(t testing.TB, node int) {
	t.Helper()
	ReplaceRoute(t, tb.Router, tb.servicePrefix(), tb.node(t, node).Addr.String())
}

// AddService adds the service address (/32) to node's lo.
func (tb *Testbed) AddService(t testing.TB, node int) {
	t.Helper()
	AddAddr(t, tb.node(t, node).NS, "lo", tb.servicePrefix())
}

// DelService removes the service address from node's lo.
func (tb *Testbed) DelService(t testing.TB, node int) {
	t.Helper()
	DelAddr(t, tb.node(t, node).NS, "lo", tb.servicePrefix())
}

// RedisURL is the --redis value (HOST:PORT/DB) with which node reaches the
// testbed's Redis: the router's address on the node's link. It panics if
// the testbed has no Redis or no such node.
func (tb *Testbed) RedisURL(node, db int) string {
	if tb.Redis == nil {
		panic("testutil: Testbed.RedisURL: the testbed has no Redis (TestbedOptions.Redis)")
	}
	if node < 0 || node >= len(tb.Nodes) {
		panic(fmt.Sprintf("testutil: Testbed.RedisURL: no node %d", node))
	}
	return net.JoinHostPort(tb.Nodes[node].RouterAddr.String(), strconv.Itoa(tb.Redis.Port)) + "/" + strconv.Itoa(db)
}

// RedisClient is a go-redis client for DB db of the testbed's Redis that
// connects from node's namespace, as the node's daemons do; closed at
// cleanup.
func (tb *Testbed) RedisClient(t testing.TB, node, db int) *redis.Client {
	t.Helper()
	if tb.Redis == nil {
		t.Fatalf("testbed: no Redis (TestbedOptions.Redis)")
	}
	n := tb.node(t, node)
	c := redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(n.RouterAddr.String(), strconv.Itoa(tb.Redis.Port)),
		DB:   db,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := n.NS.Do(func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// StartNode runs "rtpctl up" (from [Binaries]) inside node's namespace and
// returns once it printed "Stop with Ctrl-C" (all daemons started), failing
// the test if that takes more than 30 s. These options come first, so args
// may override them: --nats-listen=127.0.0.1:0, --state-dir=<a short temp
// dir> (which also holds the runtime dir) and --node-id=node<i>; args give
// the rest (--interface, --listen-ng, --port-min, ...).
//
// The process is started through "ip netns exec", which execs, so the
// returned Proc's pid is rtpctl's own (checked against the pid rtpctl
// prints): a SIGKILL of it takes the node's daemons down with it. It is
// killed at cleanup if still running.
func (tb *Testbed) StartNode(t testing.TB, node int, args ...string) *Proc {
	t.Helper()
	return tb.StartNodeWrapped(t, node, nil, args...)
}

// StartNodeWrapped is StartNode with rtpctl run through the command wrap
// (inside the namespace), for example setpriv to take capabilities away;
// the wrapper must exec rtpctl.
func (tb *Testbed) StartNodeWrapped(t testing.TB, node int, wrap []string, args ...string) *Proc {
	t.Helper()
	n := tb.node(t, node)
	rtpctl := filepath.Join(Binaries(t), "rtpctl")
	id := "node" + strconv.Itoa(n.Index)
	state := shortTempDir(t)
	// rtp-fwd pins its fast path under <runtime dir>/bpf. "ip netns exec"
	// gives each process a mount namespace of its own, so a bpffs that
	// rtp-fwd mounted itself would die with it; one mounted here is shared
	// by every run of the node, as on a real host.
	MountBPFFS(t, filepath.Join(state, "run", "bpf"))
	n.StateDir = state
	full := append([]string{"netns", "exec", n.NS.Name}, wrap...)
	full = append(full, rtpctl, "up", "--nats-listen=127.0.0.1:0", "--state-dir="+state, "--node-id="+id)
	full = append(full, args...)
	p := StartProc(t, "ip", full)
	// Runs before StartProc's own cleanup: kill rtpctl and wait until its
	// daemons (PDEATHSIG) are gone too, before the state dir is removed.
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		kids := Children(p.PID())
		_ = p.Cmd.Process.Kill()
		<-p.done
		deadline := time.Now().Add(5 * time.Second)
		for _, pid := range kids {
			for Alive(pid) {
				if time.Now().After(deadline) {
					t.Errorf("testbed: node %d: daemon %d outlived its rtpctl by 5 s", node, pid)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	m := p.WaitMatch(t, regexp.MustCompile(`(?m)^rtpkit node "[^"]*" is up \(rtpctl up, pid (\d+)\)$`), nodeStartTimeout)
	if pid, _ := strconv.Atoi(m[1]); pid != p.PID() {
		t.Fatalf("testbed: node %d: rtpctl reports pid %s, but the started process is %d (did ip netns exec fork?)", node, m[1], p.PID())
	}
	p.WaitMatch(t, MatchLine(`^Stop with Ctrl-C`), nodeStartTimeout)
	return p
}

// UDP is a UDP socket bound to addr (host:port; port 0 picks one) inside
// ns, closed at cleanup. Sockets keep their namespace, so it can be used
// from any goroutine.
func (tb *Testbed) UDP(t testing.TB, ns *NetNS, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatalf("testbed: UDP %s: %v", addr, err)
	}
	var c *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp", ua)
		return err
	}); err != nil {
		t.Fatalf("testbed: UDP %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// NG is an ng client whose socket is created inside ns, talking to the ng
// server at addr (host:port), closed at cleanup.
func (tb *Testbed) NG(t testing.TB, ns *NetNS, addr string) *ngclient.Client {
	t.Helper()
	var c *ngclient.Client
	if err := ns.Do(func() error {
		var err error
		c, err = ngclient.Dial(addr)
		return err
	}); err != nil {
		t.Fatalf("testbed: ng client to %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
