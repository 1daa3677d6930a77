// Package portstock is ng-ctl's stock of media ports: pairs pre-bound by
// portd and leased ahead of demand, so that an offer takes its ports
// without waiting on another process. It refills in the background, grows
// when it runs empty, gives dropped pairs back in batches, and follows
// portd's started and revoked events.
package portstock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// Options tunes a Stock.
type Options struct {
	// Low is the stock level per interface and family below which a refill
	// starts; Batch how many pairs one refill asks for. Both are the
	// starting values: each time a stock runs empty (a Take had to wait on
	// portd) they double, up to MaxScale times, and they halve again after
	// each 10 s without running empty (ScaleDecay), so that the stock
	// covers the refill's round trip at the rate calls arrive.
	Low, Batch int
	// MaxScale bounds that growth (default 16). However it grows, a
	// refill asks for at most a sixteenth of the address's range and the
	// threshold is one such refill (never below Batch and Low): a stock
	// starts a refill while it still holds a whole refill's worth, which
	// covers portd's slower leases under load (20-40 ms at 3 500 calls a
	// second), and it does not hoard the ports that calls need.
	MaxScale int
	// ScaleDecay is how long a stock must not run empty before its scale
	// halves (default 10 s).
	ScaleDecay time.Duration
	// Timeout bounds one lease request.
	Timeout time.Duration
	// FreeDelay is how long the pairs given to Free wait, gathered, before
	// one portd.free message carries them all (default 10 ms), and
	// FreeBatch how many make it go at once (default 128). A dropped pair
	// goes into quarantine at portd anyway, so a few milliseconds more
	// cost nothing, and at a few thousand calls a second one message per
	// call was a bus delivery and a decode in portd each.
	FreeDelay time.Duration
	FreeBatch int
	// MaxWaiting is how many Takes may wait at once for ports that are
	// not in stock (default 16); one more fails at once with ErrBusy. The
	// ng server runs a bounded number of requests at a time, and offers
	// waiting on a portd that does not answer must leave room for the
	// requests that need no port (delete, ping, query).
	MaxWaiting int
	Log        *slog.Logger
}

// ErrBusy is what Take returns when MaxWaiting Takes already wait for
// ports.
var ErrBusy = errors.New("port stock empty and too many offers already waiting for ports")

// Stock is the lease holder's side (ng-ctl's): pre-bound pairs leased from
// portd ahead of demand, so that taking one waits on no other process. It
// refills in the background when a stock runs low.
type Stock struct {
	conn   *bus.Conn
	holder string
	opts   Options

	mu       sync.Mutex
	pairs    map[stockKey][]portdapi.Pair
	refills  map[stockKey]*inflight // refills on their way (none: absent)
	scale    map[stockKey]int       // current multiple of Low and Batch (1 when absent)
	lastMiss map[stockKey]time.Time // when the stock last ran empty, or last shrank
	misses   uint64                 // Takes that found the stock empty
	waiting  int                    // Takes waiting for ports now
	capacity map[stockKey]int       // pairs in the range, as portd last said
	lastErr  map[stockKey]error
	defaults map[int]string // family → default interface name
	instance string         // the portd run the stock's pairs come from
	// revoked remembers the generations of recently revoked pairs (at most
	// revokedMemory, oldest first out), for a refill whose reply crosses
	// the revocation of one of its pairs.
	revoked     map[uint64]bool
	revokedFIFO []uint64
	// freeing gathers the pairs of Free calls until the next flush, which
	// freeTimer (when not nil) is set for.
	freeing   []portdapi.Pair
	freeTimer *time.Timer
	wg        sync.WaitGroup
	ctx       context.Context
}

// inflight are the refills of one stock on their way: n of them (1 to
// maxRefills), and landed, closed when the next of them ends.
type inflight struct {
	n      int
	landed chan struct{}
}

type stockKey struct {
	iface  string
	family int
	single bool
}

