package testutil

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// CopyExecutable copies the running test binary into a world-readable temp
// dir (mode 0711) and returns its path, so that a child started under
// another uid can execute it (Go's build dirs are 0700).
func CopyExecutable(t testing.TB, name string) string {
	t.Helper()
	dir := shortTempDir(t)
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, name)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
