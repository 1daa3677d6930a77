package redissync

import "github.com/rtpkit/rtpkit/pkg/proctune"

// Tuning is how redis-sync's process is tuned (pkg/proctune; its main
// applies it): one P, as its work is a stream of small messages; under
// --scheduling=auto its threads run SCHED_BATCH at the background nice
// value, as nothing on a call's path waits for its mirror in Redis.
var Tuning = proctune.Policy{Procs: proctune.ControlPlaneProcs, Auto: proctune.SchedBatch, Background: true}
