// Package portpool allocates UDP media ports for one local address.
//
// portd keeps one Pool per local address, each over the whole configured port
// range, so the same port number may be in use on two addresses at once.
//
// Allocation spreads like rtpengine's: the search starts a small random step
// after the last block handed out and wraps around the range, skipping ports
// that are allocated or in quarantine, so consecutive calls do not keep taking
// the lowest free port. The first allocation of a fresh pool starts at the
// bottom of the range. A released port stays in quarantine for a configurable
// time (none by default) before it can be handed out again.
//
// Ports are kept in bitmaps with a cursor, so an allocation looks at 64 ports
// per step and costs little even when the pool is nearly full; quarantine is
// a FIFO queue, drained lazily by every method. Operations do not allocate
// memory, except to build an error or a Snapshot.
package portpool

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
)

// Rand is the random source of a Pool; *rand.Rand from math/rand/v2
// satisfies it. IntN returns a number in [0, n).
type Rand interface {
	IntN(n int) int
}

// Option configures a Pool.
type Option func(*Pool)

// WithQuarantine sets how long a released port stays unavailable before it
// can be handed out again; zero (the default) makes it free at once.
func WithQuarantine(d time.Duration) Option {
	return func(p *Pool) { p.quarantine = d }
}

// WithClock replaces time.Now as the pool's clock, for tests. Quarantine
// expiry assumes the clock does not go backwards.
func WithClock(now func() time.Time) Option {
	return func(p *Pool) {
		if now != nil {
			p.now = now
		}
	}
}

// WithRand replaces the pool's random source (by default math/rand/v2's
// global one), for tests.
func WithRand(r Rand) Option {
	return func(p *Pool) {
		if r != nil {
			p.rng = r
		}
	}
}

// spreadSteps is the number of possible random steps between allocations;
// a step is an even number of ports in [0, 2*spreadSteps).
const spreadSteps = 8

const evenBits = 0x5555555555555555 // bit i set for every even i

// Pool is a port pool over one range of one local address. It is safe for
// concurrent use.
type Pool struct {
	mu         sync.Mutex
	min, max   int
	base       int      // min rounded down to even: offset 0, so pairs never straddle a word
	busy       []uint64 // allocated, quarantined, or outside min-max (padding)
	alloc      []uint64 // allocated
	used       int
	quarCount  int
	early      int
	cursor     int // offset where the next search starts
	quarantine time.Duration
	now        func() time.Time
	epoch      time.Time
	rng        Rand
	q          queue
}

// entry is one quarantined port: its offset, free again at due (since epoch).
type entry struct {
	due time.Duration
	off int
}

// queue is a FIFO ring of quarantined ports, oldest first. It never holds
// more entries than the pool has ports, so it never grows.
type queue struct {
	buf        []entry
	head, size int
}

type globalRand struct{}

func (globalRand) IntN(n int) int { return rand.IntN(n) }

// New returns a pool of the ports min to max inclusive, all free, with
// 1 <= min <= max <= 65535.
func New(min, max int, opts ...Option) (*Pool, error) {
	if min < 1 || max > 65535 || min > max {
		return nil, fmt.Errorf("%w %d-%d: want 1 <= min <= max <= 65535", errBadRange, min, max)
	}
	p := &Pool{min: min, max: max, base: min &^ 1, now: time.Now, rng: globalRand{}}
	for _, o := range opts {
		o(p)
	}
	if p.quarantine < 0 {
		return nil, fmt.Errorf("%w: negative quarantine %v", errBadOption, p.quarantine)
	}
	p.epoch = p.now()
	words := (max-p.base)/64 + 1
	p.busy = make([]uint64, words)
	p.alloc = make([]uint64, words)
	// Padding: offsets below min and above max are permanently busy.
	for off := 0; off < words*64; off++ {
		if port := p.base + off; port < min || port > max {
			p.busy[off>>6] |= 1 << (off & 63)
		}
	}
	p.cursor = min - p.base
	if p.quarantine > 0 {
		p.q.buf = make([]entry, max-min+1)
	}
	return p, nil
}

