package fwd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned (wrapped) by this package; test for them with [errors.Is].
var (
	// ErrClosed is returned by an [Engine] that has been closed.
	ErrClosed = errors.New("fwd: engine closed")
	// ErrInvalidConfig is returned by [New] for an out-of-range [Config].
	ErrInvalidConfig = errors.New("fwd: invalid config")
	// ErrInvalidStream is returned by [Engine.Set] for a bad id, FD or
	// link, or a socket that is not an IPv4/IPv6 datagram socket.
	ErrInvalidStream = errors.New("fwd: invalid stream")
	// ErrFDInUse is returned by [Engine.Set] when another stream already
	// uses the FD.
	ErrFDInUse = errors.New("fwd: socket already used by another stream")
	// ErrCallChanged is returned by [Engine.Set] when an existing stream is
	// given a different Call.
	ErrCallChanged = errors.New("fwd: a stream cannot move to another call")
	// ErrOtherCall is returned by [Engine.Set] when Peer or RTCP names a
	// stream of another call.
	ErrOtherCall = errors.New("fwd: linked stream belongs to another call")
	// ErrFamily is returned by [Engine.Set] when the signalled endpoint
	// cannot be reached from the socket (an IPv6 endpoint on an IPv4
	// socket).
	ErrFamily = errors.New("fwd: signalled endpoint does not fit the socket's address family")
)

// bufSize is the size of each receive buffer; longer datagrams are
// truncated by the kernel, counted as errors and dropped.
const bufSize = 2048

// DefaultMaxStreamPPS is Config.MaxStreamPPS's default.
const DefaultMaxStreamPPS = 30000

// maxEvents is the number of epoll events taken per wait.
const maxEvents = 128

// Config configures an [Engine]. The zero value gives the defaults.
type Config struct {
	// Workers is the number of loops, one per core; default
	// runtime.NumCPU().
	Workers int
	// Batch is the most packets received from one socket per wakeup (one
	// recvmmsg); default 64, at most 1024.
	Batch int
	// MaxStreamPPS caps the packets per second accepted from one stream;
	// the excess is dropped and counted in FloodDrops. Bursts of
	// MaxStreamPPS/10 (at least Batch) packets pass. Default 30000; a
	// negative value disables the cap.
	MaxStreamPPS int
	// LearnWindow is how long after Stream.LastSignal Delayed learning
	// keeps following the source; default 3 s. (rtpengine tests the window
	// on whole seconds, so its window is 3 to 4 s.)
	LearnWindow time.Duration
	// Wait is the epoll timeout: the longest a loop blocks before it
	// passes a preemption point; default 5 ms, rounded to milliseconds.
	Wait time.Duration
	// Changes, if not nil, receives the id of a stream whenever its
	// endpoint or confirmation changes because of a packet (learning,
	// confirmation, media handover). The loops never block on it: when
	// the channel is full the notice is dropped, so a reader that must not
	// miss a change also polls [Engine.Stats]. rtp-fwd's fast path uses it
	// to follow re-latches at once.
	Changes chan<- StreamID
	// ThreadSetup, if not nil, runs on each loop's OS thread once the loop
	// has locked itself to it, before its first wait: rtp-fwd sets the
	// thread's scheduling policy there (the media loops stay SCHED_OTHER
	// while the rest of the process may run as a batch task).
	ThreadSetup func()
	// DTLSCert is the certificate of DTLS-SRTP handshakes (nil: a stream
	// with a DTLS role never gets keys).
	DTLSCert *tls.Certificate
	// Media builds the processors of streams with Stream.Media
	// (transcoding); nil: such streams' RTP is dropped.
	Media MediaFactory
	// DTMF, if not nil, gets every RFC 4733 event of a stream with
	// Stream.DTMF, once, when it ends. It runs on a media goroutine and
	// must not block for long.
	DTMF func(DTMFEvent)
	// MediaWorkers is the number of media goroutines (transcoding, DTMF
	// events); default runtime.NumCPU().
	MediaWorkers int
}

func (c Config) withDefaults() (Config, error) {
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.MaxStreamPPS == 0 {
		c.MaxStreamPPS = DefaultMaxStreamPPS
	}
	if c.LearnWindow == 0 {
		c.LearnWindow = 3 * time.Second
	}
	if c.Wait == 0 {
		c.Wait = 5 * time.Millisecond
	}
	switch {
	case c.Workers < 0:
		return c, fmt.Errorf("%w: Workers %d", ErrInvalidConfig, c.Workers)
	case c.Batch < 1 || c.Batch > 1024:
		return c, fmt.Errorf("%w: Batch %d not in 1..1024", ErrInvalidConfig, c.Batch)
	case c.LearnWindow < 0:
		return c, fmt.Errorf("%w: LearnWindow %v", ErrInvalidConfig, c.LearnWindow)
	case c.Wait < time.Millisecond || c.Wait > time.Second:
		return c, fmt.Errorf("%w: Wait %v not in 1ms..1s", ErrInvalidConfig, c.Wait)
	}
	return c, nil
}

// Engine is the forwarding engine of one worker. Its methods are safe for
// concurrent use.
type Engine struct {
	loops  []*loop
	manual bool // tests: no loop goroutines; commands are applied inline
	wg     sync.WaitGroup

	// checks is the ICE checks' queue from the loops to answerChecks,
	// which closes checked when the queue is closed and emptied.
	checks  chan ctlJob
	checked chan struct{}
	ctl     ctlStreams
	cfg     Config
	// dtlsWG counts the DTLS sessions' goroutines (dtls.go);
	// dtlsFailures the handshakes that failed.
	dtlsWG       sync.WaitGroup
	dtlsFailures atomic.Uint64
	// dtlsKeys are the keys of the finished handshakes (mu).
	dtlsKeys map[StreamID][2]SRTP
	media    *mediaWorkers

	mu      sync.RWMutex
	closed  bool
	streams map[StreamID]*entry
	fds     map[int]StreamID
}

