package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors of credential management on central; compare with [errors.Is].
var (
	// ErrNotFound reports a credential that the edge's bucket (or, for
	// [Manager.Revoke], [Manager.Suspend] and [Manager.Reinstate], no
	// registered edge's bucket) holds.
	ErrNotFound = errors.New("access: credential not found")
	// ErrUnknownReference reports a credential or door group that refers
	// to a door the inventory does not list at the edge, or to a group or
	// schedule the edge's bucket does not hold. It comes wrapped in a
	// [*FieldError] naming the field, together with [ErrInvalid].
	ErrUnknownReference = errors.New("access: unknown reference")
	// ErrNoHashKey reports a [Manager.Hash] by a manager configured
	// without a hash key.
	ErrNoHashKey = errors.New("access: no hash key")
	// ErrManagerConfig reports a [ManagerConfig] (or argument of
	// [NewManager]) that cannot work.
	ErrManagerConfig = errors.New("access: invalid manager configuration")
)

// KeyRules is the key of an edge's rules document in its credential
// bucket, owned by the rules engine (package edgekit/rules, whose ConfigKey
// it equals).
const KeyRules = "rules"

// Defaults of [ManagerConfig].
const (
	// DefaultManagerTimeout bounds the manager's calls whose context has
	// no deadline.
	DefaultManagerTimeout = 30 * time.Second
	// DefaultPutWindow is how many credentials [Manager.PutMany] has in
	// flight, published and not yet acknowledged by central's JetStream.
	DefaultPutWindow = 1024
)

// ManagerConfig configures a [Manager]. The zero value of every field means
// its default.
type ManagerConfig struct {
	// Org is the org whose credentials are managed; empty means the hub's
	// org, and anything else must equal it.
	Org string
	// HashKey is the org's credential hash key ([ReadHashKey]). Optional:
	// it enables [Manager.Hash]. At least [HashKeySize] bytes.
	HashKey []byte
	// Inventory, when set, is the deployment's inventory: door codes in
	// credentials and door groups are then checked against the doors it
	// lists at the edge.
	Inventory *authz.Inventory
	// Timeout bounds calls whose context has no deadline;
	// [DefaultManagerTimeout] if zero.
	Timeout time.Duration
	// Window bounds the credentials [Manager.PutMany] has in flight;
	// [DefaultPutWindow] if zero. It should not exceed the JetStream
	// context's own bound on asynchronous publishes (nats.go's default is
	// 4000), or PutMany stalls on it.
	Window int
	// Logger receives the manager's log; nil discards.
	Logger *slog.Logger
	// Now is the clock, which stamps [Credential] Changed; nil means
	// time.Now.
	Now func() time.Time
}

// Manager is central's credential management for the edges of one org. It
// writes credentials, door groups, schedules and rules documents into each
// edge's credential bucket on central ([authz.EdgeNames.CredentialBucket]),
// which the edge mirrors; the bucket's revision after a change is the
// edge's new credential set version.
//
// A credential is identified by its keyed hash ([Manager.Hash]) and stored
// at each edge where it may be used. Revoking it ([Manager.Revoke]) stores it
// again with state revoked at every edge that holds it: a revocation is a
// value, never a deletion, so that edges and the [Auditor] can tell a
// revoked credential from an unknown one, and a revoked credential stays
// revoked ([Manager.Reinstate] refuses it).
//
// A Manager is safe for concurrent use. Concurrent changes of one
// credential are serialised by the bucket: state changes use compare and
// set on the entry's revision.
type Manager struct {
	js  jetstream.JetStream
	hub *edgekit.Hub
	cfg ManagerConfig
	log *slog.Logger

	doors map[string]map[string]bool // edge → door codes, from the inventory

	mu      sync.Mutex
	buckets map[string]jetstream.KeyValue // by edge
}

