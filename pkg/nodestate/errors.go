package nodestate

import "errors"

var (
	// ErrNotFound means no record exists under the key.
	ErrNotFound = errors.New("record not found")
	// ErrExists means Create found a record already there.
	ErrExists = errors.New("record already exists")
	// ErrConflict means a compare-and-set lost: the record changed since the
	// revision the caller read.
	ErrConflict = errors.New("record changed concurrently (revision mismatch)")
)
