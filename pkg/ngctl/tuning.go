package ngctl

import "github.com/rtpkit/rtpkit/pkg/proctune"

// Tuning is how ng-ctl's process is tuned (pkg/proctune; its main applies
// it): one P, as its work is a stream of small messages; under
// --scheduling=auto its threads keep SCHED_OTHER and the nice value it was
// started with. Its work starts with a request a SIP proxy waits for, and
// a woken SCHED_OTHER thread preempts a batch task that is running: an
// offer then never waits out the slice of a daemon that follows the call
// records. With one client, measured by hand on the running node (chrt on
// ng-ctl's threads, 4 s runs, three pairs, docs/performance.md): 2 619–3 404
// cycles/s as batch, 3 340–4 082 as other; with eight clients no
// difference beyond the noise.
var Tuning = proctune.Policy{Procs: proctune.ControlPlaneProcs, Auto: proctune.SchedOther}
