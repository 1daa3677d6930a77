package nodestate

import "errors"

var (
	// ErrNotFound means no record exists under the key.
	ErrNotFound = errors.New("record not found")
	// ErrConflict means a delete at a revision lost: the record changed
	// since the revision the caller read.
	ErrConflict = errors.New("record changed concurrently (revision mismatch)")
)
