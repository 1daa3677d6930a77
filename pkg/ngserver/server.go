package ngserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves the ng protocol on the listeners of one [Config], with one
// reply cache and one handler-concurrency limit shared by all of them. Its
// methods are safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	cache *replyCache
	sem   chan struct{} // one token per running handler call

	udp   []*udpListener
	tcp   []net.Listener
	http  []net.Listener
	hsrv  *http.Server
	addrs Addrs

	stop     chan struct{} // closed by Close
	stopOnce sync.Once
	stopping chan struct{} // closed when shutdown starts
	work     chan func()   // requests for an idle worker (see run)
	served   chan struct{} // closed when Serve has returned

	mu       sync.Mutex
	state    int                   // stateNew, stateServing, stateClosed
	baseCtx  context.Context       // handlers' context, set by Serve
	cancel   context.CancelFunc    // cancels baseCtx
	conns    map[net.Conn]struct{} // open TCP-ng connections
	tcpConns int

	httpConns atomic.Int64 // open HTTP connections
	// tcpShare and httpShare count each client address's connections.
	tcpShare, httpShare clientShare

	wg sync.WaitGroup // listener loops, connections and handler calls

	stats counters
}

const (
	stateNew = iota
	stateServing
	stateClosed
)

// Addrs are the addresses a [Server] is bound to, in the order of the
// configuration, with the ports the kernel chose for port 0.
type Addrs struct {
	UDP, TCP, HTTP []netip.AddrPort
}

// TransportStats counts the messages of one transport.
type TransportStats struct {
	// Requests counts well-framed messages received, answered from the
	// cache or not.
	Requests uint64
	// Malformed counts messages dropped or refused for their framing: UDP
	// datagrams without a cookie, HTTP bodies without one (400), TCP
	// streams closed for garbage or oversize.
	Malformed uint64
	// Rejected counts connections closed at once because [Config.MaxConns]
	// were open (TCP and HTTP only).
	Rejected uint64
}

// Stats is a snapshot of a [Server]'s counters.
type Stats struct {
	// UDP, TCP and HTTP count per transport.
	UDP, TCP, HTTP TransportStats
	// HandlerCalls counts calls of the handler.
	HandlerCalls uint64
	// CacheHits counts requests answered with a reply from the cache,
	// including duplicates that waited for their first request's reply.
	CacheHits uint64
	// CacheWaits counts the duplicates among CacheHits (and those that
	// gave up or got no reply) that found their first request still being
	// handled.
	CacheWaits uint64
	// CacheEvictions counts replies dropped from the cache before their
	// TTL because a cap was reached.
	CacheEvictions uint64
	// CacheEntries and CacheBytes are the cache's current size.
	CacheEntries, CacheBytes int
	// Oversized counts UDP datagrams that filled the read buffer.
	Oversized uint64
	// WaitOverflow counts UDP duplicates dropped because [MaxWaitersUDP]
	// were already waiting for the same cookie.
	WaitOverflow uint64
	// Panics counts handler calls that panicked (nothing was answered).
	Panics uint64
	// NoReply counts handler calls that returned an empty reply.
	NoReply uint64
	// InFlight is the number of handler calls running now.
	InFlight int
}

type transportCounters struct {
	requests, malformed, rejected atomic.Uint64
}

func (t *transportCounters) snapshot() TransportStats {
	return TransportStats{Requests: t.requests.Load(), Malformed: t.malformed.Load(), Rejected: t.rejected.Load()}
}

type counters struct {
	udp, tcp, http                                           transportCounters
	calls, hits, waits, oversized, overflow, panics, noReply atomic.Uint64
}

