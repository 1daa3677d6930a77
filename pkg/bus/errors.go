package bus

import (
	"errors"
	"fmt"
)

// Error codes carried in replies; they follow HTTP's meanings.
const (
	CodeBadRequest  = "400"
	CodeNotFound    = "404"
	CodeConflict    = "409"
	CodeInternal    = "500"
	CodeUnavailable = "503"
)

// Error is an error answered by a remote endpoint, or one a handler returns
// to choose the code its caller sees.
type Error struct {
	Code    string
	Message string
}

// Error returns the message; the code is for programs (see IsCode).
func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

var (
	// ErrNoResponders means nothing on the bus serves the subject: the daemon
	// behind it is not running.
	ErrNoResponders = errors.New("no process answers on the bus")
	// ErrBadNodeID is returned for a node id that cannot be a subject token.
	ErrBadNodeID = errors.New("bad node id")
	// ErrNotConnected means the bus could not be reached in time.
	ErrNotConnected = errors.New("bus not reachable")
	// ErrConnectionLost means the bus connection was closed for good (by
	// the server, or after it refused a reconnect) and will not come back.
	ErrConnectionLost = errors.New("bus connection lost for good")
)
