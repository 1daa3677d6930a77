package redissync

// The restore path, Redis → node state: calls read from Redis are bound
// to their ports through portd and written to node state, by reader
// shards that each apply their calls in order.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// restoreOwn loads the own partition after a start: calls node state does
// not have come back as own calls (crash recovery of this node); own calls
// of node state that Redis lacks are written, unless they moved away.
func (s *syncer) restoreOwn(ctx context.Context) error {
	var ids []string
	if err := s.store.Scan(ctx, s.own, func(batch []string) error { ids = append(ids, batch...); return nil }); err != nil {
		return err
	}
	ids = dedupe(ids)
	inRedis := map[string]bool{}
	deleted := 0
	for start := 0; start < len(ids); start += readBatch {
		batch := ids[start:min(start+readBatch, len(ids))]
		entries, _, errs, err := s.store.Read(ctx, s.own, batch)
		if err != nil {
			return err
		}
		for i, id := range batch {
			if rediscalls.IsTransient(errs[i]) {
				return errs[i]
			}
			if errors.Is(errs[i], rediscalls.ErrOverLimit) {
				s.reject(s.own, id, 0, errs[i])
				continue
			}
			if errs[i] != nil {
				s.log.Warn("own call in Redis unreadable; left alone", "call", id, "err", errs[i])
				continue
			}
			e := entries[i]
			if e == nil {
				continue
			}
			inRedis[id] = true
			d := rediscalls.Digest(e)
			s.mu.Lock()
			if s.ended[id] {
				// The call ended in node state while redis-sync was not
				// writing: its Redis copy goes, it does not come back.
				s.q.put(rediscalls.Op{Kind: rediscalls.OpDelete, Part: s.own, ID: id})
				s.mu.Unlock()
				deleted++
				continue
			}
			st := s.known[id]
			if st != nil && st.has {
				if s.isOwn(st.rec) {
					st.home, st.homeSet = s.own, true
					st.written = d
				}
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			s.restore(ctx, s.own, e, false)
		}
	}
	s.mu.Lock()
	s.started, s.ended = true, nil
	var missing []string
	for id, st := range s.known {
		if st.has && s.isOwn(st.rec) && !inRedis[id] {
			missing = append(missing, id)
		}
	}
	for _, id := range missing {
		s.enqueueLocked(id, s.known[id]) // refused with ErrMoved if it moved away
	}
	s.mu.Unlock()
	s.log.Info("own partition loaded", "partition", s.own, "in_redis", len(inRedis), "written_from_node_state", len(missing),
		"deleted_ended_meanwhile", deleted)
	return nil
}

// restore installs a call read from partition p: bound to the same
// addresses and ports through portd, then written to node state.
func (s *syncer) restore(ctx context.Context, p rediscalls.Partition, e *rediscalls.Entry, foreign bool) {
	if s.tooLong(p, e.Call.ID) {
		return
	}
	rec := e.Call
	rec.Foreign, rec.Source, rec.Partition = foreign, nodestate.SourceRedis, p.String()
	if !foreign {
		rec.Owner = s.node
	}
	d := rediscalls.Digest(e)
	gens, err := s.bind(ctx, rec)
	if err != nil {
		var be *bus.Error
		if errors.As(err, &be) && (be.Code == bus.CodeConflict || be.Code == bus.CodeBadRequest) {
			// Ports held by another call, or not this node's: writing the
			// record anyway would hand portd sockets it refused.
			s.reject(p, rec.ID, d, err)
			return
		}
		s.restoreFailed(p, rec.ID, err)
		return
	}
	for i := range rec.Legs {
		for j := range rec.Legs[i].Medias {
			m := &rec.Legs[i].Medias[j]
			for k := range m.Streams {
				st := &m.Streams[k]
				st.Gen = gens[st.Local]
				st.Learned = e.Endpoints[st.Local]
			}
			for k := range m.Alt {
				m.Alt[k].Gen = gens[m.Alt[k].Local]
			}
		}
	}
	s.mu.Lock()
	st := s.state(rec.ID)
	st.home, st.homeSet = p, true
	if foreign {
		st.applied = d
	} else {
		st.written = d
	}
	for l, r := range e.Endpoints {
		st.learned[l] = r
	}
	s.mu.Unlock()
	// Pipelined: the next restore does not wait for this acknowledgement.
	f, err := s.calls.PutAsync(rec.ID, rec)
	if err != nil {
		s.restoreFailed(p, rec.ID, err)
		return
	}
	s.restores.Add(1)
	go func() {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			s.restoreFailed(p, rec.ID, err)
		case <-ctx.Done():
		}
	}()
}

// tooLong reports whether id is beyond what node state takes
// (nodestate.MaxIDLen, the Call-ID limit ng-ctl enforces): such a call,
// written to Redis by something else than rtpkit, is skipped before any
// port is bound for it, and counted and logged as a rejected record.
func (s *syncer) tooLong(p rediscalls.Partition, id string) bool {
	if len(id) <= nodestate.MaxIDLen {
		return false
	}
	s.reject(p, id, 0, fmt.Errorf("call id of %d bytes is longer than node state takes (%d)", len(id), nodestate.MaxIDLen))
	return true
}