// NewManager returns the credential manager of the hub's org, using js,
// a JetStream context of a central service of the org in central's domain.
// It does no I/O. It returns an error wrapping [ErrManagerConfig] for a nil
// js or hub, or an org other than the hub's, and one wrapping [ErrInvalid]
// for a hash key shorter than [HashKeySize].
func NewManager(js jetstream.JetStream, hub *edgekit.Hub, cfg ManagerConfig) (*Manager, error) {
	switch {
	case js == nil:
		return nil, fmt.Errorf("%w: nil JetStream", ErrManagerConfig)
	case hub == nil:
		return nil, fmt.Errorf("%w: nil hub", ErrManagerConfig)
	case cfg.Org == "":
		cfg.Org = hub.Org()
	case cfg.Org != hub.Org():
		return nil, fmt.Errorf("%w: org %q, but the hub serves %q", ErrManagerConfig, cfg.Org, hub.Org())
	}
	if cfg.HashKey != nil && len(cfg.HashKey) < HashKeySize {
		return nil, fmt.Errorf("%w: hash key of %d bytes, want at least %d", ErrInvalid, len(cfg.HashKey), HashKeySize)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultManagerTimeout
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultPutWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{
		js: js, hub: hub, cfg: cfg,
		log:     cfg.Logger.With(message.LogKeyOrg, cfg.Org),
		buckets: map[string]jetstream.KeyValue{},
	}
	if inv := cfg.Inventory; inv != nil {
		m.doors = map[string]map[string]bool{}
		for _, d := range inv.Doors {
			if d.Org != cfg.Org {
				continue
			}
			if m.doors[d.Edge] == nil {
				m.doors[d.Edge] = map[string]bool{}
			}
			m.doors[d.Edge][d.Code] = true
		}
	}
	return m, nil
}

// Hash returns the id of credential c: its keyed hash under the org's hash
// key ([message.Credential.Hash]). It returns [ErrNoHashKey] when the
// manager has no hash key.
func (m *Manager) Hash(c message.Credential) (string, error) {
	if len(m.cfg.HashKey) == 0 {
		return "", ErrNoHashKey
	}
	return c.Hash(m.cfg.HashKey), nil
}

func (m *Manager) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, m.cfg.Timeout)
}

// bucket returns the credential bucket of edge, opening it on first use.
func (m *Manager) bucket(ctx context.Context, edge string) (jetstream.KeyValue, authz.EdgeNames, error) {
	n, err := authz.NamesFor(m.cfg.Org, edge)
	if err != nil {
		return nil, n, err
	}
	m.mu.Lock()
	kv := m.buckets[edge]
	m.mu.Unlock()
	if kv != nil {
		return kv, n, nil
	}
	kv, err = m.js.KeyValue(ctx, n.CredentialBucket)
	if err != nil {
		return nil, n, fmt.Errorf("access: edge %s: credential bucket %s: %w", edge, n.CredentialBucket, err)
	}
	m.mu.Lock()
	m.buckets[edge] = kv
	m.mu.Unlock()
	return kv, n, nil
}

// forget drops the cached bucket of edge after an error, so that the next
// call opens it again (the edge may have been removed and registered anew).
func (m *Manager) forget(edge string) {
	m.mu.Lock()
	delete(m.buckets, edge)
	m.mu.Unlock()
}

// refCache remembers which groups and schedules an edge's bucket holds,
// for one call.
type refCache map[string]bool

// exists reports whether key holds a value in kv.
func (rc refCache) exists(ctx context.Context, kv jetstream.KeyValue, key string) (bool, error) {
	if ok, seen := rc[key]; seen {
		return ok, nil
	}
	_, err := kv.Get(ctx, key)
	switch {
	case err == nil:
		rc[key] = true
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rc[key] = false
	default:
		return false, err
	}
	return rc[key], nil
}

// checkDoors checks door codes against the doors the inventory lists at
// edge, returning a *FieldError naming the first unknown one.
func (m *Manager) checkDoors(kind, name, field, edge string, doors []string) error {
	if m.doors == nil {
		return nil
	}
	for i, d := range doors {
		if !m.doors[edge][d] {
			return &FieldError{Kind: kind, Name: name, Field: fmt.Sprintf("%s[%d]", field, i),
				Reason: fmt.Sprintf("%q: no such door at edge %s", d, edge), Err: errors.Join(ErrInvalid, ErrUnknownReference)}
		}
	}
	return nil
}

