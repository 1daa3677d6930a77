package fdpass

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtpkit/rtpkit/pkg/testutil"

	"golang.org/x/sys/unix"
)

func TestListenMode(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	for _, umask := range []int{0, 0o022, 0o077} {
		path := filepath.Join(t.TempDir(), "portd.sock")
		old := syscall.Umask(umask)
		ln, err := Listen(path, nil)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("umask %#o: socket file mode %v, want socket 0600", umask, fi.Mode())
		}
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket file still there after Close: %v", err)
		}
	}
}

func TestListenExistingPath(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	dir := t.TempDir()

	// A stale socket file (its listener is gone) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	ln, err := Listen(stale, nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()

	// A live listener is not.
	if ln2, err := Listen(stale, nil); !errors.Is(err, ErrPathInUse) {
		if ln2 != nil {
			ln2.Close()
		}
		t.Errorf("Listen over a live listener = %v, want ErrPathInUse", err)
	}
	// The probe's connection shows up at the live listener; drain it.
	ln.SetDeadline(time.Now().Add(time.Second))
	if c, err := ln.Accept(); err == nil {
		c.Close()
	}

	// Nor is a regular file, which stays.
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(regular, nil); !errors.Is(err, ErrPathInUse) {
		t.Errorf("Listen over a regular file = %v, want ErrPathInUse", err)
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "keep" {
		t.Errorf("regular file changed: %q, %v", b, err)
	}

	for _, bad := range []string{"", "@abstract", strings.Repeat("x", 200)} {
		if ln, err := Listen(bad, nil); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded", bad)
		}
	}
}

// TestCloseKeepsReplacement checks that Close does not remove a socket file
// that another listener has put at the same path meanwhile.
func TestCloseKeepsReplacement(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	path := filepath.Join(t.TempDir(), "portd.sock")
	old, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	repl, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("old listener's Close removed the new socket file: %v", err)
	}
	if _, err := old.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
	if err := old.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPeerCredentials(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	client, server := listenerPair(t)
	for name, c := range map[string]*Conn{"client": client, "server": server} {
		p := c.Peer()
		if int(p.Pid) != os.Getpid() || int(p.Uid) != os.Geteuid() || int(p.Gid) != os.Getegid() {
			t.Errorf("%s sees peer %+v, want this process", name, p)
		}
	}
}

// TestPolicyRejects rejects this very process by policy, which works without
// root; the uid-based rejection of another process is in process_test.go.
func TestPolicyRejects(t *testing.T) {
	testutil.CheckNoFDLeak(t)
	path := filepath.Join(t.TempDir(), "portd.sock")
	other := uint32(os.Geteuid()) + 1000
	ln, err := Listen(path, AllowUIDs(other))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	sc, err := ln.Accept()
	if err == nil {
		sc.Close()
		t.Fatal("Accept succeeded for a peer outside the policy")
	}
	if !errors.Is(err, ErrPeerRejected) || !strings.Contains(err.Error(), "not in the allowed set") {
		t.Errorf("Accept = %v, want ErrPeerRejected with the policy's reason", err)
	}
	t.Log(err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("rejected client reads %v, want io.EOF", err)
	}
}

func TestPolicies(t *testing.T) {
	me := uint32(os.Geteuid())
	tests := []struct {
		name   string
		policy Policy
		uid    uint32
		ok     bool
	}{
		{"same uid", SameUID(), me, true},
		{"other uid", SameUID(), me + 1, false},
		{"allowed", AllowUIDs(0, 1000), 1000, true},
		{"allowed root", AllowUIDs(0, 1000), 0, true},
		{"not allowed", AllowUIDs(0, 1000), 65534, false},
		{"empty set", AllowUIDs(), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy(unix.Ucred{Pid: 1, Uid: tt.uid, Gid: tt.uid})
			if (err == nil) != tt.ok {
				t.Errorf("policy(uid %d) = %v, want ok=%v", tt.uid, err, tt.ok)
			}
		})
	}
}
