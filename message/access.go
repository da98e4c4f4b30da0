package message

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"
)

// CredentialKind says what kind of credential was presented.
type CredentialKind string

// Kinds of credential.
const (
	CredentialCard   CredentialKind = "card"   // a card or fob number
	CredentialPIN    CredentialKind = "pin"    // a PIN typed on a keypad
	CredentialMobile CredentialKind = "mobile" // a phone credential (NFC or BLE)
)

// Credential is a credential exactly as a reader read it: a card number, a
// PIN. It is a secret. It travels only from reader to edge, inside an
// [AccessRequest], and the edge hashes it before it stores or forwards
// anything, so clear credentials never reach central or a log. To keep it out
// of logs by accident, its String, GoString and LogValue methods redact it;
// use string(c) for the value.
type Credential string

const redacted = "[REDACTED]"

// String returns "[REDACTED]", so fmt never prints the credential.
func (Credential) String() string { return redacted }

// GoString returns "[REDACTED]", so %#v never prints the credential.
func (Credential) GoString() string { return redacted }

// LogValue returns "[REDACTED]"; it implements [slog.LogValuer].
func (Credential) LogValue() slog.Value { return slog.StringValue(redacted) }

// Hash returns the keyed hash that identifies c everywhere past the reader:
// the lower-case hex HMAC-SHA256 of the credential under key (64
// characters). Central stores credentials, and the edge looks them up, by
// this hash only; without key it cannot be reversed by trying every card
// number. Keep key secret and fixed for an org: changing it changes every
// hash.
func (c Credential) Hash(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(c))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0]))
}

// AccessRequest asks the edge whether to open a door: a reader read a
// credential. It travels as [NameAccessRequested] with Type topic.Request,
// from the reader to its edge, which answers with an [AccessDecision].
type AccessRequest struct {
	// Reader is the code of the reader that read the credential, if the
	// source thing has several; otherwise empty.
	Reader string `msgpack:"reader,omitempty" json:"reader,omitempty"`
	// Door is the code of the door the reader guards.
	Door string `msgpack:"door" json:"door"`
	// Kind says what kind of credential was presented.
	Kind CredentialKind `msgpack:"kind" json:"kind"`
	// Credential is the credential as presented; see [Credential].
	Credential Credential `msgpack:"credential" json:"credential"`
}

// DenyReason says why access was denied. The list is append-only: values
// travel over NATS and are stored.
type DenyReason string

// Reasons for denying access.
const (
	DenyUnknown         DenyReason = "unknown"          // the credential is not in the credential set
	DenyRevoked         DenyReason = "revoked"          // the credential was revoked
	DenySuspended       DenyReason = "suspended"        // the holder is suspended
	DenyExpired         DenyReason = "expired"          // the credential's validity has ended
	DenyNotYetValid     DenyReason = "not_yet_valid"    // the credential's validity has not begun
	DenyOutsideSchedule DenyReason = "outside_schedule" // no schedule allows the holder in now
	DenyDoorNotAllowed  DenyReason = "door_not_allowed" // the holder may not use this door
	DenyStale           DenyReason = "stale"            // the edge's credential set is too old to trust
	DenyUnknownDoor     DenyReason = "unknown_door"     // the door is not configured at the edge, or the reader does not guard it
	DenyUnavailable     DenyReason = "unavailable"      // the edge could not consult its credential set
)

// Known reports whether r is one of the reasons this package defines.
func (r DenyReason) Known() bool {
	switch r {
	case DenyUnknown, DenyRevoked, DenySuspended, DenyExpired, DenyNotYetValid,
		DenyOutsideSchedule, DenyDoorNotAllowed, DenyStale, DenyUnknownDoor, DenyUnavailable:
		return true
	}
	return false
}

// AccessDecision is the edge's answer to an [AccessRequest]: granted, or
// denied with a reason. It travels as [NameAccessGranted] or
// [NameAccessDenied] (see [AccessDecision.MessageName]), as the reply to the
// request and as an event, with the request's ID as CorrelationID.
type AccessDecision struct {
	// Granted reports whether the door may open.
	Granted bool `msgpack:"granted" json:"granted"`
	// Reason says why access was denied; empty when granted.
	Reason DenyReason `msgpack:"reason,omitempty" json:"reason,omitempty"`
	// Door is the code of the door.
	Door string `msgpack:"door" json:"door"`
	// Holder refers to the credential's holder, when known; never the
	// credential itself.
	Holder string `msgpack:"holder,omitempty" json:"holder,omitempty"`
	// CredentialSetVersion is the version of the credential set the
	// decision was made with.
	CredentialSetVersion uint64 `msgpack:"credential_set_version" json:"credential_set_version"`
	// Credential is the keyed hash of the credential presented
	// ([Credential.Hash]), never the credential itself.
	Credential string `msgpack:"credential,omitempty" json:"credential,omitempty"`
	// Offline reports a decision made without a sync with central confirmed
	// since the edge's link last came up: the link was down, or the edge had
	// not yet caught up with central after it came back.
	Offline bool `msgpack:"offline,omitempty" json:"offline,omitempty"`
	// Fallback reports a decision made by the door's fallback mode, because
	// the edge could not decide from its credential set (too stale, or
	// unavailable).
	Fallback bool `msgpack:"fallback,omitempty" json:"fallback,omitempty"`
	// SyncedAt is the edge's last confirmed sync with central when it
	// decided: the time at which its credential set was known to hold every
	// change central had made. Zero if never.
	SyncedAt time.Time `msgpack:"synced_at,omitempty" json:"synced_at,omitzero"`
	// AuditSeq numbers the edge's decision events, 1, 2, 3..., in the order
	// of its audit chain.
	AuditSeq uint64 `msgpack:"audit_seq,omitempty" json:"audit_seq,omitempty"`
	// AuditPrev is the lower-case hex SHA-256 of the exact encoded bytes of
	// the edge's previous decision event (AuditSeq-1), or empty for the
	// first: the link of the tamper-evident audit chain.
	AuditPrev string `msgpack:"audit_prev,omitempty" json:"audit_prev,omitempty"`
}

// MessageName returns [NameAccessGranted] or [NameAccessDenied].
func (d AccessDecision) MessageName() string {
	if d.Granted {
		return NameAccessGranted
	}
	return NameAccessDenied
}