// AllocPair allocates an RTP/RTCP pair, an even port and the odd one after
// it, and returns the even one. It fails with ErrExhausted if no such pair is
// free.
func (p *Pool) AllocPair() (rtp int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire()
	off := p.scan((p.cursor+1)&^1, candPair)
	for off < 0 && p.q.size > 0 {
		p.releaseOldest(64)
		off = p.scan((p.cursor+1)&^1, candPair)
	}
	if off < 0 {
		return 0, fmt.Errorf("%w pair in %d-%d (%d in use, %d in quarantine)", ErrExhausted, p.min, p.max, p.used, p.quarCount)
	}
	p.take(off, 2)
	return p.base + off, nil
}

// AllocSingle allocates one port, for rtcp-mux. It prefers an even port and
// takes an odd one only when no even port is free. It fails with ErrExhausted
// if no port is free.
func (p *Pool) AllocSingle() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire()
	off := p.scan(p.cursor, candEven)
	if off < 0 {
		off = p.scan(p.cursor, candAny)
	}
	for off < 0 && p.q.size > 0 {
		p.releaseOldest(64)
		off = p.scan(p.cursor, candAny)
	}
	if off < 0 {
		return 0, fmt.Errorf("%w in %d-%d (%d in use, %d in quarantine)", ErrExhausted, p.min, p.max, p.used, p.quarCount)
	}
	p.take(off, 1)
	return p.base + off, nil
}

// Reserve allocates exactly the n ports port to port+n-1, as when a call is
// restored with the ports it had on another node. It fails, taking nothing,
// if one of them is out of range or allocated. A port in quarantine is taken
// out of quarantine and reserved: a restored call needs its exact ports, and
// that wins over the protection quarantine gives.
func (p *Pool) Reserve(port, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check("reserve", port, n); err != nil {
		return err
	}
	p.expire()
	for i := range n {
		if off := port + i - p.base; p.isAlloc(off) {
			return fmt.Errorf("reserve %d-%d: %w: %d", port, port+n-1, errInUse, port+i)
		}
	}
	for i := range n {
		off := port + i - p.base
		if p.isBusy(off) { // quarantined
			p.q.remove(off)
			p.quarCount--
		}
		p.set(off)
	}
	p.used += n
	return nil
}

// Release gives back the n ports port to port+n-1, which must all be
// allocated; otherwise it fails and releases nothing (a second release of a
// port is an error). With a quarantine the ports become free once it is over,
// else at once.
func (p *Pool) Release(port, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check("release", port, n); err != nil {
		return err
	}
	p.expire()
	for i := range n {
		if off := port + i - p.base; !p.isAlloc(off) {
			state := "free"
			if p.isBusy(off) {
				state = "in quarantine"
			}
			return fmt.Errorf("release %d-%d: %w: %d is %s", port, port+n-1, errNotAllocated, port+i, state)
		}
	}
	var due time.Duration
	if p.quarantine > 0 {
		due = p.now().Sub(p.epoch) + p.quarantine
	}
	for i := range n {
		off := port + i - p.base
		w, b := off>>6, uint64(1)<<(off&63)
		p.alloc[w] &^= b
		if p.quarantine > 0 {
			p.q.push(entry{due: due, off: off})
		} else {
			p.busy[w] &^= b
		}
	}
	p.used -= n
	if p.quarantine > 0 {
		p.quarCount += n
	}
	return nil
}

// Size returns the number of ports in the pool.
func (p *Pool) Size() int { return p.max - p.min + 1 }

// Range returns the pool's first and last port.
func (p *Pool) Range() (min, max int) { return p.min, p.max }

// Used returns the number of allocated ports.
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}

// Quarantined returns the number of released ports still in quarantine.
func (p *Pool) Quarantined() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire()
	return p.quarCount
}

// Free returns the number of ports that can be handed out now:
// Size() - Used() - Quarantined().
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire()
	return p.Size() - p.used - p.quarCount
}

// Snapshot returns the allocated ports in ascending order.
func (p *Pool) Snapshot() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, p.used)
	for wi, w := range p.alloc {
		for w != 0 {
			out = append(out, p.base+wi<<6+bits.TrailingZeros64(w))
			w &= w - 1
		}
	}
	return out
}

