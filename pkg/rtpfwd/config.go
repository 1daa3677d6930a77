// Package rtpfwd is the forwarding worker daemon: it receives its sockets
// from portd and its rules from node state, and moves RTP/RTCP between the
// legs of each call.
package rtpfwd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/cli"
)

// Config is rtp-fwd's configuration.
type Config struct {
	cli.Common
	RuntimeDir string
}

// RegisterFlags adds rtp-fwd's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/run/rtpkit", "`dir` for the node's Unix sockets")
}

// Validate checks the options.
func (c *Config) Validate() error { return c.Common.Validate() }

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return fmt.Errorf("rtp-fwd: %w (issue #6)", cli.ErrNotImplemented)
}
