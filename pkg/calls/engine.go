// Package calls is ng-ctl's call model: calls, their parties (monologues,
// named by SIP tags), medias and the local sockets each party sends to, and
// the offer / answer / delete / query / list logic of rtpengine's ng
// protocol on top of it. The SDP text itself is package sdp's business;
// ports come from portd's lease stock; every change is handed to a Store
// (node state) without waiting for it.
package calls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtpkit/rtpkit/pkg/api/portdapi"
	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// Ports is where local sockets come from: portd's lease stock.
type Ports interface {
	// Take returns a pre-bound pair (a single port if single) on the
	// interface (empty: the family's default) and family (4 or 6).
	Take(ctx context.Context, iface string, family int, single bool) (portdapi.Pair, error)
	// Put gives back a pair that was taken but not used.
	Put(p portdapi.Pair)
	// Free gives back pairs a call used and dropped; it must not block.
	Free(pairs []portdapi.Pair)
}

// Store persists calls; it must not block (writes are pipelined and their
// acknowledgements handled elsewhere).
type Store interface {
	Save(c nodestate.Call)
	Remove(id string)
}

// Interface is a logical interface and the address families it has, as
// portd reports them, in configuration order.
type Interface struct {
	Name     string
	Families []int
}

// Timers are rtpengine's call timers, in seconds (0 = off where that
// makes sense).
type Timers struct {
	Timeout, SilentTimeout, OfferTimeout, FinalTimeout, DeleteDelay int
}

// Config configures an Engine.
type Config struct {
	Node        string
	Ports       Ports
	Store       Store
	Interfaces  []Interface
	Timers      Timers
	MaxSessions int // -1: no limit
	// Limits bound what one request and one call may hold.
	Limits Limits
	// ActiveSwitchover makes a foreign call own when an offer or answer
	// changes it (rtpengine's active-switchover); without it such a call
	// is changed but stays foreign.
	ActiveSwitchover bool
	// InstanceID is the 12-hex-digit id of the loop-protect marker; random
	// if empty.
	InstanceID string
	Now        func() time.Time
	Log        *slog.Logger
	// DTLSFingerprint gives the a=fingerprint value of the node's DTLS
	// certificate for a hash (pkg/dtlscert); nil: no DTLS is offered.
	DTLSFingerprint func(hash string) (string, error)
	// Rand is where SDES keys come from; nil: crypto/rand (tests give a
	// deterministic reader).
	Rand io.Reader
}

// Engine holds the node's calls.
type Engine struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	calls map[string]*entry

	timers      atomic.Pointer[Timers]
	activity    atomic.Pointer[Activity]
	news        atomic.Pointer[newsSource]
	graceUntil  atomic.Int64 // unix ns before which media timers wait
	maxSessions atomic.Int64
	// refuseNew, when set, is why new calls are refused (SetRefuseNew).
	refuseNew atomic.Pointer[Reasoned]
	stats     counters
	started   time.Time

	// Trickle ICE fragments waiting for their call or party
	// (fragment.go), by call and tag.
	fragMu    sync.Mutex
	frags     map[string][]queuedFragment
	fragCount int
}

type entry struct {
	mu sync.Mutex
	c  *call
}

// New returns an engine with no calls.
func New(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.InstanceID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.InstanceID = hex.EncodeToString(b)
	}
	e := &Engine{cfg: cfg, log: cfg.Log, now: cfg.Now, calls: map[string]*entry{}, started: cfg.Now()}
	t := cfg.Timers
	e.timers.Store(&t)
	e.maxSessions.Store(int64(cfg.MaxSessions))
	return e
}

// SetTimers changes the timers at run time.
func (e *Engine) SetTimers(t Timers) { e.timers.Store(&t) }

// Timers returns the timers in force.
func (e *Engine) Timers() Timers { return *e.timers.Load() }

// SetRefuseNew makes offers for new calls fail with reason (the ng
// error-reason) until it is called again with ""; calls in progress go on.
// ng-ctl sets it while node state is over its size limit.
func (e *Engine) SetRefuseNew(reason string) {
	if reason == "" {
		e.refuseNew.Store(nil)
		return
	}
	e.refuseNew.Store(&Reasoned{reason})
}

// SetMaxSessions changes the session limit (-1: none).
func (e *Engine) SetMaxSessions(n int) { e.maxSessions.Store(int64(n)) }

// lock returns the locked entry of id, or nil.
func (e *Engine) lock(id string) *entry {
	e.mu.Lock()
	en := e.calls[id]
	e.mu.Unlock()
	if en == nil {
		return nil
	}
	en.mu.Lock()
	if en.c.gone {
		en.mu.Unlock()
		return nil
	}
	return en
}

