package fdpass

import "errors"

// Errors returned (wrapped) by this package; test for them with [errors.Is].
var (
	// ErrPeerRejected is returned by [Listener.Accept] when the connecting
	// process's credentials do not satisfy the listener's [Policy]; the
	// connection has been closed. The listener remains usable.
	ErrPeerRejected = errors.New("peer rejected")
	// ErrTruncated is returned when a received message or its control data
	// (descriptors) did not fit the receive buffers (MSG_TRUNC,
	// MSG_CTRUNC). Descriptors that did arrive have been closed.
	ErrTruncated = errors.New("message truncated")
	// ErrBadFrame is returned by [Conn.Recv] for a message that is not a
	// valid item frame, or whose descriptor count does not match the
	// descriptors that arrived. The descriptors have been closed.
	ErrBadFrame = errors.New("malformed frame")
	// ErrBadControl is returned for control data that cannot be parsed.
	ErrBadControl = errors.New("malformed control message")
	// ErrTooLarge is returned by send calls for a message above
	// [MaxMsgSize], more than [MaxFDs] descriptors in one message, or
	// metadata above [MaxItemMeta].
	ErrTooLarge = errors.New("message too large")
	// ErrEmpty is returned when there is nothing to send: an empty message
	// or item list.
	ErrEmpty = errors.New("empty message")
	// ErrPathInUse is returned by [Listen] when something other than a
	// stale socket exists at the path: a live listener or a non-socket file.
	ErrPathInUse = errors.New("socket path in use")
)
