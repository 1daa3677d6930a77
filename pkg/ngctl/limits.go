package ngctl

import (
	"fmt"

	"github.com/rtpkit/rtpkit/pkg/nodestate"
)

// checkCallID refuses a Call-ID beyond nodestate.MaxIDLen (it names the
// call's node-state record and Redis keys) before anything of the call is
// made.
func checkCallID(id string) error {
	if len(id) > nodestate.MaxIDLen {
		return errBadRequest(fmt.Sprintf("call-id of %d bytes is too long (at most %d)", len(id), nodestate.MaxIDLen))
	}
	return nil
}