// lockOrCreate returns the locked entry of id, creating the call; created
// says whether it did. The session limit applies to new calls.
func (e *Engine) lockOrCreate(id string, supportsLoadLimit bool) (*entry, bool, error) {
	for {
		e.mu.Lock()
		en := e.calls[id]
		if en == nil {
			if r := e.refuseNew.Load(); r != nil {
				e.mu.Unlock()
				e.stats.rejected.Add(1)
				return nil, false, r
			}
			if max := e.maxSessions.Load(); max >= 0 && int64(e.ownCountLocked()) >= max {
				e.mu.Unlock()
				e.stats.rejected.Add(1)
				if supportsLoadLimit {
					return nil, false, &LoadLimitError{Message: "Parallel session limit reached"}
				}
				return nil, false, ErrSessionLimit
			}
			now := e.now()
			en = &entry{c: &call{id: id, owner: e.cfg.Node, created: now, lastSignal: now}}
			en.mu.Lock()
			e.calls[id] = en
			e.mu.Unlock()
			e.stats.managed.Add(1)
			return en, true, nil
		}
		e.mu.Unlock()
		en.mu.Lock()
		if !en.c.gone {
			return en, false, nil
		}
		en.mu.Unlock() // removed meanwhile: look again
	}
}

func (e *Engine) ownCountLocked() int {
	n := 0
	for _, en := range e.calls {
		if !en.c.foreign {
			n++
		}
	}
	return n
}

// remove drops a locked call from the engine and the store.
func (e *Engine) remove(en *entry) {
	en.c.gone = true
	e.mu.Lock()
	if e.calls[en.c.id] == en {
		delete(e.calls, en.c.id)
	}
	e.mu.Unlock()
	if e.cfg.Store != nil {
		e.cfg.Store.Remove(en.c.id)
	}
}

// save hands the call's record to the store.
func (e *Engine) save(c *call) {
	if e.cfg.Store != nil {
		e.cfg.Store.Save(c.record())
	}
}

// List returns up to limit call ids (own and foreign).
func (e *Engine) List(limit int) ([]string, error) {
	if limit < 0 {
		return nil, ErrBadLimit
	}
	e.mu.Lock()
	ids := make([]string, 0, len(e.calls))
	for id := range e.calls {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

// Counts returns the number of own and foreign calls.
func (e *Engine) Counts() (own, foreign int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range e.calls {
		if en.c.foreign {
			foreign++
		} else {
			own++
		}
	}
	return own, foreign
}

// Load installs calls from node-state records (a restarted ng-ctl, or
// calls restored from another node). A record replaces the state of the
// call of the same id in place, owner and foreign flag included: a request
// or timer working on the call finishes first, and the next one sees the
// loaded state.
func (e *Engine) Load(records []nodestate.Call) {
	for _, r := range records {
		if r.Validate() != nil {
			continue
		}
		e.load(fromRecord(r))
	}
}

func (e *Engine) load(c *call) {
	for {
		e.mu.Lock()
		en := e.calls[c.id]
		if en == nil {
			e.calls[c.id] = &entry{c: c}
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		en.mu.Lock()
		if !en.c.gone {
			en.c = c
			en.mu.Unlock()
			return
		}
		en.mu.Unlock() // removed meanwhile: look again
	}
}

// Forget drops a call without touching the store (its record was deleted
// by someone else).
func (e *Engine) Forget(id string) {
	if en := e.lock(id); en != nil {
		en.c.gone = true
		e.mu.Lock()
		delete(e.calls, id)
		e.mu.Unlock()
		en.mu.Unlock()
	}
}

// InstanceID is the id of this engine's loop-protect marker.
func (e *Engine) InstanceID() string { return e.cfg.InstanceID }

// counters are the engine's totals for statistics.
type counters struct {
	managed, rejected, timeout, silentTimeout, offerTimeout, finalTimeout, regular, forced atomic.Int64
	durationSum                                                                            atomic.Int64 // µs
	// durationSquares sums the squares of the ended calls' durations in
	// ms² (milliseconds, as rtpengine, so that the sum does not overflow).
	durationSquares atomic.Int64
	ended           atomic.Int64
}

// Record returns the current node-state record of a call, false if the
// engine does not have it.
func (e *Engine) Record(id string) (nodestate.Call, bool) {
	en := e.lock(id)
	if en == nil {
		return nodestate.Call{}, false
	}
	defer en.mu.Unlock()
	return en.c.record(), true
}

// SetInterfaces replaces the list of portd's logical interfaces.
func (e *Engine) SetInterfaces(ifaces []Interface) {
	e.mu.Lock()
	e.cfg.Interfaces = ifaces
	e.mu.Unlock()
}

// IsOwn reports whether the call exists and is this node's own.
func (e *Engine) IsOwn(id string) bool {
	e.mu.Lock()
	en := e.calls[id]
	e.mu.Unlock()
	if en == nil {
		return false
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	return !en.c.gone && !en.c.foreign
}

// IsForeign reports whether the call exists and is foreign.
func (e *Engine) IsForeign(id string) bool {
	en := e.lock(id)
	if en == nil {
		return false
	}
	defer en.mu.Unlock()
	return en.c.foreign
}
