package mediabench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture.
const clockTicks = 100

// procStat is what the CPU accounting needs from one /proc/<pid>/stat.
type procStat struct {
	ppid  int
	ticks uint64 // utime + stime
}

// parseStat reads the ppid and utime+stime from the text of a
// /proc/<pid>/stat file. The command name may hold spaces and parentheses,
// so fields are counted from the last ')'.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %q: no command name", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat %q: %d fields", s, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat stime: %w", err)
	}
	return procStat{ppid: ppid, ticks: ut + st}, nil
}

// TreeCPU returns the CPU time (user + system, in seconds) used so far by
// the processes in roots and all their live descendants, found by walking
// the ppid of every process in /proc.
func TreeCPU(roots []int) (float64, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("cpu: %w", err)
	}
	stats := make(map[int]procStat, len(entries))
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		ps, err := parseStat(string(b))
		if err != nil {
			continue
		}
		stats[pid] = ps
		children[ps.ppid] = append(children[ps.ppid], pid)
	}
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	var ticks uint64
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		ps, ok := stats[pid]
		if !ok {
			if slices.Contains(roots, pid) {
				return 0, fmt.Errorf("cpu: no process %d", pid)
			}
			continue
		}
		ticks += ps.ticks
		queue = append(queue, children[pid]...)
	}
	return float64(ticks) / clockTicks, nil
}
