package portstock_test

import (
	"context"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/ngctl/portstock"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

func TestStockServesFromLeasesAndRefills(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--interface=v6/::1", "--port-min=37500", "--port-max=37999")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 8, Batch: 16, Log: testutil.Logger(t)})
	if err := st.Init(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if err := st.Follow(n.conn); err != nil {
		t.Fatal(err)
	}
	if err := st.Warm(n.ctx(), "", 4, false); err != nil {
		t.Fatal(err)
	}
	if st.Level("", 4, false) != 16 || st.Level("default", 4, false) != 16 {
		t.Fatalf("level after warm: %d", st.Level("", 4, false))
	}
	seen := map[netip.AddrPort]bool{}
	for i := 0; i < 100; i++ {
		p, err := st.Take(n.ctx(), "", 4, false)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p.RTP] {
			t.Fatalf("pair %s taken twice", p.RTP)
		}
		seen[p.RTP] = true
	}
	p6, err := st.Take(n.ctx(), "v6", 6, false)
	if err != nil || !p6.RTP.Addr().Is6() {
		t.Fatalf("v6 take: %+v %v", p6, err)
	}
	seen[p6.RTP] = true
	// The stock refills itself in the background.
	deadline := time.Now().Add(5 * time.Second)
	for st.Level("", 4, false) < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("stock not refilled: %d", st.Level("", 4, false))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// portd restarts: the stock hears the new run and drops its pairs; a
	// take then leases from the new run.
	_ = n.portd.Signal(syscall.SIGKILL)
	_, _ = n.portd.Wait(5 * time.Second)
	n.startPortd()
	deadline = time.Now().Add(5 * time.Second)
	for st.Level("", 4, false) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stock not dropped after portd restarted: %d", st.Level("", 4, false))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
		t.Fatalf("take after portd restarted: %v", err)
	}
	// Let the refill land, then a restarted holder gives back what the stock
	// held: every lease of the holder that no call uses.
	for prev := -1; ; {
		time.Sleep(300 * time.Millisecond)
		cur := st.Level("", 4, false) + st.Level("v6", 6, false)
		if cur == prev {
			break
		}
		prev = cur
	}
	held := st.Level("", 4, false) + 1 // and the pair taken above, not used by a call
	cancel()
	st.Wait()
	st2 := portstock.New(context.Background(), n.conn, "ng-ctl", portstock.Options{})
	got, err := st2.Return(n.ctx())
	if err != nil || got != held {
		t.Fatalf("returned %d (%v), the stock held %d", got, err, held)
	}
	if l := n.list().Interfaces; l[0].Addresses[0].Leased != 0 {
		t.Fatalf("leases left after return: %+v", l)
	}
}

// A stock that runs empty grows (twice the refill and threshold per miss,
// up to MaxScale) and shrinks again once it has not run empty for
// ScaleDecay.
func TestStockGrowsWhenItRunsEmpty(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=36000", "--port-max=36999")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 2, Batch: 4, MaxScale: 4,
		ScaleDecay: 300 * time.Millisecond, Log: testutil.Logger(t)})
	if err := st.Init(n.ctx()); err != nil {
		t.Fatal(err)
	}
	waitLevel := func(min int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for st.Level("", 4, false) < min {
			if time.Now().After(deadline) {
				t.Fatalf("stock level %d, want at least %d", st.Level("", 4, false), min)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Empty: the first take counts a miss, doubles the scale and waits for
	// the refill it starts, of 2×4 pairs, taking one of them.
	if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
		t.Fatal(err)
	}
	if st.Misses() != 1 || st.Scale("", 4, false) != 2 {
		t.Fatalf("after a miss: misses %d, scale %d; want 1, 2", st.Misses(), st.Scale("", 4, false))
	}
	waitLevel(7)
	// Drain it and miss again: scale 4, refill 16; a third miss stays at
	// MaxScale.
	for round, want := range []int{4, 4} {
		for st.Level("", 4, false) > 0 {
			if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
				t.Fatal(err)
			}
		}
		// Taking from a stock below its threshold starts a refill; wait
		// for it to land and drain again until a take finds it empty.
		misses := st.Misses()
		for st.Misses() == misses {
			if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := st.Scale("", 4, false); got != want {
			t.Fatalf("round %d: scale %d, want %d", round, got, want)
		}
	}
	waitLevel(7) // a refill may have been on its way with the smaller batch
	// No miss for ScaleDecay: the next refill decision halves the scale.
	time.Sleep(400 * time.Millisecond)
	if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
		t.Fatal(err)
	}
	if got := st.Scale("", 4, false); got != 2 {
		t.Fatalf("after %s without a miss: scale %d, want 2", 300*time.Millisecond, got)
	}
}