// restoreFailed reads a call again later when node state (or portd) did
// not take it.
func (s *syncer) restoreFailed(p rediscalls.Partition, id string, err error) {
	s.errs.warn("restored call not installed (portd or node state); will read it again", "call", id, "err", err)
	s.mu.Lock()
	if st := s.known[id]; st != nil {
		st.applied, st.written = 0, 0
	}
	s.mu.Unlock()
	time.AfterFunc(time.Second, func() { s.readQueue(id).add(p, id) })
}

// bind asks portd for the call's exact ports and returns the generations
// of the allocations. On failure the record must not go to node state: a
// record naming ports without their generations would make portd give it
// sockets it refused here.
func (s *syncer) bind(ctx context.Context, c nodestate.Call) (map[netip.AddrPort]uint64, error) {
	var pairs []portdapi.Pair
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			pairs = bindPairs(pairs, m.Interface, m.Streams)
			pairs = bindPairs(pairs, m.Interface, m.Alt)
		}
	}
	gens := map[netip.AddrPort]uint64{}
	if len(pairs) == 0 {
		return gens, nil
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := bus.Request(bctx, s.ports, portdapi.BindEndpoint, portdapi.BindRequest{Call: c.ID, Pairs: pairs})
	if err != nil {
		return nil, fmt.Errorf("portd bind for call %q: %w", c.ID, err)
	}
	for _, p := range r.Pairs {
		gens[p.RTP] = p.Gen
		if p.RTCP.IsValid() {
			gens[p.RTCP] = p.Gen
		}
	}
	return gens, nil
}

// runReader applies the calls queued for reading (by keyspace
// notifications and resyncs) of one shard: the reads are batched and
// pipelined, and each call is applied in the order it was read, by this
// reader only, so that an older read never undoes a newer one.
func (s *syncer) runReader(ctx context.Context, q *readQueue) {
	for {
		batch := q.take(readBatch)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-q.ready:
			}
			continue
		}
		byPart := map[rediscalls.Partition][]string{}
		for _, r := range batch {
			byPart[r.p] = append(byPart[r.p], r.id)
		}
		for p, ids := range byPart {
			if err := s.readApply(ctx, p, ids); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.errs.warn("redis read failed; will read again", "partition", p, "err", err)
				for _, id := range ids {
					q.add(p, id)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
	}
}

// readApply reads calls of a followed partition and brings node state in
// line with them.
func (s *syncer) readApply(ctx context.Context, p rediscalls.Partition, ids []string) error {
	entries, moved, errs, err := s.store.Read(ctx, p, ids)
	if err != nil {
		return err
	}
	for i := range ids {
		if rediscalls.IsTransient(errs[i]) {
			return errs[i]
		}
	}
	for i, id := range ids {
		if errors.Is(errs[i], rediscalls.ErrOverLimit) {
			s.reject(p, id, 0, errs[i])
			continue
		}
		if errs[i] != nil {
			s.errs.warn("call in Redis unreadable; left alone", "partition", p, "call", id, "err", errs[i])
			continue
		}
		s.apply(ctx, p, id, entries[i], moved[i])
	}
	return nil
}

// apply brings one call of node state in line with partition p.
func (s *syncer) apply(ctx context.Context, p rediscalls.Partition, id string, e *rediscalls.Entry, moved string) {
	if s.tooLong(p, id) {
		return
	}
	s.mu.Lock()
	if !s.followsLocked(p) {
		s.mu.Unlock()
		return
	}
	st := s.known[id]
	switch {
	case e == nil:
		gone := st != nil && st.has && st.rec.Foreign && st.homeSet && st.home == p
		s.mu.Unlock()
		if gone {
			s.remove(ctx, id)
		}
		return
	case e.Call.Owner == s.node:
		// Our own call in a followed partition: written there by us
		// before a takeover that is still settling. Not foreign here.
		s.mu.Unlock()
		return
	case st != nil && st.has && s.isOwn(st.rec):
		// Another node holds our call: it took the call over if it left
		// a tombstone in our partition.
		s.mu.Unlock()
		_, mv, errs, err := s.store.Read(ctx, s.own, []string{id})
		if err != nil || errs[0] != nil || mv[0] == "" {
			s.errs.warn("call claimed by two nodes; keeping it own here", "call", id, "other", e.Call.Owner, "partition", p)
			return
		}
		s.log.Info("call taken over by another node", "call", id, "owner", e.Call.Owner)
		s.restore(ctx, p, e, true)
		return
	case st != nil && st.has && st.homeSet && st.home == p && st.applied == rediscalls.Digest(e):
		s.mu.Unlock()
		return // a re-write that changes nothing we keep
	}
	s.mu.Unlock()
	s.restore(ctx, p, e, true)
}

// remove deletes a foreign call from node state: portd releases its
// sockets, rtp-fwd stops forwarding, ng-ctl forgets it.
func (s *syncer) remove(ctx context.Context, id string) {
	if err := s.calls.Delete(ctx, id, 0); err != nil {
		s.errs.warn("could not remove a foreign call from node state", "call", id, "err", err)
		return
	}
	s.removals.Add(1)
}

