package access

import (
	"slices"
	"time"

	"github.com/lintel-io/lintel/message"
)

// Situation is what [Set.Decide] needs to know besides the set: the time,
// where, and how far the set can be trusted.
type Situation struct {
	// Now is the moment of the request.
	Now time.Time
	// Location is the site's time zone, in which schedules are read; nil
	// means UTC.
	Location *time.Location
	// Available reports whether the edge could load and read its set.
	// When false the set is not consulted and the door's fallback decides.
	Available bool
	// SyncedAt is the edge's last confirmed sync with central: the time at
	// which its set was known to hold every change central had made. Zero
	// means never.
	SyncedAt time.Time
}

// Decide decides whether the credential with id credentialID (its keyed
// hash) opens door under the door's policy, in situation sit. It fills
// Granted, Reason, Door, Holder (when the set holds the credential),
// CredentialSetVersion, Credential, Fallback and SyncedAt, and leaves
// Offline and the audit fields to the caller. The checks, in order:
//
//  1. sit.Available false: the fallback decides, denying with
//     [message.DenyUnavailable].
//  2. The set is stale, unless policy.StaleAfter is negative: never synced,
//     or synced more than policy.EffectiveStaleAfter() before sit.Now
//     (exactly that long is not stale). The fallback decides, denying with
//     [message.DenyStale].
//  3. The set does not hold the credential, or holds a broken marker:
//     [message.DenyUnknown].
//  4. Revoked or suspended: [message.DenyRevoked], [message.DenySuspended].
//  5. Before ValidFrom: [message.DenyNotYetValid]; at or after ValidUntil:
//     [message.DenyExpired].
//  6. The door is neither in Doors nor in a listed group the set holds:
//     [message.DenyDoorNotAllowed].
//  7. Schedules are listed and no listed schedule the set holds allows
//     sit.Now in sit.Location: [message.DenyOutsideSchedule].
//  8. Otherwise granted.
//
// The fallback (Fallback true) grants only under [FallbackAllowListed], only
// a credential in policy.AlwaysAllowed, and only if the set, when
// available, does not hold it as revoked or suspended, or as a broken
// marker (which may be a revocation that did not parse). Otherwise it denies
// with the reason above.
//
// Decide takes the read lock once, parses nothing and does not allocate.
func (s *Set) Decide(door string, policy DoorPolicy, credentialID string, sit Situation) message.AccessDecision {
	d := message.AccessDecision{Door: door, Credential: credentialID, SyncedAt: sit.SyncedAt}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d.CredentialSetVersion = s.version

	if !sit.Available {
		return fallback(d, policy, credentialID, nil, message.DenyUnavailable)
	}
	e := s.creds[credentialID]
	if e != nil && !e.broken {
		d.Holder = e.cred.Holder
	}
	if stale(policy, sit) {
		return fallback(d, policy, credentialID, e, message.DenyStale)
	}
	if e == nil || e.broken {
		return deny(d, message.DenyUnknown)
	}
	return s.check(d, &e.cred, sit)
}

// check decides d for credential c from its state on, steps 4 to 8 of
// [Set.Decide]. The caller holds the read lock.
func (s *Set) check(d message.AccessDecision, c *Credential, sit Situation) message.AccessDecision {
	door := d.Door
	switch c.State {
	case StateActive:
	case StateSuspended:
		return deny(d, message.DenySuspended)
	default: // revoked, and anything Validate would not have let in
		return deny(d, message.DenyRevoked)
	}
	if !c.ValidFrom.IsZero() && sit.Now.Before(c.ValidFrom) {
		return deny(d, message.DenyNotYetValid)
	}
	if !c.ValidUntil.IsZero() && !sit.Now.Before(c.ValidUntil) {
		return deny(d, message.DenyExpired)
	}
	if !s.doorAllowed(c, door) {
		return deny(d, message.DenyDoorNotAllowed)
	}
	if len(c.Schedules) > 0 && !s.scheduleAllows(c, sit) {
		return deny(d, message.DenyOutsideSchedule)
	}
	d.Granted = true
	return d
}

// stale reports whether the set is too old to trust for a door with policy.
func stale(policy DoorPolicy, sit Situation) bool {
	limit := policy.EffectiveStaleAfter()
	if limit < 0 {
		return false
	}
	return sit.SyncedAt.IsZero() || sit.Now.Sub(sit.SyncedAt) > limit
}

// fallback decides by the door's fallback mode; e is what the set holds for
// the credential, nil if nothing or if the set is unavailable.
func fallback(d message.AccessDecision, policy DoorPolicy, id string, e *credEntry, reason message.DenyReason) message.AccessDecision {
	d.Fallback = true
	if policy.Fallback != FallbackAllowListed || !slices.Contains(policy.AlwaysAllowed, id) {
		return deny(d, reason)
	}
	if e != nil && (e.broken || e.cred.State != StateActive) {
		return deny(d, reason)
	}
	d.Granted = true
	return d
}

func deny(d message.AccessDecision, reason message.DenyReason) message.AccessDecision {
	d.Granted = false
	d.Reason = reason
	return d
}

// doorAllowed reports whether c lists door directly or through a group the
// set holds. The caller holds the read lock.
func (s *Set) doorAllowed(c *Credential, door string) bool {
	if slices.Contains(c.Doors, door) {
		return true
	}
	for _, name := range c.Groups {
		if g := s.groups[name]; g != nil {
			if _, ok := g.doors[door]; ok {
				return true
			}
		}
	}
	return false
}

// scheduleAllows reports whether a schedule that c lists and the set holds
// allows sit.Now. The caller holds the read lock.
func (s *Set) scheduleAllows(c *Credential, sit Situation) bool {
	for _, name := range c.Schedules {
		if e := s.schedules[name]; e != nil && e.sched.Allows(sit.Now, sit.Location) {
			return true
		}
	}
	return false
}
