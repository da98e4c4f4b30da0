package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// stateVersion is the state file format version that this package reads and
// writes.
const stateVersion = 1

// NewState returns an empty state of the current version.
func NewState() *State {
	return &State{
		Version:   stateVersion,
		Passwords: make(map[string]PasswordCredential),
		EdgeKeys:  make(map[string]EdgeKey),
	}
}

// Clone returns a deep copy of s; a nil s clones to an empty state.
func (s *State) Clone() *State {
	if s == nil {
		return NewState()
	}
	c := &State{Version: s.Version, Passwords: maps.Clone(s.Passwords), EdgeKeys: maps.Clone(s.EdgeKeys)}
	if s.AuditKeys != nil {
		c.AuditKeys = cloneAuditKeys(s.AuditKeys)
	}
	c.CommandKeys = cloneCommandKeys(s.CommandKeys)
	if c.Passwords == nil {
		c.Passwords = make(map[string]PasswordCredential)
	}
	if c.EdgeKeys == nil {
		c.EdgeKeys = make(map[string]EdgeKey)
	}
	return c
}

// Validate reports whether s can be saved and used: it must be of version
// stateVersion, every hash must be a bcrypt hash (so a password in clear
// can never be stored by mistake), every public key a user NKey, and a
// previous credential must come with the end of its overlap window. Errors
// wrap [ErrInvalidState] and name the entry, never its value.
func (s *State) Validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil state", ErrInvalidState)
	}
	if s.Version != stateVersion {
		return fmt.Errorf("%w: version %d, this package reads version %d", ErrInvalidState, s.Version, stateVersion)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidState}, args...)...))
	}
	for _, user := range sortedKeys(s.Passwords) {
		c := s.Passwords[user]
		switch {
		case user == "":
			bad("passwords: empty user name")
		case !isBcrypt(c.Hash):
			bad("passwords[%q]: hash is not a bcrypt hash", user)
		case c.PreviousHash != "" && !isBcrypt(c.PreviousHash):
			bad("passwords[%q]: previous_hash is not a bcrypt hash", user)
		case (c.PreviousHash == "") != c.PreviousUntil.IsZero():
			bad("passwords[%q]: previous_hash and previous_until must be set together", user)
		}
	}
	for _, id := range sortedKeys(s.EdgeKeys) {
		k := s.EdgeKeys[id]
		switch {
		case id == "":
			bad("edge_keys: empty edge key ID")
		case !nkeys.IsValidPublicUserKey(k.PublicKey):
			bad("edge_keys[%q]: public_key is not a user NKey", id)
		case k.PreviousPublicKey != "" && !nkeys.IsValidPublicUserKey(k.PreviousPublicKey):
			bad("edge_keys[%q]: previous_public_key is not a user NKey", id)
		case (k.PreviousPublicKey == "") != k.PreviousUntil.IsZero():
			bad("edge_keys[%q]: previous_public_key and previous_until must be set together", id)
		}
	}
	validateAuditKeys(s, bad)
	validateCommandKeys(s, bad)
	return errors.Join(errs...)
}

// isBcrypt reports whether h parses as a bcrypt hash.
func isBcrypt(h string) bool {
	_, err := bcrypt.Cost([]byte(h))
	return err == nil
}

// ParseState decodes a state from its JSON form and validates it with
// [State.Validate]. Decoding is as strict as [ParseInventory]'s; every error
// wraps [ErrInvalidState].
func ParseState(data []byte) (*State, error) {
	var st State
	if err := decodeStrict(data, &st, "top level"); err != nil {
		var je *jsonError
		if errors.As(err, &je) {
			return nil, &problem{msg: ErrInvalidState.Error() + ": " + je.Error(), errs: []error{ErrInvalidState, je.err}}
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if st.Passwords == nil {
		st.Passwords = make(map[string]PasswordCredential)
	}
	if st.EdgeKeys == nil {
		st.EdgeKeys = make(map[string]EdgeKey)
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return &st, nil
}

// LoadState reads the state file at path. A missing file is an empty state
// ([NewState]): the first generation starts from nothing. Other read errors
// are returned as they come from the os package; content errors as from
// [ParseState].
func LoadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, err
	}
	return ParseState(data)
}

// MarshalState returns the JSON form of st that [SaveState] writes: indented,
// map keys sorted, so the same state always gives the same bytes. It returns
// the error of [State.Validate] for a state that must not be written.
func MarshalState(st *State) ([]byte, error) {
	if err := st.Validate(); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("authz: marshal state: %w", err)
	}
	return append(data, '\n'), nil
}

// SaveState writes st to path with mode 0600, atomically: it writes a
// temporary file in the same directory, syncs it and renames it over path,
// so that path holds either the old state or the whole new one. Nothing is
// written when st fails [State.Validate] or any step fails, and no temporary
// file is left behind.
func SaveState(path string, st *State) error {
	data, err := MarshalState(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

// Prune returns a copy of s without the previous credentials whose overlap
// window has ended by now; they could no longer be used anyway. s is not
// modified.
func (s *State) Prune(now time.Time) *State {
	c := s.Clone()
	for user, cred := range c.Passwords {
		if cred.PreviousHash != "" && !now.Before(cred.PreviousUntil) {
			cred.PreviousHash, cred.PreviousUntil = "", time.Time{}
			c.Passwords[user] = cred
		}
	}
	for id, k := range c.EdgeKeys {
		if k.PreviousPublicKey != "" && !now.Before(k.PreviousUntil) {
			k.PreviousPublicKey, k.PreviousUntil = "", time.Time{}
			c.EdgeKeys[id] = k
		}
	}
	return c
}

// Verify reports whether password is valid for c at time now: it matches the
// current hash, or the previous one while now is before PreviousUntil. It
// costs one bcrypt comparison, two when the current hash does not match
// during an overlap window. A custom NATS auth hook calls it per connection.
func (c PasswordCredential) Verify(password string, now time.Time) bool {
	if c.Hash != "" && bcrypt.CompareHashAndPassword([]byte(c.Hash), []byte(password)) == nil {
		return true
	}
	return c.InOverlap(now) &&
		bcrypt.CompareHashAndPassword([]byte(c.PreviousHash), []byte(password)) == nil
}

// InOverlap reports whether c's previous password is still valid at now.
func (c PasswordCredential) InOverlap(now time.Time) bool {
	return c.PreviousHash != "" && now.Before(c.PreviousUntil)
}

// InOverlap reports whether k's previous public key is still valid at now.
func (k EdgeKey) InOverlap(now time.Time) bool {
	return k.PreviousPublicKey != "" && now.Before(k.PreviousUntil)
}

// PublicKeys returns the public keys admitted for the edge at now: the
// current one, then the previous one while the overlap window lasts. A
// server configuration can list both as leaf-node users, so edge keys, unlike
// bcrypt passwords, overlap even without a custom auth hook; the window ends
// at the next re-render after PreviousUntil.
func (k EdgeKey) PublicKeys(now time.Time) []string {
	if k.InOverlap(now) {
		return []string{k.PublicKey, k.PreviousPublicKey}
	}
	return []string{k.PublicKey}
}

// Accepts reports whether publicKey is admitted for the edge at now.
func (k EdgeKey) Accepts(publicKey string, now time.Time) bool {
	return publicKey != "" && (publicKey == k.PublicKey || (k.InOverlap(now) && publicKey == k.PreviousPublicKey))
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
