package ngserver

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSplitCookie(t *testing.T) {
	for _, tc := range []struct {
		in, cookie, doc string
		ok              bool
	}{
		{"5323_1 d7:command4:pinge", "5323_1", pingDoc, true},
		{`5323_3 {"command":"ping"}`, "5323_3", `{"command":"ping"}`, true},
		{"c1 ", "c1", "", true},                                               // empty document: the handler answers
		{"c1  d3:a1e", "c1", " d3:a1e", true},                                 // only the first space separates
		{"c\x00\xff d1:xe", "c\x00\xff", "d1:xe", true},                       // a cookie is any bytes
		{"nospace", "", "", false},                                            // no space: dropped
		{" d7:command4:pinge", "", "", false},                                 // empty cookie: dropped
		{"", "", "", false},                                                   // empty datagram
		{" ", "", "", false},                                                  // just a space
		{"x\nd1:ae", "", "", false},                                           // newline is not the separator
		{"0.8123 d7:command6:deletee", "0.8123", "d7:command6:deletee", true}, // Perl client cookie
	} {
		cookie, doc, ok := SplitCookie([]byte(tc.in))
		if ok != tc.ok || string(cookie) != tc.cookie || string(doc) != tc.doc {
			t.Errorf("SplitCookie(%q) = %q, %q, %v; want %q, %q, %v", tc.in, cookie, doc, ok, tc.cookie, tc.doc, tc.ok)
		}
	}
}

func TestUDPRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		v6           bool
	}{
		{"IPv4", "127.0.0.1:0", false},
		{"IPv6", "[::1]:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v6 {
				requireIPv6(t)
			}
			f := &fakeEngine{}
			s := startServer(t, Config{UDP: []string{tc.listen}}, f)
			addr := s.Addrs().UDP[0]
			if addr.Port() == 0 || addr.Addr().Is6() != tc.v6 {
				t.Fatalf("bound address %s", addr)
			}
			c := dialUDP(t, addr)
			for _, rt := range []struct{ req, want string }{
				{"5323_1 " + pingDoc, "5323_1 " + pongReply},
				{`5323_3 {"command":"ping"}`, `5323_3 {"result":"ok"}`},
				{"e1 ", "e1 " + noPayload}, // empty payload reaches the handler
				{"x9 d7:command6:answere", "x9 " + echoReply("d7:command6:answere")},
			} {
				if got := c.roundTrip(rt.req); got != rt.want {
					t.Errorf("%q -> %q, want %q", rt.req, got, rt.want)
				}
			}
			if got, want := f.seen(), []string{pingDoc, `{"command":"ping"}`, "", "d7:command6:answere"}; strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("handler saw %q, want %q", got, want)
			}
			local := c.conn.LocalAddr().String()
			for _, from := range f.froms {
				if from.String() != local {
					t.Errorf("handler got from=%s, want the client %s", from, local)
				}
			}
			if st := s.Stats(); st.UDP.Requests != 4 || st.HandlerCalls != 4 || st.UDP.Malformed != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestUDPMalformedDropped(t *testing.T) {
	f := &fakeEngine{}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
	c := dialUDP(t, s.Addrs().UDP[0])
	bad := []string{"nospace" + pingDoc, " " + pingDoc, " ", "", "\n"}
	for _, msg := range bad {
		c.send(msg)
		c.expectSilence(msg)
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("handler ran %d times for malformed datagrams", n)
	}
	if got := c.roundTrip("ok " + pingDoc); got != "ok "+pongReply {
		t.Errorf("after malformed: %q", got)
	}
	st := s.Stats()
	if st.UDP.Malformed != uint64(len(bad)) || st.UDP.Requests != 1 {
		t.Errorf("stats: malformed %d requests %d, want %d and 1", st.UDP.Malformed, st.UDP.Requests, len(bad))
	}
}

// TestUDPOversized shrinks the read buffer so that a datagram can fill it:
// real UDP payloads (at most 65527 bytes) cannot fill the 64 KiB one.
func TestUDPOversized(t *testing.T) {
	const bufSize = 64
	f := &fakeEngine{}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, udpBuf: bufSize}, f)
	c := dialUDP(t, s.Addrs().UDP[0])
	for _, tc := range []struct{ req, want string }{
		{"big d3:sdp" + bencodeString(bufSize) + "e", "big d6:result5:error12:error-reason17:Message too largee"},
		{`bigj {"sdp":"` + strings.Repeat("v", bufSize) + `"}`, `bigj {"result":"error","error-reason":"Message too large"}`},
		{"full " + strings.Repeat("d", bufSize-len("full ")), "full d6:result5:error12:error-reason17:Message too largee"},
	} {
		if got := c.roundTrip(tc.req); got != tc.want {
			t.Errorf("%d bytes: %q, want %q", len(tc.req), got, tc.want)
		}
	}
	c.send(strings.Repeat("x", 2*bufSize)) // no cookie in it: dropped
	c.expectSilence("oversized without cookie")
	if n := f.calls.Load(); n != 0 {
		t.Errorf("handler ran %d times for oversized datagrams", n)
	}
	if st := s.Stats(); st.Oversized != 4 || st.UDP.Requests != 0 || st.CacheEntries != 0 {
		t.Errorf("stats %+v, want 4 oversized, nothing else", st)
	}
	// One byte less than the buffer reaches the handler.
	doc := "d1:a" + bencodeString(bufSize-1-len("fit d1:ae")) + "e"
	if n := len("fit " + doc); n != bufSize-1 {
		t.Fatalf("test bug: %d bytes", n)
	}
	if got := c.roundTrip("fit " + doc); got != "fit "+echoReply(doc) {
		t.Errorf("%d-byte datagram: %q", bufSize-1, got)
	}
}

