package proctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// TuneGC sets DefaultGCPercent and a soft memory limit unless the
// environment sets GOGC (the runtime has then applied the operator's
// value and TuneGC keeps it); GOMEMLIMIT keeps the limit alone.
func TestTuneGC(t *testing.T) {
	if availableMemory() <= 0 {
		t.Fatal("no memory size found in /proc/meminfo")
	}
	for _, tc := range []struct {
		name      string
		env       map[string]string // unset unless named
		wantGC    int
		wantLimit int64
	}{
		{name: "nothing set", wantGC: DefaultGCPercent, wantLimit: availableMemory() / MemoryLimitShare},
		{name: "GOGC set", env: map[string]string{"GOGC": "50"}, wantGC: 50, wantLimit: math.MaxInt64},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "1GiB"}, wantGC: DefaultGCPercent, wantLimit: math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
				t.Setenv(k, tc.env[k])
				if _, set := tc.env[k]; !set {
					if err := os.Unsetenv(k); err != nil {
						t.Fatal(err)
					}
				}
			}
			start := tc.wantGC
			if tc.env["GOGC"] == "" {
				start = 100
			}
			oldGC := debug.SetGCPercent(start)
			oldLimit := debug.SetMemoryLimit(math.MaxInt64)
			defer debug.SetGCPercent(oldGC)
			defer debug.SetMemoryLimit(oldLimit)
			TuneGC()
			if got := debug.SetGCPercent(start); got != tc.wantGC {
				t.Errorf("GC percent %d, want %d", got, tc.wantGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}

// TuneProcs gives a control-plane policy's Procs (ControlPlaneProcs),
// leaves GOMAXPROCS alone for a policy without Procs (rtp-fwd's) and keeps
// a GOMAXPROCS the environment sets.
func TestTuneProcs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy Policy
		env    string // GOMAXPROCS, unset if empty
		start  int
		want   int
	}{
		{name: "control plane", policy: requestPath, start: 2, want: ControlPlaneProcs},
		{name: "background", policy: background, start: 2, want: ControlPlaneProcs},
		{name: "data plane", policy: mediaLoops, start: 2, want: 2},
		{name: "GOMAXPROCS set", policy: background, env: "2", start: 2, want: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			if tc.env == "" {
				if err := os.Unsetenv("GOMAXPROCS"); err != nil {
					t.Fatal(err)
				}
			}
			old := runtime.GOMAXPROCS(tc.start)
			defer runtime.GOMAXPROCS(old)
			TuneProcs(tc.policy.Procs)
			if got := runtime.GOMAXPROCS(0); got != tc.want {
				t.Errorf("GOMAXPROCS %d, want %d", got, tc.want)
			}
		})
	}
}
