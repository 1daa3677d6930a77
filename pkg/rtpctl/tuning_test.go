package rtpctl

import (
	"testing"

	"github.com/rtpkit/rtpkit/pkg/ngctl"
	"github.com/rtpkit/rtpkit/pkg/portd"
	"github.com/rtpkit/rtpkit/pkg/proctune"
	"github.com/rtpkit/rtpkit/pkg/redissync"
	"github.com/rtpkit/rtpkit/pkg/rtpfwd"
)

// TestTuningPolicies: what each process of a node declares to pkg/proctune.
// Under --scheduling=auto ng-ctl keeps SCHED_OTHER and the others run
// SCHED_BATCH; portd, redis-sync, rtpctl up and rtp-fwd (when its loops
// may come back from it) run the background nice value; rtp-fwd keeps
// Go's default GOMAXPROCS and the others one P. TestUpStartsAndStopsCleanlyOnSIGTERM
// checks the threads of a running node.
func TestTuningPolicies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     proctune.Policy
		procs      int
		auto       proctune.Scheduling
		background bool
		mediaLoops bool
	}{
		{"portd", portd.Tuning, proctune.ControlPlaneProcs, proctune.SchedBatch, true, false},
		{"rtp-fwd", rtpfwd.Tuning, 0, proctune.SchedBatch, true, true},
		{"ng-ctl", ngctl.Tuning, proctune.ControlPlaneProcs, proctune.SchedOther, false, false},
		{"redis-sync", redissync.Tuning, proctune.ControlPlaneProcs, proctune.SchedBatch, true, false},
		{"rtpctl up", upTuning, proctune.ControlPlaneProcs, proctune.SchedBatch, true, false},
	} {
		p := tc.policy
		if p.Procs != tc.procs || p.Background != tc.background || p.MediaLoops != tc.mediaLoops {
			t.Errorf("%s: %+v, want procs %d, background %v, media loops %v", tc.name, p, tc.procs, tc.background, tc.mediaLoops)
		}
		for _, s := range []proctune.Scheduling{proctune.SchedAuto, ""} {
			if got := p.Scheduling(s); got != tc.auto {
				t.Errorf("%s: scheduling %q is %q, want %q", tc.name, s, got, tc.auto)
			}
		}
		if got := p.Scheduling(proctune.SchedIdle); got != proctune.SchedIdle {
			t.Errorf("%s: scheduling idle is %q", tc.name, got)
		}
		if prio := p.Priority(proctune.SchedAuto, proctune.Priority{}); !tc.mediaLoops && prio.IsSet != tc.background {
			t.Errorf("%s: priority under auto %+v, want set %v", tc.name, prio, tc.background)
		}
	}
}
