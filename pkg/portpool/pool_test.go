package portpool

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func seeded(seed uint64) Option {
	return WithRand(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}

func mustNew(t testing.TB, min, max int, opts ...Option) *Pool {
	t.Helper()
	p, err := New(min, max, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkCounts asserts that the counters add up.
func checkCounts(t testing.TB, p *Pool) {
	t.Helper()
	if u, q, f := p.Used(), p.Quarantined(), p.Free(); u+q+f != p.Size() || u < 0 || q < 0 || f < 0 {
		t.Fatalf("used %d + quarantined %d + free %d != size %d", u, q, f, p.Size())
	}
	if got := len(p.Snapshot()); got != p.Used() {
		t.Fatalf("Snapshot has %d ports, Used() = %d", got, p.Used())
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		min, max int
		opts     []Option
		err      error
	}{
		{0, 10, nil, errBadRange},
		{10, 9, nil, errBadRange},
		{1, 65536, nil, errBadRange},
		{-5, 10, nil, errBadRange},
		{10, 20, []Option{WithQuarantine(-time.Second)}, errBadOption},
	}
	for _, tt := range tests {
		if _, err := New(tt.min, tt.max, tt.opts...); !errors.Is(err, tt.err) {
			t.Errorf("New(%d, %d) = %v, want %v", tt.min, tt.max, err, tt.err)
		}
	}
	for _, r := range [][2]int{{1, 1}, {1, 65535}, {65535, 65535}, {30000, 40000}} {
		p, err := New(r[0], r[1], WithClock(nil), WithRand(nil))
		if err != nil || p.Size() != r[1]-r[0]+1 || p.Free() != p.Size() {
			t.Errorf("New(%d, %d) = %v", r[0], r[1], err)
		}
		if lo, hi := p.Range(); lo != r[0] || hi != r[1] {
			t.Errorf("Range() = %d-%d", lo, hi)
		}
	}
}

func TestAllocPairEvenOdd(t *testing.T) {
	tests := []struct {
		min, max int
		pairs    int
	}{
		{30000, 30009, 5},
		{30001, 30010, 4}, // 30001 and 30010 have no partner
		{30001, 30011, 5},
		{1, 1, 0},
		{1, 2, 0},
		{2, 3, 1},
		{65534, 65535, 1},
		{65533, 65535, 1},
		{100, 300, 100}, // spans several words
		{63, 130, 33},   // odd min, word boundaries
	}
	for _, tt := range tests {
		p := mustNew(t, tt.min, tt.max, seeded(1))
		seen := map[int]bool{}
		for {
			rtp, err := p.AllocPair()
			if errors.Is(err, ErrExhausted) {
				break
			}
			if err != nil {
				t.Fatalf("%d-%d: %v", tt.min, tt.max, err)
			}
			if rtp%2 != 0 || rtp < tt.min || rtp+1 > tt.max || seen[rtp] || seen[rtp+1] {
				t.Fatalf("%d-%d: bad pair %d", tt.min, tt.max, rtp)
			}
			seen[rtp], seen[rtp+1] = true, true
		}
		if len(seen) != 2*tt.pairs || p.Used() != 2*tt.pairs {
			t.Errorf("%d-%d: got %d pairs (used %d), want %d", tt.min, tt.max, len(seen)/2, p.Used(), tt.pairs)
		}
		checkCounts(t, p)
	}
}

func TestFirstAllocationAtMin(t *testing.T) {
	for _, tt := range []struct{ min, pair, single int }{{30000, 30000, 30000}, {30001, 30002, 30002}} {
		p := mustNew(t, tt.min, 40000, seeded(7))
		if got, _ := p.AllocPair(); got != tt.pair {
			t.Errorf("min %d: first AllocPair = %d, want %d", tt.min, got, tt.pair)
		}
		p = mustNew(t, tt.min, 40000, seeded(7))
		if got, _ := p.AllocSingle(); got != tt.single {
			t.Errorf("min %d: first AllocSingle = %d, want %d", tt.min, got, tt.single)
		}
	}
}

func TestSpreading(t *testing.T) {
	alloc := func(seed uint64) []int {
		p := mustNew(t, 30000, 40000, seeded(seed))
		var out []int
		for range 50 {
			rtp, err := p.AllocPair()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rtp)
		}
		return out
	}
	a := alloc(42)
	if b := alloc(42); !slices.Equal(a, b) {
		t.Errorf("same seed, different allocations:\n%v\n%v", a, b)
	}
	gaps := 0
	for i := 1; i < len(a); i++ {
		if a[i] <= a[i-1] {
			t.Fatalf("allocation %d went backwards without wrapping: %v", i, a)
		}
		if d := a[i] - a[i-1]; d > 2*spreadSteps+2 {
			t.Fatalf("step %d larger than the spread: %v", d, a)
		} else if d > 2 {
			gaps++
		}
	}
	if gaps < len(a)/2 {
		t.Errorf("only %d of %d allocations skipped ports: %v", gaps, len(a)-1, a)
	}
	// A release behind the cursor is not handed out next, though it is the lowest free pair.
	p := mustNew(t, 30000, 40000, seeded(3))
	first, _ := p.AllocPair()
	if _, err := p.AllocPair(); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(first, 2); err != nil {
		t.Fatal(err)
	}
	if next, _ := p.AllocPair(); next == first {
		t.Errorf("got the lowest free pair %d again at once", first)
	}
}

func TestWrapAround(t *testing.T) {
	p := mustNew(t, 100, 163, seeded(5)) // one word
	var got []int
	for {
		rtp, err := p.AllocPair()
		if err != nil {
			break
		}
		got = append(got, rtp)
	}
	// The spread leaves gaps on the first pass; the search wraps around to
	// fill them, so every pair is handed out, not in ascending order.
	if len(got) != 32 {
		t.Fatalf("allocated %d pairs, want all 32: %v", len(got), got)
	}
	if slices.IsSorted(got) {
		t.Errorf("allocations never wrapped around: %v", got)
	}
	checkCounts(t, p)
}

func TestAllocSinglePrefersEven(t *testing.T) {
	p := mustNew(t, 100, 109, seeded(9))
	var got []int
	for {
		port, err := p.AllocSingle()
		if err != nil {
			if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "no free port in 100-109 (10 in use, 0 in quarantine)") {
				t.Fatalf("AllocSingle: %v", err)
			}
			break
		}
		got = append(got, port)
	}
	if len(got) != 10 {
		t.Fatalf("got %v, want all 10 ports", got)
	}
	for i, port := range got {
		if (i < 5) != (port%2 == 0) {
			t.Errorf("allocation %d = %d: want the 5 even ports first: %v", i, port, got)
		}
	}
}

func TestExhaustion(t *testing.T) {
	p := mustNew(t, 100, 109, seeded(1))
	for range 5 {
		if _, err := p.AllocPair(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := p.AllocPair()
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("AllocPair on a full pool: %v", err)
	}
	if want := "no free port pair in 100-109 (10 in use, 0 in quarantine)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := p.AllocSingle(); !errors.Is(err, ErrExhausted) {
		t.Errorf("AllocSingle on a full pool: %v", err)
	}
	if p.Used() != 10 {
		t.Errorf("Used() = %d after failures", p.Used())
	}

	// Free ports but no free pair: AllocPair fails and takes nothing,
	// AllocSingle still works.
	p = mustNew(t, 100, 109, seeded(1))
	for _, port := range []int{101, 102, 105, 106, 109} {
		if err := p.Reserve(port, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.AllocPair(); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "(5 in use, 0 in quarantine)") {
		t.Errorf("AllocPair without a free pair: %v", err)
	}
	if p.Used() != 5 || p.Free() != 5 {
		t.Errorf("Used %d Free %d after a failed AllocPair", p.Used(), p.Free())
	}
	if port, err := p.AllocSingle(); err != nil || port%2 != 0 {
		t.Errorf("AllocSingle = %d, %v; want an even port", port, err)
	}
	checkCounts(t, p)
}

func TestQuarantine(t *testing.T) {
	clk := newClock()
	p := mustNew(t, 100, 103, WithQuarantine(10*time.Second), WithClock(clk.now), seeded(1))
	a, _ := p.AllocPair()
	b, _ := p.AllocPair()
	if err := p.Release(a, 2); err != nil {
		t.Fatal(err)
	}
	if p.Used() != 2 || p.Quarantined() != 2 || p.Free() != 0 {
		t.Errorf("used %d quarantined %d free %d", p.Used(), p.Quarantined(), p.Free())
	}
	clk.advance(10*time.Second - time.Nanosecond)
	// Nothing else is free: the oldest quarantined ports are released early
	// rather than failing the allocation.
	if got, err := p.AllocPair(); err != nil || got != a || p.EarlyReleases() != 2 {
		t.Fatalf("AllocPair with only quarantined ports = %d, %v (early %d); want %d", got, err, p.EarlyReleases(), a)
	}
	if _, err := p.AllocSingle(); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "(4 in use, 0 in quarantine)") {
		t.Fatalf("AllocSingle with nothing left: %v", err)
	}
	if err := p.Release(a, 2); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Second)
	if got, err := p.AllocPair(); err != nil || got != a || p.EarlyReleases() != 2 {
		t.Fatalf("AllocPair after quarantine = %d, %v (early %d); want %d", got, err, p.EarlyReleases(), a)
	}
	// Releases queue in order and expire in order.
	if err := p.Release(b, 1); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Second)
	if err := p.Release(b+1, 1); err != nil {
		t.Fatal(err)
	}
	clk.advance(9 * time.Second)
	if p.Quarantined() != 1 || p.Free() != 1 {
		t.Errorf("after 10 s: quarantined %d, free %d; want 1, 1", p.Quarantined(), p.Free())
	}
	if got, err := p.AllocSingle(); err != nil || got != b {
		t.Errorf("AllocSingle = %d, %v; want %d", got, err, b)
	}
	clk.advance(time.Second)
	if p.Quarantined() != 0 || p.Free() != 1 {
		t.Errorf("after 11 s: quarantined %d, free %d; want 0, 1", p.Quarantined(), p.Free())
	}
	checkCounts(t, p)
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name    string
		port, n int
		err     error
		wantSub string
	}{
		{"pair", 110, 2, nil, ""},
		{"odd single", 111, 1, nil, ""},
		{"block of 4", 112, 4, nil, ""},
		{"whole range", 100, 20, nil, ""},
		{"last port", 119, 1, nil, ""},
		{"conflict", 104, 2, errInUse, "reserve 104-105: port in use: 105"},
		{"conflict later in block", 100, 8, errInUse, "in use: 105"},
		{"below range", 99, 2, errOutOfRange, "reserve 99-100: port out of range 100-119"},
		{"above range", 119, 2, errOutOfRange, "out of range"},
		{"zero count", 110, 0, errBadCount, "invalid port count 0"},
		{"negative count", 110, -1, errBadCount, "invalid port count"},
		{"too many", 100, 21, errBadCount, "invalid port count 21"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, 100, 119, seeded(1))
			if tt.err == errInUse {
				if err := p.Reserve(105, 1); err != nil {
					t.Fatal(err)
				}
			}
			before := p.Snapshot()
			err := p.Reserve(tt.port, tt.n)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Reserve(%d, %d): %v", tt.port, tt.n, err)
				}
				want := make([]int, 0, tt.n)
				for i := range tt.n {
					want = append(want, tt.port+i)
				}
				if got := p.Snapshot(); !slices.Equal(got, want) {
					t.Errorf("Snapshot() = %v, want %v", got, want)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("Reserve(%d, %d) = %v, want %v containing %q", tt.port, tt.n, err, tt.err, tt.wantSub)
			}
			if got := p.Snapshot(); !slices.Equal(got, before) {
				t.Errorf("failed Reserve changed the pool: %v -> %v", before, got)
			}
		})
	}
}

