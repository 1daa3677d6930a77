package ngctl

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// stateStore writes calls to node state with pipelined publishes: Save and
// Remove hand the write to the bus client and return at once; nothing
// waits for the acknowledgements. The store reports failed writes
// (refused, lost in a reconnect, or not acknowledged in time) through
// writeFailed, which it must be opened with (nodestate.Options.OnWriteError):
// such a write marks the call dirty, and the latest state of every dirty
// call is written again (so nothing is lost while the bus is away).
type stateStore struct {
	calls *nodestate.Table[nodestate.Call]
	log   *slog.Logger

	mu    sync.Mutex
	dirty map[string]bool
	// current returns the latest record of a call, false if it is gone.
	current func(id string) (nodestate.Call, bool)

	lastErr time.Time
}

func newStateStore(calls *nodestate.Table[nodestate.Call], log *slog.Logger) *stateStore {
	return &stateStore{calls: calls, log: log, dirty: map[string]bool{}}
}

// Save writes the call's record.
func (s *stateStore) Save(c nodestate.Call) {
	data, err := s.calls.Encode(c.ID, c)
	if err == nil {
		_, err = s.calls.PutEncodedAsync(c.ID, data)
	}
	if err != nil {
		s.failed(c.ID, err)
	}
}

// Remove deletes the call's record.
func (s *stateStore) Remove(id string) {
	if _, err := s.calls.DeleteAsync(id); err != nil {
		s.failed(id, err)
	}
}

// writeFailed is the store's nodestate.Options.OnWriteError.
func (s *stateStore) writeFailed(kind, id string, err error) {
	if kind == nodestate.CallKind {
		s.failed(id, err)
	}
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

// run retries dirty calls every second until ctx ends.
func (s *stateStore) run(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			s.retryDirty()
		}
	}
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
