// Package portd is the daemon that owns every media socket of a node: it
// binds them per interface address, keeps port pools, leases pre-bound port
// pairs to ng-ctl and hands the sockets to rtp-fwd workers.
package portd

import (
	"flag"
	"fmt"
	"time"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/ifspec"
	"github.com/rtpkit/rtpkit/pkg/metrics"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// Config is portd's configuration.
type Config struct {
	cli.Common
	Interfaces     cli.List
	InterfacePorts cli.List
	PortMin        int
	PortMax        int
	RuntimeDir     string
	Quarantine     time.Duration
	TOS            int
	SocketBuffer   int
	FDReserve      int
	// Metrics is where to serve /metrics (--metrics-portd); empty: off.
	Metrics string
	// Watchdog takes the daemon's liveness probes (pkg/sdnotify). Not an
	// option: the daemon's main sets it; nil (as in tests) keeps none.
	Watchdog *sdnotify.Watchdog
}

// RegisterFlags adds portd's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	c.Interfaces = nil
	fs.Var(&c.Interfaces, "interface", "media interface address as `[NAME/]ADDR[!ADVERTISED]`, repeatable (default 127.0.0.1)")
	fs.Var(&c.InterfacePorts, "interface-ports", "port range of one interface as `NAME/MIN-MAX`, repeatable (rtpkit extension)")
	fs.IntVar(&c.PortMin, "port-min", 30000, "lowest media `port` of every local address")
	fs.IntVar(&c.PortMax, "port-max", 40000, "highest media `port` of every local address")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/run/rtpkit", "`dir` for the node's Unix sockets")
	fs.DurationVar(&c.Quarantine, "port-quarantine", time.Second, "how long a released port rests before it is handed out again (cut short when no other port is free)")
	fs.IntVar(&c.TOS, "tos", 184, "TOS/traffic class `byte` of media packets (184 = DSCP EF; 0 = leave unset)")
	fs.IntVar(&c.SocketBuffer, "socket-buffer", 0, "receive and send buffer `bytes` of media sockets (0 = kernel default)")
	fs.IntVar(&c.FDReserve, "fd-reserve", 256, "file descriptors kept free for everything but media sockets")
	metrics.RegisterFlag(fs, &c.Metrics, "portd")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.PortMin < 1 || c.PortMax > 65535 || c.PortMin >= c.PortMax {
		return cli.Usagef("--port-min %d / --port-max %d: need 1 <= port-min < port-max <= 65535", c.PortMin, c.PortMax)
	}
	if c.TOS < 0 || c.TOS > 255 {
		return cli.Usagef("--tos %d: want 0-255", c.TOS)
	}
	if c.Quarantine < 0 || c.SocketBuffer < 0 || c.FDReserve < 16 {
		return cli.Usagef("--port-quarantine, --socket-buffer must be >= 0 and --fd-reserve >= 16")
	}
	if c.RuntimeDir == "" {
		return cli.Usagef("--runtime-dir: empty")
	}
	if _, err := c.InterfaceSet(); err != nil {
		return cli.Usagef("%v", err)
	}
	return metrics.ValidateAddr("portd", c.Metrics)
}

// InterfaceSet builds the logical interfaces the options describe
// (127.0.0.1 when no --interface is given).
func (c *Config) InterfaceSet() (*ifspec.Set, error) {
	ifaces := []string(c.Interfaces)
	if len(ifaces) == 0 {
		ifaces = []string{DefaultInterface}
	}
	set, err := ifspec.New(ifspec.Config{Interfaces: ifaces, PortRanges: c.InterfacePorts, PortMin: c.PortMin, PortMax: c.PortMax})
	if err != nil {
		return nil, fmt.Errorf("--interface: %w", err)
	}
	return set, nil
}
