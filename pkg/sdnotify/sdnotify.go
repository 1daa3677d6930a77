// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without libsystemd or go-systemd: a state string such as
// "READY=1" is one datagram to the Unix socket named by $NOTIFY_SOCKET (an
// abstract socket when the name starts with '@'). Without $NOTIFY_SOCKET —
// the daemon was not started by systemd as Type=notify — every call is a
// no-op.
//
// # Watchdog and liveness
//
// With WatchdogSec= in the unit, systemd sets $WATCHDOG_USEC (and
// $WATCHDOG_PID, the main pid). A [Watchdog] holds a daemon's liveness
// probes; its Run method sends WATCHDOG=1 every half period — but only
// when every probe added to it ([Watchdog.Add]) answered within a quarter
// of the period. There is no package-wide registry: the daemon's main
// (pkg/daemon) makes one Watchdog, runs it, and hands it to the daemon,
// which adds its probes to it; a daemon run without one (a nil *Watchdog,
// as in tests) adds them to nothing. A probe exercises what a hung daemon
// would no longer do: the daemon's central lock or loop, not just "a
// goroutine can still run". Each daemon adds its probes when it is ready:
//
//   - rtp-fwd: every forwarding loop applies a no-op command (a loop stuck
//     in the packet path, or a dead one, does not answer);
//   - portd: the port table's lock (every lease, bind, release and hand-off
//     takes it);
//   - ng-ctl: the call table's lock (every ng command takes it);
//   - redis-sync: the syncer's lock (every node-state and Redis event takes
//     it).
//
// The bus, Redis or portd being away is not a failure of liveness (rtp-fwd
// must keep forwarding without any of them), so no probe depends on another
// process. Before the daemon is ready there are no probes and the pings
// only show that the process runs; start-up is bounded by TimeoutStartSec=.
// A daemon that misses its pings for WatchdogSec= gets WatchdogSignal=
// (SIGABRT: the Go runtime prints every goroutine's stack to the journal)
// and Restart=on-failure starts it again.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The environment systemd sets for a notify service.
const (
	EnvSocket       = "NOTIFY_SOCKET"
	EnvWatchdogUsec = "WATCHDOG_USEC"
	EnvWatchdogPID  = "WATCHDOG_PID"
)

// writeTimeout bounds a send: systemd reads its notification socket
// promptly, but a full socket must not block a daemon.
const writeTimeout = 2 * time.Second

// Notify sends state (one or more newline-separated VAR=value assignments)
// to the service manager. It reports whether it was sent: false with a nil
// error when $NOTIFY_SOCKET is not set.
func Notify(state string) (bool, error) {
	name := os.Getenv(EnvSocket)
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("%s=%q: not a Unix socket path", EnvSocket, name)
	}
	// Go's net package maps a leading '@' to the abstract namespace.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// Ready tells the service manager that start-up is finished (READY=1).
// A failure is also logged (slog's default logger): without READY=1
// systemd fails the start after TimeoutStartSec=.
func Ready() error { return notifyLogged("READY=1\nSTATUS=ready") }

// Stopping tells the service manager that the daemon is shutting down
// (STOPPING=1).
func Stopping() error { return notifyLogged("STOPPING=1\nSTATUS=stopping") }

// Status sets the free-form status line `systemctl status` shows.
func Status(s string) error { return notifyLogged("STATUS=" + strings.ReplaceAll(s, "\n", " ")) }

func notifyLogged(state string) error {
	_, err := Notify(state)
	if err != nil {
		slog.Warn("systemd notification not sent", "state", state, "err", err)
	}
	return err
}

// WatchdogInterval is the watchdog timeout systemd expects pings within:
// 0 when $WATCHDOG_USEC is unset or invalid, or when $WATCHDOG_PID names
// another process.
func WatchdogInterval() time.Duration {
	us, err := strconv.ParseUint(os.Getenv(EnvWatchdogUsec), 10, 63)
	if err != nil || us == 0 {
		return 0
	}
	if p := os.Getenv(EnvWatchdogPID); p != "" {
		if pid, err := strconv.Atoi(p); err != nil || pid != os.Getpid() {
			return 0
		}
	}
	return time.Duration(us) * time.Microsecond
}

// Probe is a liveness check: nil when the part of the daemon it exercises
// answers. It should return when ctx ends; one that does not is not
// started again while it runs, and counts as failed.
type Probe func(ctx context.Context) error

type probe struct {
	name string
	f    Probe
	busy atomic.Bool
}

// Watchdog is the set of liveness probes of one daemon, and what pings
// systemd's watchdog while they pass ([Watchdog.Run]). The zero value is
// ready to use; a nil *Watchdog takes no probes (Add returns a remove
// function that does nothing) and always passes its check.
type Watchdog struct {
	mu   sync.Mutex
	list []*probe
}

// Add adds a liveness probe and returns the function that removes it (a
// daemon defers it, so that a run that returns leaves nothing behind).
func (w *Watchdog) Add(name string, f Probe) (remove func()) {
	if w == nil {
		return func() {}
	}
	p := &probe{name: name, f: f}
	w.mu.Lock()
	w.list = append(w.list, p)
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, q := range w.list {
			if q == p {
				w.list = append(w.list[:i:i], w.list[i+1:]...)
				return
			}
		}
	}
}

// Check runs every probe at once and waits for them up to timeout; it
// returns their failures joined.
func (w *Watchdog) Check(ctx context.Context, timeout time.Duration) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	list := append([]*probe(nil), w.list...)
	w.mu.Unlock()
	if len(list) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		p   *probe
		err error
	}
	results := make(chan result, len(list))
	var errs []error
	started := 0
	for _, p := range list {
		if !p.busy.CompareAndSwap(false, true) {
			errs = append(errs, fmt.Errorf("%s: the previous check has not returned", p.name))
			continue
		}
		started++
		go func() {
			defer p.busy.Store(false)
			results <- result{p, p.f(ctx)}
		}()
	}
	for ; started > 0; started-- {
		select {
		case r := <-results:
			if r.err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.p.name, r.err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%d probe(s) did not answer within %s", started, timeout))
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// Run sends WATCHDOG=1 every half of WatchdogInterval while every probe
// of w passes within a quarter of it (see the package documentation),
// until ctx ends. Without a watchdog (no $WATCHDOG_USEC or
// $NOTIFY_SOCKET) it returns at once.
func (w *Watchdog) Run(ctx context.Context, log *slog.Logger) {
	iv := WatchdogInterval()
	if iv <= 0 || os.Getenv(EnvSocket) == "" {
		return
	}
	if log == nil {
		log = slog.Default()
	}
	period := iv / 2
	log.Debug("systemd watchdog on", "timeout", iv, "ping_every", period)
	ping := func() {
		if err := w.Check(ctx, period/2); err != nil {
			if ctx.Err() == nil {
				log.Warn("watchdog: not alive, no ping to systemd", "err", err)
			}
			return
		}
		if _, err := Notify("WATCHDOG=1"); err != nil {
			log.Warn("watchdog ping", "err", err)
		}
	}
	ping()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ping()
		}
	}
}
