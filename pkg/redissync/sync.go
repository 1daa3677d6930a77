package redissync

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/api/fwdapi"
	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/api/syncapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// Batch sizes of Redis round trips.
const (
	writeBatch = 256
	readBatch  = 256
	// readers apply restored calls in parallel (each call always by the
	// same one).
	readers = 4
)

// callState is what redis-sync knows of one call of node state.
type callState struct {
	rec nodestate.Call
	has bool // rec is in node state
	// home is the partition Redis holds the call in, when known.
	home    rediscalls.Partition
	homeSet bool
	// written is the digest of what the own partition holds (own calls).
	written uint64
	// applied is the digest of the Redis entry a foreign record came from.
	applied uint64
	// learned are the peers rtp-fwd learned, by local socket.
	learned map[netip.AddrPort]netip.AddrPort
	packets map[netip.AddrPort]uint64
}

// syncer mirrors node state to Redis and Redis to node state.
type syncer struct {
	node       string
	own        rediscalls.Partition
	store      *rediscalls.Store
	calls      *nodestate.Table[nodestate.Call]
	ports      *bus.Conn
	log        *slog.Logger
	switchover bool

	q     *queue
	reads []*readQueue // by hash of the call id: one call is applied by one reader, in order
	errs  *rateLog

	mu      sync.Mutex
	known   map[string]*callState
	bySock  map[netip.AddrPort]string
	follow  map[int]*follower
	started bool // node state's initial records are in

	writes, writeErrors, restores, removals, resyncs atomic.Uint64
}

func newSyncer(node string, own rediscalls.Partition, store *rediscalls.Store, calls *nodestate.Table[nodestate.Call],
	ports *bus.Conn, queueMax int, switchover bool, log *slog.Logger) *syncer {
	return &syncer{node: node, own: own, store: store, calls: calls, ports: ports, log: log, switchover: switchover,
		q: newQueue(queueMax), reads: newReadQueues(readers), errs: newRateLog(log, 5*time.Second),
		known: map[string]*callState{}, bySock: map[netip.AddrPort]string{}, follow: map[int]*follower{}}
}

func (s *syncer) isOwn(c nodestate.Call) bool { return !c.Foreign && c.Owner == s.node }

func (s *syncer) state(id string) *callState {
	st := s.known[id]
	if st == nil {
		st = &callState{learned: map[netip.AddrPort]netip.AddrPort{}, packets: map[netip.AddrPort]uint64{}}
		s.known[id] = st
	}
	return st
}

// counters reads the totals.
func (s *syncer) counters() syncapi.Counters {
	return syncapi.Counters{Writes: s.writes.Load(), WriteErrors: s.writeErrors.Load(), Restores: s.restores.Load(),
		Removals: s.removals.Load(), Resyncs: s.resyncs.Load(), Dropped: s.q.drops(), Queued: s.q.len()}
}

// --- node state → Redis ---

// onPut follows a record of node state.
func (s *syncer) onPut(c nodestate.Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
			for _, st := range m.Streams {
				s.bySock[st.Local] = c.ID
			}
		}
	}
}

