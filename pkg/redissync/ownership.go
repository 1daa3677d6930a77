package redissync

// Ownership: taking foreign calls over, standing by, and following
// rtp-fwd's activity reports (learned endpoints, active switchover).

import (
	"context"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// takeOver makes foreign calls own (all of them, or those in ids): node
// state first, then the writer moves them in Redis.
func (s *syncer) takeOver(ctx context.Context, ids []string) int {
	s.mu.Lock()
	var recs []nodestate.Call
	for id, st := range s.known {
		if !st.has || !st.rec.Foreign || (ids != nil && !contains(ids, id)) {
			continue
		}
		rec := st.rec
		rec.Foreign, rec.Owner, rec.Source = false, s.node, nodestate.SourceRedis
		if st.homeSet {
			rec.Partition = st.home.String()
		}
		recs = append(recs, rec)
	}
	s.mu.Unlock()
	for _, rec := range recs {
		if _, err := s.calls.Put(ctx, rec.ID, rec); err != nil {
			s.errs.warn("could not take a call over", "call", rec.ID, "err", err)
		}
	}
	return len(recs)
}

// standBy makes every own call foreign: this node stops writing them.
func (s *syncer) standBy(ctx context.Context) int {
	s.mu.Lock()
	var recs []nodestate.Call
	for _, st := range s.known {
		if st.has && s.isOwn(st.rec) {
			rec := st.rec
			rec.Foreign, rec.Source, rec.Partition = true, nodestate.SourceRedis, s.own.String()
			recs = append(recs, rec)
		}
	}
	s.mu.Unlock()
	for _, rec := range recs {
		if _, err := s.calls.Put(ctx, rec.ID, rec); err != nil {
			s.errs.warn("could not make a call foreign", "call", rec.ID, "err", err)
		}
	}
	return len(recs)
}

// onActivity takes learned endpoints from rtp-fwd's reports (written with
// the own call) and, with active switchover, takes over a foreign call
// whose media reached this node.
func (s *syncer) onActivity(ctx context.Context, a fwdapi.Activity) {
	var take []string
	s.mu.Lock()
	changed := map[string]bool{}
	for _, sa := range a.Streams {
		id, ok := s.bySock[sa.Local]
		if !ok {
			continue
		}
		st := s.known[id]
		if st == nil || !st.has {
			continue
		}
		if prev, seen := st.packets[sa.Local]; s.switchover && st.rec.Foreign && seen && sa.Packets > prev {
			take = append(take, id)
		}
		st.packets[sa.Local] = sa.Packets
		if sa.Confirmed && sa.Endpoint.IsValid() && st.learned[sa.Local] != sa.Endpoint {
			st.learned[sa.Local] = sa.Endpoint
			changed[id] = true
		}
	}
	if s.started {
		for id := range changed {
			if st := s.known[id]; s.isOwn(st.rec) {
				s.enqueueLocked(id, st)
			}
		}
	}
	s.mu.Unlock()
	if len(take) > 0 {
		n := s.takeOver(ctx, dedupe(take))
		s.log.Info("media reached foreign calls: taken over (active-switchover)", "calls", n)
	}
}
