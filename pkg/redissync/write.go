package redissync

// The write path, node state → Redis: the syncer follows node state's
// records, queues the writes of own calls and applies them to Redis.

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// onPut follows a record of node state.
func (s *syncer) onPut(c nodestate.Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ended, c.ID)
	st := s.state(c.ID)
	if st.has {
		s.unindexLocked(st.rec)
	}
	st.rec, st.has = c, true
	// A foreign record names the partition the call is in; an own record
	// written by redis-sync (a take-over) names where it was, which only
	// counts when nothing newer is known (after a restart).
	if c.Partition != "" && c.Source == nodestate.SourceRedis && (c.Foreign || !st.homeSet) {
		if p, err := rediscalls.ParsePartition(c.Partition); err == nil {
			st.home, st.homeSet = p, true
		}
	}
	s.indexLocked(c)
	if s.started && s.isOwn(c) {
		s.enqueueLocked(c.ID, st)
	}
}

// onDelete follows a record's removal: an own call ended.
func (s *syncer) onDelete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		// Ended before the own partition is loaded (while redis-sync was
		// down, or Redis away): restoreOwn deletes its Redis copy.
		s.ended[id] = true
	}
	st := s.known[id]
	if st == nil {
		return
	}
	delete(s.known, id)
	if !st.has {
		return
	}
	s.unindexLocked(st.rec)
	if s.isOwn(st.rec) && s.started {
		p := s.own
		if st.homeSet {
			p = st.home
		}
		s.q.put(rediscalls.Op{Kind: rediscalls.OpDelete, Part: p, ID: id})
	}
}

func (s *syncer) indexLocked(c nodestate.Call) {
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			for _, st := range m.AllStreams() {
				s.bySock[st.Local] = c.ID
			}
		}
	}
}

func (s *syncer) unindexLocked(c nodestate.Call) {
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			for _, st := range m.AllStreams() {
				if s.bySock[st.Local] == c.ID {
					delete(s.bySock, st.Local)
				}
			}
		}
	}
}

// entryLocked is what Redis should hold for the call.
func (s *syncer) entryLocked(st *callState) *rediscalls.Entry {
	e := &rediscalls.Entry{Call: st.rec, Updated: time.Now()}
	if len(st.learned) > 0 {
		e.Endpoints = make(map[netip.AddrPort]netip.AddrPort, len(st.learned))
		for l, r := range st.learned {
			e.Endpoints[l] = r
		}
	}
	return e
}

// enqueueLocked queues the write of an own call, unless Redis already
// holds exactly that in the own partition.
func (s *syncer) enqueueLocked(id string, st *callState) {
	e := s.entryLocked(st)
	moving := st.homeSet && st.home != s.own
	if !moving && st.written != 0 && st.written == rediscalls.Digest(e) {
		return
	}
	op := rediscalls.Op{Kind: rediscalls.OpWrite, Part: s.own, ID: id, Entry: e}
	if moving {
		op.Kind, op.From = rediscalls.OpMove, st.home
	}
	s.q.put(op)
}

// runWriter applies queued writes until ctx ends; while Redis is away it
// keeps them (bounded) and retries with back-off.
func (s *syncer) runWriter(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		ops := s.q.take(writeBatch)
		if len(ops) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.q.ready:
			}
			continue
		}
		res, err := s.store.Apply(ctx, ops)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.q.requeue(ops)
			s.writeErrors.Add(uint64(len(ops)))
			s.errs.warn("redis write failed; keeping the writes queued", "err", err, "queued", s.q.len())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		var retry []rediscalls.Op
		for i, op := range ops {
			switch {
			case rediscalls.IsTransient(res[i]):
				retry = append(retry, op)
			case res[i] == nil:
				s.writes.Add(1)
				s.written(op)
			case errors.Is(res[i], rediscalls.ErrMoved):
				s.writes.Add(1)
				s.movedAway(ctx, op.ID)
			default:
				s.writeErrors.Add(1)
				s.errs.warn("redis write of a call failed", "call", op.ID, "err", res[i])
			}
		}
		if len(retry) > 0 {
			s.q.requeue(retry)
			s.writeErrors.Add(uint64(len(retry)))
			s.errs.warn("redis refused writes for now; retrying", "calls", len(retry))
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// written records a successful write.
func (s *syncer) written(op rediscalls.Op) {
	if op.Kind == rediscalls.OpDelete {
		return
	}
	d := rediscalls.Digest(op.Entry)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.known[op.ID]; st != nil {
		st.written, st.home, st.homeSet = d, s.own, true
	}
}

// movedAway handles a write refused because another node took the call
// over: it stays here as a foreign call (media keeps flowing) until the
// new owner's partition says more.
func (s *syncer) movedAway(ctx context.Context, id string) {
	s.mu.Lock()
	st := s.known[id]
	if st == nil || !st.has || !s.isOwn(st.rec) {
		s.mu.Unlock()
		return
	}
	rec := st.rec
	rec.Foreign, rec.Source, rec.Partition = true, nodestate.SourceRedis, ""
	st.homeSet = false
	s.mu.Unlock()
	s.log.Info("call taken over by another node; it is foreign here now", "call", id)
	if _, err := s.calls.Put(ctx, id, rec); err != nil {
		s.log.Warn("could not mark a call foreign", "call", id, "err", err)
	}
}
