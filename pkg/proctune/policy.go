package proctune

import "log/slog"

// Policy is how one kind of rtpkit process wants to be tuned. Each daemon
// declares its own (and rtpctl one for `rtpctl up`); nothing here lists
// daemons. The zero value keeps Go's GOMAXPROCS, runs the threads
// AutoScheduling under --scheduling=auto and leaves their nice value.
type Policy struct {
	// Procs is the process's GOMAXPROCS unless the environment sets
	// GOMAXPROCS; 0 keeps Go's default (one per CPU). ControlPlaneProcs
	// suits a daemon whose work is a stream of small messages.
	Procs int
	// Auto is the policy of every thread under --scheduling=auto; empty
	// means AutoScheduling (SCHED_BATCH). SchedOther suits a daemon that
	// answers requests a client waits for (ng-ctl): a woken SCHED_OTHER
	// thread preempts a batch task that is running.
	Auto Scheduling
	// Background runs every thread BackgroundNice above the nice value the
	// process started with under --scheduling=auto when --priority is not
	// given: for work neither on the ng request path nor on the media path.
	Background bool
	// MediaLoops says that some threads of the process carry media and set
	// themselves back to SCHED_OTHER and to the nice value the process
	// started with (LoopScheduling, LoopPriority: rtp-fwd's forwarding
	// loops). Background then applies only when the process may lower a
	// thread's nice value back (CAP_SYS_NICE, or RLIMIT_NICE): otherwise
	// the loops would be stuck in the background with the rest.
	MediaLoops bool
}

// Scheduling is the policy the threads of a process with policy p get
// under --scheduling s: s itself unless it is auto; under auto, p.Auto,
// or AutoScheduling when p does not say.
func (p Policy) Scheduling(s Scheduling) Scheduling {
	switch {
	case !isAuto(s):
		return s
	case p.Auto != "" && p.Auto != SchedAuto:
		return p.Auto
	}
	return AutoScheduling
}

// Priority is the priority the threads of a process with policy p get
// from ApplyScheduling under --scheduling s and --priority prio: prio
// itself when set or when s is not auto; under auto with prio unset,
// BackgroundNice above the nice value the process started with (at most
// 19) if p is Background (and, with MediaLoops, if its loops may come
// back from it), else unset (unchanged).
func (p Policy) Priority(s Scheduling, prio Priority) Priority {
	if prio.IsSet || !isAuto(s) || !p.Background {
		return prio
	}
	n := startNice()
	if p.MediaLoops && !mayLowerNiceTo(n) {
		return prio
	}
	return Priority{Value: min(n+BackgroundNice, 19), IsSet: true}
}

// Apply tunes this process as p says under --scheduling s and --priority
// prio: the pprof debug knob if PprofEnv names the process (name), the
// garbage collector (TuneGC), GOMAXPROCS (TuneProcs) and the scheduling
// of every thread but those in skip (ApplyScheduling with p's Scheduling
// and Priority). Refusals are logged; the process runs on.
func (p Policy) Apply(name string, s Scheduling, prio Priority, log *slog.Logger, skip ...int) {
	StartPprof(name, log)
	TuneGC()
	TuneProcs(p.Procs)
	ApplyScheduling(p.Scheduling(s), p.Priority(s, prio), log, skip...)
}