func TestReserveQuarantined(t *testing.T) {
	clk := newClock()
	p := mustNew(t, 100, 109, WithQuarantine(10*time.Second), WithClock(clk.now), seeded(1))
	if err := p.Reserve(100, 4); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(100, 4); err != nil {
		t.Fatal(err)
	}
	clk.advance(5 * time.Second)
	// Restore wins over quarantine.
	if err := p.Reserve(102, 2); err != nil {
		t.Fatalf("Reserve of quarantined ports: %v", err)
	}
	if p.Used() != 2 || p.Quarantined() != 2 {
		t.Errorf("used %d quarantined %d, want 2 2", p.Used(), p.Quarantined())
	}
	// Released again, 102-103 get a fresh quarantine: the old entry, due at
	// 10 s, must not free them early.
	if err := p.Release(102, 2); err != nil {
		t.Fatal(err)
	}
	clk.advance(5 * time.Second) // 10 s: 100-101 expire, 102-103 not
	if p.Quarantined() != 2 || p.Free() != 8 {
		t.Errorf("at 10 s: quarantined %d free %d, want 2 8", p.Quarantined(), p.Free())
	}
	for range 3 {
		if rtp, err := p.AllocPair(); err != nil || rtp == 102 {
			t.Fatalf("AllocPair = %d, %v: quarantined pair handed out", rtp, err)
		}
	}
	clk.advance(5 * time.Second)
	if rtp, err := p.AllocPair(); err != nil || rtp != 102 {
		t.Errorf("AllocPair after the second quarantine = %d, %v; want 102", rtp, err)
	}
	checkCounts(t, p)
}

