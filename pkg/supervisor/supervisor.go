// Package supervisor runs a node's daemons as child processes the way
// `rtpctl up` needs: started in order, restarted with back-off when they
// die, stopped in reverse order, and tied to the supervisor's life with
// PR_SET_PDEATHSIG so that killing the supervisor takes them all down.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec describes one child.
type Spec struct {
	// Name identifies the child in logs and status ("portd").
	Name string
	Path string
	Args []string
	// Env is added to the supervisor's own environment.
	Env []string
	// NoRestartCodes are exit codes after which the child is not restarted
	// (e.g. a configuration error's).
	NoRestartCodes []int
}

// Options tunes restarts and stopping.
type Options struct {
	// MinBackoff and MaxBackoff bound the delay before a restart; the delay
	// doubles with each quick death and resets once a child ran StableAfter.
	MinBackoff, MaxBackoff, StableAfter time.Duration
	// StopTimeout is how long a child gets after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// ParentEnv names a variable set to the supervisor's pid in every child's
	// environment (so that a child can tell it was orphaned before
	// PR_SET_PDEATHSIG applied). Empty: none.
	ParentEnv string
}

func (o *Options) defaults() {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.StableAfter <= 0 {
		o.StableAfter = 10 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 5 * time.Second
	}
}

// State is a child's state.
type State string

// The states of a child.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateBackoff    State = "restarting"
	StateGaveUp     State = "stopped"
	StateStopped    State = "stopped by supervisor"
	StateNotStarted State = "not started"
)

// Status is a snapshot of one child.
type Status struct {
	Name     string
	State    State
	PID      int
	Restarts int
	// LastExit describes the last exit ("exit status 1", "signal: killed").
	LastExit string
	// LastCode is the last exit code (-1 for a signal).
	LastCode int
}

// Supervisor runs children.
type Supervisor struct {
	log  *slog.Logger
	opts Options

	mu       sync.Mutex
	children []*child
	stopping bool
}

type child struct {
	spec   Spec
	status Status
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	done   chan struct{} // closed when the child's loop has ended
	wake   chan struct{} // interrupts a back-off sleep at shutdown
}

// New returns a supervisor with no children.
func New(log *slog.Logger, opts Options) *Supervisor {
	if log == nil {
		log = slog.Default()
	}
	opts.defaults()
	return &Supervisor{log: log, opts: opts}
}

// Start launches a child and keeps it running until Stop. It returns once
// the first process has been started (or failed to start).
func (s *Supervisor) Start(spec Spec) error {
	c := &child{spec: spec, status: Status{Name: spec.Name, State: StateStarting}, done: make(chan struct{}), wake: make(chan struct{})}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return errors.New("supervisor is stopping")
	}
	s.children = append(s.children, c)
	s.mu.Unlock()
	if err := s.startProcess(c); err != nil {
		s.mu.Lock()
		c.status.State = StateNotStarted
		c.status.LastExit = err.Error()
		s.mu.Unlock()
		close(c.done)
		return err
	}
	go s.loop(c)
	return nil
}

func (s *Supervisor) startProcess(c *child) error {
	cmd := exec.Command(c.spec.Path, c.spec.Args...)
	cmd.Stdin = nil
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), c.spec.Env...)
	if s.opts.ParentEnv != "" {
		cmd.Env = append(cmd.Env, s.opts.ParentEnv+"="+strconv.Itoa(os.Getpid()))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// The child dies with the thread that forked it: spawn() forks from
		// a thread that lives as long as the process.
		Pdeathsig: syscall.SIGKILL,
		// Own process group: a terminal's Ctrl-C reaches the supervisor only,
		// which then stops the children in order.
		Setpgid: true,
	}
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("start %s (%s): %w", c.spec.Name, c.spec.Path, err)
	}
	s.mu.Lock()
	c.cmd = cmd
	c.exited = make(chan struct{})
	c.status.PID = cmd.Process.Pid
	c.status.State = StateRunning
	s.mu.Unlock()
	s.log.Info("started", "child", c.spec.Name, "pid", cmd.Process.Pid)
	return nil
}

