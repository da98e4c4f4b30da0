package rules

import "errors"

// ErrNoSigner reports a command action of an engine without
// Config.SignCommand: devices refuse unsigned commands, so the engine sends
// none.
var ErrNoSigner = errors.New("rules: no SignCommand: devices refuse unsigned commands")
