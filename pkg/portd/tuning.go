package portd

import "github.com/rtpkit/rtpkit/pkg/proctune"

// Tuning is how portd's process is tuned (pkg/proctune; its main applies
// it): one P, as its work is a stream of small messages; under
// --scheduling=auto its threads run SCHED_BATCH at the background nice
// value, as no request waits for its work once ng-ctl holds a stock of
// ports (leases refill it in the background, hand-offs follow the call
// records).
var Tuning = proctune.Policy{Procs: proctune.ControlPlaneProcs, Auto: proctune.SchedBatch, Background: true}