// entry is the control side's record of a stream. Entries are replaced,
// never changed, so a failed Set can restore the previous one.
type entry struct {
	loop   *loop
	call   string
	fd     int
	altFD  int // Stream.AltFD
	family int // of fd, as check found it
	pub    *published
}

// New starts an engine with cfg.Workers loops. If GOMAXPROCS is below
// Workers+1 it is raised to that: each loop keeps its P while it waits.
func New(cfg Config) (*Engine, error) {
	e, err := newEngine(cfg, false)
	if err != nil {
		return nil, err
	}
	if runtime.GOMAXPROCS(0) < len(e.loops)+1 {
		runtime.GOMAXPROCS(len(e.loops) + 1)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run(&e.wg)
	}
	return e, nil
}

// newEngine builds the engine; with manual set it starts no goroutines and
// the caller drives the loops with step.
func newEngine(cfg Config, manual bool) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{manual: manual, streams: map[StreamID]*entry{}, fds: map[int]StreamID{}, checks: make(chan ctlJob, checkQueue), checked: make(chan struct{}),
		ctl: ctlStreams{streams: map[StreamID]ctlStream{}}, cfg: cfg, dtlsKeys: map[StreamID][2]SRTP{}}
	for i := range cfg.Workers {
		l, err := newLoop(i, cfg)
		if err != nil {
			for _, l := range e.loops {
				l.close()
			}
			return nil, err
		}
		l.checks = e.checks
		e.loops = append(e.loops, l)
	}
	if cfg.Media != nil || cfg.DTMF != nil {
		n := cfg.MediaWorkers
		if n <= 0 {
			n = runtime.NumCPU()
		}
		e.media = newMediaWorkers(n, cfg.Media, cfg.DTMF)
		for _, l := range e.loops {
			l.media = e.media
		}
	}
	go e.answerChecks(e.checks)
	return e, nil
}

// loopFor picks the loop of a call (FNV-1a of the key).
func (e *Engine) loopFor(call string) *loop {
	h := uint64(14695981039346656037)
	for i := 0; i < len(call); i++ {
		h ^= uint64(call[i])
		h *= 1099511628211
	}
	return e.loops[h%uint64(len(e.loops))]
}

// send queues c for loop l, wakes l and returns a function that waits
// until l has applied it. e.mu is held, so commands reach each loop in the
// order of the calls; the wait happens after e.mu is released.
func (e *Engine) send(l *loop, c *command) (wait func() error) {
	wait = e.post(l, c)
	if !e.manual {
		l.wake()
	}
	return wait
}

// post queues c for loop l without waking it (unless its queue is full)
// and returns a function that waits until l has applied it; e.mu is held.
// A manual engine applies c at once.
func (e *Engine) post(l *loop, c *command) (wait func() error) {
	if e.manual {
		err := l.apply(c)
		l.releaseTouched()
		return func() error { return err }
	}
	c.done = make(chan error, 1)
	select {
	case l.cmds <- c:
	default:
		l.wake() // the loop empties its queue, then takes c
		l.cmds <- c
	}
	return func() error { return <-c.done }
}

// Latch makes ep the confirmed endpoint of stream id, as if the stream had
// latched onto a packet from ep: packets for the party go there, and
// learning continues as for any confirmed stream (strict-source,
// media-handover). rtp-fwd uses it to adopt a stream whose packets the
// kernel fast path was already forwarding when rtp-fwd started, so that
// none of them ever reached userspace to be latched. Streams that never
// learn (Asymmetric, Off) and streams whose party has no usable signalled
// endpoint keep their endpoint; it is not an error.
func (e *Engine) Latch(id StreamID, ep netip.AddrPort) error {
	if !usable(ep) {
		return fmt.Errorf("fwd: latch stream %d: %w: endpoint %s", id, ErrInvalidStream, ep)
	}
	return e.toLoop("latch", &command{op: opLatch, id: id, ep: netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())})
}

// toLoop sends command c to the loop of stream c.id and waits until the
// loop has applied it (what names the command in errors).
func (e *Engine) toLoop(what string, c *command) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	ent := e.streams[c.id]
	if ent == nil {
		e.mu.Unlock()
		return fmt.Errorf("fwd: %s stream %d: %w: no such stream", what, c.id, ErrInvalidStream)
	}
	wait := e.send(ent.loop, c)
	e.mu.Unlock()
	if err := wait(); err != nil {
		return fmt.Errorf("fwd: %s stream %d: %w", what, c.id, err)
	}
	return nil
}

// Stats returns stream id's counters; false if there is no such stream.
// It takes no lock on the packet path: the loops publish counters after
// each batch. Stats keeps working after Close (the final counters).
func (e *Engine) Stats(id StreamID) (Counters, bool) {
	e.mu.RLock()
	ent := e.streams[id]
	e.mu.RUnlock()
	if ent == nil {
		return Counters{}, false
	}
	return ent.pub.read(), true
}

// Close stops the loops and waits for their goroutines to end, then closes
// the engine's own descriptors (epoll sets and eventfds). Streams' sockets
// are left open: they belong to the caller. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	for _, l := range e.loops {
		l.stop.Store(true)
		l.wake()
	}
	e.wg.Wait()
	close(e.checks) // no loop sends any more
	if e.media != nil {
		e.media.close()
	}
	<-e.checked
	var errs []error
	for _, l := range e.loops {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syscallErr wraps a kernel error with the call's name.
func syscallErr(name string, err error) error {
	return os.NewSyscallError(name, err)
}
