package access

import (
	"slices"
	"strings"
	"sync"

	"github.com/lintel-io/lintel/topic"
)

// Set is an edge's in-memory copy of its credential bucket: credentials,
// door groups and schedules, kept current by [Set.Apply] for every bucket
// entry in revision order and consulted by [Set.Decide] for every access
// request. It is safe for concurrent use; reads share a lock and do not
// wait for each other. The zero value is an empty set, as [NewSet] returns.
type Set struct {
	mu        sync.RWMutex
	version   uint64
	creds     map[string]*credEntry
	groups    map[string]*groupEntry
	schedules map[string]*scheduleEntry
	stats     SetStats // counts kept up to date by Apply; Version unused
}

// credEntry is a credential, or the broken marker left by a value that did
// not parse: a credential denied as unknown.
type credEntry struct {
	cred     Credential
	broken   bool
	revision uint64
}

// groupEntry is a door group, or the broken marker of one (no doors).
type groupEntry struct {
	doors    map[string]struct{}
	broken   bool
	revision uint64
}

// scheduleEntry is a schedule, or the broken marker of one (sched nil:
// never allows).
type scheduleEntry struct {
	sched    *Schedule
	revision uint64
}

// SetStats is a snapshot of a [Set]'s contents.
type SetStats struct {
	Credentials int    // credentials held, broken markers excluded
	Groups      int    // door groups held, broken markers excluded
	Schedules   int    // schedules held, broken markers excluded
	Broken      int    // broken markers: entries of any kind whose value did not parse
	Version     uint64 // the highest revision applied
}

// NewSet returns an empty set at version 0.
func NewSet() *Set {
	return &Set{
		creds:     make(map[string]*credEntry),
		groups:    make(map[string]*groupEntry),
		schedules: make(map[string]*scheduleEntry),
	}
}

// Apply applies one bucket entry: key, its value, its revision, and whether
// it is a delete or purge marker (deleted, value ignored). It reports
// whether key is one of the set's, "cred.<id>", "group.<name>" or
// "schedule.<name>"; other keys belong to others and are left alone.
//
// The version becomes revision (if higher) in every case, ignored keys and
// errors included. A put whose value does not parse, or whose key names an
// invalid id or name, is returned as the [*FieldError], and a put that does
// not parse replaces what the key held with a broken marker: a credential
// denied as unknown, a group without doors, a schedule that never allows. It
// fails secure: a malformed revocation never leaves the active credential
// it meant to revoke behind.
//
// Entries must come in revision order, as a bucket watcher delivers them.
// Replaying entries already applied is harmless: an entry older than the
// one its key holds is ignored. Revisions only grow within one bucket; for a
// bucket that was deleted and created again, start a new Set.
func (s *Set) Apply(key string, value []byte, revision uint64, deleted bool) (bool, error) {
	var prefix string
	for _, p := range [...]string{KeyPrefixCredential, KeyPrefixGroup, KeyPrefixSchedule} {
		if strings.HasPrefix(key, p) {
			prefix = p
			break
		}
	}
	name := key[len(prefix):]
	switch prefix {
	case KeyPrefixCredential:
		return true, s.applyCredential(name, value, revision, deleted)
	case KeyPrefixGroup:
		return true, s.applyGroup(name, value, revision, deleted)
	case KeyPrefixSchedule:
		return true, s.applySchedule(name, value, revision, deleted)
	}
	s.commit(revision, nil)
	return false, nil
}

// advance raises the version to revision. The caller holds the write lock.
func (s *Set) advance(revision uint64) { s.version = max(s.version, revision) }

func (s *Set) applyCredential(id string, value []byte, revision uint64, deleted bool) error {
	if err := ValidCredentialID(id); err != nil {
		s.commit(revision, nil)
		return err
	}
	var e *credEntry // nil for a delete
	var err error
	if !deleted {
		e = &credEntry{revision: revision}
		if err = parseCredential(&e.cred, id, value); err != nil {
			e.cred, e.broken = Credential{ID: id}, true
		}
		e.cred.Revision = revision
	}
	s.commit(revision, func() { replace(s, s.creds, kindCredential, id, e, revision) })
	return err
}

