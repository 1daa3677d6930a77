package testutil

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountBPFFS mounts a BPF filesystem on dir (created if missing, mode
// 0700) for the rest of the test, so that what a process pins there (the
// fast path's maps and links) outlives it; it is unmounted at cleanup,
// which frees whatever is still pinned. It needs root: without it, it does
// nothing (the processes then run without a pinned fast path).
func MountBPFFS(t testing.TB, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("bpffs: %v", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("bpffs: mount on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("bpffs: unmount %s: %v", dir, err)
		}
	})
}
