package ngserver

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// dialFrom opens a TCP connection to `to` from the local address from
// (any loopback address works on Linux).
func dialFrom(t *testing.T, from string, to netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", to, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestConnectionShareOfOneClient: one client address cannot hold more
// than MaxConnsPerClient connections of a stream transport (TCP-ng, HTTP),
// so that it cannot take the whole MaxConns from the others: past its
// share its connections are closed at once, while another client is still
// served.
func TestConnectionShareOfOneClient(t *testing.T) {
	const share = 3
	for _, tc := range []struct {
		name  string
		cfg   Config
		addr  func(s *Server) netip.AddrPort
		probe func(t *testing.T, c net.Conn)
	}{
		{"tcp", Config{TCP: []string{"127.0.0.1:0"}, MaxConns: 8, MaxConnsPerClient: share},
			func(s *Server) netip.AddrPort { return s.Addrs().TCP[0] },
			func(t *testing.T, c net.Conn) {
				if _, err := c.Write([]byte("1 " + pingDoc)); err != nil {
					t.Fatal(err)
				}
				readExactly(t, c, "1 "+pongReply)
			}},
		{"http", Config{HTTP: []string{"127.0.0.1:0"}, MaxConns: 8, MaxConnsPerClient: share},
			func(s *Server) netip.AddrPort { return s.Addrs().HTTP[0] },
			func(t *testing.T, c net.Conn) {
				req := "POST /ng HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len("1 "+pingDoc)) + "\r\n\r\n1 " + pingDoc
				if _, err := c.Write([]byte(req)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 512)
				n, err := c.Read(buf)
				if err != nil || n == 0 {
					t.Fatalf("no HTTP reply: %v", err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.cfg, &fakeEngine{})
			to := tc.addr(s)
			// The greedy client takes its share and more.
			var greedy []net.Conn
			for range share + 5 {
				greedy = append(greedy, dialFrom(t, "127.0.0.2", to))
			}
			for i, c := range greedy {
				if i < share {
					tc.probe(t, c)
				} else {
					expectClosed(t, c)
				}
			}
			// Another client is still served.
			tc.probe(t, dialFrom(t, "127.0.0.3", to))
			// A connection of the greedy client that closes frees a place.
			_ = greedy[0].Close()
			var again net.Conn
			for range 50 {
				again = dialFrom(t, "127.0.0.2", to)
				if !closedAtOnce(again) {
					break
				}
			}
			tc.probe(t, again)
		})
	}
}

// closedAtOnce reports whether the server closed c right away.
func closedAtOnce(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(silenceWait))
	buf := make([]byte, 1)
	_, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		_ = c.SetReadDeadline(time.Time{})
		return false
	}
	return true
}
