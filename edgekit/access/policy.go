package access

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/lintel-io/lintel/topic"
)

// FallbackMode says what a door does when its edge cannot decide from its
// credential set, because the set is too stale to trust or unavailable.
type FallbackMode string

// Fallback modes.
const (
	// FallbackDeny denies everyone. It is the default.
	FallbackDeny FallbackMode = "deny"
	// FallbackAllowListed grants only the credentials in the door's
	// AlwaysAllowed list, unless the set, when it can be read, holds one of
	// them as revoked or suspended.
	FallbackAllowListed FallbackMode = "allow_listed"
)

// Defaults of a [DoorPolicy].
const (
	// DefaultStaleAfter is how long after its last confirmed sync an
	// edge's credential set is trusted when a policy does not say.
	DefaultStaleAfter = 24 * time.Hour
	// DefaultUnlockFor is how long a lock opens on a grant when a policy
	// does not say.
	DefaultUnlockFor = 5 * time.Second
)

// DoorPolicy is the configuration of one door at its edge: how stale a
// credential set it trusts, what it does when it cannot decide, and how long
// it unlocks. It is local to the edge, not replicated from central. The zero
// value means the defaults: stale after [DefaultStaleAfter], fallback deny,
// unlock for [DefaultUnlockFor].
type DoorPolicy struct {
	// StaleAfter is how old, since the edge's last confirmed sync with
	// central, the credential set may be before decisions fall back: 0
	// means DefaultStaleAfter, a negative value never stale.
	StaleAfter time.Duration
	// Fallback is what the door does when the edge cannot decide: "" or
	// FallbackDeny denies everyone, FallbackAllowListed grants only
	// AlwaysAllowed.
	Fallback FallbackMode
	// AlwaysAllowed lists the credential ids (keyed hashes) granted in
	// fallback mode FallbackAllowListed; no duplicates.
	AlwaysAllowed []string
	// UnlockFor is how long the lock opens on a grant: 0 means
	// DefaultUnlockFor; it may not be negative.
	UnlockFor time.Duration
}

// EffectiveStaleAfter returns StaleAfter with the default applied: 0 becomes
// [DefaultStaleAfter]; a negative result means never stale.
func (p DoorPolicy) EffectiveStaleAfter() time.Duration {
	if p.StaleAfter == 0 {
		return DefaultStaleAfter
	}
	return p.StaleAfter
}

// EffectiveUnlockFor returns UnlockFor with the default applied: 0 becomes
// [DefaultUnlockFor].
func (p DoorPolicy) EffectiveUnlockFor() time.Duration {
	if p.UnlockFor == 0 {
		return DefaultUnlockFor
	}
	return p.UnlockFor
}

// Validate checks the policy of the door with code door: the code is a topic
// token, the fallback mode is known, the always-allowed ids are credential
// ids listed once each, and UnlockFor is not negative. It returns a
// [*FieldError] of kind "door policy" named door, wrapping [ErrInvalid].
func (p DoorPolicy) Validate(door string) error {
	if err := topic.ValidateToken(partDoor, door); err != nil {
		return nameError(kindPolicy, door, err)
	}
	fail := func(field, reason string) error {
		return &FieldError{Kind: kindPolicy, Name: door, Field: field, Reason: reason, Err: ErrInvalid}
	}
	switch p.Fallback {
	case "", FallbackDeny, FallbackAllowListed:
	default:
		return fail("fallback", fmt.Sprintf("%q is not one of deny, allow_listed", p.Fallback))
	}
	for i, id := range p.AlwaysAllowed {
		field := fmt.Sprintf("always_allowed[%d]", i)
		if reason := credentialIDProblem(id); reason != "" {
			return fail(field, reason)
		}
		if j := slices.Index(p.AlwaysAllowed[:i], id); j >= 0 {
			return fail(field, fmt.Sprintf("already listed as always_allowed[%d]", j))
		}
	}
	if p.UnlockFor < 0 {
		return fail("unlock_for", fmt.Sprintf("%s is negative", p.UnlockFor))
	}
	return nil
}