func (s *Set) applyGroup(name string, value []byte, revision uint64, deleted bool) error {
	if err := topic.ValidateToken(partGroup, name); err != nil {
		s.commit(revision, nil)
		return nameError(kindGroup, name, err)
	}
	var e *groupEntry // nil for a delete
	var err error
	if !deleted {
		var g *DoorGroup
		if g, err = ParseDoorGroup(name, value); err != nil {
			e = &groupEntry{broken: true}
		} else {
			e = &groupEntry{doors: make(map[string]struct{}, len(g.Doors))}
			for _, d := range g.Doors {
				e.doors[d] = struct{}{}
			}
		}
		e.revision = revision
	}
	s.commit(revision, func() { replace(s, s.groups, kindGroup, name, e, revision) })
	return err
}

func (s *Set) applySchedule(name string, value []byte, revision uint64, deleted bool) error {
	if err := topic.ValidateToken(partSchedule, name); err != nil {
		s.commit(revision, nil)
		return nameError(kindSchedule, name, err)
	}
	var e *scheduleEntry // nil for a delete
	var err error
	if !deleted {
		var sched *Schedule
		sched, err = ParseSchedule(name, value)
		e = &scheduleEntry{sched: sched, revision: revision} // sched nil: broken
	}
	s.commit(revision, func() { replace(s, s.schedules, kindSchedule, name, e, revision) })
	return err
}

// commit runs change (if any) under the write lock and advances the version
// to revision. Values are parsed before, so the lock is held briefly.
func (s *Set) commit(revision uint64, change func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.creds == nil { // a zero Set
		s.creds = make(map[string]*credEntry)
		s.groups = make(map[string]*groupEntry)
		s.schedules = make(map[string]*scheduleEntry)
	}
	if change != nil {
		change()
	}
	s.advance(revision)
}

// entry is what the set keeps under a key.
type entry interface {
	comparable
	meta() (revision uint64, broken bool)
}

func (e *credEntry) meta() (uint64, bool)     { return e.revision, e.broken }
func (e *groupEntry) meta() (uint64, bool)    { return e.revision, e.broken }
func (e *scheduleEntry) meta() (uint64, bool) { return e.revision, e.sched == nil }

// replace puts e under name in m, or deletes name if e is nil, keeping the
// counts, unless what name holds has a higher revision (a replay). The
// caller holds the write lock.
func replace[E entry](s *Set, m map[string]E, kind, name string, e E, revision uint64) {
	var none E
	if old, ok := m[name]; ok {
		oldRevision, oldBroken := old.meta()
		if oldRevision > revision {
			return
		}
		s.count(kind, oldBroken, -1)
	}
	if e == none {
		delete(m, name)
		return
	}
	m[name] = e
	_, broken := e.meta()
	s.count(kind, broken, +1)
}

// count adds delta to the count of entries of kind, or of broken markers.
// The caller holds the write lock.
func (s *Set) count(kind string, broken bool, delta int) {
	switch {
	case broken:
		s.stats.Broken += delta
	case kind == kindCredential:
		s.stats.Credentials += delta
	case kind == kindGroup:
		s.stats.Groups += delta
	case kind == kindSchedule:
		s.stats.Schedules += delta
	}
}

// Version returns the highest revision applied, 0 for a new set.
func (s *Set) Version() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// Len returns the number of credentials held, broken markers excluded.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats.Credentials
}

// Stats returns a snapshot of the set's counts and version.
func (s *Set) Stats() SetStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stats
	st.Version = s.version
	return st
}

// Credential returns a copy of the credential with the given id, and
// whether the set holds it; a broken marker counts as not held.
func (s *Set) Credential(id string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.creds[id]
	if e == nil || e.broken {
		return Credential{}, false
	}
	c := e.cred
	c.Doors = slices.Clone(c.Doors)
	c.Groups = slices.Clone(c.Groups)
	c.Schedules = slices.Clone(c.Schedules)
	return c, true
}