// New checks cfg and binds every listener it names. On error nothing stays
// bound, and the error names the transport and address that failed. The
// server does not read from its sockets before [Server.Serve].
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Log,
		cache:    newReplyCache(cfg.CacheTTL, cfg.CacheMaxEntries, cfg.CacheMaxBytes, MaxWaitersUDP, cfg.now),
		sem:      make(chan struct{}, cfg.MaxInFlight),
		stop:     make(chan struct{}),
		stopping: make(chan struct{}),
		work:     make(chan func()),
		served:   make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
	}
	ok := false
	defer func() {
		if !ok {
			s.closeListeners()
		}
	}()
	for _, a := range cfg.UDP {
		l, err := listenUDP(a)
		if err != nil {
			return nil, fmt.Errorf("ngserver: ng over UDP: %w", err)
		}
		s.udp = append(s.udp, l)
		s.addrs.UDP = append(s.addrs.UDP, l.local)
	}
	for _, a := range cfg.TCP {
		l, ap, err := listenTCP(a)
		if err != nil {
			return nil, fmt.Errorf("ngserver: ng over TCP: %w", err)
		}
		s.tcp = append(s.tcp, l)
		s.addrs.TCP = append(s.addrs.TCP, ap)
	}
	for _, a := range cfg.HTTP {
		l, ap, err := listenTCP(a)
		if err != nil {
			return nil, fmt.Errorf("ngserver: ng over HTTP: %w", err)
		}
		s.http = append(s.http, l)
		s.addrs.HTTP = append(s.addrs.HTTP, ap)
	}
	if len(s.http) > 0 {
		s.hsrv = s.newHTTPServer()
	}
	ok = true
	return s, nil
}

// Addrs returns the addresses the server is bound to.
func (s *Server) Addrs() Addrs {
	return Addrs{
		UDP:  append([]netip.AddrPort(nil), s.addrs.UDP...),
		TCP:  append([]netip.AddrPort(nil), s.addrs.TCP...),
		HTTP: append([]netip.AddrPort(nil), s.addrs.HTTP...),
	}
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	cs := s.cache.stats()
	return Stats{
		UDP:            s.stats.udp.snapshot(),
		TCP:            s.stats.tcp.snapshot(),
		HTTP:           s.stats.http.snapshot(),
		HandlerCalls:   s.stats.calls.Load(),
		CacheHits:      s.stats.hits.Load(),
		CacheWaits:     s.stats.waits.Load(),
		CacheEvictions: cs.evictions,
		CacheEntries:   cs.entries,
		CacheBytes:     cs.bytes,
		Oversized:      s.stats.oversized.Load(),
		WaitOverflow:   s.stats.overflow.Load(),
		Panics:         s.stats.panics.Load(),
		NoReply:        s.stats.noReply.Load(),
		InFlight:       len(s.sem),
	}
}

// Serve reads and answers requests on every listener until ctx ends or
// [Server.Close] is called, then shuts down (see the package
// documentation) and returns nil. If a listener fails for good, Serve shuts
// down too and returns that error. The handlers' context carries ctx's
// values but is cancelled only by the shutdown. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateServing:
		s.mu.Unlock()
		return fmt.Errorf("ngserver: %w", ErrServing)
	case stateClosed:
		s.mu.Unlock()
		return fmt.Errorf("ngserver: %w", ErrClosed)
	}
	s.state = stateServing
	s.baseCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Unlock()
	defer close(s.served)

	n := len(s.udp) + len(s.tcp) + len(s.http)
	errc := make(chan error, n)
	start := func(f func() error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := f(); err != nil {
				errc <- err
			}
		}()
	}
	for _, l := range s.udp {
		start(func() error { return s.serveUDP(l) })
	}
	for _, l := range s.tcp {
		start(func() error { return s.serveTCP(l) })
	}
	for _, l := range s.http {
		start(func() error { return s.serveHTTP(l) })
	}

	var err error
	select {
	case <-ctx.Done():
	case <-s.stop:
	case err = <-errc:
		s.log.Error("ng listener failed, shutting down", "err", err)
	}
	s.shutdown()
	return err
}

// Close stops the server and releases its sockets. If Serve is running,
// Close waits until it has returned; if Serve was never called, it just
// closes the listeners. Close is idempotent and returns nil.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	st := s.state
	if st == stateNew {
		s.state = stateClosed
	}
	s.mu.Unlock()
	switch st {
	case stateNew:
		s.closeListeners()
	case stateServing:
		<-s.served
	}
	return nil
}

