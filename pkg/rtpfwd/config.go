// Package rtpfwd is the forwarding worker daemon: it receives its sockets
// from portd and its rules from node state, and moves RTP/RTCP between the
// legs of each call.
package rtpfwd

import (
	"flag"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/metrics"
)

// Config is rtp-fwd's configuration.
type Config struct {
	cli.Common
	RuntimeDir string
	WorkerID   string
	Loops      int
	// Metrics is where to serve /metrics (--metrics-rtp-fwd); empty: off.
	Metrics string
}

// RegisterFlags adds rtp-fwd's options.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Common.RegisterFlags(fs)
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "/run/rtpkit", "`dir` for the node's Unix sockets")
	fs.StringVar(&c.WorkerID, "worker-id", "0", "`id` of this worker towards portd (a restarted worker with the same id gets its sockets back)")
	fs.IntVar(&c.Loops, "loops", 0, "forwarding loops, one per core (`N`; 0 = number of CPUs)")
	metrics.RegisterFlag(fs, &c.Metrics, "rtp-fwd")
}

// Validate checks the options.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.WorkerID == "" {
		return cli.Usagef("--worker-id: empty")
	}
	if c.Loops < 0 {
		return cli.Usagef("--loops %d: must be >= 0", c.Loops)
	}
	return metrics.ValidateAddr("rtp-fwd", c.Metrics)
}
