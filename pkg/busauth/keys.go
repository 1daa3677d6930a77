package busauth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// Key is one role's nkey: the public key the server knows and the file
// holding the seed, which only the user's process reads.
type Key struct {
	Role     string
	Public   string
	SeedFile string
}

// KeyFile is where role's seed lives in dir.
func KeyFile(dir, role string) string { return filepath.Join(dir, role+".nk") }

// EnsureKeys returns the key of every role, generating into dir (mode
// 0700, made if missing) the seeds that are not there yet (mode 0600):
// keys are made once and reused. A seed file that cannot be read or does
// not hold a user seed is an error, never replaced.
func EnsureKeys(dir string) ([]Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bus key dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bus key dir: %w", err)
	}
	var keys []Key
	for _, role := range Roles() {
		file := KeyFile(dir, role)
		pub, err := ReadPublic(file)
		if errors.Is(err, fs.ErrNotExist) {
			pub, err = writeSeed(file)
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, Key{Role: role, Public: pub, SeedFile: file})
	}
	return keys, nil
}

// ReadPublic returns the public key of the user seed in file, checking
// that the file is private to its owner.
func ReadPublic(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("bus key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("bus key %s: mode %v, want 0600 (others must not read it)", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("bus key: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return "", fmt.Errorf("bus key %s: not an nkey seed: %w", file, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("bus key %s: %w", file, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("bus key %s: not a user key", file)
	}
	return pub, nil
}

// writeSeed makes a user nkey, writes its seed to file (created, mode
// 0600) and returns the public key.
func writeSeed(file string) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("bus key: generate: %w", err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("bus key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("bus key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("bus key: %w", err)
	}
	_, werr := f.Write(append(seed, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(file)
		return "", fmt.Errorf("bus key %s: %w", file, werr)
	}
	return pub, nil
}
