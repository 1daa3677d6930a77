package cli

import (
	"flag"
	"io"
	"log/slog"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/proctune"
)

// Common holds the options every daemon takes: which node it serves, how to
// reach the node's bus, and how to log.
type Common struct {
	NodeID    string
	Bus       bus.Options
	LogLevel  LogLevel
	LogFormat LogFormat
	// Scheduling and Priority are the daemon's thread scheduling
	// (rtpengine's --scheduling and --priority), applied by pkg/proctune.
	Scheduling proctune.Scheduling
	Priority   proctune.Priority
}

// RegisterFlags adds a daemon's common options: RegisterClientFlags' and
// --scheduling and --priority.
func (c *Common) RegisterFlags(fs *flag.FlagSet) {
	c.RegisterClientFlags(fs)
	c.Scheduling = proctune.SchedAuto
	fs.Var(&c.Scheduling, "scheduling", "thread scheduling `policy`: auto (batch, but other for rtp-fwd's media loops), default or none (as started), other, batch, idle, fifo, rr")
	fs.Var(&c.Priority, "priority", "`N`: the nice value under other and batch, the real-time priority under fifo and rr (default: under auto, 10 above the started one for work off the request and media paths, else as started; 1 under fifo and rr)")
}

// RegisterClientFlags adds the options of a command that talks to a node:
// --node-id, the bus options, --log-level and --log-format.
func (c *Common) RegisterClientFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.NodeID, "node-id", bus.DefaultNodeID(), "`id` naming this node in node state, subjects and Redis records")
	c.Bus.RegisterFlags(fs)
	c.LogLevel.Level = slog.LevelInfo
	fs.Var(&c.LogLevel, "log-level", "`level`: 0-7 (syslog, as rtpengine) or debug|info|warn|error")
	c.LogFormat = "text"
	fs.Var(&c.LogFormat, "log-format", "log `format`: text or json")
}

// Validate checks the common options.
func (c *Common) Validate() error {
	if err := bus.ValidNodeID(c.NodeID); err != nil {
		return Usagef("--node-id: %v", err)
	}
	if c.Bus.URL == "" {
		return Usagef("--nats-url: empty")
	}
	return nil
}

// NewLogger builds the logger the options ask for, writing to w, with every
// record carrying the daemon's name.
func (c *Common) NewLogger(w io.Writer, daemon string) *slog.Logger {
	return NewLogger(w, c.LogFormat, c.LogLevel.Level).With("daemon", daemon)
}

// NewLogger builds a text or JSON slog logger.
func NewLogger(w io.Writer, format LogFormat, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Config is a daemon's configuration: it registers its options and checks
// them once parsed.
type Config interface {
	RegisterFlags(fs *flag.FlagSet)
	Validate() error
}
