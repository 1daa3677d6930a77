package portd_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/busauth"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestNetNSInterfacesAndFreeBind runs a node in a network namespace with two
// logical interfaces, each holding an IPv4 and an IPv6 address, plus one
// interface whose address is not there yet.
func TestNetNSInterfacesAndFreeBind(t *testing.T) {
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "portd")
	testutil.Dummy(t, ns, "m0")
	testutil.Dummy(t, ns, "m1")
	testutil.AddAddr(t, ns, "m0", "10.10.0.1/24")
	testutil.AddAddr(t, ns, "m0", "fd00:a::1/64")
	testutil.AddAddr(t, ns, "m1", "10.20.0.1/24")
	testutil.AddAddr(t, ns, "m1", "fd00:b::1/64")

	bin := testutil.Binaries(t)
	state := testutil.ShortTempDir(t)
	up := testutil.StartProc(t, "ip", []string{"netns", "exec", ns.Name, bin + "/rtpctl", "up",
		"--nats-listen=127.0.0.1:0", "--state-dir=" + state, "--node-id=nsnode",
		"--interface=a/10.10.0.1", "--interface=a/fd00:a::1", "--interface=b/10.20.0.1", "--interface=b/fd00:b::1",
		"--interface=late/10.30.0.1", "--port-min=30000", "--port-max=30099"})
	up.WaitMatch(t, testutil.MatchLine(`^  portd\s+running, pid \d+$`), 30*time.Second)
	url := regexp.MustCompile(`nats://127\.0\.0\.1:\d+`).FindString(up.Output())

	// The bus listens inside the namespace: connect from a thread in it.
	var conn *bus.Conn
	if err := ns.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		conn, err = bus.Connect(ctx, bus.Options{URL: url, NkeyFile: busauth.FindOperatorKey(url, "nsnode")}, "nsnode", "test", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The same port number at the same time on several addresses: b's two
	// addresses are fresh (ng-ctl's stock leases from the default
	// interface, a), so both start at port-min.
	var all []portdapi.Pair
	for _, q := range []struct {
		iface  string
		family int
	}{{"a", 4}, {"a", 6}, {"b", 4}, {"b", 6}} {
		r, err := bus.Request(ctx, conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "test", Interface: q.iface, Family: q.family, Count: 1})
		if err != nil || len(r.Pairs) != 1 {
			t.Fatalf("lease %s/%d: %+v %v", q.iface, q.family, r, err)
		}
		all = append(all, r.Pairs[0])
	}
	if all[2].RTP.Port() != 30000 || all[3].RTP.Port() != 30000 {
		t.Fatalf("want port 30000 on both of b's addresses at once, got %+v", all)
	}

	// Every socket is bound to its own address; none to a wildcard.
	ss := ns.Run(t, "ss", "-Huln")
	for _, p := range all {
		for _, ap := range []netip.AddrPort{p.RTP, p.RTCP} {
			if !strings.Contains(ss, ap.String()) && !strings.Contains(ss, "["+ap.Addr().String()+"]:"+itoa(int(ap.Port()))) {
				t.Fatalf("ss has no socket on %s:\n%s", ap, ss)
			}
		}
	}
	for _, line := range strings.Split(ss, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && (strings.HasPrefix(f[3], "0.0.0.0:") || strings.HasPrefix(f[3], "*:") || strings.HasPrefix(f[3], "[::]:")) {
			t.Fatalf("wildcard socket: %q", line)
		}
	}

	// A worker in the namespace serves the sockets.
	worker := testutil.StartProc(t, "ip", []string{"netns", "exec", ns.Name, os.Args[0], "-test.run=^$"},
		"PORTD_TEST_WORKER="+state+"/run", "PORTD_TEST_WORKER_ID=0")
	worker.WaitMatch(t, testutil.MatchLine(`^worker \d+ up`), 10*time.Second)

	// FREEBIND: a socket on an address the host does not have yet.
	r, err := bus.Request(ctx, conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: "test", Interface: "late", Family: 4, Count: 1})
	if err != nil {
		t.Fatalf("lease on the absent address: %v", err)
	}
	late := r.Pairs[0]
	putNSCall(t, ctx, conn, "call-v6", all[1], all[3])
	putNSCall(t, ctx, conn, "call-late", late)
	waitAdds(t, worker, pairAddrs(all[1], all[3], late))
	if got := nsEcho(t, ns, all[3].RTP, "six"); !strings.HasSuffix(got, ":six") {
		t.Fatalf("echo on %s: %q", all[3].RTP, got)
	}
	testutil.AddAddr(t, ns, "m0", "10.30.0.1/32")
	if got := nsEcho(t, ns, late.RTP, "late"); !strings.HasSuffix(got, ":late") {
		t.Fatalf("echo on %s after the address arrived: %q", late.RTP, got)
	}
}

func putNSCall(t *testing.T, ctx context.Context, conn *bus.Conn, id string, pairs ...portdapi.Pair) {
	t.Helper()
	store, err := nodestate.Open(ctx, conn, nodestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := nodestate.Call{Schema: nodestate.CallSchema, ID: id, Owner: conn.Node(), Created: time.Now().UTC()}
	for _, p := range pairs {
		c.Legs = append(c.Legs, nodestate.Leg{Tag: p.RTP.String(), Medias: []nodestate.Media{{Index: 1, Type: "audio",
			Streams: []nodestate.Stream{{Component: 1, Local: p.RTP}, {Component: 2, Local: p.RTCP}}}}})
	}
	if _, err := nodestate.Calls(store).Put(ctx, id, c); err != nil {
		t.Fatal(err)
	}
}

// nsEcho sends to addr from inside the namespace and returns the answer.
func nsEcho(t *testing.T, ns *testutil.NetNS, addr netip.AddrPort, payload string) string {
	t.Helper()
	var got string
	err := ns.Do(func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2048)
		for attempt := 0; attempt < 50; attempt++ {
			if _, err := c.Write([]byte(payload)); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				got = string(buf[:n])
				return nil
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
