package proctune

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Scheduling is the thread scheduling policy of a process, rtpengine's
// --scheduling: auto, default (or none), other, batch, idle, fifo or rr. It
// is a flag.Value (cli.Common registers it).
type Scheduling string

// The values of --scheduling.
const (
	// SchedAuto is each daemon's own choice (its Policy.Auto; AutoScheduling
	// unless it says otherwise).
	SchedAuto Scheduling = "auto"
	// SchedDefault leaves the policy the process was started with.
	SchedDefault Scheduling = "default"
	// SchedOther is Linux's normal time-sharing policy (SCHED_OTHER).
	SchedOther Scheduling = "other"
	// SchedBatch is SCHED_BATCH: time-sharing, but a thread woken up does
	// not preempt the one running; it waits for it to block or for the
	// next tick, and so finds more work queued when it runs.
	SchedBatch Scheduling = "batch"
	// SchedIdle is SCHED_IDLE: runs only when nothing else wants the CPU.
	SchedIdle Scheduling = "idle"
	// SchedFIFO is the real-time SCHED_FIFO (needs CAP_SYS_NICE).
	SchedFIFO Scheduling = "fifo"
	// SchedRR is the real-time SCHED_RR (needs CAP_SYS_NICE).
	SchedRR Scheduling = "rr"
)

var schedPolicies = map[Scheduling]uint32{
	SchedOther: unix.SCHED_NORMAL,
	SchedBatch: unix.SCHED_BATCH,
	SchedIdle:  unix.SCHED_IDLE,
	SchedFIFO:  unix.SCHED_FIFO,
	SchedRR:    unix.SCHED_RR,
}

// String is the policy's name.
func (s *Scheduling) String() string {
	if s == nil || *s == "" {
		return string(SchedAuto)
	}
	return string(*s)
}

// isAuto reports whether s is auto (or unset, which means auto).
func isAuto(s Scheduling) bool { return s == "" || s == SchedAuto }

// Set accepts rtpengine's names (none is default) and auto.
func (s *Scheduling) Set(v string) error {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "none" {
		v = string(SchedDefault)
	}
	p := Scheduling(v)
	if _, ok := schedPolicies[p]; !ok && p != SchedAuto && p != SchedDefault {
		return fmt.Errorf("%q is not a scheduling policy (auto, default, none, other, batch, idle, fifo, rr)", v)
	}
	*s = p
	return nil
}

// Priority is --priority: the nice value (-20..19) under other and batch,
// the real-time priority (1..99) under fifo and rr. Unset, the nice value
// the process was started with is kept, and fifo and rr use 1. It is a
// flag.Value (cli.Common registers it).
type Priority struct {
	Value int
	IsSet bool
}

// String is the value, or empty when unset.
func (p *Priority) String() string {
	if p == nil || !p.IsSet {
		return ""
	}
	return strconv.Itoa(p.Value)
}

// Set parses an integer from -20 to 99.
func (p *Priority) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < -20 || n > 99 {
		return fmt.Errorf("%q is not a priority (a nice value -20..19, or 1..99 under fifo and rr)", v)
	}
	p.Value, p.IsSet = n, true
	return nil
}

// AutoScheduling is what --scheduling=auto means for the threads of a
// process whose Policy does not say otherwise: SCHED_BATCH. The control
// work of the daemons that follow a call set-up (and of rtpctl up) is a
// stream of small messages passed between processes, and with wake-up
// preemption every message switched to its receiver at once; as batch
// tasks they let the sender run on until it blocks and then take what has
// queued in one go (docs/performance.md). ng-ctl (its Policy.Auto is
// SchedOther) and rtp-fwd's media loops (LoopScheduling) are the
// exceptions.
const AutoScheduling = SchedBatch

// LoopScheduling is the policy rtp-fwd's forwarding loop threads set for
// themselves when rtp-fwd runs with --scheduling s: under auto,
// SCHED_OTHER (a media packet must not wait for another task's slice);
// under any policy given explicitly, SchedDefault (nothing to change: the
// loop threads have it already, as every thread of the process).
func LoopScheduling(s Scheduling) Scheduling {
	if isAuto(s) {
		return SchedOther
	}
	return SchedDefault
}

// BackgroundNice is what --scheduling=auto adds, when --priority is not
// given, to the nice value of the threads of a process whose Policy says
// Background: work that is neither on the ng request path nor on the media
// path (portd, redis-sync, rtpctl up with the embedded bus, and rtp-fwd's
// control threads). A call set-up then never waits for the CPU behind
// work it does not wait for (following call records, handing sockets
// over, storing them): under load the background daemons take the CPU
// ng-ctl leaves, in larger batches. ng-ctl and rtp-fwd's forwarding loops
// keep the nice value they were started with. Measured in
// docs/performance.md.
const BackgroundNice = 10

// startNice is the nice value of the thread that first called
// ApplyScheduling or Policy.Priority, before either changed it: the one
// the process was started with.
var startNice = sync.OnceValue(func() int {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return 0
	}
	return int(attr.Nice)
})

