package redissync

import (
	"sync"

	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

// queue holds the Redis writes not applied yet: at most one per call (the
// latest state wins, keeping the call's place in line), in the order the
// calls first changed. It is bounded: when full, the oldest entry is
// dropped and counted.
type queue struct {
	mu      sync.Mutex
	max     int
	pending map[string]*rediscalls.Op
	order   []string // call ids; an id may be stale (already taken)
	head    int
	dropped uint64
	ready   chan struct{} // signalled when something was added
}

func newQueue(max int) *queue {
	return &queue{max: max, pending: map[string]*rediscalls.Op{}, ready: make(chan struct{}, 1)}
}

// put queues op as the call's latest change.
func (q *queue) put(op rediscalls.Op) {
	q.mu.Lock()
	if cur, ok := q.pending[op.ID]; ok {
		*cur = merge(*cur, op)
		q.mu.Unlock()
		q.signal()
		return
	}
	for len(q.pending) >= q.max {
		id := q.order[q.head]
		q.head++
		if _, ok := q.pending[id]; ok {
			delete(q.pending, id)
			q.dropped++
		}
	}
	o := op
	q.pending[op.ID] = &o
	q.order = append(q.order, op.ID)
	q.compact()
	q.mu.Unlock()
	q.signal()
}

// merge folds a later change into a pending one: a move stays a move (the
// call must still leave its old partition); a delete of a call whose move
// is pending deletes it in both partitions (an earlier move may have
// written it to the new one already).
func merge(cur, next rediscalls.Op) rediscalls.Op {
	switch {
	case cur.Kind == rediscalls.OpMove && next.Kind == rediscalls.OpWrite:
		next.Kind, next.From = rediscalls.OpMove, cur.From
	case cur.Kind == rediscalls.OpMove && next.Kind == rediscalls.OpDelete:
		next.From, next.AlsoFrom = cur.From, true
	case cur.Kind == rediscalls.OpDelete && next.Kind == rediscalls.OpDelete && cur.AlsoFrom && !next.AlsoFrom:
		next.From, next.AlsoFrom = cur.From, true
	}
	return next
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns up to n operations, oldest first.
func (q *queue) take(n int) []rediscalls.Op {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []rediscalls.Op
	for q.head < len(q.order) && len(out) < n {
		id := q.order[q.head]
		q.head++
		if op, ok := q.pending[id]; ok {
			out = append(out, *op)
			delete(q.pending, id)
		}
	}
	q.compact()
	return out
}

// requeue puts back operations that could not be applied, ahead of
// everything queued since, unless a newer change of the call is queued.
func (q *queue) requeue(ops []rediscalls.Op) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var front []string
	for _, op := range ops {
		if cur, ok := q.pending[op.ID]; ok {
			*cur = merge(op, *cur)
			continue
		}
		o := op
		q.pending[op.ID] = &o
		front = append(front, op.ID)
	}
	q.order = append(front, q.order[q.head:]...)
	q.head = 0
	for len(q.pending) > q.max {
		id := q.order[q.head]
		q.head++
		if _, ok := q.pending[id]; ok {
			delete(q.pending, id)
			q.dropped++
		}
	}
	q.compact()
}

// compact drops the consumed part of order once it is large.
func (q *queue) compact() {
	if q.head > 1024 && q.head*2 > len(q.order) {
		q.order = append([]string(nil), q.order[q.head:]...)
		q.head = 0
	}
}

// len is the number of calls with a pending write.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// drops is the number of writes dropped because the queue was full.
func (q *queue) drops() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
