package portstock

// What portd announces: a new run (its leases are void) and revoked pairs.

import (
	"context"
	"net/netip"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// Follow drops the stock whenever portd announces a new run (its leases
// died with the old one), and drops the pairs portd revokes from this
// holder (a restored call took them), until ctx ends.
func (s *Stock) Follow(c *bus.Conn) error {
	started, err := bus.Subscribe(c, portdapi.StartedEvent, func(_ string, st portdapi.Started) { s.seeInstance(st.Instance) })
	if err != nil {
		return err
	}
	revoked, err := bus.Subscribe(c, portdapi.RevokedEvent, func(_ string, r portdapi.Revoked) {
		if r.Holder == s.holder {
			s.revoke(r.Pairs)
		}
	})
	if err != nil {
		_ = started.Unsubscribe()
		return err
	}
	context.AfterFunc(s.ctx, func() {
		_ = started.Unsubscribe()
		_ = revoked.Unsubscribe()
	})
	return nil
}

// revokedMemory is how many revoked generations a Stock remembers.
const revokedMemory = 1024

// revoke removes the given pairs (by RTP address; by generation too when
// both name one) from the stock. A revoked pair already taken is out of
// the stock's hands: see portd's revoke for that accepted race.
func (s *Stock) revoke(pairs []portdapi.Pair) {
	if len(pairs) == 0 {
		return
	}
	gone := make(map[netip.AddrPort]uint64, len(pairs))
	for _, p := range pairs {
		gone[p.RTP] = p.Gen
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range pairs {
		if p.Gen == 0 || s.revoked[p.Gen] {
			continue
		}
		if len(s.revokedFIFO) == revokedMemory {
			delete(s.revoked, s.revokedFIFO[0])
			s.revokedFIFO = s.revokedFIFO[1:]
		}
		s.revoked[p.Gen] = true
		s.revokedFIFO = append(s.revokedFIFO, p.Gen)
	}
	n := 0
	for k, ps := range s.pairs {
		kept := ps[:0]
		for _, p := range ps {
			if gen, ok := gone[p.RTP]; ok && (gen == 0 || p.Gen == 0 || gen == p.Gen) {
				n++
				continue
			}
			kept = append(kept, p)
		}
		s.pairs[k] = kept
	}
	if n > 0 {
		s.opts.Log.Info("leased ports revoked by portd (a restored call uses them)", "pairs", n)
	}
}

// seeInstance empties the stock if inst is a new run of portd.
func (s *Stock) seeInstance(inst string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst == "" || inst == s.instance {
		return
	}
	if s.instance != "" {
		n := 0
		for k, ps := range s.pairs {
			n += len(ps)
			delete(s.pairs, k)
		}
		s.opts.Log.Info("portd restarted; dropped the leases of its earlier run", "pairs", n)
	}
	s.instance = inst
}