// LoopPriority is the priority rtp-fwd's forwarding loops set on their
// threads under --scheduling s and --priority p: p when set or when s is
// not auto; under auto, the nice value the process started with (its
// other threads run the background value of a Policy with Background and
// MediaLoops) when the process may lower its threads' nice value back to
// it, else unset (the loops then have it already: Policy.Priority changed
// nothing).
func LoopPriority(s Scheduling, p Priority) Priority {
	if p.IsSet || !isAuto(s) {
		return p
	}
	n := startNice()
	if !mayLowerNiceTo(n) {
		return p
	}
	return Priority{Value: n, IsSet: true}
}

// mayLowerNiceTo reports whether this process may set a thread's nice
// value down to n: with CAP_SYS_NICE, or within RLIMIT_NICE (whose limit
// is 20 - n; systemd's LimitNICE=).
func mayLowerNiceTo(n int) bool {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NICE, &lim); err == nil && lim.Cur >= uint64(20-n) {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_NICE/32].Effective&(1<<(unix.CAP_SYS_NICE%32)) != 0
}

// ApplyScheduling gives every thread of this process but those in skip
// the policy (auto is AutoScheduling) and priority asked for (see
// Policy.Scheduling and Policy.Priority for what auto means for a
// daemon); threads the Go runtime starts later inherit it from the thread
// that creates them. default changes nothing. A refusal (fifo or rr without CAP_SYS_NICE, a lower
// nice value without the right) is logged and the daemon runs on.
func ApplyScheduling(s Scheduling, prio Priority, log *slog.Logger, skip ...int) {
	startNice()
	s, change := effective(s)
	if !change {
		return
	}
	if err := SetScheduling(s, prio, skip...); err != nil {
		log.Warn("cannot set the thread scheduling policy; running with the one inherited",
			"scheduling", string(s), "priority", prio.String(), "err", err)
		return
	}
	log.Debug("thread scheduling set", "scheduling", string(s), "priority", prio.String())
}

// ApplyThreadPolicy is ApplyScheduling for the calling OS thread only (the
// caller has locked its goroutine to it).
func ApplyThreadPolicy(s Scheduling, prio Priority, log *slog.Logger) {
	s, change := effective(s)
	if !change {
		return
	}
	if err := SetThreadScheduling(s, prio); err != nil {
		log.Warn("cannot set a thread's scheduling policy; it runs with the one inherited",
			"scheduling", string(s), "priority", prio.String(), "err", err)
	}
}

// effective is the policy that --scheduling s sets (auto is
// AutoScheduling), and false for default, which changes nothing.
func effective(s Scheduling) (Scheduling, bool) {
	if isAuto(s) {
		return AutoScheduling, true
	}
	return s, s != SchedDefault
}

// SetScheduling sets policy s and prio on every thread of the process but
// those in skip. It walks /proc/self/task until a pass finds no thread
// left to change, so that a thread started during a pass by one not yet
// changed is caught.
func SetScheduling(s Scheduling, prio Priority, skip ...int) error {
	policy, realtime, err := resolvePolicy(s, prio)
	if err != nil {
		return err
	}
	done := map[int]bool{}
	for _, tid := range skip {
		done[tid] = true
	}
	for pass := 0; pass < 10; pass++ {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		changed := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			if err := setThread(tid, policy, realtime, prio); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread has exited
				}
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			done[tid] = true
			changed++
		}
		if changed == 0 {
			return nil
		}
	}
	return nil
}

// SetThreadScheduling sets policy s and prio on the calling OS thread
// only (the caller has locked its goroutine to it).
func SetThreadScheduling(s Scheduling, prio Priority) error {
	policy, realtime, err := resolvePolicy(s, prio)
	if err != nil {
		return err
	}
	return setThread(0, policy, realtime, prio)
}

// resolvePolicy is the kernel policy of s, whether it is a real-time one,
// and an error if s is not a policy to set or prio is outside its range.
func resolvePolicy(s Scheduling, prio Priority) (policy uint32, realtime bool, err error) {
	policy, ok := schedPolicies[s]
	if !ok {
		return 0, false, fmt.Errorf("scheduling %q: not a policy to set", s)
	}
	realtime = policy == unix.SCHED_FIFO || policy == unix.SCHED_RR
	switch {
	case prio.IsSet && !realtime && prio.Value > 19:
		return 0, false, fmt.Errorf("priority %d: a nice value is -20..19", prio.Value)
	case prio.IsSet && realtime && prio.Value < 1:
		return 0, false, fmt.Errorf("priority %d: a real-time priority is 1..99", prio.Value)
	}
	return policy, realtime, nil
}

// setThread sets one thread's policy; tid 0 is the calling thread.
func setThread(tid int, policy uint32, realtime bool, prio Priority) error {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return fmt.Errorf("sched_getattr: %w", err)
	}
	attr.Policy = policy
	attr.Flags = 0
	switch {
	case realtime:
		attr.Priority, attr.Nice = 1, 0
		if prio.IsSet {
			attr.Priority = uint32(prio.Value)
		}
	default:
		attr.Priority = 0
		if prio.IsSet {
			attr.Nice = int32(prio.Value)
		}
	}
	if err := unix.SchedSetAttr(tid, attr, 0); err != nil {
		return fmt.Errorf("sched_setattr: %w", err)
	}
	return nil
}

// threadIDs lists the threads of this process.
func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