// check validates c and its references at edge.
func (m *Manager) check(ctx context.Context, kv jetstream.KeyValue, edge string, c *Credential, rc refCache) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := m.checkDoors(kindCredential, c.ID, "doors", edge, c.Doors); err != nil {
		return err
	}
	for _, l := range [...]struct {
		field, what string
		key         func(string) string
		names       []string
	}{{"groups", "door group", GroupKey, c.Groups}, {"schedules", "schedule", ScheduleKey, c.Schedules}} {
		for i, name := range l.names {
			ok, err := rc.exists(ctx, kv, l.key(name))
			if err != nil {
				return fmt.Errorf("access: edge %s: looking up %s %s: %w", edge, l.what, name, err)
			}
			if !ok {
				return &FieldError{Kind: kindCredential, Name: c.ID, Field: fmt.Sprintf("%s[%d]", l.field, i),
					Reason: fmt.Sprintf("%q: no such %s at edge %s", name, l.what, edge), Err: errors.Join(ErrInvalid, ErrUnknownReference)}
			}
		}
	}
	return nil
}

// Put stores credential c at edge, under [CredentialKey](c.ID), and returns
// the entry's revision: the edge's new credential set version. It first
// validates c ([Credential.Validate]) and checks its references: each door
// against the inventory (when the manager has one) and each group and
// schedule against the edge's bucket. It sets c.Changed to the current time
// and c.Revision to the revision. A credential revoked at the edge stays
// revoked: Put refuses to store it with another state. The write is a
// compare and set against what Put read, so a concurrent [Manager.Revoke]
// is never overwritten.
//
// It returns the [*FieldError] of a bad credential, naming the field
// (e.g. "groups[1]" for an unknown group, wrapping [ErrUnknownReference]),
// the error of [authz.NamesFor] for a bad edge code, an error wrapping
// jetstream.ErrBucketNotFound for an edge that is not registered, or the
// JetStream error.
func (m *Manager) Put(ctx context.Context, edge string, c *Credential) (uint64, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return 0, err
	}
	if err := m.check(ctx, kv, edge, c, refCache{}); err != nil {
		return 0, err
	}
	key := CredentialKey(c.ID)
	for range stateChangeRetries {
		cur, err := kv.Get(ctx, key)
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			m.forget(edge)
			return 0, fmt.Errorf("access: edge %s: get credential %s: %w", edge, c.ID, err)
		}
		if err == nil && c.State != StateRevoked {
			if old, perr := ParseCredential(c.ID, cur.Value()); perr == nil && old.State == StateRevoked {
				return 0, &FieldError{Kind: kindCredential, Name: c.ID, Field: "state",
					Reason: fmt.Sprintf("revoked at edge %s, for good: it cannot become %s", edge, c.State), Err: ErrInvalid}
			}
		}
		c.Changed = m.cfg.Now().UTC()
		data, err := c.Marshal()
		if err != nil {
			return 0, err
		}
		var rev uint64
		if cur == nil {
			rev, err = kv.Create(ctx, key, data)
		} else {
			rev, err = kv.Update(ctx, key, data, cur.Revision())
		}
		if conflict(err) {
			continue // changed meanwhile: look again
		}
		if err != nil {
			m.forget(edge)
			return 0, fmt.Errorf("access: edge %s: put credential %s: %w", edge, c.ID, err)
		}
		c.Revision = rev
		m.log.Debug("put credential", message.LogKeyEdge, edge, logKeyCredential, c.ID, logKeyVersion, rev)
		return rev, nil
	}
	return 0, fmt.Errorf("access: edge %s: credential %s kept changing; gave up after %d attempts", edge, c.ID, stateChangeRetries)
}

