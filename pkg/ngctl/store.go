package ngctl

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// stateStore writes calls to node state with pipelined publishes: Save and
// Remove return at once; a goroutine checks the acknowledgements in order.
// A write that fails marks the call dirty, and the latest state of every
// dirty call is written again (so nothing is lost while the bus is away).
type stateStore struct {
	calls *nodestate.Table[nodestate.Call]
	log   *slog.Logger
	acks  chan pendingAck

	mu    sync.Mutex
	dirty map[string]bool
	// current returns the latest record of a call, false if it is gone.
	current func(id string) (nodestate.Call, bool)

	lastErr time.Time
}

type pendingAck struct {
	id string
	f  jetstream.PubAckFuture
}

func newStateStore(calls *nodestate.Table[nodestate.Call], log *slog.Logger) *stateStore {
	return &stateStore{calls: calls, log: log, acks: make(chan pendingAck, 1<<16), dirty: map[string]bool{}}
}

// Save writes the call's record.
func (s *stateStore) Save(c nodestate.Call) {
	f, err := s.calls.PutAsync(c.ID, c)
	s.track(c.ID, f, err)
}

// Remove deletes the call's record.
func (s *stateStore) Remove(id string) {
	f, err := s.calls.DeleteAsync(id)
	s.track(id, f, err)
}

func (s *stateStore) track(id string, f jetstream.PubAckFuture, err error) {
	if err != nil {
		s.failed(id, err)
		return
	}
	select {
	case s.acks <- pendingAck{id, f}:
	default:
		go func() { s.acks <- pendingAck{id, f} }()
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

// run checks acknowledgements and retries dirty calls until ctx ends.
func (s *stateStore) run(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.acks:
			select {
			case <-p.f.Ok():
			case err := <-p.f.Err():
				s.failed(p.id, err)
			case <-ctx.Done():
				return
			}
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
