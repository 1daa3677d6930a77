package fdpass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// socketMode is the mode of the listening socket file: only the owner
// (portd's user) may connect.
const socketMode = 0o600

// maxPathLen is the longest socket path the kernel accepts (sun_path less
// the terminating NUL).
const maxPathLen = len(unix.RawSockaddrUnix{}.Path) - 1

// Policy decides whether a connecting process may talk to the listener,
// from its kernel-reported credentials. It returns nil to accept, or an
// error that explains the refusal.
type Policy func(peer unix.Ucred) error

// SameUID accepts peers that run as the listener's own effective uid (so a
// root listener accepts root peers).
func SameUID() Policy { return AllowUIDs(uint32(os.Geteuid())) }

// AllowUIDs accepts peers that run as one of uids.
func AllowUIDs(uids ...uint32) Policy {
	uids = slices.Clone(uids)
	return func(peer unix.Ucred) error {
		if slices.Contains(uids, peer.Uid) {
			return nil
		}
		return fmt.Errorf("uid %d is not in the allowed set %v", peer.Uid, uids)
	}
}

// Listener accepts [Conn] connections on a SOCK_SEQPACKET Unix socket file.
type Listener struct {
	ul     *net.UnixListener
	path   string
	policy Policy
	file   fs.FileInfo // the socket file as bound, to remove only our own

	closeOnce sync.Once
	closeErr  error
}

// Listen creates a SOCK_SEQPACKET socket at path (a file system path; abstract
// names are not supported) whose file has mode 0600 from the start,
// whatever the umask. A stale socket file that nothing listens on is
// replaced; a live listener or any other file at path is an error
// ([ErrPathInUse]). Each accepted peer is checked with policy; nil means
// [SameUID].
func Listen(path string, policy Policy) (*Listener, error) {
	if policy == nil {
		policy = SameUID()
	}
	if path == "" || strings.HasPrefix(path, "@") || strings.IndexByte(path, 0) >= 0 || len(path) > maxPathLen {
		return nil, fmt.Errorf("fdpass: listen %q: need a file system path of 1 to %d bytes", path, maxPathLen)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("fdpass: listen %s: %w", path, err)
	}
	ul, fi, err := bindSeqpacket(path)
	if err != nil {
		return nil, fmt.Errorf("fdpass: listen %s: %w", path, err)
	}
	return &Listener{ul: ul, path: path, policy: policy, file: fi}, nil
}

// bindSeqpacket binds and listens. The socket's inode mode is set before
// bind: Linux creates the file with that mode less the umask, so the file
// is never more open than 0600; chmod afterwards makes it exactly 0600.
func bindSeqpacket(path string) (*net.UnixListener, fs.FileInfo, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), path) // owns fd from here on
	defer f.Close()                    // net.FileListener works on its own duplicate
	if err := unix.Fchmod(fd, socketMode); err != nil {
		return nil, nil, os.NewSyscallError("fchmod", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, nil, os.NewSyscallError("bind", err)
	}
	ul, fi, err := finishListen(fd, f, path)
	if err != nil {
		os.Remove(path)
		return nil, nil, err
	}
	return ul, fi, nil
}

func finishListen(fd int, f *os.File, path string) (*net.UnixListener, fs.FileInfo, error) {
	if err := os.Chmod(path, socketMode); err != nil {
		return nil, nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return nil, nil, os.NewSyscallError("listen", err)
	}
	l, err := net.FileListener(f)
	if err != nil {
		return nil, nil, err
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, nil, fmt.Errorf("unexpected listener type %T", l)
	}
	ul.SetUnlinkOnClose(false) // Close removes the file only if it is still ours
	return ul, fi, nil
}

// removeStale removes a socket file at path that nothing listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %s is a %v, not a socket", ErrPathInUse, path, fi.Mode().Type())
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	unix.Close(fd)
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
		return nil
	case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EPROTOTYPE):
		// Connected, backlog full, or a listener of another socket type.
		return fmt.Errorf("%w: another process is listening on %s", ErrPathInUse, path)
	default:
		return fmt.Errorf("probe existing socket: %w", os.NewSyscallError("connect", err))
	}
}

// Accept waits for a connection, checks the peer's credentials against the
// listener's policy and returns it. A refused peer's connection is closed
// and Accept returns an error wrapping [ErrPeerRejected] that names the
// peer's pid, uid and gid; the caller should log it and call Accept again.
// After Close, Accept returns an error wrapping [net.ErrClosed].
func (l *Listener) Accept() (*Conn, error) {
	uc, err := l.ul.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("fdpass: accept on %s: %w", l.path, err)
	}
	c, err := NewConn(uc)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("fdpass: accept on %s: %w", l.path, err)
	}
	p := c.Peer()
	if err := l.policy(p); err != nil {
		c.Close()
		return nil, fmt.Errorf("fdpass: accept on %s: %w: pid %d uid %d gid %d: %w", l.path, ErrPeerRejected, p.Pid, p.Uid, p.Gid, err)
	}
	return c, nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.ul.Addr() }

// Path returns the socket file's path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file, unless it has been
// replaced by another one meanwhile. Connections already accepted stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.ul.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			if err := os.Remove(l.path); err != nil && l.closeErr == nil {
				l.closeErr = err
			}
		}
		if l.closeErr != nil {
			l.closeErr = fmt.Errorf("fdpass: close %s: %w", l.path, l.closeErr)
		}
	})
	return l.closeErr
}

// Dial connects to a listener at path.
func Dial(path string) (*Conn, error) {
	return DialContext(context.Background(), path)
}

// DialContext connects to a listener at path, giving up when ctx is done.
func DialContext(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, fmt.Errorf("fdpass: dial %s: %w", path, err)
	}
	c, err := NewConn(nc.(*net.UnixConn))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fdpass: dial %s: %w", path, err)
	}
	return c, nil
}

// SetDeadline sets the deadline for Accept; the zero time means none.
func (l *Listener) SetDeadline(t time.Time) error { return l.ul.SetDeadline(t) }