// conflict reports whether err is the failure of a compare and set: the key
// changed since it was read.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// PutMany stores the credentials cs at edge, as a bulk load, and returns the
// last revision: the edge's credential set version once all are stored (0
// for no credentials).
//
// Validation is all or nothing: every credential is checked as
// [Manager.Put] checks it before the first is stored, and the first problem
// is returned (a [*FieldError] naming the credential and the field) with
// nothing stored. The credentials are then published asynchronously, as
// nats.go's KV Put publishes one, on "$KV.{bucket}.cred.{id}", with at most
// [ManagerConfig] Window of them unacknowledged at a time, and each stamped
// with the same Changed time. A credential listed twice is stored twice; the
// last one wins.
//
// Storing is not all or nothing: if a publish fails, or ctx ends, PutMany
// returns the highest revision acknowledged so far and an error saying how
// many were stored; putting the same credentials again is harmless.
//
// A revocation is final, as with [Manager.Put]: a credential the edge's
// bucket holds as revoked, loaded again with another state, fails the
// validation (field "state"). PutMany reads the bucket once for that (each
// key for a few credentials, a scan of the bucket for many).
func (m *Manager) PutMany(ctx context.Context, edge string, cs []*Credential) (uint64, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, n, err := m.bucket(ctx, edge)
	if err != nil {
		return 0, err
	}
	rc := refCache{}
	for _, c := range cs {
		if c == nil {
			return 0, &FieldError{Kind: kindCredential, Reason: "nil credential", Err: ErrInvalid}
		}
		if err := m.check(ctx, kv, edge, c, rc); err != nil {
			return 0, err
		}
	}
	if err := m.checkNotRevoked(ctx, kv, cs); err != nil {
		return 0, err
	}
	now := m.cfg.Now().UTC()
	prefix := m.kvPrefix(n.CredentialBucket)
	window := min(m.cfg.Window, max(len(cs), 1))
	pending := make([]jetstream.PubAckFuture, window)
	owner := make([]*Credential, window)
	var last uint64
	stored := 0
	wait := func(i int) error {
		f := pending[i]
		if f == nil {
			return nil
		}
		pending[i] = nil
		select {
		case ack := <-f.Ok():
			owner[i].Revision = ack.Sequence
			last = max(last, ack.Sequence)
			stored++
			return nil
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fail := func(err error) (uint64, error) {
		m.forget(edge)
		return last, fmt.Errorf("access: edge %s: bulk load stopped after %d of %d credentials: %w", edge, stored, len(cs), err)
	}
	expect := jetstream.WithExpectStream(n.CredentialStream)
	for i, c := range cs {
		slot := i % window
		if err := wait(slot); err != nil {
			return fail(err)
		}
		c.Changed = now
		data, err := c.Marshal()
		if err != nil {
			return fail(err)
		}
		f, err := m.js.PublishMsgAsync(&nats.Msg{Subject: prefix + CredentialKey(c.ID), Data: data}, expect)
		if err != nil {
			return fail(err)
		}
		pending[slot], owner[slot] = f, c
	}
	for i := range window { // the oldest first
		if err := wait((len(cs) + i) % window); err != nil {
			return fail(err)
		}
	}
	m.log.Info("loaded credentials", message.LogKeyEdge, edge, "count", len(cs), logKeyVersion, last)
	return last, nil
}

// checkNotRevoked returns a [*FieldError] for the first credential of cs
// that kv holds as revoked and cs would store with another state.
func (m *Manager) checkNotRevoked(ctx context.Context, kv jetstream.KeyValue, cs []*Credential) error {
	revoked := make(map[string]bool)
	if len(cs) <= 64 {
		for _, c := range cs {
			e, err := kv.Get(ctx, CredentialKey(c.ID))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if cur, err := ParseCredential(c.ID, e.Value()); err == nil && cur.State == StateRevoked {
				revoked[c.ID] = true
			}
		}
	} else {
		w, err := kv.Watch(ctx, KeyPrefixCredential+"*", jetstream.IgnoreDeletes())
		if err != nil {
			return err
		}
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil {
				break
			}
			id := strings.TrimPrefix(e.Key(), KeyPrefixCredential)
			if cur, err := ParseCredential(id, e.Value()); err == nil && cur.State == StateRevoked {
				revoked[id] = true
			}
		}
	}
	for _, c := range cs {
		if revoked[c.ID] && c.State != StateRevoked {
			return &FieldError{Kind: kindCredential, Name: c.ID, Field: "state",
				Reason: "revoked at the edge: a revocation is final", Err: ErrInvalid}
		}
	}
	return nil
}

// kvPrefix returns the subject prefix of the keys of bucket, as nats.go's KV
// Put builds it for this JetStream context: "$KV.{bucket}.", behind the
// context's API prefix when it has a domain or a prefix of its own.
func (m *Manager) kvPrefix(bucket string) string {
	var b strings.Builder
	o := m.js.Options()
	switch {
	case o.Domain != "":
		b.WriteString("$JS." + o.Domain + ".API.")
	case o.APIPrefix != "" && strings.TrimSuffix(o.APIPrefix, ".") != strings.TrimSuffix(jetstream.DefaultAPIPrefix, "."):
		b.WriteString(strings.TrimSuffix(o.APIPrefix, ".") + ".")
	}
	b.WriteString("$KV." + bucket + ".")
	return b.String()
}

// Get returns the credential id as the edge's bucket holds it, with its
// Revision. It returns the [*FieldError] of [ValidCredentialID] for a bad
// id, an error wrapping [ErrNotFound] when the bucket does not hold it, the
// [*FieldError] of [ParseCredential] for a stored value that does not parse,
// or the errors of [Manager.Put].
func (m *Manager) Get(ctx context.Context, edge, id string) (*Credential, error) {
	if err := ValidCredentialID(id); err != nil {
		return nil, err
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return nil, err
	}
	c, _, err := m.get(ctx, kv, edge, id)
	return c, err
}

// get reads credential id from kv.
func (m *Manager) get(ctx context.Context, kv jetstream.KeyValue, edge, id string) (*Credential, jetstream.KeyValueEntry, error) {
	e, err := kv.Get(ctx, CredentialKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("%w: %s at edge %s", ErrNotFound, id, edge)
	}
	if err != nil {
		m.forget(edge)
		return nil, nil, fmt.Errorf("access: edge %s: get credential %s: %w", edge, id, err)
	}
	c, err := ParseCredential(id, e.Value())
	if err != nil {
		return nil, e, err
	}
	c.Revision = e.Revision()
	return c, e, nil
}

// Revoke revokes credential id for good at every registered edge whose
// bucket holds it: it stores the credential again with state revoked,
// reason and Changed set to now. A revocation is never a deletion (compare
// [Manager.Remove]): the edge then denies the credential as revoked, and the
// [Auditor] can report grants an edge made with an older set. It returns
// the new revision (the edge's new version) by edge; an edge where it was
// already revoked with the same reason is listed with its current revision,
// unchanged.
//
// It returns an error wrapping [ErrNotFound] when no registered edge holds
// the credential, the [*FieldError] of a bad id or reason, or the errors met
// at some edges (joined), with the revisions of the edges where it
// succeeded.
func (m *Manager) Revoke(ctx context.Context, id, reason string) (map[string]uint64, error) {
	return m.setState(ctx, id, StateRevoked, reason)
}

// Suspend bars credential id for the time being at every registered edge
// whose bucket holds it, as [Manager.Revoke] does but with state suspended,
// from which [Manager.Reinstate] brings it back. A revoked credential stays
// revoked: Suspend then returns an error wrapping [ErrInvalid] and changes
// nothing at any edge. Otherwise it returns as Revoke does.
func (m *Manager) Suspend(ctx context.Context, id, reason string) (map[string]uint64, error) {
	return m.setState(ctx, id, StateSuspended, reason)
}

// Reinstate makes credential id active again, without a reason, at every
// registered edge whose bucket holds it. It is not for revoked credentials:
// if the credential is revoked at any edge, Reinstate returns an error
// wrapping [ErrInvalid] and changes nothing at any edge. Otherwise it
// returns as [Manager.Revoke] does.
func (m *Manager) Reinstate(ctx context.Context, id string) (map[string]uint64, error) {
	return m.setState(ctx, id, StateActive, "")
}

// SetState gives credential id state at every registered edge whose
// bucket holds it: as [Manager.Suspend] does with [StateSuspended],
// [Manager.Revoke] with [StateRevoked] and [Manager.Reinstate] with
// [StateActive], for which reason is ignored. It returns as they do, and a
// [*FieldError] wrapping [ErrInvalid] for any other state.
func (m *Manager) SetState(ctx context.Context, id string, state CredentialState, reason string) (map[string]uint64, error) {
	switch state {
	case StateSuspended, StateRevoked:
		return m.setState(ctx, id, state, reason)
	case StateActive:
		return m.Reinstate(ctx, id)
	}
	return nil, &FieldError{Kind: kindCredential, Name: id, Field: "state",
		Reason: fmt.Sprintf("%q: want %s, %s or %s", state, StateActive, StateSuspended, StateRevoked), Err: ErrInvalid}
}

// stateChangeRetries bounds how often a state change is retried when the
// credential changed between reading and writing it.
const stateChangeRetries = 5

// setState stores credential id with state and reason at every edge that
// holds it.
func (m *Manager) setState(ctx context.Context, id string, state CredentialState, reason string) (map[string]uint64, error) {
	if err := ValidCredentialID(id); err != nil {
		return nil, err
	}
	if p := textProblem(reason, maxReasonLen); p != "" {
		return nil, &FieldError{Kind: kindCredential, Name: id, Field: "reason", Reason: p, Err: ErrInvalid}
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	edges, err := m.hub.Edges(ctx)
	if err != nil {
		return nil, fmt.Errorf("access: registered edges: %w", err)
	}
	// Find the edges that hold the credential, and refuse to bring a
	// revoked one back before changing anything.
	type held struct {
		edge string
		kv   jetstream.KeyValue
	}
	var found []held
	var errs []error
	for _, edge := range edges {
		kv, _, err := m.bucket(ctx, edge)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c, _, err := m.get(ctx, kv, edge, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil && c == nil && !isFieldError(err):
			errs = append(errs, err)
			continue
		case c != nil && c.State == StateRevoked && state != StateRevoked:
			return nil, &FieldError{Kind: kindCredential, Name: id, Field: "state",
				Reason: fmt.Sprintf("revoked at edge %s, for good: it cannot become %s", edge, state), Err: ErrInvalid}
		}
		found = append(found, held{edge, kv})
	}
	if len(found) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%w: %s at no registered edge", ErrNotFound, id)
	}
	out := make(map[string]uint64, len(found))
	for _, h := range found {
		rev, err := m.storeState(ctx, h.kv, h.edge, id, state, reason)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[h.edge] = rev
	}
	m.log.Info("credential state changed", logKeyCredential, id, "state", string(state), "edges", len(out))
	return out, errors.Join(errs...)
}

// isFieldError reports whether err is a *FieldError: a stored value that
// does not parse.
func isFieldError(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe)
}

