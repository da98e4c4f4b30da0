package edgekit

import "errors"

// Sentinel errors of the edge node; compare with errors.Is. Errors from
// package authz (an edge the inventory does not list, a missing credential,
// an unreadable seed) and from nats-server arrive wrapped in them or as they
// are.
var (
	// ErrInvalidConfig reports a [NodeConfig] that cannot be used: no
	// inventory or state, an invalid org or edge, a fill alarm threshold
	// outside (0, 1].
	ErrInvalidConfig = errors.New("edgekit: invalid node config")
	// ErrNotReady reports an embedded server that did not accept
	// connections, or a JetStream set-up (streams, consumers) that did not
	// complete, before the start deadline.
	ErrNotReady = errors.New("edgekit: node not ready")
	// ErrNodeStopped reports a call on a node that has been stopped, or a
	// start cut short by Stop.
	ErrNodeStopped = errors.New("edgekit: node stopped")
	// ErrAlreadyStarted reports a second Run or start of the same [Node].
	ErrAlreadyStarted = errors.New("edgekit: node already started")
)
