package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process a test started; its combined output is kept.
type Proc struct {
	Cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	cond *sync.Cond
	done chan struct{}
	err  error
}

// StartProc starts path with args (and extra env), capturing stdout and
// stderr. At cleanup it is killed (by its pid) if still running.
func StartProc(t testing.TB, path string, args []string, env ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.Cmd = exec.Command(path, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	p.Cmd.Stdout, p.Cmd.Stderr = pw, pw
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text())
			p.out.WriteByte('\n')
			p.cond.Broadcast()
			p.mu.Unlock()
			if testLogEnabled() {
				t.Logf("%s: %s", path, sc.Text())
			}
		}
	}()
	go func() {
		p.err = p.Cmd.Wait()
		_ = pw.Close()
		close(p.done)
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitMatch waits until the output matches re and returns the submatches of
// the first match; it fails the test after timeout or if the process exits
// first.
func (p *Proc) WaitMatch(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			t.Fatalf("process exited (%v) before printing %q; output:\n%s", p.err, re, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output:\n%s", re, timeout, p.out.String())
		}
		p.cond.Wait()
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 for a signal).
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("process %d still running after %s", p.PID(), timeout)
	}
}

// Alive reports whether pid is a live process (a zombie counts as dead: it
// holds no sockets or ports any more).
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// WaitGone waits until none of pids is alive, failing the test after timeout.
func WaitGone(t testing.TB, pids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if Alive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still alive after %s: %v", timeout, alive)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Children returns the pids of pid's live child processes.
func Children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 2 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, n)
		}
	}
	return out
}

// MatchLine compiles a multi-line regexp (for WaitMatch).
func MatchLine(expr string) *regexp.Regexp { return regexp.MustCompile("(?m)" + expr) }