// storeState stores credential id at edge with state and reason, with
// compare and set on its revision, retrying when it changed meanwhile.
func (m *Manager) storeState(ctx context.Context, kv jetstream.KeyValue, edge, id string, state CredentialState, reason string) (uint64, error) {
	for range stateChangeRetries {
		c, e, err := m.get(ctx, kv, edge, id)
		if err != nil {
			// A stored value that does not parse is denied by the edge
			// already; it cannot be rewritten without its holder.
			return 0, err
		}
		if c.State == StateRevoked && state != StateRevoked {
			return 0, &FieldError{Kind: kindCredential, Name: id, Field: "state",
				Reason: fmt.Sprintf("revoked at edge %s, for good: it cannot become %s", edge, state), Err: ErrInvalid}
		}
		if c.State == state && c.Reason == reason {
			return e.Revision(), nil
		}
		c.State, c.Reason, c.Changed = state, reason, m.cfg.Now().UTC()
		data, err := c.Marshal()
		if err != nil {
			return 0, err
		}
		rev, err := kv.Update(ctx, CredentialKey(id), data, e.Revision())
		if conflict(err) {
			continue // changed meanwhile: read it again
		}
		if err != nil {
			m.forget(edge)
			return 0, fmt.Errorf("access: edge %s: store credential %s: %w", edge, id, err)
		}
		return rev, nil
	}
	return 0, fmt.Errorf("access: edge %s: credential %s kept changing; gave up after %d attempts", edge, id, stateChangeRetries)
}

