// Package redissync is the daemon that mirrors the node's calls to its Redis
// partition and restores the calls of its redundancy group as foreign.
package redissync

import (
	"flag"
	"time"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/rediscalls"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Config is redis-sync's configuration.
type Config struct {
	cli.Common
	Redis               string
	RedisCA             string
	SubscribeKeyspace   cli.IntList
	RedisExpires        int
	RedisConnectTimeout time.Duration
	RedisCmdTimeout     time.Duration
	RedisQueue          int
	ActiveSwitchover    bool
	// AuditInterval is how often a followed partition's calls are checked
	// against node state (0: never).
	AuditInterval time.Duration
	// Metrics is where to serve /metrics (--metrics-redis-sync); empty: off.
	Metrics string
	// Watchdog takes the daemon's liveness probes (pkg/sdnotify). Not an
	// option: the daemon's main sets it; nil (as in tests) keeps none.
	Watchdog *sdnotify.Watchdog
}

// RegisterFlags adds redis-sync's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.Redis, "redis", "", "Redis that persists this node's calls, as `[PW@]HOST:PORT/DB` or redis[s]://[:PW@]HOST:PORT/DB (DB is its partition); off if empty")
	fs.StringVar(&c.RedisCA, "redis-ca", "", "PEM `file` of the certificate authorities a rediss:// (TLS) Redis is checked against; default the system's")
	fs.Var(&c.SubscribeKeyspace, "subscribe-keyspace", "Redis `DB` of the redundancy group whose calls this node restores, repeatable")
	fs.IntVar(&c.RedisExpires, "redis-expires", 86400, "`seconds` of expiry on call keys, refreshed on every write")
	fs.DurationVar(&c.RedisConnectTimeout, "redis-connect-timeout", time.Second, "`duration` allowed to connect to Redis")
	fs.DurationVar(&c.RedisCmdTimeout, "redis-cmd-timeout", 2*time.Second, "`duration` allowed for one Redis round trip")
	fs.IntVar(&c.RedisQueue, "redis-queue", 100000, "calls whose writes wait while Redis is away (the latest state per call); beyond, the oldest are dropped and counted")
	fs.BoolVar(&c.ActiveSwitchover, "active-switchover", false, "signalling or media reaching a foreign call makes it this node's own")
	fs.DurationVar(&c.AuditInterval, "redis-audit-interval", 30*time.Second, "`duration` between checks of each followed partition's call ids against the foreign calls restored from it, which repair what a lost keyspace notification left behind; 0: off")
	metrics.RegisterFlag(fs, &c.Metrics, "redis-sync")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.RedisExpires <= 0 {
		return cli.Usagef("--redis-expires %d: must be > 0", c.RedisExpires)
	}
	if c.RedisQueue <= 0 {
		return cli.Usagef("--redis-queue %d: must be > 0", c.RedisQueue)
	}
	if c.AuditInterval < 0 {
		return cli.Usagef("--redis-audit-interval %v: must be >= 0", c.AuditInterval)
	}
	for _, db := range c.SubscribeKeyspace {
		if db < 0 {
			return cli.Usagef("--subscribe-keyspace %d: must be >= 0", db)
		}
	}
	if c.Redis != "" {
		o, _, err := rediscalls.ParseURL(c.Redis)
		if err != nil {
			return cli.Usagef("--redis: %v", err)
		}
		if c.RedisCA != "" {
			if err := rediscalls.UseCA(o, c.RedisCA); err != nil {
				return cli.Usagef("--redis-ca: %v", err)
			}
		}
	}
	return metrics.ValidateAddr("redis-sync", c.Metrics)
}
