package proctune

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSchedulingSet(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Scheduling
		wantErr bool
	}{
		{in: "batch", want: SchedBatch},
		{in: " Batch ", want: SchedBatch},
		{in: "none", want: SchedDefault},
		{in: "default", want: SchedDefault},
		{in: "auto", want: SchedAuto},
		{in: "other", want: SchedOther},
		{in: "idle", want: SchedIdle},
		{in: "fifo", want: SchedFIFO},
		{in: "rr", want: SchedRR},
		{in: "deadline", wantErr: true},
		{in: "", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s := SchedAuto
			err := s.Set(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && s != tc.want {
				t.Errorf("Set(%q) = %q, want %q", tc.in, s, tc.want)
			}
		})
	}
}

func TestPrioritySet(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "-20", want: -20},
		{in: "19", want: 19},
		{in: "99", want: 99},
		{in: "100", wantErr: true},
		{in: "-21", wantErr: true},
		{in: "high", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var p Priority
			err := p.Set(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && (!p.IsSet || p.Value != tc.want) {
				t.Errorf("Set(%q) = %+v, want %d", tc.in, p, tc.want)
			}
		})
	}
}

func TestLoopScheduling(t *testing.T) {
	for in, want := range map[Scheduling]Scheduling{
		SchedAuto: SchedOther, "": SchedOther, SchedBatch: SchedDefault,
		SchedFIFO: SchedDefault, SchedDefault: SchedDefault, SchedOther: SchedDefault,
	} {
		if got := LoopScheduling(in); got != want {
			t.Errorf("LoopScheduling(%q) = %q, want %q", in, got, want)
		}
	}
}

// The kinds of process rtpkit has, as the daemons declare them (ng-ctl,
// portd and redis-sync, rtp-fwd); pkg/rtpctl's tests check the daemons'
// own declarations.
var (
	requestPath = Policy{Procs: ControlPlaneProcs, Auto: SchedOther}
	background  = Policy{Procs: ControlPlaneProcs, Auto: SchedBatch, Background: true}
	mediaLoops  = Policy{Auto: SchedBatch, Background: true, MediaLoops: true}
)

func TestPolicyScheduling(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		in     Scheduling
		want   Scheduling
	}{
		{"request path", requestPath, SchedAuto, SchedOther},
		{"request path", requestPath, "", SchedOther},
		{"request path", requestPath, SchedBatch, SchedBatch},
		{"request path", requestPath, SchedDefault, SchedDefault},
		{"background", background, SchedAuto, SchedBatch},
		{"media loops", mediaLoops, "", SchedBatch},
		{"background", background, SchedIdle, SchedIdle},
		{"zero", Policy{}, SchedAuto, AutoScheduling},
		{"zero", Policy{}, SchedOther, SchedOther},
	} {
		if got := tc.policy.Scheduling(tc.in); got != tc.want {
			t.Errorf("%s: Scheduling(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestPolicyPriority(t *testing.T) {
	n := startNice()
	bg := Priority{Value: min(n+BackgroundNice, 19), IsSet: true}
	unset, five := Priority{}, Priority{Value: 5, IsSet: true}
	fwdBG, fwdLoop := unset, unset
	if mayLowerNiceTo(n) {
		fwdBG, fwdLoop = bg, Priority{Value: n, IsSet: true}
	}
	for _, tc := range []struct {
		name     string
		policy   Policy
		sched    Scheduling
		prio     Priority
		want     Priority
		wantLoop Priority
	}{
		{"background", background, SchedAuto, unset, bg, fwdLoop},
		{"background", background, "", unset, bg, fwdLoop},
		{"media loops", mediaLoops, SchedAuto, unset, fwdBG, fwdLoop},
		{"request path", requestPath, SchedAuto, unset, unset, fwdLoop},
		{"zero", Policy{}, SchedAuto, unset, unset, fwdLoop},
		{"background", background, SchedAuto, five, five, five},
		{"background", background, SchedBatch, unset, unset, unset},
		{"media loops", mediaLoops, SchedOther, unset, unset, unset},
		{"background", background, SchedDefault, unset, unset, unset},
	} {
		if got := tc.policy.Priority(tc.sched, tc.prio); got != tc.want {
			t.Errorf("%s: Priority(%q, %v) = %v, want %v", tc.name, tc.sched, tc.prio, got, tc.want)
		}
		if got := LoopPriority(tc.sched, tc.prio); got != tc.wantLoop {
			t.Errorf("LoopPriority(%q, %v) = %v, want %v", tc.sched, tc.prio, got, tc.wantLoop)
		}
	}
}

// schedChildEnv makes the test binary run one scheduling case in a child
// process, so that the test process keeps its own policy and nice value.
const schedChildEnv = "RTPKIT_TEST_SCHED_CHILD"

// threadPolicies is each thread's policy and nice value.
func threadPolicies(t *testing.T) map[int][2]int {
	t.Helper()
	tids, err := threadIDs()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][2]int{}
	for _, tid := range tids {
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited
		}
		out[tid] = [2]int{int(attr.Policy), int(attr.Nice)}
	}
	return out
}

// startThreads parks n goroutines each locked to an OS thread of its own
// (new ones, once the idle threads are taken); stop releases them.
func startThreads(n int) (stop func()) {
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			<-release
		}()
	}
	ready.Wait()
	return func() { close(release); done.Wait() }
}

