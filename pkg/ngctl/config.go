// Package ngctl is the daemon that speaks rtpengine's ng control protocol to
// SIP proxies and rewrites their SDP.
package ngctl

import (
	"flag"
	"net/netip"
	"time"

	"github.com/rtpkit/rtpkit/pkg/calls"
	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/dtlscert"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/ngserver"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Config is ng-ctl's configuration.
type Config struct {
	cli.Common
	// DTLS says where the node's DTLS certificate is (pkg/dtlscert): its
	// fingerprint goes into SDP.
	DTLS          dtlscert.Options
	ListenNG      cli.List
	ListenTCPNG   cli.List
	ListenHTTP    cli.List
	Timeout       int
	SilentTimeout int
	OfferTimeout  int
	FinalTimeout  int
	DeleteDelay   int
	MaxSessions   int
	// MaxMedia and MaxLegs bound one SDP's media sections and one call's
	// legs (calls.Limits).
	MaxMedia int
	MaxLegs  int
	// NGMaxConns and NGMaxConnsPerClient bound the open TCP-ng and HTTP
	// connections, in all and of one client address (ngserver.Config).
	NGMaxConns          int
	NGMaxConnsPerClient int
	// ActiveSwitchover makes a foreign call this node's own when an offer
	// or answer reaches it (rtpengine's active-switchover).
	ActiveSwitchover bool
	// StatePurgeAge is how old a delete marker (an ended call) in node
	// state must be before it is purged (--state-purge-age).
	StatePurgeAge time.Duration
	// StateMaxBytes is the size of node state above which new calls are
	// refused (--state-max-bytes; 0: no limit).
	StateMaxBytes int64
	// StatePurgeInterval is how often the markers are purged
	// (--state-purge-interval; 0: never).
	StatePurgeInterval time.Duration
	// Metrics is where to serve /metrics besides --listen-http
	// (--metrics-ng-ctl); empty: off.
	Metrics string
	// Watchdog takes the daemon's liveness probes (pkg/sdnotify). Not an
	// option: the daemon's main sets it; nil (as in tests) keeps none.
	Watchdog *sdnotify.Watchdog
}

// RegisterFlags adds ng-ctl's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	dtlscert.RegisterFlags(fs, &c.DTLS)
	fs.Var(&c.ListenNG, "listen-ng", "ng over UDP on `ADDR:PORT`, repeatable (default 127.0.0.1:2223)")
	fs.Var(&c.ListenTCPNG, "listen-tcp-ng", "ng over TCP on `ADDR:PORT`, repeatable (default off)")
	fs.Var(&c.ListenHTTP, "listen-http", "ng over HTTP (POST /ng), /metrics and /healthz on `ADDR:PORT` (default off)")
	fs.IntVar(&c.Timeout, "timeout", 60, "`seconds` without media before a call ends (0 = off)")
	fs.IntVar(&c.SilentTimeout, "silent-timeout", 3600, "`seconds` without media on a call on hold before it ends (0 = off)")
	fs.IntVar(&c.OfferTimeout, "offer-timeout", 3600, "`seconds` an offer waits for its answer (0 = off)")
	fs.IntVar(&c.FinalTimeout, "final-timeout", 0, "`seconds` after which any call ends, media or not (0 = off)")
	fs.IntVar(&c.DeleteDelay, "delete-delay", 30, "`seconds` a deleted call lingers before it is gone")
	fs.IntVar(&c.MaxSessions, "max-sessions", -1, "most concurrent calls (`N`, -1 = no limit)")
	fs.IntVar(&c.MaxMedia, "max-media", calls.DefaultMaxMedia, "most media sections (m= lines) in one SDP (`N`); more is an ng error")
	fs.IntVar(&c.MaxLegs, "max-legs", calls.DefaultMaxLegs, "most legs (forks, one per SIP tag) of one call (`N`); more is an ng error")
	fs.IntVar(&c.NGMaxConns, "ng-max-conns", ngserver.DefaultMaxConns, "most open connections (`N`) of TCP-ng, and of HTTP, in all; more are closed at once")
	fs.IntVar(&c.NGMaxConnsPerClient, "ng-max-conns-per-client", ngserver.DefaultMaxConnsPerClient, "most open connections (`N`) of one client address, of TCP-ng and of HTTP each; more are closed at once")
	fs.BoolVar(&c.ActiveSwitchover, "active-switchover", false, "signalling or media reaching a foreign call makes it this node's own")
	fs.DurationVar(&c.StatePurgeAge, "state-purge-age", DefaultStatePurgeAge, "`duration` an ended call's delete marker stays in node state before it is purged")
	fs.Int64Var(&c.StateMaxBytes, "state-max-bytes", DefaultStateMaxBytes, "`bytes` of node state above which new calls are refused with an ng error (calls in progress go on) until ended calls bring it back below 90 %; 0 = no limit")
	fs.DurationVar(&c.StatePurgeInterval, "state-purge-interval", DefaultStatePurgeInterval, "how often (`duration`) old delete markers are purged from node state (0 = never)")
	metrics.RegisterFlag(fs, &c.Metrics, "ng-ctl")
}

// Listeners returns the UDP ng addresses, with the default if none given.
func (c *Config) Listeners() []string {
	if len(c.ListenNG) == 0 {
		return []string{"127.0.0.1:2223"}
	}
	return c.ListenNG
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	for _, group := range []struct {
		name  string
		addrs []string
	}{{"listen-ng", c.Listeners()}, {"listen-tcp-ng", c.ListenTCPNG}, {"listen-http", c.ListenHTTP}} {
		for _, a := range group.addrs {
			ap, err := netip.ParseAddrPort(a)
			if err != nil || ap.Port() == 0 {
				return cli.Usagef("--%s %q: want ADDR:PORT (IPv6 as [ADDR]:PORT)", group.name, a)
			}
		}
	}
	if c.NGMaxConns < 1 || c.NGMaxConnsPerClient < 1 {
		return cli.Usagef("--ng-max-conns and --ng-max-conns-per-client must be >= 1")
	}
	if c.MaxMedia < 1 {
		return cli.Usagef("--max-media %d: must be >= 1", c.MaxMedia)
	}
	if c.MaxLegs < 2 {
		return cli.Usagef("--max-legs %d: must be >= 2 (a call has two parties)", c.MaxLegs)
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"timeout", c.Timeout}, {"silent-timeout", c.SilentTimeout}, {"offer-timeout", c.OfferTimeout}, {"final-timeout", c.FinalTimeout}, {"delete-delay", c.DeleteDelay}} {
		if t.v < 0 {
			return cli.Usagef("--%s %d: must be >= 0", t.name, t.v)
		}
	}
	if c.StateMaxBytes < 0 {
		return cli.Usagef("--state-max-bytes %d: must be >= 0", c.StateMaxBytes)
	}
	if c.StatePurgeAge < 0 || c.StatePurgeInterval < 0 {
		return cli.Usagef("--state-purge-age %s, --state-purge-interval %s: must be >= 0", c.StatePurgeAge, c.StatePurgeInterval)
	}
	if c.MaxSessions < -1 {
		return cli.Usagef("--max-sessions %d: must be -1 (no limit) or more", c.MaxSessions)
	}
	return metrics.ValidateAddr("ng-ctl", c.Metrics)
}
