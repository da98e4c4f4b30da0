package authz

// Delivers are an edge's deliver subjects (EdgeNames keeps them to
// itself), for the tests that attack them.
type Delivers struct {
	Prefix, Event, Telemetry, Platform, Credential, Command string
}

// DeliversOf returns n's deliver subjects.
func DeliversOf(n EdgeNames) Delivers {
	return Delivers{Prefix: n.deliverPrefix, Event: n.eventDeliver, Telemetry: n.telemetryDeliver,
		Platform: n.platformDeliver, Credential: n.credentialDeliver, Command: n.commandDeliver}
}

// PlatformPrefixOf returns the subject prefix n's platform stream captures.
func PlatformPrefixOf(n EdgeNames) string { return n.platformPrefix }

// Names the tests reach that the package keeps to itself.
var (
	APIPrefix        = apiPrefix
	CheckTLSFiles    = checkTLSFiles
	ValidateTopology = validateTopology
)

// The state file's format version and the TLS handshake bound.
const (
	StateVersion        = stateVersion
	TLSHandshakeTimeout = tlsHandshakeTimeout
)