// schedCase is one run of TestSetSchedulingEveryThread.
type schedCase struct {
	name  string
	sched Scheduling
	prio  string // empty: unset
	// viaApply: through ApplyScheduling, or Policy.Apply when apply is
	// set, in a process already batch (as a child of rtpctl up).
	viaApply bool
	apply    *Policy
	policy   int
	nice     int
	bg       bool // nice is BackgroundNice above the start value instead
}

// SetScheduling reaches every thread, and threads started afterwards
// inherit the policy; ApplyScheduling with default changes nothing; a
// daemon's Policy applied under auto gives its threads its policy and
// background nice value.
func TestSetSchedulingEveryThread(t *testing.T) {
	for _, tc := range []schedCase{
		{name: "batch", sched: SchedBatch, policy: unix.SCHED_BATCH},
		{name: "batch nice 5", sched: SchedBatch, prio: "5", policy: unix.SCHED_BATCH, nice: 5},
		{name: "idle", sched: SchedIdle, policy: unix.SCHED_IDLE},
		{name: "auto", sched: SchedAuto, viaApply: true, policy: unix.SCHED_BATCH},
		{name: "default keeps batch", sched: SchedDefault, viaApply: true, policy: unix.SCHED_BATCH},
		{name: "request path policy", sched: SchedAuto, viaApply: true, apply: &requestPath, policy: unix.SCHED_NORMAL},
		{name: "background policy", sched: SchedAuto, viaApply: true, apply: &background, policy: unix.SCHED_BATCH, bg: true},
		{name: "background policy, priority given", sched: SchedAuto, prio: "3", viaApply: true, apply: &background, policy: unix.SCHED_BATCH, nice: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Getenv(schedChildEnv) == tc.name {
				schedChild(t, tc)
				return
			}
			// The child runs this subtest alone: its name, as -test.run matches it.
			cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v")
			cmd.Env = append(os.Environ(), schedChildEnv+"="+tc.name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
				t.Fatalf("child did not run %s:\n%s", t.Name(), out)
			}
		})
	}
}

func schedChild(t *testing.T, tc schedCase) {
	stop := startThreads(4)
	defer stop()
	policy, nice := tc.policy, tc.nice
	if tc.bg {
		nice = min(startNice()+BackgroundNice, 19)
	}
	var p Priority
	if tc.prio != "" {
		if err := p.Set(tc.prio); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch {
	case tc.viaApply:
		// The parent (rtpctl up) runs batch: the child inherits it.
		if err := SetScheduling(SchedBatch, Priority{}); err != nil {
			t.Fatalf("SetScheduling(batch): %v", err)
		}
		if tc.apply != nil {
			tc.apply.Apply("test", tc.sched, p, log)
		} else {
			ApplyScheduling(tc.sched, p, log)
		}
	default:
		if err := SetScheduling(tc.sched, p); err != nil {
			t.Fatalf("SetScheduling(%s, %s): %v", tc.sched, tc.prio, err)
		}
	}
	check := func(when string) {
		t.Helper()
		for tid, got := range threadPolicies(t) {
			if got[0] != policy || (policy != unix.SCHED_IDLE && got[1] != nice) {
				t.Errorf("%s: thread %d has policy %d nice %d, want %d nice %d", when, tid, got[0], got[1], policy, nice)
			}
		}
	}
	check("after setting")
	stop2 := startThreads(4) // new threads, created by changed ones
	defer stop2()
	check("threads started later")
	if n := len(threadPolicies(t)); n < 8 {
		t.Errorf("only %d threads: the test did not start new ones", n)
	}
	t.Log("threads checked: " + strconv.Itoa(len(threadPolicies(t))))
}

// SetThreadScheduling changes the calling thread only: a media loop's
// thread goes back to SCHED_OTHER while the rest of the process is batch.
func TestSetThreadSchedulingOneThread(t *testing.T) {
	if os.Getenv(schedChildEnv) == "one thread" {
		stop := startThreads(3)
		defer stop()
		if err := SetScheduling(SchedBatch, Priority{}); err != nil {
			t.Fatal(err)
		}
		tidc := make(chan int)
		release := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if err := SetThreadScheduling(LoopScheduling(SchedAuto), Priority{}); err != nil {
				t.Error(err)
			}
			tidc <- unix.Gettid()
			<-release
		}()
		loop := <-tidc
		defer close(release)
		others := 0
		for tid, got := range threadPolicies(t) {
			want := unix.SCHED_BATCH
			if tid == loop {
				want = unix.SCHED_NORMAL
			} else {
				others++
			}
			if got[0] != want {
				t.Errorf("thread %d (loop %d): policy %d, want %d", tid, loop, got[0], want)
			}
		}
		if others < 3 {
			t.Errorf("only %d other threads", others)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSetThreadSchedulingOneThread$", "-test.v")
	cmd.Env = append(os.Environ(), schedChildEnv+"=one thread")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestSetSchedulingRefusesBadPriority(t *testing.T) {
	if err := SetScheduling(SchedBatch, Priority{Value: 50, IsSet: true}); err == nil {
		t.Error("nice 50 accepted")
	}
	if err := SetScheduling(SchedFIFO, Priority{Value: -3, IsSet: true}); err == nil {
		t.Error("real-time priority -3 accepted")
	}
	if err := SetThreadScheduling(SchedRR, Priority{Value: 0, IsSet: true}); err == nil {
		t.Error("real-time priority 0 accepted for this thread")
	}
	if err := SetScheduling(SchedDefault, Priority{}); err == nil {
		t.Error("default is not a policy to set, but was accepted")
	}
}