// New returns an empty stock for holder; ctx bounds its background
// refills.
func New(ctx context.Context, c *bus.Conn, holder string, opts Options) *Stock {
	if opts.Low <= 0 {
		opts.Low = 16
	}
	if opts.Batch <= 0 {
		opts.Batch = 32
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxScale <= 0 {
		opts.MaxScale = 16
	}
	if opts.ScaleDecay <= 0 {
		opts.ScaleDecay = 10 * time.Second
	}
	if opts.FreeDelay <= 0 {
		opts.FreeDelay = 10 * time.Millisecond
	}
	if opts.FreeBatch <= 0 {
		opts.FreeBatch = 128
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 16
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Stock{conn: c, holder: holder, opts: opts, ctx: ctx, defaults: map[int]string{},
		pairs: map[stockKey][]portdapi.Pair{}, refills: map[stockKey]*inflight{}, lastErr: map[stockKey]error{}, revoked: map[uint64]bool{},
		scale: map[stockKey]int{}, lastMiss: map[stockKey]time.Time{}, capacity: map[stockKey]int{}}
}

// Init learns portd's interfaces (which one is each family's default).
func (s *Stock) Init(ctx context.Context) error {
	l, err := bus.Request(ctx, s.conn, portdapi.ListEndpoint, api.Empty{})
	if err != nil {
		return fmt.Errorf("port stock: %w", err)
	}
	s.seeInstance(l.Instance)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ifc := range l.Interfaces {
		for _, a := range ifc.Addresses {
			fam := familyOf(a.Local)
			if _, ok := s.defaults[fam]; !ok {
				s.defaults[fam] = ifc.Name
			}
		}
	}
	return nil
}

func familyOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// key names the stock of iface (empty: the family's default), family and
// kind (pairs, or single ports for rtcp-mux).
func (s *Stock) key(iface string, family int, single bool) stockKey {
	if iface == "" {
		if d, ok := s.defaults[family]; ok {
			iface = d
		}
	}
	return stockKey{iface, family, single}
}

// Return gives every lease of the holder that no call uses back to portd:
// a holder calls it when it starts, for the stock an earlier run of it held.
func (s *Stock) Return(ctx context.Context) (int, error) {
	r, err := bus.Request(ctx, s.conn, portdapi.ReturnEndpoint, portdapi.ReturnRequest{Holder: s.holder, All: true})
	if err != nil {
		return 0, fmt.Errorf("return leases: %w", err)
	}
	return r.Returned, nil
}

// Take returns a pair (a single port if single) of the interface (empty:
// the family's default) and family from stock. When the stock is empty
// (a miss: the stock grows, see Options) it waits on portd: for the
// refill on its way, or if that brought nothing, for a lease of one.
func (s *Stock) Take(ctx context.Context, iface string, family int, single bool) (portdapi.Pair, error) {
	s.mu.Lock()
	k := s.key(iface, family, single)
	if p, ok := s.popLocked(k); ok {
		s.mu.Unlock()
		return p, nil
	}
	s.misses++
	if sc := max(s.scale[k], 1); sc < s.opts.MaxScale {
		s.scale[k] = min(2*sc, s.opts.MaxScale)
	}
	s.lastMiss[k] = time.Now()
	s.refillLocked(k)
	if s.waiting >= s.opts.MaxWaiting {
		s.mu.Unlock()
		return portdapi.Pair{}, ErrBusy
	}
	s.waiting++
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	// A refill on its way brings a batch: wait for it rather than queue a
	// lease of one behind it at portd.
	if r := s.refills[k]; r != nil {
		done := r.landed
		s.mu.Unlock()
		t := time.NewTimer(s.opts.Timeout)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		if p, ok := s.popLocked(k); ok {
			s.mu.Unlock()
			return p, nil
		}
		if err := s.lastErr[k]; err != nil {
			// The refill failed (after portd's LeaseWait when the range has
			// no usable port): a lease of one now would wait as long again.
			s.mu.Unlock()
			return portdapi.Pair{}, err
		}
	}
	s.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	r, err := bus.Request(lctx, s.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: s.holder, Interface: k.iface, Family: family, Count: 1, Single: single})
	if err != nil {
		return portdapi.Pair{}, err
	}
	if len(r.Pairs) == 0 {
		return portdapi.Pair{}, errors.New("portd granted no pair")
	}
	s.seeInstance(r.Instance)
	return r.Pairs[0], nil
}

// popLocked takes a pair from k's stock, if it has one, and starts a refill
// when the stock is low.
func (s *Stock) popLocked(k stockKey) (portdapi.Pair, bool) {
	ps := s.pairs[k]
	if len(ps) == 0 {
		return portdapi.Pair{}, false
	}
	p := ps[len(ps)-1]
	s.pairs[k] = ps[:len(ps)-1]
	s.refillLocked(k)
	return p, true
}

// Put gives back a pair that was taken but not used (for example an offer
// that failed after taking its ports). A pair revoked meanwhile is not
// kept.
func (s *Stock) Put(p portdapi.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked[p.Gen] {
		return
	}
	k := stockKey{p.Interface, familyOf(p.RTP.Addr()), !p.RTCP.IsValid()}
	s.pairs[k] = append(s.pairs[k], p)
}

// Warm fills the stock of iface/family/kind now.
func (s *Stock) Warm(ctx context.Context, iface string, family int, single bool) error {
	s.mu.Lock()
	k := s.key(iface, family, single)
	s.mu.Unlock()
	return s.refill(ctx, k, s.opts.Batch)
}

// Level is how many pairs (single ports if single) of iface/family are in
// stock.
func (s *Stock) Level(iface string, family int, single bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pairs[s.key(iface, family, single)])
}

