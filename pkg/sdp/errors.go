package sdp

import (
	"errors"
	"fmt"
)

// ErrParse is wrapped by every error Parse returns: the body is not an SDP
// rtpengine would accept. The ng reply for it is "Failed to parse SDP".
var ErrParse = errors.New("failed to parse SDP")

// ErrIncomplete is wrapped by errors about media rtpengine cannot extract
// streams from, such as a non-numeric payload type on an RTP m= line. The
// ng reply for it is "Incomplete SDP specification".
var ErrIncomplete = errors.New("incomplete SDP specification")

// ErrPlan is wrapped by Rewrite errors: the Plan does not fit the Session
// (wrong number of media, an address that is needed but not set).
var ErrPlan = errors.New("plan does not fit the SDP")

// parseError reports a rejected line, numbered from 1.
func parseError(lineNo int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrParse, lineNo, fmt.Sprintf(format, args...))
}
