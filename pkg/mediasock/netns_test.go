package mediasock

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
	"golang.org/x/sys/unix"
)

// newMediaNS creates a namespace with interface media0 holding two IPv4
// and two IPv6 documentation addresses.
func newMediaNS(t *testing.T) (*testutil.NetNS, []netip.Addr) {
	t.Helper()
	testutil.RequireRoot(t)
	ns := testutil.NewNetNS(t, "rtpkit-media")
	testutil.Dummy(t, ns, "media0")
	var addrs []netip.Addr
	for _, cidr := range []string{"192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64", "2001:db8::11/64"} {
		testutil.AddAddr(t, ns, "media0", cidr)
		addrs = append(addrs, netip.MustParsePrefix(cidr).Addr())
	}
	return ns, addrs
}

// TestNetNSExactBinding binds the same ports on four addresses of both
// families and checks the kernel's socket table: every socket on its own
// address, none on a wildcard.
func TestNetNSExactBinding(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	ns, addrs := newMediaNS(t)
	// A link-local address, bound with the interface as zone.
	testutil.AddAddr(t, ns, "media0", "fe80::10/64")
	linkLocal := netip.MustParseAddr("fe80::10%media0")
	addrs = append(addrs, linkLocal)
	var ifindex int
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("media0")
		if err == nil {
			ifindex = ifi.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const port = 30000
	var socks []*Socket
	t.Cleanup(func() {
		for _, s := range socks {
			s.Close()
		}
	})
	if err := ns.Do(func() error {
		for _, a := range addrs {
			s, err := Bind("udp", netip.AddrPortFrom(a, port), Options{TOS: TOSExpeditedForwarding})
			if err != nil {
				return err
			}
			socks = append(socks, s)
			rtp, rtcp, err := BindPair(a, port+2, Options{})
			if err != nil {
				return err
			}
			socks = append(socks, rtp, rtcp)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{}
	for _, s := range socks {
		local := s.Local()
		if local.Addr().Zone() != "" {
			// The kernel reports the scope as the interface index.
			local = netip.AddrPortFrom(local.Addr().WithZone(strconv.Itoa(ifindex)), local.Port())
		}
		if got := sockName(t, s); got != local {
			t.Errorf("getsockname = %s, want %s", got, local)
		}
		want[s.Local().String()] = true
	}

	out := ns.Run(t, "ss", "-Huln")
	t.Logf("ss -Huln:\n%s", out)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("unexpected ss line %q", line)
		}
		local := f[3]
		// ss writes a zone after the bracket: [fe80::10]%media0:30000.
		if i := strings.Index(local, "]%"); i > 0 {
			if j := strings.LastIndexByte(local, ':'); j > i {
				local = local[:i] + local[i+1:j] + "]" + local[j:]
			}
		}
		if strings.HasPrefix(local, "0.0.0.0:") || strings.HasPrefix(local, "*:") || strings.HasPrefix(local, "[::]:") {
			t.Errorf("wildcard socket in namespace: %q", line)
		}
		seen[local] = true
	}
	for w := range want {
		if !seen[w] {
			t.Errorf("socket %s missing from ss output:\n%s", w, out)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("ss shows %d sockets, bound %d:\n%s", len(seen), len(want), out)
	}

	// Each socket receives only what is sent to its own address.
	for _, s := range socks[:1] {
		nsRoundTrip(t, ns, s)
	}
	for _, s := range socks {
		if s.Local().Addr().Is6() {
			nsRoundTrip(t, ns, s)
			break
		}
	}
}

// nsRoundTrip sends a datagram from inside ns to s and reads it through a
// PacketConn made from s.
func nsRoundTrip(t *testing.T, ns *testutil.NetNS, s *Socket) {
	t.Helper()
	pc, err := s.PacketConn()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	payload := "to " + s.Local().String()
	if err := ns.Do(func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Local()))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(payload))
		return err
	}); err != nil {
		t.Fatalf("send to %s: %v", s, err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read on %s: %v", s, err)
	}
	if string(buf[:n]) != payload {
		t.Fatalf("read %q on %s, want %q", buf[:n], s, payload)
	}
}

// TestNetNSFreeBind binds to an address that is not on the host yet: that
// fails without FreeBind and works with it, and the socket receives as soon
// as the address is added.
func TestNetNSFreeBind(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	ns, _ := newMediaNS(t)
	tests := []struct {
		name string
		vip  netip.AddrPort
		cidr string
		free [2]int // level, option of FREEBIND
	}{
		{"ipv4", netip.MustParseAddrPort("192.0.2.99:31000"), "192.0.2.99/32", [2]int{unix.IPPROTO_IP, unix.IP_FREEBIND}},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::99]:31000"), "2001:db8::99/128", [2]int{unix.IPPROTO_IPV6, unix.IPV6_FREEBIND}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *Socket
			if err := ns.Do(func() error {
				plain, err := Bind("udp", tt.vip, Options{})
				if err == nil {
					plain.Close()
					return errors.New("bind to a missing address succeeded without FreeBind")
				}
				if !errors.Is(err, unix.EADDRNOTAVAIL) {
					return err
				}
				if !strings.Contains(err.Error(), tt.vip.String()) {
					return errors.New("error does not name the address: " + err.Error())
				}
				s, err = Bind("udp", tt.vip, Options{FreeBind: true})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := sockName(t, s); got != tt.vip {
				t.Errorf("getsockname = %s, want %s", got, tt.vip)
			}
			if got := getInt(t, s, tt.free[0], tt.free[1]); got != 1 {
				t.Errorf("FREEBIND = %d after binding a missing address, want 1", got)
			}
			testutil.AddAddr(t, ns, "media0", tt.cidr)
			nsRoundTrip(t, ns, s)
		})
	}
}
