package portstock

// Dropped pairs back to portd, gathered into batches.

import (
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/bus"
)

// Free tells portd, without waiting, that the holder dropped these pairs
// (their calls ended or took other ports). The pairs of calls that end
// close together go in one message: FreeBatch of them at once, or those
// gathered when FreeDelay has passed since the first (FlushFree sends
// what is gathered now).
func (s *Stock) Free(pairs []portdapi.Pair) {
	if len(pairs) == 0 {
		return
	}
	s.mu.Lock()
	s.freeing = append(s.freeing, pairs...)
	switch {
	case len(s.freeing) >= s.opts.FreeBatch:
		out := s.takeFreeingLocked()
		s.mu.Unlock()
		s.sendFree(out)
		return
	case s.freeTimer == nil:
		s.freeTimer = time.AfterFunc(s.opts.FreeDelay, s.FlushFree)
	}
	s.mu.Unlock()
}

// FlushFree sends the pairs Free has gathered (at shutdown, and when
// FreeDelay is up).
func (s *Stock) FlushFree() {
	s.mu.Lock()
	out := s.takeFreeingLocked()
	s.mu.Unlock()
	s.sendFree(out)
}

// takeFreeingLocked returns the gathered pairs and stops the timer set for
// them.
func (s *Stock) takeFreeingLocked() []portdapi.Pair {
	out := s.freeing
	s.freeing = nil
	if s.freeTimer != nil {
		s.freeTimer.Stop()
		s.freeTimer = nil
	}
	return out
}

func (s *Stock) sendFree(pairs []portdapi.Pair) {
	if len(pairs) == 0 {
		return
	}
	if err := bus.Publish(s.conn, portdapi.FreeEvent, portdapi.Free{Pairs: pairs}); err != nil {
		s.opts.Log.Warn("free of dropped ports not sent", "pairs", len(pairs), "err", err)
	}
}
