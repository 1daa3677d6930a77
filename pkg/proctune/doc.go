// Package proctune tunes an rtpkit process for the work it does: the
// garbage collector's target and soft memory limit ([TuneGC]), the number
// of Ps ([TuneProcs]), the scheduling policy and nice value of its threads
// ([ApplyScheduling], and per thread [ApplyThreadPolicy] and
// [SetThreadScheduling] for rtp-fwd's forwarding loops), and a pprof debug
// knob ([StartPprof]).
//
// The package knows no daemon by name. Each daemon declares how it wants
// to be tuned as a [Policy] value of its own (portd.Tuning, rtpfwd.Tuning,
// ngctl.Tuning, redissync.Tuning, and rtpctl's for `rtpctl up`), and its
// main applies it ([Policy.Apply], which pkg/daemon.Main calls) under the
// operator's --scheduling and --priority.
//
// The values of those two options, [Scheduling] and [Priority], are
// defined here rather than in pkg/cli: what a policy name means (which
// kernel policy, which priority range goes with it) is what this package
// applies, and keeping the names next to that meaning leaves one place to
// change when a policy is added. pkg/cli registers them as flags in
// cli.Common, as it does with bus.Options for the bus: options are parsed
// by cli, typed by the package that interprets them.
//
// Why each daemon runs as it does (one P for the control plane,
// SCHED_BATCH but for the request and media paths, nice +10 for the work
// nobody waits for) is measured in docs/performance.md.
package proctune
