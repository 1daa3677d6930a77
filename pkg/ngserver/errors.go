package ngserver

import "errors"

// Errors returned (wrapped) by this package; test for them with [errors.Is].
// Errors of the kernel (EADDRINUSE, EADDRNOTAVAIL...) are wrapped too, with
// the transport and address they concern.
var (
	// ErrNoHandler is returned by [New] when [Config.Handler] is nil.
	ErrNoHandler = errors.New("no handler")
	// ErrNoListeners is returned by [New] when the configuration names no
	// address at all.
	ErrNoListeners = errors.New("no listen address")
	// ErrBadAddress is returned by [New] for an address that is not
	// "IP:PORT" (IPv6 as "[IP]:PORT").
	ErrBadAddress = errors.New("bad listen address: want IP:PORT (IPv6 as [IP]:PORT)")
	// ErrBadConfig is returned by [New] for a negative limit.
	ErrBadConfig = errors.New("bad configuration")
	// ErrServing is returned by [Server.Serve] when it is already running.
	ErrServing = errors.New("server is already serving")
	// ErrClosed is returned by [Server.Serve] after [Server.Close].
	ErrClosed = errors.New("server closed")
)
