package calls

import (
	"errors"
	"strings"
)

// Reasoned is an error whose text is what rtpengine answers in
// error-reason (clients match these strings, capitals included).
type Reasoned struct{ reason string }

// Error returns the ng error-reason.
func (e *Reasoned) Error() string { return e.reason }

// The errors of the call commands.
var (
	ErrNoSDP          = &Reasoned{"No SDP body in message"}
	ErrNoCallID       = &Reasoned{"No call-id in message"}
	ErrNoFromTag      = &Reasoned{"No from-tag in message"}
	ErrNoToTag        = &Reasoned{"No to-tag in message"}
	ErrParseSDP       = &Reasoned{"Failed to parse SDP"}
	ErrIncompleteSDP  = &Reasoned{"Incomplete SDP specification"}
	ErrUnknownCall    = &Reasoned{"Unknown call-id"}
	ErrOutOfPorts     = &Reasoned{"Ran out of ports"}
	ErrRewriteSDP     = &Reasoned{"Error rewriting SDP"}
	ErrDeleteNotFound = &Reasoned{"Call-ID not found or tags didn't match"}
	ErrBadLimit       = &Reasoned{"invalid limit, must be >= 0"}
	ErrSessionLimit   = &Reasoned{"Parallel session limit reached"}
	ErrDialogue       = &Reasoned{"Invalid dialogue association"}
	// ErrTooManyMedia and ErrTooManyLegs refuse an SDP with more media
	// sections than Limits.MaxMedia, or a call with more legs than
	// Limits.MaxLegs (rtpkit's own limits: rtpengine has none).
	ErrTooManyMedia = &Reasoned{"Too many media sections in SDP"}
	ErrTooManyLegs  = &Reasoned{"Too many call legs"}
)

// LoadLimitError is the session limit hit by a client that said it
// supports "load limit": the reply is result "load limit" with a message.
type LoadLimitError struct{ Message string }

// Error returns the message.
func (e *LoadLimitError) Error() string { return e.Message }

// Reason is the error-reason text of err for an ng reply: rtpengine's
// string for the errors clients match, the error's own text otherwise.
func Reason(err error) string {
	var r *Reasoned
	if errors.As(err, &r) {
		return r.reason
	}
	return strings.TrimSpace(err.Error())
}
