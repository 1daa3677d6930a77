package calls

import (
	"sort"
	"time"
)

// Session is one call as the operator's session list shows it (rtpengine-ctl
// `list sessions`).
type Session struct {
	ID      string
	Owner   string
	Foreign bool
	// Partition is the Redis partition a restored call came from ("" for a
	// call made here).
	Partition  string
	Created    time.Time
	LastSignal time.Time
	// DeleteAt is when a delete with delay removes the call (zero: no
	// deletion pending for the whole call).
	DeleteAt time.Time
	// Tags are the parties' tags in the order the call got them ("" for a
	// party not tagged yet).
	Tags []string
}

// Sessions lists the engine's calls, own and foreign, oldest first.
func (e *Engine) Sessions() []Session {
	e.mu.Lock()
	entries := make([]*entry, 0, len(e.calls))
	for _, en := range e.calls {
		entries = append(entries, en)
	}
	e.mu.Unlock()
	out := make([]Session, 0, len(entries))
	for _, en := range entries {
		en.mu.Lock()
		if c := en.c; !c.gone {
			s := Session{ID: c.id, Owner: c.owner, Foreign: c.foreign, Partition: c.partition,
				Created: c.created, LastSignal: c.lastSignal, DeleteAt: c.deleteAt, Tags: make([]string, 0, len(c.legs))}
			for _, l := range c.legs {
				s.Tags = append(s.Tags, l.tag)
			}
			out = append(out, s)
		}
		en.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Terminate ends a call at once, whatever its state (rtpengine-ctl's
// `terminate`: reason "forced", counted as forced terminated); false if
// the engine does not have it. A foreign call is dropped here (its record
// leaves node state, so its sockets are released) but stays in its
// owner's Redis partition.
func (e *Engine) Terminate(id string) bool {
	en := e.lock(id)
	if en == nil {
		return false
	}
	defer en.mu.Unlock()
	e.end(en, "forced", e.now())
	return true
}

// UpdateTimers changes the timers in force with f, atomically with respect
// to other updates, and returns the new ones.
func (e *Engine) UpdateTimers(f func(*Timers)) Timers {
	for {
		old := e.timers.Load()
		t := *old
		f(&t)
		if e.timers.CompareAndSwap(old, &t) {
			return t
		}
	}
}

// MaxSessions returns the session limit in force (-1: none).
func (e *Engine) MaxSessions() int { return int(e.maxSessions.Load()) }
