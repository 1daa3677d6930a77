package testutil

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// FDCount counts the open descriptors of process pid (0: this process).
func FDCount(t testing.TB, pid int) int {
	t.Helper()
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return len(ents)
}

// CheckNoFDLeak records how many descriptors this process has open now and,
// after the test and its other cleanups, fails the test if there are more.
// Call it first in a test so that its cleanup runs last.
func CheckNoFDLeak(t testing.TB) {
	t.Helper()
	// Make sure the runtime's poller exists before counting.
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		_ = c.Close()
	}
	before := FDCount(t, 0)
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			after := FDCount(t, 0)
			if after <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("descriptor leak: %d open before the test, %d after", before, after)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
