package edgekit

import "errors"

// Sentinel errors of the central side ([Hub]); compare with errors.Is.
var (
	// ErrInvalidHubConfig reports a [HubConfig] that cannot be used, such as
	// one without an org.
	ErrInvalidHubConfig = errors.New("edgekit: invalid hub config")
	// ErrWrongOrg reports a thing or edge of another org than the hub's.
	ErrWrongOrg = errors.New("edgekit: thing of another org")
	// ErrNoDeadline reports a command without a deadline: central never
	// sends a command that could run at any time in the future.
	ErrNoDeadline = errors.New("edgekit: command without deadline")
	// ErrCommandExpired reports a command whose deadline has already passed.
	ErrCommandExpired = errors.New("edgekit: command deadline passed")
	// ErrNoIdempotencyKey reports a command without an idempotency key,
	// which the device needs to carry out a repeated command only once.
	ErrNoIdempotencyKey = errors.New("edgekit: command without idempotency key")
	// ErrEdgeNotRegistered reports an edge the hub has not registered.
	ErrEdgeNotRegistered = errors.New("edgekit: edge not registered")
)

// Sentinel errors of commands and of the hub's inventory; compare with
// errors.Is.
var (
	// ErrUnknownEdge reports an edge that the hub's inventory does not list
	// for its org.
	ErrUnknownEdge = errors.New("edgekit: edge not in the inventory")
	// ErrUnknownThing reports a thing that the hub's inventory does not
	// list.
	ErrUnknownThing = errors.New("edgekit: thing not in the inventory")
	// ErrUnknownCommand reports a command that central's event stream holds
	// no trace of.
	ErrUnknownCommand = errors.New("edgekit: command not found")
	// ErrInboxPrefix reports a connection whose reply inbox is not its
	// user's own (authz.UserInboxPrefix): the server refuses the
	// subscription, and every JetStream call would time out. Connect with
	// authz.ServiceOptions.
	ErrInboxPrefix = errors.New("edgekit: connection's reply inbox is not its user's")
)
