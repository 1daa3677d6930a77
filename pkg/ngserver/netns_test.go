package ngserver

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// TestNetNSWildcardReplySource listens on 0.0.0.0:2223 and [::]:2223 in a
// namespace whose interface has two IPv4 and two IPv6 addresses (and a
// link-local one), sends a request to each address and checks that every
// reply comes from exactly the address its request was sent to.
func TestNetNSWildcardReplySource(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoFDLeak(t)
	ns := testutil.NewNetNS(t, "rtpkit-ng")
	testutil.Dummy(t, ns, "ng0")
	for _, cidr := range []string{"10.1.0.1/24", "10.1.0.2/24", "fd00::1/64", "fd00::2/64", "fe80::1/64"} {
		testutil.AddAddr(t, ns, "ng0", cidr)
	}

	f := &fakeEngine{}
	var (
		s       *Server
		clients = map[string]*net.UDPConn{} // by local address
		ifindex int
	)
	closeClients := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	// Sockets belong to the namespace of the thread that creates them.
	// Each client is bound to a local address other than the one it sends
	// to, so that a reply whose source the kernel picked (by route to the
	// client) would come from the wrong address.
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("ng0")
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		for _, a := range []string{"10.1.0.1", "10.1.0.2", "fd00::1", "fd00::2"} {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(a), 0)))
			if err != nil {
				return err
			}
			clients[a] = c
		}
		s, err = New(Config{UDP: []string{"0.0.0.0:2223", "[::]:2223"}, Handler: f.handle, Log: testLogger(t)})
		return err
	}); err != nil {
		closeClients()
		t.Fatal(err)
	}
	t.Cleanup(closeClients)
	served := make(chan error, 1)
	go func() { served <- s.Serve(t.Context()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	zone := strconv.Itoa(ifindex)
	for i, tc := range []struct{ to, from string }{
		{"10.1.0.1", "10.1.0.2"},
		{"10.1.0.2", "10.1.0.1"},
		{"127.0.0.1", "10.1.0.2"},
		{"fd00::1", "fd00::2"},
		{"fd00::2", "fd00::1"},
		{"::1", "fd00::2"},
		{"fe80::1%" + zone, "fd00::2"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			dst := netip.AddrPortFrom(netip.MustParseAddr(tc.to), 2223)
			client := clients[tc.from]
			cookie := "src" + strconv.Itoa(i)
			buf := make([]byte, 1500)
			var (
				n   int
				src netip.AddrPort
				err error
			)
			// Retransmit like a SIP proxy does (the reply cache makes that
			// harmless): the kernel finishes setting up the namespace's
			// addresses asynchronously, and a first IPv6 datagram is
			// sometimes lost.
			for try := 0; ; try++ {
				if _, err := client.WriteToUDPAddrPort([]byte(cookie+" "+pingDoc), dst); err != nil {
					t.Fatalf("send to %s: %v", dst, err)
				}
				_ = client.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
				if n, src, err = client.ReadFromUDPAddrPort(buf); err == nil {
					if try > 0 {
						t.Logf("reply after %d retransmissions", try)
					}
					break
				}
				if try == 20 {
					t.Fatalf("no reply from %s: %v", dst, err)
				}
			}
			if got := string(buf[:n]); got != cookie+" "+pongReply {
				t.Errorf("reply %q", got)
			}
			if src.Addr().WithZone("") != dst.Addr().WithZone("") || src.Port() != 2223 {
				t.Errorf("request to %s answered from %s", dst, src)
			}
			f.mu.Lock()
			from := f.froms[len(f.froms)-1]
			f.mu.Unlock()
			if from.Addr().WithZone("").Unmap().String() != tc.from {
				t.Errorf("handler saw the request from %s, want %s", from, tc.from)
			}
		})
	}
	if st := s.Stats(); st.HandlerCalls != 7 {
		t.Errorf("stats %+v", st)
	}
}
