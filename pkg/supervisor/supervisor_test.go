package supervisor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/supervisor"
	"github.com/rtpkit/rtpkit/pkg/testutil"
)

// The test binary doubles as the children ("sleep") and as a supervisor
// process ("supervise") for the tests that kill the supervisor itself.
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISOR_TEST_MODE") {
	case "sleep":
		if os.Getenv("SUPERVISOR_TEST_EXIT") != "" {
			code, _ := strconv.Atoi(os.Getenv("SUPERVISOR_TEST_EXIT"))
			os.Exit(code)
		}
		time.Sleep(60 * time.Second)
		os.Exit(0)
	case "supervise":
		os.Exit(supervise())
	}
	os.Exit(m.Run())
}

func sleeper(name string, env ...string) supervisor.Spec {
	return supervisor.Spec{Name: name, Path: os.Args[0], Args: []string{"-test.run=^$"},
		Env: append([]string{"SUPERVISOR_TEST_MODE=sleep"}, env...)}
}

// supervise runs two sleepers, prints their pids, and stops them on SIGTERM.
func supervise() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s := supervisor.New(nil, supervisor.Options{})
	for _, n := range []string{"a", "b"} {
		if err := s.Start(sleeper(n)); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	var pids []string
	for _, st := range s.Status() {
		pids = append(pids, strconv.Itoa(st.PID))
	}
	fmt.Println("pids", strings.Join(pids, " "))
	<-ctx.Done()
	if err := s.Stop(context.Background()); err != nil {
		return 1
	}
	return 0
}

func startSupervisorProcess(t *testing.T) (*exec.Cmd, []int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUPERVISOR_TEST_MODE=supervise")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("supervisor output: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "pids")) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		pids = append(pids, pid)
	}
	if len(pids) != 2 {
		t.Fatalf("want 2 child pids, got %q", line)
	}
	for _, pid := range pids {
		if !testutil.Alive(pid) {
			t.Fatalf("child %d not running", pid)
		}
	}
	return cmd, pids
}

func TestSIGTERMStopsEveryChild(t *testing.T) {
	cmd, pids := startSupervisorProcess(t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("supervisor exit: %v", err)
	}
	testutil.WaitGone(t, pids, 5*time.Second)
}

func TestKill9OfSupervisorTakesChildrenDown(t *testing.T) {
	cmd, pids := startSupervisorProcess(t)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	testutil.WaitGone(t, pids, 5*time.Second)
}

func TestRestartWithBackoff(t *testing.T) {
	s := supervisor.New(testutil.Logger(t), supervisor.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.Start(sleeper("victim")); err != nil {
		t.Fatal(err)
	}
	first := s.Status()[0].PID
	if err := s.Signal("victim", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()[0]
		if st.State == supervisor.StateRunning && st.PID != first && st.Restarts == 1 {
			if st.LastExit != "signal: killed" {
				t.Fatalf("last exit %q", st.LastExit)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if testutil.Alive(first) {
		t.Fatalf("old process %d alive", first)
	}
}

func TestNoRestartCodes(t *testing.T) {
	s := supervisor.New(testutil.Logger(t), supervisor.Options{MinBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	spec := sleeper("misconfigured", "SUPERVISOR_TEST_EXIT=2")
	spec.NoRestartCodes = []int{2}
	if err := s.Start(spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()[0]
		if st.State == supervisor.StateGaveUp {
			if st.LastCode != 2 || st.Restarts != 0 {
				t.Fatalf("status %+v", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartOfMissingBinaryFails(t *testing.T) {
	s := supervisor.New(testutil.Logger(t), supervisor.Options{})
	err := s.Start(supervisor.Spec{Name: "ghost", Path: "/nonexistent/ghost"})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("err = %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
