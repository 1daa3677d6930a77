package redissync

// Records of Redis that are not restored: refused by portd's bind, or
// (validate.go) over a cap or not on this node's addresses and ports.
// Each is counted, and logged once per version of the record.

import (
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"

	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// rejectLogMax bounds how many rejected records the log remembers; past
// it, it forgets them all (a record is then logged once more).
const rejectLogMax = 10000

// rejectLog logs a rejected record once per call and digest.
type rejectLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]uint64
}

func newRejectLog(log *slog.Logger) *rejectLog {
	return &rejectLog{log: log, seen: map[string]uint64{}}
}

// first reports whether this version of the call's record is new to the
// log (and remembers it).
func (r *rejectLog) first(p rediscalls.Partition, id string, digest uint64) bool {
	k := rejectKey(p, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.seen[k]; ok && d == digest {
		return false
	}
	if len(r.seen) >= rejectLogMax {
		clear(r.seen)
	}
	r.seen[k] = digest
	return true
}

// rejectKey names a call in the log's memory (ids over the cap stay
// small here).
func rejectKey(p rediscalls.Partition, id string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return p.String() + "/" + strconv.FormatUint(h.Sum64(), 16)
}

// seenID reports whether a record of the call was rejected (any version).
func (r *rejectLog) seenID(p rediscalls.Partition, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.seen[rejectKey(p, id)]
	return ok
}

// reject counts a record that is not restored and logs it once (digest 0:
// a record that could not be decoded, logged once per call id).
func (s *syncer) reject(p rediscalls.Partition, id string, digest uint64, err error) {
	s.rejects.Add(1)
	if s.rejected.first(p, id, digest) {
		s.log.Warn("call record in Redis not restored", "partition", p, "call", logID(id), "err", err)
	}
}

// logID shortens a call id from Redis for the log (ids are capped at
// rediscalls.MaxIDLen, which is too long for a log line).
func logID(id string) string {
	const keep = 128
	if len(id) <= keep {
		return id
	}
	return id[:keep] + "…"
}