func (s *syncer) unindexLocked(c nodestate.Call) {
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			for _, st := range m.Streams {
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

// --- Redis → node state ---

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
	s.started = true
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
	s.log.Info("own partition loaded", "partition", s.own, "in_redis", len(inRedis), "written_from_node_state", len(missing))
	return nil
}

// restore installs a call read from partition p: bound to the same
// addresses and ports through portd, then written to node state.
func (s *syncer) restore(ctx context.Context, p rediscalls.Partition, e *rediscalls.Entry, foreign bool) {
	rec := e.Call
	rec.Foreign, rec.Source, rec.Partition = foreign, nodestate.SourceRedis, p.String()
	if !foreign {
		rec.Owner = s.node
	}
	gens := s.bind(ctx, rec)
	for i := range rec.Legs {
		for j := range rec.Legs[i].Medias {
			m := &rec.Legs[i].Medias[j]
			for k := range m.Streams {
				st := &m.Streams[k]
				st.Gen = gens[st.Local]
				st.Learned = e.Endpoints[st.Local]
			}
		}
	}
	d := rediscalls.Digest(e)
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

// restoreFailed reads a call again later when node state did not take it.
func (s *syncer) restoreFailed(p rediscalls.Partition, id string, err error) {
	s.errs.warn("could not write a restored call to node state; will read it again", "call", id, "err", err)
	s.mu.Lock()
	if st := s.known[id]; st != nil {
		st.applied, st.written = 0, 0
	}
	s.mu.Unlock()
	time.AfterFunc(time.Second, func() { s.readQueue(id).add(p, id) })
}

// bind asks portd for the call's exact ports and returns the generations
// of the allocations. On failure the record still goes to node state;
// portd binds what it can from it.
func (s *syncer) bind(ctx context.Context, c nodestate.Call) map[netip.AddrPort]uint64 {
	var pairs []portdapi.Pair
	for _, l := range c.Legs {
		for _, m := range l.Medias {
			var rtp, rtcp netip.AddrPort
			for _, st := range m.Streams {
				switch st.Component {
				case 1:
					rtp = st.Local
				case 2:
					rtcp = st.Local
				}
			}
			if !rtp.IsValid() {
				continue
			}
			if rtcp.IsValid() && rtcp.Addr() == rtp.Addr() && rtcp.Port() == rtp.Port()+1 {
				pairs = append(pairs, portdapi.Pair{Interface: m.Interface, RTP: rtp, RTCP: rtcp})
				continue
			}
			pairs = append(pairs, portdapi.Pair{Interface: m.Interface, RTP: rtp})
			if rtcp.IsValid() {
				pairs = append(pairs, portdapi.Pair{Interface: m.Interface, RTP: rtcp})
			}
		}
	}
	gens := map[netip.AddrPort]uint64{}
	if len(pairs) == 0 {
		return gens
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := bus.Request(bctx, s.ports, portdapi.BindEndpoint, portdapi.BindRequest{Call: c.ID, Pairs: pairs})
	if err != nil {
		s.errs.warn("portd could not bind a restored call's ports", "call", c.ID, "err", err)
		return gens
	}
	for _, p := range r.Pairs {
		gens[p.RTP] = p.Gen
		if p.RTCP.IsValid() {
			gens[p.RTCP] = p.Gen
		}
	}
	return gens
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

// --- followed partitions ---

// follower is the subscription to one followed partition.
type follower struct {
	p      rediscalls.Partition
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *syncer) followsLocked(p rediscalls.Partition) bool {
	_, ok := s.follow[p.DB]
	return ok
}

// followed lists the followed partitions in order.
func (s *syncer) followed() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.follow))
	for db := range s.follow {
		out = append(out, db)
	}
	sort.Ints(out)
	return out
}

// startFollow subscribes to partition p's notifications; every time the
// subscription is (re)established the whole partition is read again, so
// nothing written or deleted while it was down is missed.
func (s *syncer) startFollow(ctx context.Context, p rediscalls.Partition) bool {
	s.mu.Lock()
	if s.followsLocked(p) {
		s.mu.Unlock()
		return false
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &follower{p: p, cancel: cancel, done: make(chan struct{})}
	s.follow[p.DB] = f
	s.mu.Unlock()
	go s.runFollower(fctx, f)
	return true
}

// stopFollow ends the subscription and removes the partition's foreign
// calls (their sockets are released).
func (s *syncer) stopFollow(ctx context.Context, p rediscalls.Partition) (removed int, ok bool) {
	s.mu.Lock()
	f := s.follow[p.DB]
	delete(s.follow, p.DB)
	var gone []string
	if f != nil {
		for id, st := range s.known {
			if st.has && st.rec.Foreign && st.homeSet && st.home == p {
				gone = append(gone, id)
			}
		}
	}
	s.mu.Unlock()
	if f == nil {
		return 0, false
	}
	f.cancel()
	<-f.done
	for _, id := range gone {
		s.remove(ctx, id)
	}
	return len(gone), true
}

func (s *syncer) runFollower(ctx context.Context, f *follower) {
	defer close(f.done)
	ps := s.store.Client().PSubscribe(ctx, f.p.Pattern())
	defer ps.Close()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(100000))
	resync := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-resync:
			}
			for ctx.Err() == nil {
				err := s.resync(ctx, f.p)
				if err == nil {
					break
				}
				s.errs.warn("resync failed; trying again", "partition", f.p, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "psubscribe" {
					s.log.Info("following partition", "partition", f.p, "pattern", m.Channel)
					select {
					case resync <- struct{}{}:
					default:
					}
				}
			case *redis.Message:
				if p, id, ok := rediscalls.ParseChannel(m.Channel); ok && p == f.p {
					s.readQueue(id).add(p, id)
				}
			}
		}
	}
}

// --- ownership ---

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

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// --- helpers ---

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

// rateLog logs errors at most once per interval, with how many it held
// back.
type rateLog struct {
	log      *slog.Logger
	every    time.Duration
	mu       sync.Mutex
	last     time.Time
	withheld int
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every}
}

func (r *rateLog) warn(msg string, args ...any) {
	r.mu.Lock()
	if time.Since(r.last) < r.every {
		r.withheld++
		r.mu.Unlock()
		return
	}
	n := r.withheld
	r.last, r.withheld = time.Now(), 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "similar_errors_not_logged", n)
	}
	r.log.Warn(msg, args...)
}