// However much a stock grows, it keeps a small part of the range: a refill
// asks for at most a sixteenth of it, and the threshold is one such refill.
func TestStockGrowthCappedByRange(t *testing.T) {
	// 100 pairs: refills of at most 6, threshold 6.
	n := newNode(t, "--interface=127.0.0.1", "--port-min=38000", "--port-max=38199")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 2, Batch: 4, MaxScale: 16,
		ScaleDecay: time.Hour, Log: testutil.Logger(t)})
	if err := st.Init(n.ctx()); err != nil {
		t.Fatal(err)
	}
	var taken []portdapi.Pair
	for st.Scale("", 4, false) < 16 && len(taken) < 80 {
		misses := st.Misses()
		for st.Misses() == misses && len(taken) < 80 {
			p, err := st.Take(n.ctx(), "", 4, false)
			if err != nil {
				t.Fatal(err)
			}
			taken = append(taken, p)
		}
	}
	if st.Scale("", 4, false) != 16 {
		t.Fatalf("scale %d after %d takes, want 16", st.Scale("", 4, false), len(taken))
	}
	time.Sleep(300 * time.Millisecond) // let a refill on its way land
	// At most threshold-1 left when the last refill started, plus its 6;
	// or half the threshold less one when a second refill started with
	// the first on its way, plus both.
	if lvl := st.Level("", 4, false); lvl > max(5+6, 2+2*6) {
		t.Fatalf("stock of %d pairs from a range of 100 at scale 16 (uncapped: 64 per refill)", lvl)
	}
}

// TestStockFreesInBatches: the pairs of several Free calls reach portd in
// one portd.free message, FreeBatch at once or what has gathered after
// FreeDelay, and portd releases every one of them.
func TestStockFreesInBatches(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=37000", "--port-max=37199")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 4, Batch: 16,
		FreeDelay: 200 * time.Millisecond, FreeBatch: 4, Log: testutil.Logger(t)})
	if err := st.Init(n.ctx()); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan int, 16)
	sub, err := bus.Subscribe(n.conn, portdapi.FreeEvent, func(_ string, f portdapi.Free) { msgs <- len(f.Pairs) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	var taken []portdapi.Pair
	for range 10 {
		p, err := st.Take(n.ctx(), "", 4, false)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, p)
	}
	leased := func() int { return n.list().Interfaces[0].Addresses[0].Leased }
	before := leased()
	for i := 0; i < 20; i++ { // until the refills the takes started have landed
		time.Sleep(100 * time.Millisecond)
		cur := leased()
		if cur == before {
			break
		}
		before = cur
	}
	start := time.Now()
	for _, p := range taken {
		st.Free([]portdapi.Pair{p})
	}
	var sizes []int
	for len(sizes) < 3 {
		select {
		case k := <-msgs:
			sizes = append(sizes, k)
		case <-time.After(5 * time.Second):
			t.Fatalf("free messages %v, want 3", sizes)
		}
	}
	if want := []int{4, 4, 2}; !slices.Equal(sizes, want) {
		t.Fatalf("free messages carried %v pairs, want %v", sizes, want)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("the last two pairs went after %v, want them held about FreeDelay (200ms)", waited)
	}
	deadline := time.Now().Add(5 * time.Second)
	for leased() != before-10 {
		if time.Now().After(deadline) {
			t.Fatalf("leased %d after the frees, want %d", leased(), before-10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// FlushFree (at shutdown: Wait) sends what has gathered at once.
	p, err := st.Take(n.ctx(), "", 4, false)
	if err != nil {
		t.Fatal(err)
	}
	st.Free([]portdapi.Pair{p})
	st.Wait()
	select {
	case k := <-msgs:
		if k != 1 {
			t.Fatalf("flushed free carried %d pairs, want 1", k)
		}
	case <-time.After(150 * time.Millisecond):
		t.Fatal("Wait did not send the gathered free")
	}
}

// TestStockSecondRefillWhileFirstIsLate: with a refill on its way (portd
// stopped, answering late), a stock that falls below half its threshold
// asks for a second batch; both land.
func TestStockSecondRefillWhileFirstIsLate(t *testing.T) {
	n := newNode(t, "--interface=127.0.0.1", "--port-min=36000", "--port-max=36399")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := portstock.New(ctx, n.conn, "ng-ctl", portstock.Options{Low: 8, Batch: 16, MaxScale: 1, Log: testutil.Logger(t)})
	if err := st.Init(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if err := st.Warm(n.ctx(), "", 4, false); err != nil {
		t.Fatal(err)
	}
	if err := n.portd.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = n.portd.Signal(syscall.SIGCONT)
		}
	}()
	for range 13 { // 16 → 7 (below 8: the first refill) → 3 (below 4: the second)
		if _, err := st.Take(n.ctx(), "", 4, false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := n.portd.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	deadline := time.Now().Add(5 * time.Second)
	for st.Level("", 4, false) < 3+2*16 {
		if time.Now().After(deadline) {
			t.Fatalf("stock at %d, want %d: 3 left and two batches of 16", st.Level("", 4, false), 3+2*16)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if lvl := st.Level("", 4, false); lvl != 3+2*16 {
		t.Fatalf("stock at %d after the refills, want %d (no third)", lvl, 3+2*16)
	}
}