// resync queues every call of a followed partition for reading, and
// every foreign call node state holds from it: the readers restore or
// update what is there and remove what is gone, so nothing written or
// deleted while the subscription was down stays missing or present.
func (s *syncer) resync(ctx context.Context, p rediscalls.Partition) error {
	var ids []string
	if err := s.store.Scan(ctx, p, func(batch []string) error { ids = append(ids, batch...); return nil }); err != nil {
		return err
	}
	ids = dedupe(ids)
	inRedis := len(ids)
	s.mu.Lock()
	for id, st := range s.known {
		if st.has && st.rec.Foreign && st.homeSet && st.home == p {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range dedupe(ids) {
		s.readQueue(id).add(p, id)
	}
	s.resyncs.Add(1)
	s.log.Info("partition resync", "partition", p, "calls_in_redis", inRedis, "calls_to_check", len(dedupe(ids)))
	return nil
}

// readQueue is the reader shard of a call.
func (s *syncer) readQueue(id string) *readQueue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return s.reads[h.Sum32()%uint32(len(s.reads))]
}

// readQueue is the set of calls to read again, per partition.
type readQueue struct {
	mu      sync.Mutex
	pending map[readKey]bool
	order   []readKey
	ready   chan struct{}
}

type readKey struct {
	p  rediscalls.Partition
	id string
}

func newReadQueues(n int) []*readQueue {
	out := make([]*readQueue, n)
	for i := range out {
		out[i] = &readQueue{pending: map[readKey]bool{}, ready: make(chan struct{}, 1)}
	}
	return out
}

func (q *readQueue) add(p rediscalls.Partition, id string) {
	k := readKey{p, id}
	q.mu.Lock()
	if !q.pending[k] {
		q.pending[k] = true
		q.order = append(q.order, k)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *readQueue) take(n int) []readKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.order))
	out := append([]readKey(nil), q.order[:n]...)
	q.order = q.order[n:]
	for _, k := range out {
		delete(q.pending, k)
	}
	return out
}

// audit compares a followed partition's call ids with the foreign calls
// node state holds from it and reads again every call found out of line
// in two audits running: a foreign call whose Redis copy is gone, or a
// call in Redis this node has not restored (and has not rejected). Redis
// delivers keyspace notifications at most once, and a lost one on a
// subscription that stays up brings no resync: without the audit a
// standby would keep a call the active node ended (its sockets bound,
// exempt from timers) until the next resync. It costs one SCAN of the
// partition's keys; only the differences are read, so a difference that
// is a notification still on its way is not acted on (prev is the
// previous audit's differences; the result is this one's).
func (s *syncer) audit(ctx context.Context, p rediscalls.Partition, prev map[string]bool) (map[string]bool, error) {
	inRedis := map[string]bool{}
	err := s.store.Scan(ctx, p, func(batch []string) error {
		for _, id := range batch {
			inRedis[id] = true
		}
		return nil
	})
	if err != nil {
		return prev, err
	}
	diff := map[string]bool{}
	s.mu.Lock()
	for id, st := range s.known {
		if st.has && st.rec.Foreign && st.homeSet && st.home == p && !inRedis[id] {
			diff[id] = true
		}
	}
	for id := range inRedis {
		if s.known[id] == nil && !s.rejected.seenID(p, id) {
			diff[id] = true
		}
	}
	s.mu.Unlock()
	var fix []string
	for id := range diff {
		if prev[id] {
			fix = append(fix, id)
		}
	}
	if len(fix) == 0 {
		return diff, nil
	}
	sort.Strings(fix)
	s.auditFixes.Add(uint64(len(fix)))
	s.log.Warn("calls out of line with their followed partition (a keyspace notification lost); reading them again",
		"partition", p, "calls", len(fix), "first", logID(fix[0]))
	for _, id := range fix {
		s.readQueue(id).add(p, id)
		delete(diff, id)
	}
	return diff, nil
}

// bindPairs appends the port blocks of one set of a media's streams (its
// sockets, or those of the other family): RTP with RTCP on the next port
// as a pair, anything else as single ports.
func bindPairs(pairs []portdapi.Pair, iface string, streams []nodestate.Stream) []portdapi.Pair {
	var rtp, rtcp netip.AddrPort
	for _, st := range streams {
		switch st.Component {
		case 1:
			rtp = st.Local
		case 2:
			rtcp = st.Local
		}
	}
	if !rtp.IsValid() {
		return pairs
	}
	if rtcp.IsValid() && rtcp.Addr() == rtp.Addr() && rtcp.Port() == rtp.Port()+1 {
		return append(pairs, portdapi.Pair{Interface: iface, RTP: rtp, RTCP: rtcp})
	}
	pairs = append(pairs, portdapi.Pair{Interface: iface, RTP: rtp})
	if rtcp.IsValid() {
		pairs = append(pairs, portdapi.Pair{Interface: iface, RTP: rtcp})
	}
	return pairs
}
