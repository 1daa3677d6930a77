package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with RTPKIT_DEBUG_PPROF
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/rtpkit/rtpkit/pkg/bus"
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
	// (rtpengine's --scheduling and --priority).
	Scheduling Scheduling
	Priority   Priority
}

// RegisterFlags adds a daemon's common options: RegisterClientFlags' and
// --scheduling and --priority.
func (c *Common) RegisterFlags(fs *flag.FlagSet) {
	c.RegisterClientFlags(fs)
	c.Scheduling = SchedAuto
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
// exit 2 on a bad one), set up logging, run until SIGINT/SIGTERM with the
// systemd watchdog that run adds its liveness probes to, exit 1 if run
// fails.
func Main(name, summary string, cfg Config, common *Common, run func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error) {
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
	StartPprof(name, log)
	TuneGC()
	TuneProcs(name)
	ApplyScheduling(DaemonScheduling(name, common.Scheduling), AutoPriority(name, common.Scheduling, common.Priority), log)
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

// DefaultGCPercent is the garbage collector's target (GOGC) of rtpkit's
// daemons when the environment does not set GOGC. Their live heaps are
// small (call state, a few MB per thousand calls) and they allocate per
// request, so Go's default of 100 spends 5-8 % of their CPU marking;
// a target of 400 lets the heap grow to five times the live data instead
// of two and marks about a quarter as often.
const DefaultGCPercent = 400

// MemoryLimitShare is the soft memory limit (GOMEMLIMIT) a daemon gets when
// the environment sets neither GOGC nor GOMEMLIMIT: this fraction of the
// host's memory (or of its cgroup's limit, if lower). It bounds what the
// higher GC target costs in memory on a node with very many calls: near
// the limit the collector runs as often as it must, whatever GOGC says.
const MemoryLimitShare = 8

// TuneGC applies DefaultGCPercent unless GOGC is set, and with it a soft
// memory limit of 1/MemoryLimitShare of the memory available unless
// GOMEMLIMIT is set.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if total := availableMemory(); total > 0 {
			debug.SetMemoryLimit(total / MemoryLimitShare)
		}
	}
}

// ControlPlaneProcs is GOMAXPROCS, the number of threads that run Go code
// at once, of the control-plane daemons (ng-ctl, portd, redis-sync, and
// the bus `rtpctl up` hosts) unless the environment sets GOMAXPROCS. Their
// work comes as a stream of small messages, and with more than one P the
// Go scheduler wakes a second thread for nearly every one, which finds
// nothing to do, spins and sleeps again (futex, nanosleep): on a 2-vCPU
// VM that cost more CPU than the daemons' own work when the load was low.
// One P handles several thousand requests a second. rtp-fwd, whose packet
// loops run one per core, keeps Go's default.
const ControlPlaneProcs = 1

// dataPlane names the daemons TuneProcs leaves alone.
var dataPlane = map[string]bool{"rtp-fwd": true}

// TuneProcs sets GOMAXPROCS to ControlPlaneProcs in a control-plane
// daemon unless the environment sets GOMAXPROCS.
func TuneProcs(daemon string) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || dataPlane[daemon] {
		return
	}
	runtime.GOMAXPROCS(ControlPlaneProcs)
}

// availableMemory is the host's MemTotal, or the cgroup (v2) memory.max
// of this process if that is lower; 0 if neither can be read.
func availableMemory() int64 {
	var total int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					total = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		// cgroup v2: one line "0::/path".
		if _, path, ok := strings.Cut(strings.TrimSpace(string(b)), "0::"); ok {
			if m, err := os.ReadFile("/sys/fs/cgroup" + path + "/memory.max"); err == nil {
				if v, err := strconv.ParseInt(strings.TrimSpace(string(m)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
					total = v
				}
			}
		}
	}
	return total
}

// PprofEnv names a debug knob: "DAEMON=ADDR:PORT[,DAEMON=ADDR:PORT...]"
// makes those daemons serve net/http/pprof on the given loopback address.
// Not a stable interface.
const PprofEnv = "RTPKIT_DEBUG_PPROF"

// StartPprof serves net/http/pprof for the named process if PprofEnv asks.
func StartPprof(name string, log *slog.Logger) {
	addr := ""
	for _, item := range strings.Split(os.Getenv(PprofEnv), ",") {
		if d, a, ok := strings.Cut(item, "="); ok && d == name {
			addr = a
		}
	}
	if addr == "" {
		return
	}
	go func() {
		log.Warn("serving pprof (debug knob)", "addr", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("pprof", "err", err)
		}
	}()
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