// shutdown stops reading, lets running handlers finish within the
// shutdown timeout, then cancels them and closes everything. It returns
// once every goroutine of the server has ended.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.state = stateClosed
	s.mu.Unlock()
	close(s.stopping)

	now := time.Now()
	for _, l := range s.udp {
		// Wake the read loop but keep the socket for the replies.
		_ = l.conn.SetReadDeadline(now)
	}
	for _, l := range s.tcp {
		_ = l.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(now)
	}
	s.mu.Unlock()

	grace, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if s.hsrv != nil {
		if err := s.hsrv.Shutdown(grace); err != nil {
			_ = s.hsrv.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-grace.Done():
		s.log.Warn("ng handlers still running at shutdown timeout; cancelling them")
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	s.closeListeners()
}

// closeListeners closes every socket. Closing one twice is harmless.
func (s *Server) closeListeners() {
	for _, l := range s.udp {
		_ = l.conn.Close()
	}
	for _, l := range s.tcp {
		_ = l.Close()
	}
	for _, l := range s.http {
		_ = l.Close()
	}
}

// track counts one more running goroutine of the server (an HTTP request)
// unless shutdown has begun; the caller calls s.wg.Done when it returns.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateServing {
		return false
	}
	s.wg.Add(1)
	return true
}

// isStopping reports whether shutdown has begun.
func (s *Server) isStopping() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// acquire takes a handler slot, waiting while all are busy. It fails when
// ctx ends, or when shutdown begins and stopOnShutdown is set.
func (s *Server) acquire(ctx context.Context, stopOnShutdown bool) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
	}
	var stopping <-chan struct{}
	if stopOnShutdown {
		stopping = s.stopping
	}
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-stopping:
		return false
	}
}

func (s *Server) release() { <-s.sem }

// call runs the handler once, turning a panic into no reply.
func (s *Server) call(doc []byte, from netip.AddrPort) (reply []byte) {
	s.stats.calls.Add(1)
	defer func() {
		if r := recover(); r != nil {
			s.stats.panics.Add(1)
			s.log.Error("ng handler panicked; no reply sent", "from", from, "panic", r, "stack", string(debug.Stack()))
			reply = nil
		}
	}()
	return s.cfg.Handler(s.baseCtx, doc, from)
}

// answer runs the handler for the pending cache entry e that the caller
// owns and holds a slot for, stores the framed reply and returns it. It
// returns nil, and abandons e, when the handler panics or returns nothing.
func (s *Server) answer(e *cacheEntry, doc []byte, from netip.AddrPort) []byte {
	reply := s.call(doc, from)
	if len(reply) == 0 {
		if s.baseCtx.Err() == nil {
			s.stats.noReply.Add(1)
			s.log.Warn("ng handler returned no reply", "from", from, "cookie", e.key)
		}
		s.cache.abandon(e)
		return nil
	}
	msg := frame(e.key, reply)
	s.cache.finish(e, msg)
	return msg
}

// exchange answers one well-framed message for a caller that can block
// (TCP, HTTP): from the cache, after waiting for the first request with the
// same cookie, or by running the handler. doc must belong to the handler.
// It returns the framed reply, or nil when there is none (or ctx ended).
func (s *Server) exchange(ctx context.Context, cookie, doc []byte, from netip.AddrPort) []byte {
	e, owner := s.cache.begin(cookie)
	if !owner {
		return s.duplicate(ctx, e)
	}
	if !s.acquire(ctx, false) {
		s.cache.abandon(e)
		return nil
	}
	defer s.release()
	return s.answer(e, doc, from)
}

// duplicate waits for the reply of the existing entry e.
func (s *Server) duplicate(ctx context.Context, e *cacheEntry) []byte {
	if _, finished := s.cache.waitChan(e); !finished {
		s.stats.waits.Add(1)
	}
	msg, err := s.cache.wait(ctx, e)
	if err != nil || msg == nil {
		return nil
	}
	s.stats.hits.Add(1)
	return msg
}

// isClosedErr reports whether err comes from a socket closed by us.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// workerIdle is how long a request worker waits for another request
// before it ends.
const workerIdle = 10 * time.Second

// run hands f to an idle worker goroutine, or starts one. Workers keep
// their grown stacks from one request to the next (a goroutine per
// request paid for growing its stack every time: 7 % of ng-ctl's CPU at
// 3000 calls/s) and end after workerIdle without work, or at shutdown.
func (s *Server) run(f func()) {
	select {
	case s.work <- f:
	default:
		s.wg.Add(1)
		go s.worker(f)
	}
}

func (s *Server) worker(f func()) {
	defer s.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-s.work:
		case <-idle.C:
			return
		case <-s.stopping:
			return
		}
	}
}
