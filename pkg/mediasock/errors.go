package mediasock

import "errors"

// Errors returned (wrapped) by this package; test for them with [errors.Is].
// Kernel errors such as EADDRINUSE or EADDRNOTAVAIL are wrapped as
// [os.SyscallError] values and match [golang.org/x/sys/unix.Errno] constants
// with errors.Is too.
var (
	// ErrUnsupportedNetwork is returned for a network other than "udp",
	// "udp4" or "udp6".
	ErrUnsupportedNetwork = errors.New("unsupported network")
	// ErrInvalidAddr is returned for an invalid (zero) address, or one whose
	// family does not match the network ("udp4" with an IPv6 address).
	ErrInvalidAddr = errors.New("invalid local address")
	// ErrUnspecifiedAddr is returned for a wildcard address (0.0.0.0 or ::):
	// media sockets are always bound to one specific local address.
	ErrUnspecifiedAddr = errors.New("wildcard address refused: media sockets bind to a specific local address")
	// ErrZeroPort is returned for port 0: portd always chooses the port.
	ErrZeroPort = errors.New("port 0 refused: the caller must choose the port")
	// ErrInvalidOption is returned for an out-of-range [Options] value.
	ErrInvalidOption = errors.New("invalid socket option value")
	// ErrClosed is returned by methods of a [Socket] that has been closed.
	ErrClosed = errors.New("socket closed")
	// ErrNotMediaSocket is returned by [FromFD] for a descriptor that is not
	// a bound socket of the expected kind and address.
	ErrNotMediaSocket = errors.New("descriptor is not the expected media socket")
)
