package authz

import (
	"errors"

	"github.com/lintel-io/lintel/internal/topology"
)

// Sentinel errors of the NATS half of the package (topology, permissions,
// rendering, the edge authentication hook and origin checks); compare with [errors.Is].
var (
	// ErrEdgeNotFound reports an (org, edge) pair that the inventory does not
	// list.
	ErrEdgeNotFound = errors.New("authz: edge not in inventory")
	// ErrReservedName reports an org or edge code that the topology keeps for
	// itself: an edge code equal to [HubDomain] (the edge's JetStream domain
	// would collide with central's) or an org code equal to [SystemAccount].
	ErrReservedName = topology.ErrReservedName // "authz: name reserved by the NATS topology"
	// ErrCredentialMissing reports an identity that the state holds no
	// credential for (a password hash or an edge NKey): run
	// [Generator.Generate] after changing the inventory.
	ErrCredentialMissing = errors.New("authz: identity has no credential in state")
	// ErrRenderOption reports a [RenderOptions] field that cannot be
	// rendered, such as an edge without hub URLs or a seed file path that
	// nats-server could not include.
	ErrRenderOption = errors.New("authz: invalid render option")
	// ErrNotAttached reports an [EdgeAuthenticator] used before
	// [EdgeAuthenticator.Attach] gave it its server.
	ErrNotAttached = errors.New("authz: authenticator not attached to a server")
	// ErrTLSFile reports a TLS certificate, key or CA file of [RenderOptions]
	// that cannot be used: unreadable, not PEM, no certificate in it, or a key
	// that does not match its certificate. The wrapping error names the field
	// and the file.
	ErrTLSFile = errors.New("authz: unusable TLS file")
	// ErrOrigin reports a message of central's event stream whose origin may
	// not have written it: an edge writing for another edge or org, or on a
	// system subject, or a message published at central on an edge's subject.
	// It arrives wrapped in an [*OriginError].
	ErrOrigin = errors.New("authz: message from an origin that may not write it")
)