// check validates the block port to port+n-1 for op.
func (p *Pool) check(op string, port, n int) error {
	if n < 1 || n > p.Size() {
		return fmt.Errorf("%s %d: %w %d", op, port, errBadCount, n)
	}
	if port < p.min || port > p.max-n+1 {
		return fmt.Errorf("%s %d-%d: %w %d-%d", op, port, port+n-1, errOutOfRange, p.min, p.max)
	}
	return nil
}

// take allocates the n ports at offset off, free until now, and moves the
// cursor a random step past them.
func (p *Pool) take(off, n int) {
	for i := range n {
		p.set(off + i)
	}
	p.used += n
	p.cursor = (off + n + 2*p.rng.IntN(spreadSteps)) % (len(p.busy) * 64)
}

func (p *Pool) set(off int) {
	w, b := off>>6, uint64(1)<<(off&63)
	p.busy[w] |= b
	p.alloc[w] |= b
}

func (p *Pool) isAlloc(off int) bool { return p.alloc[off>>6]&(1<<(off&63)) != 0 }
func (p *Pool) isBusy(off int) bool  { return p.busy[off>>6]&(1<<(off&63)) != 0 }

// Kinds of candidate for scan.
const (
	candPair = iota // an even offset whose odd neighbour is free too
	candEven        // a free even offset
	candAny         // any free offset
)

// scan returns the first offset at or after start, wrapping around, that is
// a candidate of the given kind, or -1.
func (p *Pool) scan(start, kind int) int {
	nw := len(p.busy)
	wi, bit := start>>6, uint(start&63)
	if wi >= nw {
		wi, bit = 0, 0
	}
	for i := 0; i <= nw; i++ {
		w := p.busy[wi]
		var c uint64
		switch kind {
		case candPair:
			c = ^(w | w>>1) & evenBits
		case candEven:
			c = ^w & evenBits
		default:
			c = ^w
		}
		if i == 0 {
			c &= ^uint64(0) << bit // first visit: at or after start
		} else if i == nw {
			c &= 1<<bit - 1 // back at the first word: before start
		}
		if c != 0 {
			return wi<<6 + bits.TrailingZeros64(c)
		}
		if wi++; wi == nw {
			wi = 0
		}
	}
	return -1
}

// expire ends the quarantine of every port whose time is up.
func (p *Pool) expire() {
	if p.q.size == 0 {
		return
	}
	now := p.now().Sub(p.epoch)
	for p.q.size > 0 {
		e := p.q.buf[p.q.head]
		if e.due > now {
			return
		}
		p.q.pop()
		p.busy[e.off>>6] &^= 1 << (e.off & 63)
		p.quarCount--
	}
}

// releaseOldest ends the quarantine of up to n of the oldest quarantined
// ports early: the pool would otherwise be exhausted, and a call that gets
// no ports is worse than a port that rested less than asked.
func (p *Pool) releaseOldest(n int) {
	for ; n > 0 && p.q.size > 0; n-- {
		e := p.q.buf[p.q.head]
		p.q.pop()
		p.busy[e.off>>6] &^= 1 << (e.off & 63)
		p.quarCount--
		p.early++
	}
}

// EarlyReleases counts ports whose quarantine was cut short because the
// pool had no free port left.
func (p *Pool) EarlyReleases() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.early
}

func (q *queue) push(e entry) {
	q.buf[(q.head+q.size)%len(q.buf)] = e
	q.size++
}

func (q *queue) pop() {
	q.head = (q.head + 1) % len(q.buf)
	q.size--
}

// remove deletes the entry of offset off, keeping the order of the others.
// It is linear, for the rare Reserve of a quarantined port.
func (q *queue) remove(off int) {
	n := len(q.buf)
	for i := 0; i < q.size; i++ {
		if q.buf[(q.head+i)%n].off != off {
			continue
		}
		for j := i; j < q.size-1; j++ {
			q.buf[(q.head+j)%n] = q.buf[(q.head+j+1)%n]
		}
		q.size--
		return
	}
}
