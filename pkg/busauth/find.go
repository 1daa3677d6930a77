package busauth

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// SystemKeyDir is where an installed node (the systemd units) keeps its bus
// keys; rtpctl looks for the operator's key there.
const SystemKeyDir = "/etc/rtpkit/bus"

// userDir is the directory, private to the user, where `rtpctl up` leaves
// a link to its operator key for rtpctl's client commands:
// $XDG_RUNTIME_DIR/rtpkit, else <tmp>/rtpkit-<uid>.
func userDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "rtpkit")
	}
	return filepath.Join(os.TempDir(), "rtpkit-"+strconv.Itoa(os.Getuid()))
}

// linkName is the name of the link for node's bus at natsURL: one per node
// and listening address, so that several nodes of one user (on several
// ports, or in several network namespaces) do not clash.
func linkName(natsURL, node string) (string, error) {
	u, err := url.Parse(natsURL)
	if err != nil {
		return "", fmt.Errorf("bus URL: %w", err)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", fmt.Errorf("bus URL %q: no host", natsURL)
	}
	if port == "" {
		port = "4222"
	}
	return "bus-" + node + "@" + strings.ReplaceAll(host, ":", "-") + "_" + port + ".nk", nil
}

// checkPrivateDir makes sure dir is a directory (not a link) owned by this
// user with mode 0700, creating it if missing.
func checkPrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("key link dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("key link dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("key link dir: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm() != 0o700 {
		return fmt.Errorf("key link dir %s: not a directory of this user with mode 0700", dir)
	}
	return nil
}

// Advertise leaves a link, in the user's private runtime directory, to the
// operator key file of node's bus at natsURL, for FindOperatorKey. It
// returns a function that removes the link (if it still points to keyFile).
func Advertise(natsURL, node, keyFile string) (func(), error) {
	name, err := linkName(natsURL, node)
	if err != nil {
		return nil, err
	}
	dir := userDir()
	if err := checkPrivateDir(dir); err != nil {
		return nil, err
	}
	link := filepath.Join(dir, name)
	abs, err := filepath.Abs(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key link: %w", err)
	}
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(abs, tmp); err != nil {
		return nil, fmt.Errorf("key link: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("key link: %w", err)
	}
	return func() {
		if dst, err := os.Readlink(link); err == nil && dst == abs {
			_ = os.Remove(link)
		}
	}, nil
}

// FindOperatorKey returns the operator key file for node's bus at natsURL:
// the one `rtpctl up` of this user advertised for that node and address,
// else the installed node's (SystemKeyDir) if it is there; "" if neither
// is. Only files this user can read count.
func FindOperatorKey(natsURL, node string) string {
	var cands []string
	if name, err := linkName(natsURL, node); err == nil {
		if dir := userDir(); checkOwnDir(dir) {
			cands = append(cands, filepath.Join(dir, name))
		}
	}
	if u, err := url.Parse(natsURL); err == nil {
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			cands = append(cands, KeyFile(SystemKeyDir, Operator))
		}
	}
	for _, c := range cands {
		if f, err := os.Open(c); err == nil {
			_ = f.Close()
			return c
		}
	}
	return ""
}

// checkOwnDir reports whether dir exists as this user's private directory
// (it is not created here).
func checkOwnDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return fi.IsDir() && ok && int(st.Uid) == os.Getuid() && fi.Mode().Perm() == 0o700
}
