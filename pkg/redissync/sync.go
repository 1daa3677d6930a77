package redissync

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

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
	// ended are the calls node state deleted before the own partition was
	// loaded (delete markers of the initial records included): their
	// Redis copies are deleted, not restored.
	ended map[string]bool
	// rejected remembers which version of a bad record was logged.
	rejected *rejectLog

	writes, writeErrors, restores, removals, resyncs, rejects, auditFixes atomic.Uint64

	// audit is how often each followed partition is checked against node
	// state (0: never; see audit).
	auditEvery time.Duration
}

func newSyncer(node string, own rediscalls.Partition, store *rediscalls.Store, calls *nodestate.Table[nodestate.Call],
	ports *bus.Conn, queueMax int, switchover bool, log *slog.Logger) *syncer {
	return &syncer{node: node, own: own, store: store, calls: calls, ports: ports, log: log, switchover: switchover,
		q: newQueue(queueMax), reads: newReadQueues(readers), errs: newRateLog(log, 5*time.Second),
		known: map[string]*callState{}, bySock: map[netip.AddrPort]string{}, follow: map[int]*follower{},
		ended: map[string]bool{}, rejected: newRejectLog(log)}
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
		Removals: s.removals.Load(), Resyncs: s.resyncs.Load(), Dropped: s.q.drops(), Queued: s.q.len(),
		Rejected: s.rejects.Load(), AuditFixes: s.auditFixes.Load()}
}

// --- helpers ---

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