// Remove takes credential id away from edge entirely: it deletes the key,
// leaving a delete marker that the edge's mirror receives, after which the
// edge knows nothing of the credential and denies it as unknown.
//
// Remove is not [Manager.Revoke]. Use it for a credential that is fine but
// no longer needed at that edge (its holder moved to another site). A
// revocation is a stored value that says "revoked", at every edge, and stays;
// after Remove nothing records that the credential ever existed there, so
// the [Auditor] cannot report a grant the edge made with it while offline.
// It returns an error wrapping [ErrNotFound] when the edge's bucket does not
// hold the credential, or the errors of [Manager.Get].
func (m *Manager) Remove(ctx context.Context, edge, id string) error {
	if err := ValidCredentialID(id); err != nil {
		return err
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return err
	}
	if _, err := kv.Get(ctx, CredentialKey(id)); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: %s at edge %s", ErrNotFound, id, edge)
	} else if err != nil {
		m.forget(edge)
		return fmt.Errorf("access: edge %s: get credential %s: %w", edge, id, err)
	}
	if err := kv.Delete(ctx, CredentialKey(id)); err != nil {
		m.forget(edge)
		return fmt.Errorf("access: edge %s: remove credential %s: %w", edge, id, err)
	}
	m.log.Info("removed credential", message.LogKeyEdge, edge, logKeyCredential, id)
	return nil
}