func TestReleaseErrors(t *testing.T) {
	clk := newClock()
	p := mustNew(t, 100, 109, WithQuarantine(time.Second), WithClock(clk.now), seeded(1))
	rtp, _ := p.AllocPair()
	if err := p.Release(rtp+2, 1); !errors.Is(err, errNotAllocated) || !strings.Contains(err.Error(), "102 is free") {
		t.Errorf("release of a free port: %v", err)
	}
	if err := p.Release(rtp, 3); !errors.Is(err, errNotAllocated) {
		t.Errorf("release of a block with a free port: %v", err)
	}
	if p.Used() != 2 {
		t.Errorf("failed release changed Used() to %d", p.Used())
	}
	if err := p.Release(rtp, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(rtp, 2); !errors.Is(err, errNotAllocated) || !strings.Contains(err.Error(), "in quarantine") {
		t.Errorf("double release: %v", err)
	}
	clk.advance(time.Second)
	if err := p.Release(rtp, 1); !errors.Is(err, errNotAllocated) {
		t.Errorf("release after quarantine: %v", err)
	}
	if err := p.Release(99, 1); !errors.Is(err, errOutOfRange) {
		t.Errorf("release out of range: %v", err)
	}
	if err := p.Release(100, 0); !errors.Is(err, errBadCount) {
		t.Errorf("release of 0 ports: %v", err)
	}
	checkCounts(t, p)
}

// TestRandomized runs random operation sequences against a simple model.
func TestRandomized(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		clk := newClock()
		lo := 1 + rng.IntN(200)
		hi := lo + rng.IntN(300)
		quar := time.Duration(rng.IntN(3)) * time.Second
		p := mustNew(t, lo, hi, WithQuarantine(quar), WithClock(clk.now), seeded(seed))

		allocated := map[int]bool{}
		quarantined := map[int]time.Time{} // port -> free again at
		early := 0
		inQuarantine := func(port int) bool {
			until, ok := quarantined[port]
			return ok && clk.t.Before(until)
		}
		freePair, freeAny := func() bool {
			for port := lo + lo%2; port+1 <= hi; port += 2 {
				if !allocated[port] && !allocated[port+1] && !inQuarantine(port) && !inQuarantine(port+1) {
					return true
				}
			}
			return false
		}, func() bool {
			for port := lo; port <= hi; port++ {
				if !allocated[port] && !inQuarantine(port) {
					return true
				}
			}
			return false
		}
		// takeNew checks a handed-out block: never an allocated port, and a
		// quarantined one only when nothing free was left (early release).
		takeNew := func(port, n int, hadFree bool) {
			for i := range n {
				if allocated[port+i] || (hadFree && inQuarantine(port+i)) {
					t.Fatalf("seed %d: port %d handed out while in use", seed, port+i)
				}
				allocated[port+i] = true
				delete(quarantined, port+i)
			}
		}

		for step := range 3000 {
			switch op := rng.IntN(10); {
			case op < 3:
				hadFree := freePair()
				rtp, err := p.AllocPair()
				if err != nil {
					if !errors.Is(err, ErrExhausted) || freePair() {
						t.Fatalf("seed %d step %d: AllocPair: %v (model has a free pair: %v)", seed, step, err, freePair())
					}
					break
				}
				if rtp%2 != 0 || rtp < lo || rtp+1 > hi {
					t.Fatalf("seed %d: bad pair %d in %d-%d", seed, rtp, lo, hi)
				}
				takeNew(rtp, 2, hadFree)
			case op < 5:
				hadFree := freeAny()
				port, err := p.AllocSingle()
				if err != nil {
					if !errors.Is(err, ErrExhausted) || freeAny() {
						t.Fatalf("seed %d step %d: AllocSingle: %v", seed, step, err)
					}
					break
				}
				takeNew(port, 1, hadFree)
			case op < 6:
				n := 1 + rng.IntN(3)
				port := lo + rng.IntN(hi-lo+1)
				err := p.Reserve(port, n)
				ok := port+n-1 <= hi
				for i := 0; ok && i < n; i++ {
					ok = !allocated[port+i]
				}
				if (err == nil) != ok {
					t.Fatalf("seed %d step %d: Reserve(%d, %d) = %v, model says ok=%v", seed, step, port, n, err, ok)
				}
				if err == nil {
					for i := range n {
						allocated[port+i] = true
						delete(quarantined, port+i)
					}
				}
			case op < 9:
				port := lo + rng.IntN(hi-lo+1)
				n := 1 + rng.IntN(2)
				err := p.Release(port, n)
				ok := port+n-1 <= hi
				for i := 0; ok && i < n; i++ {
					ok = allocated[port+i]
				}
				if (err == nil) != ok {
					t.Fatalf("seed %d step %d: Release(%d, %d) = %v, model says ok=%v", seed, step, port, n, err, ok)
				}
				if err == nil {
					for i := range n {
						delete(allocated, port+i)
						quarantined[port+i] = clk.t.Add(quar)
					}
				}
			default:
				clk.advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}

			// An early release ended the quarantine of the oldest ports: the
			// model forgets as many of its oldest quarantined ports.
			if e := p.EarlyReleases(); e > early {
				early = e
				for {
					q := 0
					oldest, at := -1, time.Time{}
					for port, until := range quarantined {
						if inQuarantine(port) {
							q++
							if oldest < 0 || until.Before(at) || (until.Equal(at) && port < oldest) {
								oldest, at = port, until
							}
						}
					}
					if q <= p.Quarantined() {
						break
					}
					delete(quarantined, oldest)
				}
			}
			q := 0
			for port := range quarantined {
				if inQuarantine(port) {
					q++
				}
			}
			if p.Used() != len(allocated) || p.Quarantined() != q {
				t.Fatalf("seed %d step %d: used %d quarantined %d, model %d %d", seed, step, p.Used(), p.Quarantined(), len(allocated), q)
			}
			checkCounts(t, p)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := mustNew(t, 30000, 30999) // real random source; no quarantine, so counts are stable
	done := make(chan map[int]bool)
	for range 4 {
		go func() {
			mine := map[int]bool{}
			for range 2000 {
				rtp, err := p.AllocPair()
				if err != nil {
					continue
				}
				mine[rtp] = true
				if len(mine) > 50 {
					for port := range mine {
						if p.Release(port, 2) != nil {
							t.Error("release failed")
						}
						delete(mine, port)
						break
					}
				}
			}
			done <- mine
		}()
	}
	total := 0
	for range 4 {
		total += 2 * len(<-done)
	}
	if p.Used() != total {
		t.Errorf("Used() = %d, goroutines hold %d", p.Used(), total)
	}
	checkCounts(t, p)
}

func BenchmarkAllocRelease(b *testing.B) {
	for _, bc := range []struct {
		name string
		fill float64
		quar time.Duration
	}{
		{"fill=50%", 0.50, 0},
		{"fill=95%", 0.95, 0},
		{"fill=95%/quarantine", 0.95, 100 * time.Millisecond},
		{"one_free_pair", 1 - 2.5/10001, 0}, // worst case: the scan crosses the whole range
	} {
		b.Run(bc.name, func(b *testing.B) {
			clk := newClock()
			p := mustNew(b, 30000, 40000, WithQuarantine(bc.quar), WithClock(clk.now), seeded(1))
			// Fill completely, then free random pairs down to the target, so
			// the free pairs are scattered over the range.
			var pairs []int
			for {
				rtp, err := p.AllocPair()
				if err != nil {
					break
				}
				pairs = append(pairs, rtp)
			}
			rng := rand.New(rand.NewPCG(2, 3))
			rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
			for float64(p.Used()) > bc.fill*float64(p.Size()) {
				if err := p.Release(pairs[0], 2); err != nil {
					b.Fatal(err)
				}
				pairs = pairs[1:]
			}
			clk.advance(time.Hour)
			b.ReportAllocs()
			ops := 0
			for b.Loop() {
				rtp, err := p.AllocPair()
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Release(rtp, 2); err != nil {
					b.Fatal(err)
				}
				clk.advance(time.Millisecond) // 100 pairs in quarantine with quarantine on
				ops++
			}
			b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
