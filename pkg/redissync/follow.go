package redissync

// Followed partitions: a subscription to the keyspace notifications of
// each partition of the redundancy group this node follows.

import (
	"context"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtpkit/rtpkit/pkg/rediscalls"
)

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
	if s.auditEvery > 0 {
		go s.runAudit(ctx, f.p)
	}
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

// runAudit audits partition p every s.auditEvery until ctx ends.
func (s *syncer) runAudit(ctx context.Context, p rediscalls.Partition) {
	t := time.NewTicker(s.auditEvery)
	defer t.Stop()
	var prev map[string]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if prev, err = s.audit(ctx, p, prev); err != nil && ctx.Err() == nil {
			s.errs.warn("partition audit failed; trying at the next", "partition", p, "err", err)
		}
	}
}