// PutGroup stores door group g at edge under [GroupKey](g.Name) and returns
// the revision. It validates g ([DoorGroup.Validate]) and, when the manager
// has an inventory, checks its doors against the doors listed at the edge
// (a [*FieldError] naming e.g. "doors[2]", wrapping [ErrUnknownReference]).
// Otherwise it returns the errors of [Manager.Put].
func (m *Manager) PutGroup(ctx context.Context, edge string, g *DoorGroup) (uint64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	if err := m.checkDoors(kindGroup, g.Name, "doors", edge, g.Doors); err != nil {
		return 0, err
	}
	data, err := g.Marshal()
	if err != nil {
		return 0, err
	}
	return m.putRaw(ctx, edge, GroupKey(g.Name), data)
}

// PutSchedule stores schedule s at edge under [ScheduleKey](s.Name) and
// returns the revision. It validates s ([Schedule.Validate]); otherwise it
// returns the errors of [Manager.Put].
func (m *Manager) PutSchedule(ctx context.Context, edge string, s *Schedule) (uint64, error) {
	data, err := s.Marshal()
	if err != nil {
		return 0, err
	}
	return m.putRaw(ctx, edge, ScheduleKey(s.Name), data)
}

// PutRules stores the edge's rules document under [KeyRules] and returns the
// revision. The document is not checked here: validate it with package
// edgekit/rules first. It returns an error wrapping [ErrInvalid] for an
// empty document, or the errors of [Manager.Put].
func (m *Manager) PutRules(ctx context.Context, edge string, doc []byte) (uint64, error) {
	if len(doc) == 0 {
		return 0, fmt.Errorf("%w: empty rules document", ErrInvalid)
	}
	return m.putRaw(ctx, edge, KeyRules, doc)
}

