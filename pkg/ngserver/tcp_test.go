package ngserver

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func dialTCP(t testing.TB, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		t.Fatalf("dial tcp %s: %v", to, err)
	}
	c.SetNoDelay(true)
	t.Cleanup(func() { c.Close() })
	return c
}

// readExactly reads len(want) bytes and compares.
func readExactly(t testing.TB, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(replyWait))
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: got %q: %v", len(want), got[:n], err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectClosed checks that the server closes c without sending anything
// more.
func expectClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(replyWait))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("read %q, want the connection closed", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open")
	}
}

// expectOpen checks that nothing arrives and the connection stays open.
func expectOpen(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(silenceWait))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %q, %v; want nothing on an open connection", buf[:n], err)
	}
}

func TestTCPFraming(t *testing.T) {
	offer := "d7:command5:offer7:call-id2:c18:from-tag3:ft13:sdp10:v=0\r\ns=-\r\n5:flagsl13:trust-addressee"
	for _, tc := range []struct {
		name   string
		writes []string // written with pauses in between
		want   string   // everything read back
	}{
		{"one message", []string{"5323_1 " + pingDoc}, "5323_1 " + pongReply},
		{"two messages in one write",
			[]string{"a " + pingDoc + "b " + offer},
			"a " + pongReply + "b " + echoReply(offer)},
		{"one message in three writes",
			[]string{"c3 d7:comm", "and5:offer7:call-id2:c18:from-tag3:ft1", "3:sdp10:v=0\r\ns=-\r\n5:flagsl13:trust-addressee"},
			"c3 " + echoReply(offer)},
		{"split inside the cookie and at the space",
			[]string{"coo", "kie", " ", pingDoc},
			"cookie " + pongReply},
		{"message and a half, then the rest",
			[]string{"m1 " + pingDoc + "m2 d7:comm", "and4:pinge"},
			"m1 " + pongReply + "m2 " + pongReply},
		{"whitespace between messages",
			[]string{"w1 " + pingDoc + "\r\n", "\n  w2 " + pingDoc + "\n"},
			"w1 " + pongReply + "w2 " + pongReply},
		{"JSON document", []string{`j1 {"command":"ping","flags":["a}b"]}`}, `j1 {"result":"ok"}`},
		{"JSON split and followed by bencode",
			[]string{`j2 {"command":`, `"ping"}j3 `, pingDoc},
			`j2 {"result":"ok"}j3 ` + pongReply},
		{"bencode list document goes to the handler", []string{"l1 l4:pinge"}, "l1 " + echoReply("l4:pinge")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{}
			s := startServer(t, Config{TCP: []string{"127.0.0.1:0"}}, f)
			c := dialTCP(t, s.Addrs().TCP[0])
			for i, w := range tc.writes {
				if i > 0 {
					time.Sleep(20 * time.Millisecond)
				}
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			readExactly(t, c, tc.want)
			expectOpen(t, c)
			if st := s.Stats(); st.TCP.Malformed != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestTCPClosesOnGarbage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writes  []string
		replies string // answered before the close
		maxMsg  int
	}{
		{"not bencode after the cookie", []string{"g1 hello"}, "", 0},
		{"HTTP request", []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}, "", 0},
		{"bad integer", []string{"g2 d1:ai03ee"}, "", 0},
		{"invalid JSON", []string{`g3 {"a" 1}`}, "", 0},
		{"garbage after a good message", []string{"ok " + pingDoc + "g4 xyz"}, "ok " + pongReply, 0},
		{"no space within 1 KiB", []string{strings.Repeat("c", 600), strings.Repeat("c", 600)}, "", 0},
		{"message over MaxMessage", []string{"big d3:sdp", "200:" + strings.Repeat("v", 150)}, "", 100},
		{"declared string over MaxMessage", []string{"big d3:sdp999999:", strings.Repeat("v", 100)}, "", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{}
			s := startServer(t, Config{TCP: []string{"127.0.0.1:0"}, MaxMessage: tc.maxMsg}, f)
			c := dialTCP(t, s.Addrs().TCP[0])
			for _, w := range tc.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.replies != "" {
				readExactly(t, c, tc.replies)
			}
			expectClosed(t, c)
			if st := s.Stats(); st.TCP.Malformed != 1 {
				t.Errorf("malformed %d, want 1", st.TCP.Malformed)
			}
		})
	}
}

func TestTCPLimits(t *testing.T) {
	t.Run("idle timeout", func(t *testing.T) {
		s := startServer(t, Config{TCP: []string{"127.0.0.1:0"}, IdleTimeout: 100 * time.Millisecond}, &fakeEngine{})
		c := dialTCP(t, s.Addrs().TCP[0])
		if _, err := c.Write([]byte("i1 " + pingDoc)); err != nil {
			t.Fatal(err)
		}
		readExactly(t, c, "i1 "+pongReply)
		expectClosed(t, c)
	})
	t.Run("connection cap", func(t *testing.T) {
		s := startServer(t, Config{TCP: []string{"127.0.0.1:0"}, MaxConns: 2}, &fakeEngine{})
		a, b := dialTCP(t, s.Addrs().TCP[0]), dialTCP(t, s.Addrs().TCP[0])
		for _, c := range []net.Conn{a, b} { // both registered
			c.Write([]byte("x " + pingDoc))
			readExactly(t, c, "x "+pongReply)
		}
		third := dialTCP(t, s.Addrs().TCP[0])
		expectClosed(t, third)
		if st := s.Stats(); st.TCP.Rejected != 1 {
			t.Errorf("rejected %d", st.TCP.Rejected)
		}
		a.Close()
		waitFor(t, "a slot to free", func() bool {
			c := dialTCP(t, s.Addrs().TCP[0])
			c.Write([]byte("y " + pingDoc))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			got, _ := io.ReadAll(io.LimitReader(c, int64(len("y "+pongReply))))
			return string(got) == "y "+pongReply
		})
	})
}

// TestTCPLargeMessage sends a message of about 300 KiB in small pieces.
func TestTCPLargeMessage(t *testing.T) {
	f := &fakeEngine{}
	s := startServer(t, Config{TCP: []string{"127.0.0.1:0"}}, f)
	c := dialTCP(t, s.Addrs().TCP[0])
	sdp := strings.Repeat("a=candidate:1 1 UDP 2130706431 192.0.2.1 30000 typ host\r\n", 5000)
	doc := "d3:sdp" + bencodeLen(sdp) + "7:command5:offere"
	msg := []byte("big " + doc + "after " + pingDoc)
	go func() {
		for len(msg) > 0 {
			n := min(len(msg), 1400)
			if _, err := c.Write(msg[:n]); err != nil {
				return
			}
			msg = msg[n:]
		}
	}()
	readExactly(t, c, "big "+echoReply(doc)+"after "+pongReply)
}

// bencodeLen encodes s as a bencode string.
func bencodeLen(s string) string { return strconv.Itoa(len(s)) + ":" + s }
