package rtpctl

import "github.com/rtpkit/rtpkit/pkg/proctune"

// upTuning is how the `rtpctl up` process, which hosts the embedded bus,
// is tuned (pkg/proctune): one P, as the bus's work is a stream of small
// messages; under --scheduling=auto its threads run SCHED_BATCH at the
// background nice value, but for the thread the daemons are forked from
// (see cmdUp).
var upTuning = proctune.Policy{Procs: proctune.ControlPlaneProcs, Auto: proctune.SchedBatch, Background: true}
