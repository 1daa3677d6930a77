// Package portd is the daemon that owns every media socket of a node: it
// binds them per interface address, keeps port pools, leases pre-bound port
// pairs to ng-ctl and hands the sockets to rtp-fwd workers.
package portd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/cli"
)

// Config is portd's configuration.
type Config struct {
	cli.Common
	Interfaces     cli.List
	InterfacePorts cli.List
	PortMin        int
	PortMax        int
	RuntimeDir     string
}

// RegisterFlags adds portd's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	c.Interfaces = nil
	fs.Var(&c.Interfaces, "interface", "`[NAME/]ADDR[!ADVERTISED]` media interface address, repeatable (default 127.0.0.1)")
	fs.Var(&c.InterfacePorts, "interface-ports", "`NAME/MIN-MAX` port range of one interface, repeatable (rtpkit extension)")
	fs.IntVar(&c.PortMin, "port-min", 30000, "lowest media `port` of every local address")
	fs.IntVar(&c.PortMax, "port-max", 40000, "highest media `port` of every local address")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/run/rtpkit", "`dir` for the node's Unix sockets")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMin >= c.PortMax {
		return cli.Usagef("--port-min %d / --port-max %d: need 1 <= port-min < port-max <= 65535", c.PortMin, c.PortMax)
	}
	if c.RuntimeDir == "" {
		return cli.Usagef("--runtime-dir: empty")
	}
	return nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return fmt.Errorf("portd: %w (issue #4)", cli.ErrNotImplemented)
}
