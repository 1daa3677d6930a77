package ngserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestNewConfigErrors(t *testing.T) {
	h := (&fakeEngine{}).handle
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr error
		wantIn  string
	}{
		{"no handler", Config{UDP: []string{"127.0.0.1:0"}}, ErrNoHandler, ""},
		{"no listeners", Config{Handler: h}, ErrNoListeners, ""},
		{"host name", Config{Handler: h, UDP: []string{"localhost:2223"}}, ErrBadAddress, `"localhost:2223"`},
		{"no port", Config{Handler: h, TCP: []string{"127.0.0.1"}}, ErrBadAddress, `"127.0.0.1"`},
		{"IPv6 without brackets", Config{Handler: h, HTTP: []string{"::1:2223"}}, ErrBadAddress, `"::1:2223"`},
		{"negative limit", Config{Handler: h, UDP: []string{"127.0.0.1:0"}, MaxInFlight: -1}, ErrBadConfig, "MaxInFlight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q, want %v containing %q", err, tc.wantErr, tc.wantIn)
			}
		})
	}
}

// TestBindFailureClosesEverything binds several listeners, the last of each
// case on a busy address: New fails naming that address and leaves nothing
// bound.
func TestBindFailureClosesEverything(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	busyUDP, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	busyTCP, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()
	udpAddr := busyUDP.LocalAddr().String()
	tcpAddr := busyTCP.Addr().String()

	// Free ports to check afterwards that they were released.
	freeUDP, freeTCP := freePort(t, "udp4"), freePort(t, "tcp4")

	for _, tc := range []struct {
		name   string
		cfg    Config
		wantIn string
	}{
		{"UDP busy", Config{UDP: []string{freeUDP, udpAddr}}, "ng over UDP: listen udp4 " + udpAddr},
		{"TCP busy", Config{UDP: []string{freeUDP}, TCP: []string{freeTCP, tcpAddr}}, "ng over TCP: listen tcp4 " + tcpAddr},
		{"HTTP busy", Config{UDP: []string{freeUDP}, TCP: []string{freeTCP}, HTTP: []string{tcpAddr}}, "ng over HTTP: listen tcp4 " + tcpAddr},
		{"same address twice", Config{UDP: []string{freeUDP, freeUDP}}, "listen udp4 " + freeUDP},
		{"address not local", Config{UDP: []string{freeUDP}, HTTP: []string{"192.0.2.1:0"}}, "192.0.2.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.FDCount(t, 0)
			tc.cfg.Handler = (&fakeEngine{}).handle
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q does not contain %q", err, tc.wantIn)
			}
			if tc.name != "address not local" && !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error %q is not EADDRINUSE", err)
			}
			if after := testutil.FDCount(t, 0); after != before {
				t.Errorf("%d descriptors open after the failed New, %d before", after, before)
			}
			// The listeners bound before the failure are free again.
			s2, err := New(Config{UDP: []string{freeUDP}, TCP: []string{freeTCP}, Handler: (&fakeEngine{}).handle})
			if err != nil {
				t.Fatalf("rebinding the released addresses: %v", err)
			}
			s2.Close()
		})
	}
}

// freePort returns "127.0.0.1:PORT" with a port that was free a moment ago.
func freePort(t testing.TB, network string) string {
	t.Helper()
	var a string
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		a = c.LocalAddr().String()
		c.Close()
	} else {
		l, err := net.ListenTCP(network, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		a = l.Addr().String()
		l.Close()
	}
	return a
}

// TestServeLifecycle: Close before Serve releases the sockets; Serve twice
// is refused; Close is idempotent; no descriptor leaks.
func TestServeLifecycle(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	cfg := Config{UDP: []string{"127.0.0.1:0"}, TCP: []string{"127.0.0.1:0"}, HTTP: []string{"127.0.0.1:0"}, Handler: (&fakeEngine{}).handle}

	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := s.Addrs()
	if len(a.UDP) != 1 || len(a.TCP) != 1 || len(a.HTTP) != 1 || a.UDP[0].Port() == 0 || a.TCP[0].Port() == 0 || a.HTTP[0].Port() == 0 {
		t.Fatalf("Addrs %+v", a)
	}
	s.Close()
	s.Close()
	if err := s.Serve(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v", err)
	}

	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitFor(t, "serving", func() bool {
		c := dialUDP(t, s.Addrs().UDP[0])
		c.send("l " + pingDoc)
		_, ok := c.recv(50 * time.Millisecond)
		return ok
	})
	if err := s.Serve(ctx); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve: %v", err)
	}
	// Keep a TCP connection open across the shutdown.
	tc := dialTCP(t, s.Addrs().TCP[0])
	tc.Write([]byte("open " + pingDoc))
	readExactly(t, tc, "open "+pongReply)
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	expectClosed(t, tc)
	s.Close()
}

// TestListenAddressForms: IPv4-mapped addresses are unmapped; an IPv4 and
// an IPv6 wildcard can share a port.
func TestListenAddressForms(t *testing.T) {
	requireIPv6(t)
	f := &fakeEngine{}
	var s *Server
	var p string
	// The port was free on 127.0.0.1; another test's socket may take it
	// on some address before the wildcards bind: try a few ports.
	for try := 0; ; try++ {
		port := netip.MustParseAddrPort(freePort(t, "udp4")).Port()
		p = ":" + strconv.Itoa(int(port))
		var err error
		if s, err = tryStartServer(t, Config{UDP: []string{"[::ffff:127.0.0.1]:0", "0.0.0.0" + p, "[::]" + p}}, f); err == nil {
			break
		}
		if try == 9 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("New: %v", err)
		}
	}
	a := s.Addrs().UDP
	if !a[0].Addr().Is4() || a[1] != netip.MustParseAddrPort("0.0.0.0"+p) || a[2] != netip.MustParseAddrPort("[::]"+p) {
		t.Fatalf("Addrs %v", a)
	}
	for _, to := range []string{"127.0.0.1" + p, "[::1]" + p} {
		c := dialUDP(t, netip.MustParseAddrPort(to))
		if got := c.roundTrip("w " + pingDoc); got != "w "+pongReply {
			t.Errorf("via %s: %q", to, got)
		}
	}
}
