package authz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nkeys"
)

// AuditKey is an edge's audit key: an ed25519 NKey (in the user key
// format, "U…", so that [WriteSeedFile] writes its seed) with which the
// edge's access service signs every record of its audit trail, and with
// which central verifies them. It is not a NATS identity: no server
// configuration lists it. Only the public keys are kept here; the seed is
// handed to the edge once ([Secrets].AuditSeeds), like its leaf-node seed.
//
// Unlike passwords and leaf-node keys, the keys an audit key replaced are
// never pruned: Retired keeps them, so that records signed before a
// rotation still verify for as long as they are kept.
type AuditKey struct {
	PublicKey string    `json:"public_key"`       // the current key, "U…"
	Created   time.Time `json:"created"`          // when the edge's first audit key was generated (UTC)
	Rotated   time.Time `json:"rotated,omitzero"` // zero until the first rotation
	// Retired are the edge's earlier audit keys, newest first.
	Retired []RetiredAuditKey `json:"retired,omitempty"`
}

// RetiredAuditKey is an audit key that a rotation replaced.
type RetiredAuditKey struct {
	PublicKey string    `json:"public_key"` // the replaced key, "U…"
	Until     time.Time `json:"until"`      // when it was replaced
}

// PublicKeys returns every public key of k: the current one first, then the
// retired ones, newest first. A record signed by any of them is the edge's.
func (k AuditKey) PublicKeys() []string {
	out := make([]string, 0, 1+len(k.Retired))
	out = append(out, k.PublicKey)
	for _, r := range k.Retired {
		out = append(out, r.PublicKey)
	}
	return out
}

// AuditPublicKeys returns the public audit keys of edge at org
// ([AuditKey.PublicKeys]), or nil if s holds none. It makes a *State what
// central's auditor needs to verify the edges' signatures.
func (s *State) AuditPublicKeys(org, edge string) []string {
	if s == nil {
		return nil
	}
	k, ok := s.AuditKeys[EdgeKeyID(org, edge)]
	if !ok {
		return nil
	}
	return k.PublicKeys()
}

// RotateAuditKeys returns a copy of st in which each edge named by its
// [EdgeKeyID] has a new audit key, its seed returned once in the result's
// Secrets.AuditSeeds; the key it replaces moves to Retired, where it stays.
// Records the edge signed with the old key keep verifying. It returns
// [ErrUnknownIdentity] naming every edge that st holds no audit key for,
// and [State.Validate]'s errors for a bad st. st is never modified, and on
// error nothing is returned.
func (g *Generator) RotateAuditKeys(ctx context.Context, st *State, edges ...string) (*Result, error) {
	cfg, err := g.settings()
	if err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	ids := slices.Compact(slices.Sorted(slices.Values(edges)))
	var unknown []string
	for _, id := range ids {
		if _, ok := st.AuditKeys[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: no audit key for %q", ErrUnknownIdentity, unknown)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := cfg.stamp()
	res := &Result{
		State:   st.Clone(),
		Secrets: &Secrets{Passwords: map[string]Secret{}, EdgeSeeds: map[string]Secret{}, AuditSeeds: map[string]Secret{}},
		Rotated: ids,
	}
	for _, id := range ids {
		pub, err := cfg.newAuditKey(id, res.Secrets)
		if err != nil {
			return nil, err
		}
		k := res.State.AuditKeys[id]
		k.Retired = append([]RetiredAuditKey{{PublicKey: k.PublicKey, Until: now}}, k.Retired...)
		k.PublicKey, k.Rotated = pub, now
		res.State.AuditKeys[id] = k
	}
	cfg.log.InfoContext(ctx, "authz: audit keys rotated", slog.Any(logKeyRotated, ids))
	return res, nil
}

// auditKeys gives each edge of edgeKeys the audit key st holds for it, or a
// new one (its seed in res.Secrets.AuditSeeds). Audit keys of edges no longer in the inventory are
// kept, so that their records still verify.
func (s settings) auditKeys(edgeKeys []string, st *State, res *Result, now time.Time) error {
	if res.State.AuditKeys == nil {
		res.State.AuditKeys = make(map[string]AuditKey)
	}
	for id, k := range st.AuditKeys {
		res.State.AuditKeys[id] = cloneAuditKey(k)
	}
	for _, id := range edgeKeys {
		if _, ok := res.State.AuditKeys[id]; ok {
			continue
		}
		pub, err := s.newAuditKey(id, res.Secrets)
		if err != nil {
			return err
		}
		res.State.AuditKeys[id] = AuditKey{PublicKey: pub, Created: now}
	}
	return nil
}

// newAuditKey creates an audit key for edge id, records its seed in
// secrets and returns its public key.
func (s settings) newAuditKey(id string, secrets *Secrets) (string, error) {
	raw := make([]byte, 32) // an ed25519 seed
	defer clear(raw)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return "", fmt.Errorf("authz: audit key for edge %s: %w", id, err)
	}
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, raw)
	if err != nil {
		return "", fmt.Errorf("authz: audit key for edge %s: %w", id, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("authz: audit key for edge %s: %w", id, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("authz: audit key for edge %s: %w", id, err)
	}
	if secrets.AuditSeeds == nil {
		secrets.AuditSeeds = make(map[string]Secret)
	}
	secrets.AuditSeeds[id] = NewSecret(string(seed))
	return pub, nil
}

// cloneAuditKey returns a copy of k that shares nothing with it.
func cloneAuditKey(k AuditKey) AuditKey {
	k.Retired = slices.Clone(k.Retired)
	return k
}

// cloneAuditKeys returns a deep copy of m, never nil.
func cloneAuditKeys(m map[string]AuditKey) map[string]AuditKey {
	c := make(map[string]AuditKey, len(m))
	for id, k := range maps.All(m) {
		c[id] = cloneAuditKey(k)
	}
	return c
}

// validateAuditKeys reports, through bad, what is wrong with s's audit
// keys.
func validateAuditKeys(s *State, bad func(format string, args ...any)) {
	for _, id := range sortedKeys(s.AuditKeys) {
		k := s.AuditKeys[id]
		if id == "" {
			bad("audit_keys: empty edge key ID")
			continue
		}
		if !nkeys.IsValidPublicUserKey(k.PublicKey) {
			bad("audit_keys[%q]: public_key is not a user NKey", id)
		}
		for i, r := range k.Retired {
			if !nkeys.IsValidPublicUserKey(r.PublicKey) {
				bad("audit_keys[%q]: retired[%d].public_key is not a user NKey", id, i)
			}
		}
	}
}
