package ngserver

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestCacheSameCookie(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first       string // request
		second      string // request with the same cookie
		wantReply   string // to both
		wantCalls   int64
		wantHits    uint64
		otherClient bool
	}{
		{"retransmission", "k1 " + pingDoc, "k1 " + pingDoc, "k1 " + pongReply, 1, 1, false},
		{"error reply cached", "k2 ", "k2 ", "k2 " + noPayload, 1, 1, false},
		// The key is the cookie only: another client, another document,
		// same cookie gets the first reply (as in rtpengine).
		{"cookie only", "k3 " + pingDoc, "k3 d7:command6:deletee", "k3 " + pongReply, 1, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeEngine{}
			s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
			a := dialUDP(t, s.Addrs().UDP[0])
			b := a
			if tc.otherClient {
				b = dialUDP(t, s.Addrs().UDP[0])
			}
			r1 := a.roundTrip(tc.first)
			r2 := b.roundTrip(tc.second)
			if r1 != tc.wantReply || r2 != tc.wantReply {
				t.Errorf("replies %q and %q, want %q twice", r1, r2, tc.wantReply)
			}
			if n := f.calls.Load(); n != tc.wantCalls {
				t.Errorf("handler ran %d times, want %d", n, tc.wantCalls)
			}
			if st := s.Stats(); st.CacheHits != tc.wantHits || st.CacheEntries != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestCacheDifferentCookies(t *testing.T) {
	f := &fakeEngine{}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
	c := dialUDP(t, s.Addrs().UDP[0])
	for _, cookie := range []string{"a", "b", "c"} {
		if got := c.roundTrip(cookie + " " + pingDoc); got != cookie+" "+pongReply {
			t.Errorf("cookie %s: %q", cookie, got)
		}
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
	if st := s.Stats(); st.CacheHits != 0 || st.CacheEntries != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestCacheConcurrentDuplicates sends the same cookie from several clients
// while the first request is still in the (slow) handler.
func TestCacheConcurrentDuplicates(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
	const clients = 4
	var cs []*udpClient
	for range clients {
		cs = append(cs, dialUDP(t, s.Addrs().UDP[0]))
	}
	cs[0].send("dup " + pingDoc)
	waitFor(t, "first request in the handler", func() bool { return f.calls.Load() == 1 })
	for _, c := range cs[1:] {
		c.send("dup " + pingDoc)
	}
	waitFor(t, "duplicates waiting", func() bool { return s.Stats().CacheWaits == clients-1 })
	for _, c := range cs {
		c.expectSilence("duplicate while the handler runs")
	}
	close(f.gate)
	for i, c := range cs {
		got, ok := c.recv(replyWait)
		if !ok || got != "dup "+pongReply {
			t.Errorf("client %d: %q, %v", i, got, ok)
		}
		c.expectSilence("the one reply")
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if st := s.Stats(); st.CacheHits != clients-1 {
		t.Errorf("cache hits %d, want %d", st.CacheHits, clients-1)
	}
}

// TestCacheDuplicateWhileSleeping: two clients send the same cookie at
// once to a handler that sleeps; it runs once and both get its reply.
func TestCacheDuplicateWhileSleeping(t *testing.T) {
	f := &fakeEngine{delay: 300 * time.Millisecond}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
	a, b := dialUDP(t, s.Addrs().UDP[0]), dialUDP(t, s.Addrs().UDP[0])
	var wg sync.WaitGroup
	replies := make([]string, 2)
	for i, c := range []*udpClient{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.send("sleepy " + pingDoc)
			replies[i], _ = c.recv(replyWait)
		}()
	}
	wg.Wait()
	for i, r := range replies {
		if r != "sleepy "+pongReply {
			t.Errorf("client %d: %q", i, r)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if st := s.Stats(); st.CacheHits != 1 || st.CacheWaits != 1 {
		t.Errorf("hits %d waits %d, want 1 and 1", st.CacheHits, st.CacheWaits)
	}
}

// TestCacheWaiterOverflow: more UDP duplicates than MaxWaitersUDP for one
// pending cookie are dropped, the others answered.
func TestCacheWaiterOverflow(t *testing.T) {
	f := &fakeEngine{gate: make(chan struct{})}
	s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}}, f)
	c := dialUDP(t, s.Addrs().UDP[0])
	c.send("w " + pingDoc)
	waitFor(t, "first request in the handler", func() bool { return f.calls.Load() == 1 })
	for range MaxWaitersUDP + 3 {
		c.send("w " + pingDoc)
	}
	waitFor(t, "duplicates read", func() bool { return s.Stats().UDP.Requests == MaxWaitersUDP+4 })
	close(f.gate)
	replies := 0
	for {
		if _, ok := c.recv(silenceWait); !ok {
			break
		}
		replies++
	}
	if replies != MaxWaitersUDP+1 {
		t.Errorf("%d replies, want %d", replies, MaxWaitersUDP+1)
	}
	if st := s.Stats(); st.WaitOverflow != 3 {
		t.Errorf("overflow %d, want 3", st.WaitOverflow)
	}
}

func TestCacheExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		after     time.Duration
		wantCalls int64
	}{
		{"default TTL, just before", 0, DefaultCacheTTL - time.Millisecond, 1},
		{"default TTL, at expiry", 0, DefaultCacheTTL, 2},
		{"30s TTL, 29s", 30 * time.Second, 29 * time.Second, 1},
		{"30s TTL, 31s", 30 * time.Second, 31 * time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			f := &fakeEngine{}
			s := startServer(t, Config{UDP: []string{"127.0.0.1:0"}, CacheTTL: tc.ttl, now: clock.Now}, f)
			c := dialUDP(t, s.Addrs().UDP[0])
			c.roundTrip("t1 " + pingDoc)
			clock.Advance(tc.after)
			if got := c.roundTrip("t1 " + pingDoc); got != "t1 "+pongReply {
				t.Errorf("second reply %q", got)
			}
			if n := f.calls.Load(); n != tc.wantCalls {
				t.Errorf("handler ran %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestReplyCacheCaps(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		maxEntries, maxBytes int
		insert               int
		wantKept             int
	}{
		{"entries cap", 3, 1 << 20, 5, 3},
		{"bytes cap", 1000, 3 * (entryOverhead + 2 + 10), 5, 3},
		{"one too large reply", 1000, 10, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			c := newReplyCache(time.Minute, tc.maxEntries, tc.maxBytes, 2, clock.Now)
			for i := range tc.insert {
				e, owner := c.begin([]byte("k" + strconv.Itoa(i)))
				if !owner {
					t.Fatalf("k%d: not owner", i)
				}
				c.finish(e, []byte("0123456789"))
				clock.Advance(time.Second)
			}
			st := c.stats()
			if st.entries != tc.wantKept || st.evictions != uint64(tc.insert-tc.wantKept) {
				t.Errorf("stats %+v, want %d kept", st, tc.wantKept)
			}
			// The newest are kept, the oldest evicted.
			for i := range tc.insert {
				e, owner := c.begin([]byte("k" + strconv.Itoa(i)))
				if wantOwner := i < tc.insert-tc.wantKept; owner != wantOwner {
					t.Errorf("k%d: owner %v, want %v", i, owner, wantOwner)
				}
				if owner {
					c.abandon(e)
				}
			}
		})
	}
}

func TestReplyCachePending(t *testing.T) {
	clock := newFakeClock()
	c := newReplyCache(time.Minute, 10, 1<<20, 2, clock.Now)
	e, owner := c.begin([]byte("p"))
	if !owner {
		t.Fatal("first begin not owner")
	}
	// Pending entries never expire.
	clock.Advance(time.Hour)
	if d, owner := c.begin([]byte("p")); owner || d != e {
		t.Fatal("pending entry not found")
	}
	// A waiter whose context ends gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.wait(ctx, e); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait: %v", err)
	}
	// Queued waiters: at most 2.
	var got []string
	var mu sync.Mutex
	add := func(msg []byte) { mu.Lock(); got = append(got, string(msg)); mu.Unlock() }
	for i, want := range []waitState{waitQueued, waitQueued, waitFull} {
		if st := c.onDone(e, add); st != want {
			t.Errorf("onDone %d: %v, want %v", i, st, want)
		}
	}
	var wg sync.WaitGroup
	var waited []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		waited, _ = c.wait(context.Background(), e)
	}()
	c.finish(e, []byte("p reply"))
	wg.Wait()
	if string(waited) != "p reply" || len(got) != 2 || got[0] != "p reply" {
		t.Errorf("waited %q, queued waiters got %q", waited, got)
	}
	if st := c.onDone(e, add); st != waitDone {
		t.Errorf("onDone after finish: %v", st)
	}

	// Abandoned: waiters get nil, the next request owns the cookie again.
	a, _ := c.begin([]byte("q"))
	c.onDone(a, func([]byte) { t.Error("waiter of an abandoned entry called") })
	c.abandon(a)
	if msg, err := c.wait(context.Background(), a); msg != nil || err != nil {
		t.Errorf("wait on abandoned: %q, %v", msg, err)
	}
	if _, owner := c.begin([]byte("q")); !owner {
		t.Error("abandoned cookie still cached")
	}
}

// TestReplyCacheQueueReuse runs many entries through expiry so that the
// queue's front is reclaimed, and checks that nothing is lost on the way.
func TestReplyCacheQueueReuse(t *testing.T) {
	clock := newFakeClock()
	c := newReplyCache(10*time.Second, 1<<20, 1<<30, 2, clock.Now)
	const n = 5000
	for i := range n {
		e, _ := c.begin([]byte(strconv.Itoa(i)))
		c.finish(e, []byte("r"+strconv.Itoa(i)))
		if i%100 == 0 {
			clock.Advance(time.Second) // 100 entries per second: 1000 live
		}
		if i%997 == 0 {
			for j := max(0, i-500); j <= i; j += 50 {
				e, owner := c.begin([]byte(strconv.Itoa(j)))
				if owner {
					t.Fatalf("entry %d lost at %d", j, i)
				}
				if string(e.msg) != "r"+strconv.Itoa(j) {
					t.Fatalf("entry %d has %q", j, e.msg)
				}
			}
		}
	}
	st := c.stats()
	if st.entries < 900 || st.entries > 1100 || st.evictions != 0 {
		t.Errorf("stats %+v, want about 1000 live entries", st)
	}
	if len(c.queue) > 4*st.entries+2048 {
		t.Errorf("queue holds %d slots for %d entries", len(c.queue), st.entries)
	}
}
