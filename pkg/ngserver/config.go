package ngserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// Handler answers one ng document (bencode dict starting with 'd' or JSON
// object starting with '{') received from `from` (the client's address) and
// returns the reply document (without cookie).
//
// doc belongs to the handler, which may keep it; it may be empty (a message
// with nothing after the cookie) or not a dictionary at all, and the handler
// answers such input with an error reply. Handlers run concurrently. An empty
// or nil reply means "no answer": nothing is sent or cached.
type Handler func(ctx context.Context, doc []byte, from netip.AddrPort) []byte

// Default limits, used where a [Config] field is zero.
const (
	// DefaultCacheTTL is how long a reply stays in the cookie cache.
	DefaultCacheTTL = 60 * time.Second
	// DefaultCacheMaxEntries caps the number of cached replies.
	DefaultCacheMaxEntries = 100_000
	// DefaultCacheMaxBytes caps the memory of cached replies (their bytes
	// plus a fixed per-entry overhead).
	DefaultCacheMaxBytes = 64 << 20
	// DefaultMaxInFlight caps concurrent handler calls.
	DefaultMaxInFlight = 64
	// DefaultMaxMessage caps one TCP or HTTP message (cookie, space and
	// document).
	DefaultMaxMessage = 1 << 20
	// DefaultMaxConns caps open connections per stream transport (TCP and
	// HTTP each).
	DefaultMaxConns = 256
	// DefaultMaxConnsPerClient caps one client address's open connections
	// per stream transport: a SIP proxy opens one per worker process.
	DefaultMaxConnsPerClient = 64
	// DefaultIdleTimeout closes a TCP connection that sent nothing for
	// this long.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultShutdownTimeout bounds how long shutdown waits for running
	// handlers before cancelling their context.
	DefaultShutdownTimeout = 5 * time.Second
)

// Fixed limits.
const (
	// MaxDatagram is the UDP read buffer size. A datagram that fills it is
	// treated as oversized.
	MaxDatagram = 64 << 10
	// MaxCookieTCP is how far into a TCP message the space after the cookie
	// must appear; a stream without one within this many bytes is closed.
	MaxCookieTCP = 1024
	// MaxWaitersUDP caps the UDP duplicates queued for one cookie whose
	// first request is still being handled.
	MaxWaitersUDP = 32
	// ContentType is the media type of ng messages over HTTP.
	ContentType = "application/x-rtpengine-ng"
)

// Config describes a [Server]. Addresses are "IP:PORT" ("[IP]:PORT" for
// IPv6, with an optional zone); port 0 picks a free port (see
// [Server.Addrs]). Zero limits take the Default values above.
type Config struct {
	// UDP, TCP and HTTP are the addresses to listen on for ng over UDP
	// (--listen-ng), TCP (--listen-tcp-ng) and HTTP (--listen-http).
	// Wildcard addresses (0.0.0.0, ::) are allowed; an IPv6 listener is
	// IPv6-only.
	UDP, TCP, HTTP []string
	// Handler answers the documents. Required.
	Handler Handler
	// HTTPExtra serves HTTP requests for paths other than /ng and /ping on
	// the HTTP listeners (such as /metrics and /healthz). Nil answers 404.
	HTTPExtra http.Handler
	// Log receives the server's log records. Nil discards them.
	Log *slog.Logger

	// CacheTTL is how long a reply is kept for retransmissions.
	CacheTTL time.Duration
	// CacheMaxEntries and CacheMaxBytes bound the reply cache; the oldest
	// replies are evicted first.
	CacheMaxEntries int
	CacheMaxBytes   int
	// MaxInFlight caps handler calls running at once, across transports.
	MaxInFlight int
	// MaxMessage caps one TCP or HTTP message.
	MaxMessage int
	// MaxConns caps open connections per stream transport (TCP-ng and
	// HTTP each); further connections are closed at once.
	MaxConns int
	// MaxConnsPerClient caps the open connections of one client address
	// per stream transport, so that one client cannot take MaxConns from
	// the others; further ones are closed at once.
	MaxConnsPerClient int
	// IdleTimeout closes a TCP-ng connection that sent nothing for this
	// long; negative means never.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long shutdown lets running handlers
	// finish before it cancels their context.
	ShutdownTimeout time.Duration

	// now is the cache's clock (tests); nil means time.Now.
	now func() time.Time
	// udpBuf overrides MaxDatagram (tests).
	udpBuf int
	// framerDone, if set, receives the bytes a TCP connection's framer
	// examined when the connection ends (tests).
	framerDone func(examined int)
	// tcpRead, if set, receives the size of every TCP read (tests).
	tcpRead func(n int)
}

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Handler == nil {
		return c, fmt.Errorf("ngserver: %w", ErrNoHandler)
	}
	if len(c.UDP)+len(c.TCP)+len(c.HTTP) == 0 {
		return c, fmt.Errorf("ngserver: %w", ErrNoListeners)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"CacheTTL", int64(c.CacheTTL)}, {"CacheMaxEntries", int64(c.CacheMaxEntries)},
		{"CacheMaxBytes", int64(c.CacheMaxBytes)}, {"MaxInFlight", int64(c.MaxInFlight)},
		{"MaxMessage", int64(c.MaxMessage)}, {"MaxConns", int64(c.MaxConns)}, {"MaxConnsPerClient", int64(c.MaxConnsPerClient)},
		{"ShutdownTimeout", int64(c.ShutdownTimeout)},
	} {
		if f.v < 0 {
			return c, fmt.Errorf("ngserver: %w: %s is negative (%d)", ErrBadConfig, f.name, f.v)
		}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.CacheTTL, DefaultCacheTTL)
	setDefault(&c.CacheMaxEntries, DefaultCacheMaxEntries)
	setDefault(&c.CacheMaxBytes, DefaultCacheMaxBytes)
	setDefault(&c.MaxInFlight, DefaultMaxInFlight)
	setDefault(&c.MaxMessage, DefaultMaxMessage)
	setDefault(&c.MaxConns, DefaultMaxConns)
	setDefault(&c.MaxConnsPerClient, DefaultMaxConnsPerClient)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.udpBuf, MaxDatagram)
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}
