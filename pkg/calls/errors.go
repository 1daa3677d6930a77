package calls

import "errors"

// Errors whose text is what rtpengine answers in error-reason: clients
// match these strings.
var (
	ErrNoSDP          = errors.New("No SDP body in message")
	ErrNoCallID       = errors.New("No call-id in message")
	ErrNoFromTag      = errors.New("No from-tag in message")
	ErrNoToTag        = errors.New("No to-tag in message")
	ErrParseSDP       = errors.New("Failed to parse SDP")
	ErrIncompleteSDP  = errors.New("Incomplete SDP specification")
	ErrUnknownCall    = errors.New("Unknown call-id")
	ErrOutOfPorts     = errors.New("Ran out of ports")
	ErrRewriteSDP     = errors.New("Error rewriting SDP")
	ErrDeleteNotFound = errors.New("Call-ID not found or tags didn't match")
	ErrBadLimit       = errors.New("invalid limit, must be >= 0")
	ErrSessionLimit   = errors.New("Parallel session limit reached")
	ErrDialogue       = errors.New("Invalid dialogue association")
)

// LoadLimitError is the session limit hit by a client that said it
// supports "load limit": the reply is result "load limit" with a message.
type LoadLimitError struct{ Message string }

// Error returns the message.
func (e *LoadLimitError) Error() string { return e.Message }
