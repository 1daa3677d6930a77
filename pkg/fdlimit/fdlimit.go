// Package fdlimit raises a process's open-file limit (RLIMIT_NOFILE) to
// what it needs, as far as it may: the soft limit up to the hard one, and,
// for a process allowed to (CAP_SYS_RESOURCE: root), the hard limit too,
// up to the kernel's fs.nr_open. A node sizes its own limits this way
// (media sockets per port of every interface), whether or not a unit file
// set LimitNOFILE.
package fdlimit

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Raise makes the limit at least want where it can and returns the soft
// limit in force afterwards (never lowered). An error says why it stayed
// below want; the returned limit is still the one in force.
func Raise(want int) (int, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024, fmt.Errorf("getrlimit: %w", err)
	}
	w := uint64(want)
	if rl.Cur >= w {
		return clamp(rl.Cur), nil
	}
	next := rl
	if rl.Max < w {
		// Only a process with CAP_SYS_RESOURCE may raise the hard limit,
		// and never above fs.nr_open.
		next.Max = min(w, nrOpen())
		if next.Max < rl.Max {
			next.Max = rl.Max
		}
	}
	next.Cur = min(w, next.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err != nil {
		// Not allowed to raise the hard limit: the soft one up to it.
		next.Max = rl.Max
		next.Cur = min(w, rl.Max)
		if err2 := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err2 != nil {
			return clamp(rl.Cur), fmt.Errorf("setrlimit to %d: %w", next.Cur, err2)
		}
		return clamp(next.Cur), fmt.Errorf("open file limit %d (hard) is below the %d wanted, and raising it was refused: %w", rl.Max, want, err)
	}
	if next.Cur < w {
		return clamp(next.Cur), fmt.Errorf("open file limit %d is below the %d wanted (fs.nr_open)", next.Cur, want)
	}
	return clamp(next.Cur), nil
}

// nrOpen is the kernel's ceiling on the hard limit.
func nrOpen() uint64 {
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 1 << 20
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 1 << 20
	}
	return n
}

func clamp(v uint64) int { return int(min(v, 1<<30)) }
