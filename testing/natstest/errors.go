package natstest

import "errors"

// Sentinel errors returned by this package; compare with [errors.Is].
var (
	// ErrClosed is returned by [Server.Restart] after [Server.Close].
	ErrClosed = errors.New("natstest: closed")

	// ErrNotReady reports a server that did not start accepting connections
	// on every configured listener in time, for example because a fixed
	// port is taken. The wrapping error names the listener when known.
	ErrNotReady = errors.New("natstest: server not ready for connections")

	// ErrNoLeafNodeListener reports a hub whose options (after the
	// [HubLeafOptions.Hub] hook ran) have no leafnode listener, so no leaf
	// can connect to it.
	ErrNoLeafNodeListener = errors.New("natstest: hub has no leafnode listener")
)
