package authz

import (
	"fmt"
	"io"
	"maps"
	"time"

	"github.com/nats-io/nkeys"
)

// CommandKey is a command signing key: an ed25519 NKey (in the user key
// format, "U…", so that [WriteSeedFile] writes its seed) with which central
// signs the commands it sends an org's devices (one key per org, keyed by
// the org code), or with which an edge signs the commands its own services
// issue, such as the access service's unlocks (one key per edge, keyed by
// [EdgeKeyID]). Devices act only on commands signed by one of their keys
// ([State.CommandPublicKeys]; see message.SignCommand for what is signed).
// It is not a NATS identity: no server configuration lists it. Only the
// public key is kept here; the seed is handed out once
// ([Secrets].CommandSeeds): to central for an org key, to the edge for an
// edge key.
type CommandKey struct {
	PublicKey string    `json:"public_key"` // "U…"
	Created   time.Time `json:"created"`    // when the key was generated (UTC)
}

// CommandPublicKeys returns the public command keys a device of edge at org
// trusts: central's key of the org, then the edge's own key; the ones s
// lacks are left out. Provision them into the device's configuration
// (devicekit.Config.CommandKeys).
func (s *State) CommandPublicKeys(org, edge string) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, id := range [...]string{org, EdgeKeyID(org, edge)} {
		if k, ok := s.CommandKeys[id]; ok && k.PublicKey != "" {
			out = append(out, k.PublicKey)
		}
	}
	return out
}

// commandKeys gives each org and each edge of inv the command key st holds
// for it, or a new one (its seed in res.Secrets.CommandSeeds); keys of orgs
// and edges no longer in the inventory are dropped.
func (s settings) commandKeys(inv *Inventory, st *State, res *Result, now time.Time) error {
	var ids []string
	for _, o := range inv.Orgs {
		ids = append(ids, o.Code)
	}
	for _, e := range inv.Edges {
		ids = append(ids, EdgeKeyID(e.Org, e.Code))
	}
	res.State.CommandKeys = make(map[string]CommandKey, len(ids))
	for _, id := range sortedUnique(ids) {
		if k, ok := st.CommandKeys[id]; ok {
			res.State.CommandKeys[id] = k
			continue
		}
		pub, err := s.newCommandKey(id, res.Secrets)
		if err != nil {
			return err
		}
		res.State.CommandKeys[id] = CommandKey{PublicKey: pub, Created: now}
	}
	return nil
}

// newCommandKey creates a command key for id, records its seed in secrets
// and returns its public key.
func (s settings) newCommandKey(id string, secrets *Secrets) (string, error) {
	raw := make([]byte, 32) // an ed25519 seed
	defer clear(raw)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return "", fmt.Errorf("authz: command key for %s: %w", id, err)
	}
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, raw)
	if err != nil {
		return "", fmt.Errorf("authz: command key for %s: %w", id, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("authz: command key for %s: %w", id, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("authz: command key for %s: %w", id, err)
	}
	if secrets.CommandSeeds == nil {
		secrets.CommandSeeds = make(map[string]Secret)
	}
	secrets.CommandSeeds[id] = NewSecret(string(seed))
	return pub, nil
}

// validateCommandKeys reports, through bad, what is wrong with s's command
// keys.
func validateCommandKeys(s *State, bad func(format string, args ...any)) {
	for _, id := range sortedKeys(s.CommandKeys) {
		switch {
		case id == "":
			bad("command_keys: empty ID")
		case !nkeys.IsValidPublicUserKey(s.CommandKeys[id].PublicKey):
			bad("command_keys[%q]: public_key is not a user NKey", id)
		}
	}
}

// cloneCommandKeys returns a copy of m, nil for nil.
func cloneCommandKeys(m map[string]CommandKey) map[string]CommandKey { return maps.Clone(m) }