func (s *Supervisor) loop(c *child) {
	defer close(c.done)
	backoff := s.opts.MinBackoff
	for {
		started := time.Now()
		err := c.cmd.Wait()
		close(c.exited)
		code := c.cmd.ProcessState.ExitCode()
		desc := c.cmd.ProcessState.String()
		if err != nil && c.cmd.ProcessState == nil {
			desc = err.Error()
		}
		s.mu.Lock()
		c.status.LastExit, c.status.LastCode, c.status.PID = desc, code, 0
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			s.setState(c, StateStopped)
			return
		}
		for _, nc := range c.spec.NoRestartCodes {
			if code == nc {
				s.log.Warn("exited; not restarting it", "child", c.spec.Name, "exit", desc)
				s.setState(c, StateGaveUp)
				return
			}
		}
		if time.Since(started) >= s.opts.StableAfter {
			backoff = s.opts.MinBackoff
		}
		s.log.Warn("exited; restarting", "child", c.spec.Name, "exit", desc, "in", backoff)
		s.setState(c, StateBackoff)
		select {
		case <-time.After(backoff):
		case <-c.wake:
			s.setState(c, StateStopped)
			return
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
		s.mu.Lock()
		stopping = s.stopping
		s.mu.Unlock()
		if stopping {
			s.setState(c, StateStopped)
			return
		}
		for {
			if err := s.startProcess(c); err != nil {
				s.log.Error("restart failed", "child", c.spec.Name, "err", err, "retry in", backoff)
				select {
				case <-time.After(backoff):
				case <-c.wake:
					s.setState(c, StateStopped)
					return
				}
				backoff = min(backoff*2, s.opts.MaxBackoff)
				continue
			}
			break
		}
		s.mu.Lock()
		c.status.Restarts++
		s.mu.Unlock()
	}
}

func (s *Supervisor) setState(c *child, st State) {
	s.mu.Lock()
	c.status.State = st
	s.mu.Unlock()
}

// Status returns a snapshot of every child, in start order.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.children))
	for i, c := range s.children {
		out[i] = c.status
	}
	return out
}

// Stop ends every child in reverse start order: SIGTERM, then SIGKILL after
// StopTimeout. It returns when all have been reaped or ctx ends.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	for _, c := range children {
		select {
		case <-c.wake:
		default:
			close(c.wake)
		}
	}
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		s.mu.Lock()
		cmd, exited := c.cmd, c.exited
		running := c.status.State == StateRunning
		s.mu.Unlock()
		if running && cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(s.opts.StopTimeout)
			select {
			case <-exited:
			case <-t.C:
				s.log.Warn("did not stop in time; killing", "child", c.spec.Name, "pid", cmd.Process.Pid)
				_ = cmd.Process.Kill()
			case <-ctx.Done():
				_ = cmd.Process.Kill()
			}
			t.Stop()
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return fmt.Errorf("stop %s: %w", c.spec.Name, ctx.Err())
		}
	}
	return nil
}

// Signal sends sig to the named child's current process (for tests and
// operators' "restart one daemon").
func (s *Supervisor) Signal(name string, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.children {
		if c.spec.Name == name && c.status.State == StateRunning && c.cmd != nil {
			return c.cmd.Process.Signal(sig)
		}
	}
	return fmt.Errorf("no running child %q", name)
}

// The spawner forks every child from one OS thread that never exits:
// PR_SET_PDEATHSIG fires when the *thread* that forked a child dies, and the
// Go runtime may end idle threads, which would kill children at random.
var (
	spawnOnce sync.Once
	spawnReq  chan spawnRequest
	spawnTID  int
)

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// StartSpawner starts the thread every child is forked from, if it is not
// running yet, and returns its thread id. A child inherits that thread's
// scheduling policy and nice value, so a process that gives its own
// threads another priority (rtpctl up runs the bus at a higher nice
// value) starts the spawner first and leaves its thread out. setup, if
// not nil, runs once on the spawner's thread before it forks anything.
func StartSpawner(setup func()) int {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnRequest)
		ready := make(chan int)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			if setup != nil {
				setup()
			}
			ready <- unix.Gettid()
			for r := range spawnReq {
				r.errc <- r.cmd.Start()
			}
		}()
		spawnTID = <-ready
	})
	return spawnTID
}

func spawn(cmd *exec.Cmd) error {
	StartSpawner(nil)
	errc := make(chan error, 1)
	spawnReq <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}