// doorPolicyJSON is the JSON form of a DoorPolicy: durations as Go duration
// strings ("24h", "5s", "-1s" for never stale).
type doorPolicyJSON struct {
	StaleAfter    string   `json:"stale_after,omitempty"`
	Fallback      string   `json:"fallback,omitempty"`
	AlwaysAllowed []string `json:"always_allowed,omitempty"`
	UnlockFor     string   `json:"unlock_for,omitempty"`
}

// ParseDoorPolicies decodes a door policy file, a JSON object mapping door
// codes to policies, durations written as Go duration strings:
//
//	{"front": {"stale_after": "24h", "fallback": "allow_listed",
//	           "always_allowed": ["<64 hex>"], "unlock_for": "5s"},
//	 "back":  {}}
//
// Every key may be left out for its default; "stale_after": "-1s" (any
// negative duration) means never stale. Decoding is strict as in
// [ParseCredential], and each policy is checked with [DoorPolicy.Validate].
// Errors are [*FieldError] values of kind "door policy" naming the door and
// the field; a door code given twice wraps [ErrMalformed], a duration that
// does not parse [ErrInvalid].
func ParseDoorPolicies(data []byte) (map[string]DoorPolicy, error) {
	d := &strictDecoder{data: data}
	if p := d.openObject(); p != nil {
		return nil, p.fieldError(kindPolicy, "")
	}
	policies := make(map[string]DoorPolicy)
	var door string        // the door being read; "" between doors
	var failed *FieldError // a policy that decoded but is not valid
	p := d.object("", func(key []byte) *jsonProblem {
		door = string(key)
		if _, dup := policies[door]; dup {
			return malformed("", "door given twice")
		}
		if d.peek() != '{' {
			return d.wrongType("", "an object")
		}
		d.pos++
		var pj doorPolicyJSON
		if p := d.structBody(reflect.ValueOf(&pj).Elem(), ""); p != nil {
			return p
		}
		pol, err := pj.policy(door)
		if err != nil {
			failed = err
			return &jsonProblem{} // stop; failed says why
		}
		policies[door] = pol
		door = ""
		return nil
	})
	switch {
	case failed != nil:
		return nil, failed
	case p != nil:
		return nil, p.fieldError(kindPolicy, door)
	}
	if p := d.end(); p != nil {
		return nil, p.fieldError(kindPolicy, "")
	}
	return policies, nil
}

// policy converts the JSON form into a validated DoorPolicy for door.
func (pj *doorPolicyJSON) policy(door string) (DoorPolicy, *FieldError) {
	pol := DoorPolicy{Fallback: FallbackMode(pj.Fallback), AlwaysAllowed: pj.AlwaysAllowed}
	for _, f := range [...]struct {
		field string
		in    string
		out   *time.Duration
	}{{"stale_after", pj.StaleAfter, &pol.StaleAfter}, {"unlock_for", pj.UnlockFor, &pol.UnlockFor}} {
		if f.in == "" {
			continue
		}
		v, err := time.ParseDuration(f.in)
		if err != nil {
			return DoorPolicy{}, &FieldError{Kind: kindPolicy, Name: door, Field: f.field,
				Reason: fmt.Sprintf("%q is not a duration such as \"24h\" or \"5s\"", f.in), Err: ErrInvalid}
		}
		*f.out = v
	}
	if err := pol.Validate(door); err != nil {
		return DoorPolicy{}, err.(*FieldError)
	}
	return pol, nil
}

// MarshalDoorPolicies validates every policy and returns the JSON form
// [ParseDoorPolicies] reads, doors in sorted order, zero fields left out. It
// returns the first [*FieldError] from [DoorPolicy.Validate] if any policy is
// not valid.
func MarshalDoorPolicies(policies map[string]DoorPolicy) ([]byte, error) {
	out := make(map[string]doorPolicyJSON, len(policies))
	for _, door := range slices.Sorted(maps.Keys(policies)) {
		p := policies[door]
		if err := p.Validate(door); err != nil {
			return nil, err
		}
		pj := doorPolicyJSON{Fallback: string(p.Fallback), AlwaysAllowed: p.AlwaysAllowed}
		if p.StaleAfter != 0 {
			pj.StaleAfter = p.StaleAfter.String()
		}
		if p.UnlockFor != 0 {
			pj.UnlockFor = p.UnlockFor.String()
		}
		out[door] = pj
	}
	return json.MarshalIndent(out, "", "  ")
}