// Misses is how many Takes found their stock empty and waited on portd.
func (s *Stock) Misses() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.misses
}

// Scale is the current multiple of Low and Batch of iface/family's stock.
func (s *Stock) Scale(iface string, family int, single bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.scale[s.key(iface, family, single)], 1)
}

// scaleLocked is k's current scale, halved first if k has not run empty
// for ScaleDecay.
func (s *Stock) scaleLocked(k stockKey) int {
	sc := max(s.scale[k], 1)
	if sc > 1 && time.Since(s.lastMiss[k]) >= s.opts.ScaleDecay {
		sc /= 2
		s.scale[k] = sc
		s.lastMiss[k] = time.Now()
	}
	return sc
}

// sizesLocked is k's refill threshold and batch: Low and Batch times its
// scale, capped by the range.
func (s *Stock) sizesLocked(k stockKey) (low, batch int) {
	sc := s.scaleLocked(k)
	low, batch = s.opts.Low*sc, s.opts.Batch*sc
	if c := s.capacity[k]; c > 0 {
		batch = min(batch, max(s.opts.Batch, c/16))
		low = min(low, max(s.opts.Low, batch))
	}
	return low, batch
}

// Wait waits for the background refills to end and sends the frees
// still gathered (at shutdown).
func (s *Stock) Wait() {
	s.wg.Wait()
	s.FlushFree()
}

// maxRefills is how many refills of one stock may be on their way at once.
const maxRefills = 2

// refillLocked starts a refill of k's stock when it is below its
// threshold, and a second one while the first is on its way when it falls
// below half the threshold: under load portd answers a lease late (it runs
// behind the request path, see proctune.BackgroundNice) more than slowly, and
// two requests wait out that delay together.
func (s *Stock) refillLocked(k stockKey) {
	r := s.refills[k]
	if (r != nil && r.n >= maxRefills) || s.ctx.Err() != nil {
		return
	}
	low, batch := s.sizesLocked(k)
	if lvl := len(s.pairs[k]); lvl >= low || (r != nil && lvl >= low/2) {
		return
	}
	if r == nil {
		r = &inflight{landed: make(chan struct{})}
		s.refills[k] = r
	}
	r.n++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.refill(s.ctx, k, batch)
		s.mu.Lock()
		close(r.landed)
		if r.n--; r.n > 0 {
			r.landed = make(chan struct{})
		} else {
			delete(s.refills, k)
		}
		prev := s.lastErr[k]
		s.lastErr[k] = err
		s.mu.Unlock()
		if err != nil && (prev == nil || prev.Error() != err.Error()) {
			s.opts.Log.Warn("port lease refill failed", "interface", k.iface, "family", k.family, "err", err)
		}
	}()
}

// refill leases n pairs for k's stock.
func (s *Stock) refill(ctx context.Context, k stockKey, n int) error {
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	r, err := bus.Request(lctx, s.conn, portdapi.LeaseEndpoint, portdapi.LeaseRequest{Holder: s.holder, Interface: k.iface, Family: k.family, Count: n, Single: k.single})
	if err != nil {
		return err
	}
	s.seeInstance(r.Instance)
	s.mu.Lock()
	if r.Capacity > 0 {
		s.capacity[k] = r.Capacity
	}
	if r.Instance == s.instance {
		for _, p := range r.Pairs {
			if !s.revoked[p.Gen] { // revoked while the reply was on its way
				s.pairs[k] = append(s.pairs[k], p)
			}
		}
	}
	s.mu.Unlock()
	return nil
}