// Rules returns the edge's rules document as stored under [KeyRules], with
// its revision. It returns an error wrapping [ErrNotFound] when the edge
// has none, or the errors of [Manager.Put].
func (m *Manager) Rules(ctx context.Context, edge string) ([]byte, uint64, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, KeyRules)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: no rules document at edge %s", ErrNotFound, edge)
	}
	if err != nil {
		m.forget(edge)
		return nil, 0, fmt.Errorf("access: edge %s: get %s: %w", edge, KeyRules, err)
	}
	return e.Value(), e.Revision(), nil
}

// putRaw stores value under key in edge's bucket.
func (m *Manager) putRaw(ctx context.Context, edge, key string, value []byte) (uint64, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, key, value)
	if err != nil {
		m.forget(edge)
		return 0, fmt.Errorf("access: edge %s: put %s: %w", edge, key, err)
	}
	m.log.Debug("put", message.LogKeyEdge, edge, "key", key, logKeyVersion, rev)
	return rev, nil
}

// List returns every credential the edge's bucket holds, revoked and
// suspended ones included, each with its Revision, sorted by Holder, then
// ID. It returns the [*FieldError] of [ParseCredential] for a stored value
// that does not parse, naming its id, or the errors of [Manager.Put].
func (m *Manager) List(ctx context.Context, edge string) ([]*Credential, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchFiltered(ctx, []string{KeyPrefixCredential + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		m.forget(edge)
		return nil, fmt.Errorf("access: edge %s: list credentials: %w", edge, err)
	}
	defer func() { _ = w.Stop() }()
	var out []*Credential
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // the initial values are all delivered
				slices.SortFunc(out, func(a, b *Credential) int {
					return cmp.Or(strings.Compare(a.Holder, b.Holder), strings.Compare(a.ID, b.ID))
				})
				return out, nil
			}
			c, err := ParseCredential(strings.TrimPrefix(e.Key(), KeyPrefixCredential), e.Value())
			if err != nil {
				return nil, fmt.Errorf("access: edge %s: %w", edge, err)
			}
			c.Revision = e.Revision()
			out = append(out, c)
		case <-ctx.Done():
			return nil, fmt.Errorf("access: edge %s: list credentials: %w", edge, ctx.Err())
		}
	}
}

// Version returns the edge's credential set version at central: the last
// revision of its bucket (0 for an empty bucket). It returns the error of
// [authz.NamesFor] for a bad edge code, or the JetStream error, such as
// jetstream.ErrStreamNotFound (wrapped) for an edge that is not registered.
func (m *Manager) Version(ctx context.Context, edge string) (uint64, error) {
	n, err := authz.NamesFor(m.cfg.Org, edge)
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	s, err := m.js.Stream(ctx, n.CredentialStream)
	if err != nil {
		return 0, fmt.Errorf("access: edge %s: credential stream %s: %w", edge, n.CredentialStream, err)
	}
	return s.CachedInfo().State.LastSeq, nil
}

// ResetMirror starts central's side of the edge's credential mirror over:
// it deletes central's durable consumer through which the edge mirrors its
// bucket and creates it anew, delivering from the first entry. It is an
// operator's tool (a consumer deleted or damaged at central); an edge whose
// store was replaced or wiped needs no call, whatever the order of events:
// it finds its mirror incomplete and rebuilds it by itself
// ([ServiceStats].MirrorRebuilds). An edge whose mirror is whole ignores
// what the new consumer delivers again. It returns the error of
// [authz.NamesFor] for a bad edge code, or the JetStream error.
func (m *Manager) ResetMirror(ctx context.Context, edge string) error {
	n, err := authz.NamesFor(m.cfg.Org, edge)
	if err != nil {
		return err
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	if err := m.js.DeleteConsumer(ctx, n.CredentialStream, n.CredentialConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("access: edge %s: delete credential consumer: %w", edge, err)
	}
	if _, err := m.js.CreateOrUpdatePushConsumer(ctx, n.CredentialStream, n.CredentialConsumerConfig()); err != nil {
		return fmt.Errorf("access: edge %s: create credential consumer: %w", edge, err)
	}
	m.log.Info("credential mirror consumer reset", message.LogKeyEdge, edge)
	return nil
}
