package proctune

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with RTPKIT_DEBUG_PPROF
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is the garbage collector's target (GOGC) of rtpkit's
// daemons when the environment does not set GOGC. Their live heaps are
// small (call state, a few MB per thousand calls) and they allocate per
// request, so Go's default of 100 spends 5-8 % of their CPU marking;
// a target of 400 lets the heap grow to five times the live data instead
// of two and marks about a quarter as often.
const DefaultGCPercent = 400

// MemoryLimitShare is the soft memory limit (GOMEMLIMIT) a daemon gets when
// the environment sets neither GOGC nor GOMEMLIMIT: this fraction of the
// host's memory (or of its cgroup's limit, if lower). It bounds what the
// higher GC target costs in memory on a node with very many calls: near
// the limit the collector runs as often as it must, whatever GOGC says.
const MemoryLimitShare = 8

// TuneGC applies DefaultGCPercent unless GOGC is set, and with it a soft
// memory limit of 1/MemoryLimitShare of the memory available unless
// GOMEMLIMIT is set.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(DefaultGCPercent)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if total := availableMemory(); total > 0 {
			debug.SetMemoryLimit(total / MemoryLimitShare)
		}
	}
}

// ControlPlaneProcs is the GOMAXPROCS (Policy.Procs), the number of
// threads that run Go code at once, of the control-plane daemons (ng-ctl,
// portd, redis-sync, and the bus `rtpctl up` hosts). Their work comes as a
// stream of small messages, and with more than one P the Go scheduler
// wakes a second thread for nearly every one, which finds nothing to do,
// spins and sleeps again (futex, nanosleep): on a 2-vCPU VM that cost more
// CPU than the daemons' own work when the load was low. One P handles
// several thousand requests a second. rtp-fwd, whose packet loops run one
// per core, keeps Go's default.
const ControlPlaneProcs = 1

// TuneProcs sets GOMAXPROCS to n unless n is 0 (Go's default stays) or
// the environment sets GOMAXPROCS.
func TuneProcs(n int) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || n <= 0 {
		return
	}
	runtime.GOMAXPROCS(n)
}

// availableMemory is the host's MemTotal, or the cgroup (v2) memory.max
// of this process if that is lower; 0 if neither can be read.
func availableMemory() int64 {
	var total int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					total = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		// cgroup v2: one line "0::/path".
		if _, path, ok := strings.Cut(strings.TrimSpace(string(b)), "0::"); ok {
			if m, err := os.ReadFile("/sys/fs/cgroup" + path + "/memory.max"); err == nil {
				if v, err := strconv.ParseInt(strings.TrimSpace(string(m)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
					total = v
				}
			}
		}
	}
	return total
}

// PprofEnv names a debug knob: "NAME=ADDR:PORT[,NAME=ADDR:PORT...]"
// makes those processes (a daemon's name, or rtpctl-up) serve
// net/http/pprof on the given loopback address. Not a stable interface.
const PprofEnv = "RTPKIT_DEBUG_PPROF"

// StartPprof serves net/http/pprof for the named process if PprofEnv asks.
func StartPprof(name string, log *slog.Logger) {
	addr := ""
	for _, item := range strings.Split(os.Getenv(PprofEnv), ",") {
		if d, a, ok := strings.Cut(item, "="); ok && d == name {
			addr = a
		}
	}
	if addr == "" {
		return
	}
	go func() {
		log.Warn("serving pprof (debug knob)", "addr", addr)
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Error("pprof", "err", err)
		}
	}()
}
