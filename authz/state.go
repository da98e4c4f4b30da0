package authz

import "time"

// State is the credential state kept apart from the inventory: bcrypt hashes
// of device and service passwords, and edge NKey public keys, with their
// creation and rotation times. It never holds a password or seed in clear.
//
// Generation hashes only new or rotated identities and re-renders everything
// else from State, so the same Inventory and State always render the same
// output.
type State struct {
	// Version is the state file format version.
	Version int `json:"version"`
	// Passwords holds device and service password hashes, keyed by user name
	// (see [DeviceUser] and [ServiceUser]).
	Passwords map[string]PasswordCredential `json:"passwords"`
	// EdgeKeys holds each edge's leaf-node NKey, keyed by "{org}.{edge}".
	EdgeKeys map[string]EdgeKey `json:"edge_keys"`
	// AuditKeys holds each edge's audit key ([AuditKey]), keyed by
	// "{org}.{edge}" ([EdgeKeyID]), with the keys it replaced.
	AuditKeys map[string]AuditKey `json:"audit_keys,omitempty"`
	// CommandKeys holds the command signing keys ([CommandKey]): central's
	// of each org, keyed by the org code, and each edge's, keyed by
	// [EdgeKeyID].
	CommandKeys map[string]CommandKey `json:"command_keys,omitempty"`
}

// PasswordCredential is one identity's password, as bcrypt hashes only.
type PasswordCredential struct {
	Hash    string    `json:"hash"`             // bcrypt hash of the current password
	Created time.Time `json:"created"`          // when the first password was created (UTC)
	Rotated time.Time `json:"rotated,omitzero"` // zero until the first rotation
	// PreviousHash is the hash of the password before the last rotation; it
	// keeps working until PreviousUntil, the end of the overlap window.
	PreviousHash  string    `json:"previous_hash,omitempty"`
	PreviousUntil time.Time `json:"previous_until,omitzero"` // see PreviousHash
}

// EdgeKey is an edge's leaf-node NKey: only the public key is kept here; the
// seed is handed to the edge once, in a file of mode 0600.
type EdgeKey struct {
	PublicKey string    `json:"public_key"`       // user NKey, "U..."
	Created   time.Time `json:"created"`          // when the first key was created (UTC)
	Rotated   time.Time `json:"rotated,omitzero"` // zero until the first rotation
	// PreviousPublicKey is the key before the last rotation; it keeps
	// working until PreviousUntil, the end of the overlap window, for
	// servers that admit it (see [EdgeKey.PublicKeys]).
	PreviousPublicKey string    `json:"previous_public_key,omitempty"`
	PreviousUntil     time.Time `json:"previous_until,omitzero"` // see PreviousPublicKey
}
