package authz

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/nats-io/nkeys"
)

// redacted is what a [Secret] prints, logs and marshals as.
const redacted = "[REDACTED]"

// Secret is a password or NKey seed in clear. It redacts itself everywhere it
// could leak by accident: fmt (every verb, %#v included), [log/slog],
// encoding/json and any encoder using encoding.TextMarshaler all see
// "[REDACTED]". Only [Secret.Reveal] returns the value.
//
// The value sits behind a pointer, so even reflection-based printing of a
// struct holding a Secret in an unexported field shows an address, not the
// text. The zero Secret holds nothing.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret { return Secret{v: &s} }

// Reveal returns the secret in clear. Call it only to hand the value to its
// owner: a device's provisioning channel, an edge's seed file.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether s holds nothing.
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns a redacted Go form, for %#v.
func (s Secret) GoString() string { return "authz.Secret(" + redacted + ")" }

// Format writes "[REDACTED]" for every verb, so no fmt verb can print the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue returns "[REDACTED]", so the value never reaches a log.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[REDACTED]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Secrets holds the credentials a generation or rotation created, in clear,
// to be handed out once and then forgotten: [State] keeps only their hashes
// and public keys. Every value is a redacting [Secret], so logging or
// marshalling a Secrets shows names, never values.
type Secrets struct {
	// Passwords holds new device and service passwords by user name
	// ([DeviceUser], [ServiceUser], [EdgeServiceUser]).
	Passwords map[string]Secret
	// EdgeSeeds holds new edge NKey user seeds ("SU...") by [EdgeKeyID];
	// write each to its edge with [WriteSeedFile].
	EdgeSeeds map[string]Secret
	// AuditSeeds holds new edge audit key seeds ("SU...", see [AuditKey])
	// by [EdgeKeyID]; write each to its edge with [WriteSeedFile], for its
	// access service.
	AuditSeeds map[string]Secret
	// CommandSeeds holds new command key seeds ("SU...", see [CommandKey]):
	// central's of an org by org code, to give central's hub; an edge's by
	// [EdgeKeyID], to write to the edge with [WriteSeedFile].
	CommandSeeds map[string]Secret
}

// Len returns the number of secrets held.
func (s *Secrets) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Passwords) + len(s.EdgeSeeds) + len(s.AuditSeeds) + len(s.CommandSeeds)
}

// Users returns the user names that have a new password, sorted.
func (s *Secrets) Users() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.Passwords))
}

// Edges returns the edge key IDs that have a new seed, sorted.
func (s *Secrets) Edges() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.EdgeSeeds))
}

// LogValue logs which identities have new secrets, never the secrets.
func (s *Secrets) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("users", s.Users()), slog.Any("edges", s.Edges())}
	if len(s.AuditSeeds) > 0 {
		attrs = append(attrs, slog.Any("audit_keys", slices.Sorted(maps.Keys(s.AuditSeeds))))
	}
	return slog.GroupValue(attrs...)
}

// WriteSeedFile writes an edge's NKey user seed to path, followed by a
// newline, with mode 0600. The write is atomic: the seed goes to a temporary
// file in the same directory, which is synced and then renamed over path, so
// path holds either its old content or the whole new seed, and nothing is
// left behind on error. It returns [ErrInvalidSeed] for anything but a user
// seed, without writing.
func WriteSeedFile(path string, seed Secret) error {
	raw := []byte(seed.Reveal())
	kp, err := nkeys.FromSeed(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSeed, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return fmt.Errorf("%w: not a user seed", ErrInvalidSeed)
	}
	return writeFileAtomic(path, append(raw, '\n'), 0o600)
}
