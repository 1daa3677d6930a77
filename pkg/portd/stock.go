package portd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// StockOptions tunes a Stock.
type StockOptions struct {
	// Low is the stock level per interface and family below which a refill
	// starts; Batch how many pairs one refill asks for.
	Low, Batch int
	// Timeout bounds one lease request.
	Timeout time.Duration
	Log     *slog.Logger
}

// Stock is the lease holder's side (ng-ctl's): pre-bound pairs leased from
// portd ahead of demand, so that taking one waits on no other process. It
// refills in the background when a stock runs low.
type Stock struct {
	client Client
	holder string
	opts   StockOptions

	mu        sync.Mutex
	pairs     map[stockKey][]Pair
	refilling map[stockKey]bool
	lastErr   map[stockKey]error
	defaults  map[int]string // family → default interface name
	wg        sync.WaitGroup
	ctx       context.Context
}

type stockKey struct {
	iface  string
	family int
	single bool
}

// NewStock returns an empty stock for holder; ctx bounds its background
// refills.
func NewStock(ctx context.Context, c Client, holder string, opts StockOptions) *Stock {
	if opts.Low <= 0 {
		opts.Low = 16
	}
	if opts.Batch <= 0 {
		opts.Batch = 32
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Stock{client: c, holder: holder, opts: opts, ctx: ctx, defaults: map[int]string{},
		pairs: map[stockKey][]Pair{}, refilling: map[stockKey]bool{}, lastErr: map[stockKey]error{}}
}

// Init learns portd's interfaces (which one is each family's default).
func (s *Stock) Init(ctx context.Context) error {
	l, err := s.client.List(ctx)
	if err != nil {
		return fmt.Errorf("port stock: %w", err)
	}
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

// Adopt takes over the holder's leases recorded in node state (after a
// restart of the holder) that inUse does not claim; they go back into
// stock under the interface they were leased on.
func (s *Stock) Adopt(ctx context.Context, leases *nodestate.Table[LeaseRecord], inUse func(netip.AddrPort) bool) (int, error) {
	recs, err := leases.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("adopt leases: %w", err)
	}
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if r.Value.Holder != s.holder || (inUse != nil && inUse(r.Value.Pair.RTP)) {
			continue
		}
		k := stockKey{r.Value.Pair.Interface, familyOf(r.Value.Pair.RTP.Addr()), !r.Value.Pair.RTCP.IsValid()}
		s.pairs[k] = append(s.pairs[k], r.Value.Pair)
		n++
	}
	return n, nil
}

// Take returns a pair (a single port if single) of the interface (empty:
// the family's default) and family from stock. When the stock is empty it
// leases synchronously (the slow path, which waits on portd).
func (s *Stock) Take(ctx context.Context, iface string, family int, single bool) (Pair, error) {
	s.mu.Lock()
	k := s.key(iface, family, single)
	if ps := s.pairs[k]; len(ps) > 0 {
		p := ps[len(ps)-1]
		s.pairs[k] = ps[:len(ps)-1]
		s.refillLocked(k)
		s.mu.Unlock()
		return p, nil
	}
	s.refillLocked(k)
	s.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	r, err := s.client.Lease(lctx, LeaseRequest{Holder: s.holder, Interface: k.iface, Family: family, Count: 1, Single: single})
	if err != nil {
		return Pair{}, err
	}
	if len(r.Pairs) == 0 {
		return Pair{}, errors.New("portd granted no pair")
	}
	return r.Pairs[0], nil
}

// Put gives back a pair that was taken but not used (for example an offer
// that failed after taking its ports).
func (s *Stock) Put(p Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := stockKey{p.Interface, familyOf(p.RTP.Addr()), !p.RTCP.IsValid()}
	s.pairs[k] = append(s.pairs[k], p)
}

// Warm fills the stock of iface/family/kind now.
func (s *Stock) Warm(ctx context.Context, iface string, family int, single bool) error {
	s.mu.Lock()
	k := s.key(iface, family, single)
	s.mu.Unlock()
	return s.refill(ctx, k)
}

// Level is how many pairs (single ports if single) of iface/family are in
// stock.
func (s *Stock) Level(iface string, family int, single bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pairs[s.key(iface, family, single)])
}

// Wait waits for the background refills to end (at shutdown).
func (s *Stock) Wait() { s.wg.Wait() }

func (s *Stock) refillLocked(k stockKey) {
	if len(s.pairs[k]) >= s.opts.Low || s.refilling[k] || s.ctx.Err() != nil {
		return
	}
	s.refilling[k] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.refill(s.ctx, k)
		s.mu.Lock()
		s.refilling[k] = false
		prev := s.lastErr[k]
		s.lastErr[k] = err
		s.mu.Unlock()
		if err != nil && (prev == nil || prev.Error() != err.Error()) {
			s.opts.Log.Warn("port lease refill failed", "interface", k.iface, "family", k.family, "err", err)
		}
	}()
}

func (s *Stock) refill(ctx context.Context, k stockKey) error {
	lctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	r, err := s.client.Lease(lctx, LeaseRequest{Holder: s.holder, Interface: k.iface, Family: k.family, Count: s.opts.Batch, Single: k.single})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pairs[k] = append(s.pairs[k], r.Pairs...)
	s.mu.Unlock()
	return nil
}
