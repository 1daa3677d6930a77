package rtpfwd

import "github.com/rtpkit/rtpkit/pkg/proctune"

// Tuning is how rtp-fwd's process is tuned (pkg/proctune; its main applies
// it): Go's default Ps, as its forwarding loops run one per core; under
// --scheduling=auto its control threads run SCHED_BATCH at the background
// nice value — but only if the loops, which carry media, may bring their
// own threads back to SCHED_OTHER and the nice value rtp-fwd started with
// (see loopScheduling).
var Tuning = proctune.Policy{Auto: proctune.SchedBatch, Background: true, MediaLoops: true}
