package gateway

import "errors"

// Sentinel errors of the package; compare with [errors.Is].
var (
	// ErrInvalidConfig reports a [Config] that lacks a required field.
	ErrInvalidConfig = errors.New("gateway: invalid configuration")
	// ErrClosed reports a request to a closed gateway.
	ErrClosed = errors.New("gateway: closed")
	// ErrEdgeUnavailable reports that the device's connection to the edge
	// could not be made.
	ErrEdgeUnavailable = errors.New("gateway: edge unavailable")
	// ErrEdgeRefused reports that the edge refused the device's login
	// although the gateway accepted it (its credentials changed meanwhile).
	ErrEdgeRefused = errors.New("gateway: edge refused the device's login")
)
