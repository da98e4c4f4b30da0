package api

import "errors"

// Sentinel errors of the package; compare with errors.Is.
var (
	// ErrInvalidConfig reports a [Config] or [OIDCConfig] that cannot be
	// used.
	ErrInvalidConfig = errors.New("api: invalid configuration")
	// ErrBootstrapToken reports a bootstrap token file that cannot be used.
	ErrBootstrapToken = errors.New("api: bootstrap token file")
)
