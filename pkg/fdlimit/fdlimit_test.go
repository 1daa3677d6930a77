package fdlimit

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRaise: the soft limit is raised to what is wanted, never lowered,
// and, with CAP_SYS_RESOURCE, past the hard limit it started with.
func TestRaise(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &before) })
	got, err := Raise(int(before.Cur) / 2)
	if err != nil || got != int(before.Cur) {
		t.Errorf("Raise(half the limit) = %d, %v; want the limit %d unchanged", got, err, before.Cur)
	}
	want := int(before.Max) + 1000
	got, err = Raise(want)
	if !capSysResource(t) {
		if err == nil || got != int(before.Max) {
			t.Errorf("Raise above the hard limit without CAP_SYS_RESOURCE: %d, %v; want the hard limit %d and an error", got, err, before.Max)
		}
		return
	}
	if uint64(want) > nrOpen() {
		t.Skipf("fs.nr_open %d is below %d", nrOpen(), want)
	}
	if err != nil || got != want {
		t.Errorf("Raise(%d) with CAP_SYS_RESOURCE = %d, %v", want, got, err)
	}
}

// capSysResource reports whether the process has CAP_SYS_RESOURCE (bit
// 24 of CapEff): root in a container may lack it.
func capSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}
