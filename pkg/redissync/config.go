// Package redissync is the daemon that mirrors the node's calls to its Redis
// partition and restores the calls of its redundancy group as foreign.
package redissync

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/cli"
)

// Config is redis-sync's configuration.
type Config struct {
	cli.Common
	Redis             string
	SubscribeKeyspace cli.IntList
	RedisExpires      int
}

// RegisterFlags adds redis-sync's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.Redis, "redis", "", "Redis that persists this node's calls, as `[PW@]HOST:PORT/DB` (DB is its partition); off if empty")
	fs.Var(&c.SubscribeKeyspace, "subscribe-keyspace", "Redis `DB` of the redundancy group whose calls this node restores, repeatable")
	fs.IntVar(&c.RedisExpires, "redis-expires", 86400, "`seconds` of expiry on call keys, refreshed on every write")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.RedisExpires <= 0 {
		return cli.Usagef("--redis-expires %d: must be > 0", c.RedisExpires)
	}
	for _, db := range c.SubscribeKeyspace {
		if db < 0 {
			return cli.Usagef("--subscribe-keyspace %d: must be >= 0", db)
		}
	}
	return nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return fmt.Errorf("redis-sync: %w (issue #7)", cli.ErrNotImplemented)
}
