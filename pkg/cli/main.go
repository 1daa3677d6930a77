package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/rtpkit/rtpkit/pkg/bus"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
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

// SupervisorEnv names the variable `rtpctl up` sets to its own pid in its
// children's environment; a child that finds another parent exits, closing
// the window between fork and PR_SET_PDEATHSIG taking effect.
const SupervisorEnv = "RTPKIT_SUPERVISOR_PID"

// Main is the whole main of a daemon: parse options into cfg (usage and
// exit 2 on a bad one), set up logging, tune the process as policy says,
// run until SIGINT/SIGTERM with the systemd watchdog that run adds its
// liveness probes to, exit 1 if run fails.
func Main(name, summary string, cfg Config, common *Common, policy proctune.Policy, run func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error) {
	fs := NewFlagSet(name)
	cfg.RegisterFlags(fs)
	synopsis := name + " [options]"
	if err := Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(os.Stdout, fs, synopsis, summary)
			os.Exit(0)
		}
		Fail(name, fs, synopsis, summary, err)
	}
	if fs.NArg() > 0 {
		Fail(name, fs, synopsis, summary, Usagef("unexpected argument %q", fs.Arg(0)))
	}
	if err := cfg.Validate(); err != nil {
		Fail(name, fs, synopsis, summary, err)
	}
	exitIfOrphaned()
	log := common.NewLogger(os.Stderr, name)
	slog.SetDefault(log)
	policy.Apply(name, common.Scheduling, common.Priority, log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// systemd (Type=notify): the daemon calls sdnotify.Ready itself; the
	// watchdog pings while its probes pass; a signal means STOPPING=1.
	wd := new(sdnotify.Watchdog)
	go wd.Run(ctx, log)
	context.AfterFunc(ctx, func() { _ = sdnotify.Stopping() })
	if err := run(ctx, log, wd); err != nil && !errors.Is(err, context.Canceled) {
		_ = sdnotify.Status("exiting on error: " + err.Error())
		log.Error("exiting on error", "err", err)
		stop()
		os.Exit(1)
	}
}

// exitIfOrphaned ends the process if it was started by `rtpctl up` and that
// parent is already gone.
func exitIfOrphaned() {
	v := os.Getenv(SupervisorEnv)
	if v == "" {
		return
	}
	pid, err := strconv.Atoi(v)
	if err == nil && os.Getppid() != pid {
		fmt.Fprintf(os.Stderr, "supervisor %d is gone; exiting\n", pid)
		os.Exit(1)
	}
}
