package ngctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// confirmTicks is how many ticks of the store's loop (a second each) a
// write may go without coming back in the watch before it is read back.
const confirmTicks = 3

// stateStore writes calls to node state without waiting: Save and Remove
// publish the record (nodestate.Table.Publish: no acknowledgement from the
// bus) and return at once. A write is confirmed when it comes back in
// ng-ctl's own watch of the calls (echo, called from followRecords); one
// that has not come back within confirmTicks seconds is read back from the
// bucket. A write that is not there (refused, or lost with the bus) marks
// the call dirty, and the latest state of every dirty call is written
// again, so nothing is lost while the bus is away.
//
// Confirming by the watch rather than by JetStream acknowledgements spares
// the bus one message per write and ng-ctl one reply to read: ng-ctl
// receives its writes back in the watch anyway.
type stateStore struct {
	calls *nodestate.Table[nodestate.Call]
	log   *slog.Logger

	mu    sync.Mutex
	dirty map[string]bool
	// pending are the writes not yet seen again, by call; tick counts the
	// loop's ticks, seq the writes.
	pending map[string]pendingWrite
	tick    uint64
	seq     uint64
	// current returns the latest record of a call, false if it is gone.
	current func(id string) (nodestate.Call, bool)

	lastErr time.Time
}

// pendingWrite is the last write of a call that has not come back yet.
type pendingWrite struct {
	data    []byte // the record as published; nil for a delete
	deleted bool
	tick    uint64 // the loop's tick when it was published
	seq     uint64 // tells a write from a later one of the same call
}

func newStateStore(calls *nodestate.Table[nodestate.Call], log *slog.Logger) *stateStore {
	return &stateStore{calls: calls, log: log, dirty: map[string]bool{}, pending: map[string]pendingWrite{}}
}

// Save writes the call's record.
func (s *stateStore) Save(c nodestate.Call) {
	data, err := s.calls.Encode(c.ID, c)
	if err != nil {
		s.failed(c.ID, err)
		return
	}
	// Pending before the publish: the echo can come back at once.
	s.note(c.ID, pendingWrite{data: data})
	if err := s.calls.Publish(c.ID, data); err != nil {
		s.failed(c.ID, err)
	}
}

// Remove deletes the call's record.
func (s *stateStore) Remove(id string) {
	s.note(id, pendingWrite{deleted: true})
	if err := s.calls.PublishDelete(id); err != nil {
		s.failed(id, err)
	}
}

func (s *stateStore) note(id string, w pendingWrite) {
	s.mu.Lock()
	s.seq++
	w.tick, w.seq = s.tick, s.seq
	s.pending[id] = w
	s.mu.Unlock()
}

// echo is told every call record the watch delivers (before the watch
// decodes or skips it): a record that is the call's pending write
// confirms it.
func (s *stateStore) echo(id string, op nodestate.Op, raw []byte) {
	s.mu.Lock()
	if w, ok := s.pending[id]; ok && w.matches(op == nodestate.OpDelete, raw) {
		delete(s.pending, id)
	}
	s.mu.Unlock()
}

// matches reports whether a record in node state (deleted, or these
// bytes) is this write.
func (w pendingWrite) matches(deleted bool, raw []byte) bool {
	if w.deleted || deleted {
		return w.deleted && deleted
	}
	return bytes.Equal(w.data, raw)
}

func (s *stateStore) failed(id string, err error) {
	s.mu.Lock()
	s.dirty[id] = true
	log := time.Since(s.lastErr) > 5*time.Second
	if log {
		s.lastErr = time.Now()
	}
	n := len(s.dirty)
	s.mu.Unlock()
	if log {
		s.log.Warn("node state write failed; will retry", "call", id, "dirty_calls", n, "err", err)
	}
}

// run confirms writes and retries dirty calls every second until ctx ends.
func (s *stateStore) run(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			s.confirm(ctx)
			s.retryDirty()
		}
	}
}

// confirm reads back the writes that have not come back in the watch for
// confirmTicks ticks. A record found as written confirms the write;
// anything else makes the call dirty, so that its current state is written
// again (as a failed acknowledgement did). After the first read that fails
// for another reason than a missing record (the bus is away) the rest are
// made dirty unread.
func (s *stateStore) confirm(ctx context.Context) {
	s.mu.Lock()
	s.tick++
	type late struct {
		id string
		w  pendingWrite
	}
	var due []late
	for id, w := range s.pending {
		if s.tick-w.tick >= confirmTicks {
			due = append(due, late{id, w})
		}
	}
	s.mu.Unlock()
	busDown := false
	for _, d := range due {
		var err error
		if !busDown {
			err = s.readBack(ctx, d.id, d.w)
			if err != nil && !errors.Is(err, errNotWritten) {
				busDown = true
			}
		} else {
			err = errors.New("not confirmed while the bus is away")
		}
		s.mu.Lock()
		if cur, ok := s.pending[d.id]; ok && cur.seq == d.w.seq {
			delete(s.pending, d.id)
		} else {
			err = nil // a later write of the call is pending: it will be checked
		}
		s.mu.Unlock()
		if err != nil {
			s.failed(d.id, err)
		}
	}
}

// errNotWritten: the read-back found something else than the write.
var errNotWritten = errors.New("write not in node state")

func (s *stateStore) readBack(ctx context.Context, id string, w pendingWrite) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raw, err := s.calls.GetRaw(ctx, id)
	switch {
	case errors.Is(err, nodestate.ErrNotFound):
		if w.deleted {
			return nil
		}
		return fmt.Errorf("%w: record missing", errNotWritten)
	case err != nil:
		return err
	case w.deleted:
		return fmt.Errorf("%w: record still there", errNotWritten)
	case !bytes.Equal(raw, w.data):
		return fmt.Errorf("%w: another record is there", errNotWritten)
	}
	return nil
}

func (s *stateStore) retryDirty() {
	s.mu.Lock()
	if len(s.dirty) == 0 || s.current == nil {
		s.mu.Unlock()
		return
	}
	ids := make([]string, 0, len(s.dirty))
	for id := range s.dirty {
		ids = append(ids, id)
	}
	s.dirty = map[string]bool{}
	s.mu.Unlock()
	for _, id := range ids {
		if c, ok := s.current(id); ok {
			s.Save(c)
		} else {
			s.Remove(id)
		}
	}
}
