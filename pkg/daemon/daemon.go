// Package daemon is the main of every rtpkit daemon (cmd/portd,
// cmd/rtp-fwd, cmd/ng-ctl, cmd/redis-sync): it reads the daemon's options
// (pkg/cli), exits if the `rtpctl up` that started it is gone, sets up
// logging, tunes the process as the daemon's policy says (pkg/proctune),
// runs the systemd watchdog (pkg/sdnotify) with the liveness probes the
// daemon adds to it, and turns the result into an exit code: 0 after
// SIGINT or SIGTERM (or --help), 2 for a bad option (never restarted, by
// `rtpctl up` or systemd), 1 when the daemon fails.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/rtpkit/rtpkit/pkg/cli"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/sdnotify"
)

// SupervisorEnv names the variable `rtpctl up` sets to its own pid in its
// children's environment; a child that finds another parent exits, closing
// the window between fork and PR_SET_PDEATHSIG taking effect.
const SupervisorEnv = "RTPKIT_SUPERVISOR_PID"

// ExitFailure is the exit code of a daemon whose run failed.
const ExitFailure = 1

// RunFunc is a daemon's work: it runs until ctx ends (nil then) or fails,
// logging to log, and adds its liveness probes to wd (never nil) once it
// is ready.
type RunFunc func(ctx context.Context, log *slog.Logger, wd *sdnotify.Watchdog) error

// Main is the whole main of the daemon called name: parse os.Args into
// cfg, whose Common is common (usage and exit 2 on a bad option), set up
// logging, tune the process with policy under --scheduling and
// --priority, then call run until SIGINT/SIGTERM with a watchdog that
// pings systemd while run's probes pass. It returns when run returns nil
// or ctx's cancellation; it exits with ExitFailure when run fails.
func Main(name, summary string, cfg cli.Config, common *cli.Common, policy proctune.Policy, run RunFunc) {
	cli.ParseOrExit(name, summary, cfg, os.Args[1:])
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
	stopping := make(chan struct{})
	context.AfterFunc(ctx, func() { _ = sdnotify.Stopping(); close(stopping) })
	if err := run(ctx, log, wd); err != nil && !errors.Is(err, context.Canceled) {
		_ = sdnotify.Status("exiting on error: " + err.Error())
		log.Error("exiting on error", "err", err)
		stop()
		os.Exit(ExitFailure)
	}
	if ctx.Err() != nil {
		<-stopping // STOPPING=1 is out before the process is gone
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
		os.Exit(ExitFailure)
	}
}
