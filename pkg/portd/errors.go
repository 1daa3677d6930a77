package portd

import "errors"

var (
	errUnknownInterface = errors.New("unknown interface")
	errNoFamily         = errors.New("interface has no address of that family")
	errFDLimit          = errors.New("file descriptor limit reached")
	errNotOurs          = errors.New("address is not one of this node's interface addresses")
	errBadRequest       = errors.New("bad request")
	errInUse            = errors.New("address in use")
)