// bencodeString returns a bencode string of exactly n encoded bytes (n >= 2).
func bencodeString(n int) string {
	for digits := 1; ; digits++ {
		if body := n - digits - 1; body >= 0 && len(strconv.Itoa(body)) == digits {
			return strconv.Itoa(body) + ":" + strings.Repeat("z", body)
		}
	}
}

func TestUDPSlowHandlerDoesNotBlockOthers(t *testing.T) {
	gate := make(chan struct{})
	slow := &fakeEngine{}
	handler := func(ctx context.Context, doc []byte, from netip.AddrPort) []byte {
		if strings.Contains(string(doc), "slow") {
			<-gate
		}
		return slow.handle(ctx, doc, from)
	}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, Handler: handler, MaxInFlight: 4}, nil)
	defer close(gate)
	c := dialUDP(t, s.Addrs().UDP[0])
	for i := range 3 {
		c.send("slow" + strconv.Itoa(i) + " d4:slowi1ee")
	}
	fast := dialUDP(t, s.Addrs().UDP[0])
	if got := fast.roundTrip("fast " + pingDoc); got != "fast "+pongReply {
		t.Errorf("fast request behind slow ones: %q", got)
	}
	waitFor(t, "three slow handlers in flight", func() bool { return s.Stats().InFlight == 3 })
}

func TestUDPHandlerPanic(t *testing.T) {
	var mu sync.Mutex
	panics := 1
	f := &fakeEngine{}
	handler := func(ctx context.Context, doc []byte, from netip.AddrPort) []byte {
		mu.Lock()
		p := panics > 0
		panics--
		mu.Unlock()
		if p {
			panic("engine bug")
		}
		return f.handle(ctx, doc, from)
	}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, Handler: handler}, nil)
	c := dialUDP(t, s.Addrs().UDP[0])
	c.send("p1 " + pingDoc)
	c.expectSilence("panicking handler")
	// Not cached: the retransmission runs the handler again.
	if got := c.roundTrip("p1 " + pingDoc); got != "p1 "+pongReply {
		t.Errorf("after panic: %q", got)
	}
	if st := s.Stats(); st.Panics != 1 || st.HandlerCalls != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestUDPEmptyReplyNotCached: a handler returning nothing sends nothing and
// caches nothing.
func TestUDPEmptyReplyNotCached(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	handler := func(ctx context.Context, doc []byte, from netip.AddrPort) []byte {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return nil
		}
		return []byte(pongReply)
	}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, Handler: handler}, nil)
	c := dialUDP(t, s.Addrs().UDP[0])
	c.send("n1 " + pingDoc)
	c.expectSilence("nil reply")
	if got := c.roundTrip("n1 " + pingDoc); got != "n1 "+pongReply {
		t.Errorf("retransmission: %q", got)
	}
	if st := s.Stats(); st.NoReply != 1 {
		t.Errorf("NoReply %d", st.NoReply)
	}
}

// TestGracefulShutdown: a request being handled when Close is called is
// still answered.
func TestGracefulShutdown(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})}
	s, err := New(Config{UDP: []string{"127.0.0.1:0"}, Handler: f.handle, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	c := dialUDP(t, s.Addrs().UDP[0])
	c.send("g1 " + pingDoc)
	waitFor(t, "handler running", func() bool { return f.calls.Load() == 1 })
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(f.gate)
	if got, ok := c.recv(replyWait); !ok || got != "g1 "+pongReply {
		t.Errorf("reply during shutdown: %q, %v", got, ok)
	}
	<-closed
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve after Close succeeded")
	}
}

// TestShutdownTimeoutCancels: a handler that outlives the shutdown timeout
// sees its context cancelled.
func TestShutdownTimeoutCancels(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})} // never opened: waits for ctx
	s, err := New(Config{UDP: []string{"127.0.0.1:0"}, Handler: f.handle, Log: testLogger(t), ShutdownTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	c := dialUDP(t, s.Addrs().UDP[0])
	c.send("h1 " + pingDoc)
	waitFor(t, "handler running", func() bool { return f.calls.Load() == 1 })
	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(replyWait):
		t.Fatal("Serve did not return after its context ended")
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("Serve returned after %v, before the shutdown timeout", d)
	}
	s.Close()
}

// BenchmarkUDPDatagram measures the read loop's work for one datagram
// (sending the reply included): a cache hit, and a new cookie that runs the
// handler on its own goroutine.
func BenchmarkUDPDatagram(b *testing.B) {
	f := &fakeEngine{}
	s := startServer(b, Config{UDP: []string{"127.0.0.1:0"}, Handler: func(context.Context, []byte, netip.AddrPort) []byte {
		return []byte(pongReply)
	}, CacheMaxEntries: 1000}, f)
	c := dialUDP(b, s.Addrs().UDP[0])
	c.roundTrip("hit " + pingDoc)
	l := s.udp[0]
	to := netip.MustParseAddrPort(c.conn.LocalAddr().String())
	b.Run("cache hit", func(b *testing.B) {
		msg := []byte("hit " + pingDoc)
		b.ReportAllocs()
		for b.Loop() {
			s.datagram(l, msg, false, to, pktDst{})
		}
	})
	b.Run("new cookie", func(b *testing.B) {
		msgs := make([][]byte, 4096)
		for i := range msgs {
			msgs[i] = []byte("new" + strconv.Itoa(i) + " " + pingDoc)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.datagram(l, msgs[i%len(msgs)], false, to, pktDst{})
			i++
		}
	})
}
