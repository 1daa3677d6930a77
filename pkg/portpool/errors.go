package portpool

import "errors"

// ErrExhausted is returned, wrapped with the range and the counts, when no
// free port (or port pair) is left; nothing has been allocated then.
var ErrExhausted = errors.New("no free port")

// Unexported sentinels, wrapped with context; match them with errors.Is.
var (
	errBadRange     = errors.New("invalid port range")
	errBadOption    = errors.New("invalid option")
	errBadCount     = errors.New("invalid port count")
	errOutOfRange   = errors.New("port out of range")
	errInUse        = errors.New("port in use")
	errNotAllocated = errors.New("port not allocated")
)
