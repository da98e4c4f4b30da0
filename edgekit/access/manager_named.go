package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// ErrInUse reports a door group or schedule that credentials at the edge
// still name, which [Manager.RemoveGroup] and [Manager.RemoveSchedule]
// refuse to remove. It comes in an [*InUseError].
var ErrInUse = errors.New("access: still named by credentials")

// InUseError is the error of removing a door group or schedule that
// credentials at the edge still name (revoked ones aside). It wraps
// [ErrInUse] and [ErrInvalid].
type InUseError struct {
	Kind        string   // "group" or "schedule"
	Name        string   // the group's or schedule's name
	Edge        string   // the edge code
	Credentials []string // the ids of the credentials that name it, sorted
}

// Error names the credentials, the first ten of them when there are more.
func (e *InUseError) Error() string {
	ids := e.Credentials
	more := ""
	if len(ids) > 10 {
		ids, more = ids[:10], fmt.Sprintf(" and %d more", len(e.Credentials)-10)
	}
	return fmt.Sprintf("access: edge %s: %s %s is still named by %d credentials (%s%s): take it out of them first",
		e.Edge, e.Kind, e.Name, len(e.Credentials), strings.Join(ids, ", "), more)
}

// Unwrap returns [ErrInUse] and [ErrInvalid].
func (e *InUseError) Unwrap() []error { return []error{ErrInUse, ErrInvalid} }

// Group returns the door group name at edge, as stored, and its revision.
// It returns a [*FieldError] for a name that is not a topic token, an
// error wrapping jetstream.ErrKeyNotFound when the edge's bucket holds no
// such group, or the errors of [Manager.Put].
func (m *Manager) Group(ctx context.Context, edge, name string) (*DoorGroup, uint64, error) {
	return getNamed(m, ctx, edge, kindGroup, partGroup, KeyPrefixGroup, name, ParseDoorGroup)
}

// Groups returns the door groups at edge, sorted by name. It returns the
// [*FieldError] of a stored value that does not parse, or the errors of
// [Manager.Put].
func (m *Manager) Groups(ctx context.Context, edge string) ([]*DoorGroup, error) {
	return listNamed(m, ctx, edge, KeyPrefixGroup, ParseDoorGroup)
}

// RemoveGroup deletes the door group name at edge, leaving a delete marker
// that the edge's mirror receives, and returns a credential set version
// that includes the removal. It refuses, with an [*InUseError] naming them,
// while credentials at the edge that are not revoked name the group: the
// check and the delete are two steps, so remove it from the credentials
// (and add it to none) first. It returns the errors of [Manager.Group]
// too.
func (m *Manager) RemoveGroup(ctx context.Context, edge, name string) (uint64, error) {
	return m.removeNamed(ctx, edge, kindGroup, partGroup, KeyPrefixGroup, name, func(c *Credential) []string { return c.Groups })
}

// Schedule returns the schedule name at edge, as stored, and its
// revision. It returns the errors [Manager.Group] returns.
func (m *Manager) Schedule(ctx context.Context, edge, name string) (*Schedule, uint64, error) {
	return getNamed(m, ctx, edge, kindSchedule, partSchedule, KeyPrefixSchedule, name, ParseSchedule)
}

// Schedules returns the schedules at edge, sorted by name. It returns the
// errors [Manager.Groups] returns.
func (m *Manager) Schedules(ctx context.Context, edge string) ([]*Schedule, error) {
	return listNamed(m, ctx, edge, KeyPrefixSchedule, ParseSchedule)
}

// RemoveSchedule deletes the schedule name at edge as [Manager.RemoveGroup]
// deletes a group, and refuses likewise while credentials name it.
func (m *Manager) RemoveSchedule(ctx context.Context, edge, name string) (uint64, error) {
	return m.removeNamed(ctx, edge, kindSchedule, partSchedule, KeyPrefixSchedule, name, func(c *Credential) []string { return c.Schedules })
}

// getNamed reads the group or schedule name from edge's bucket.
func getNamed[T any](m *Manager, ctx context.Context, edge, kind string, part topic.Part, prefix, name string, parse func(string, []byte) (T, error)) (T, uint64, error) {
	var zero T
	if err := topic.ValidateToken(part, name); err != nil {
		return zero, 0, nameError(kind, name, err)
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return zero, 0, err
	}
	e, err := kv.Get(ctx, prefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return zero, 0, fmt.Errorf("access: edge %s: no %s %s: %w", edge, kind, name, err)
	}
	if err != nil {
		m.forget(edge)
		return zero, 0, fmt.Errorf("access: edge %s: get %s %s: %w", edge, kind, name, err)
	}
	v, err := parse(name, e.Value())
	if err != nil {
		return zero, 0, fmt.Errorf("access: edge %s: stored %s %s: %w", edge, kind, name, err)
	}
	return v, e.Revision(), nil
}

// listNamed reads every value under prefix from edge's bucket, sorted by
// name.
func listNamed[T any](m *Manager, ctx context.Context, edge, prefix string, parse func(string, []byte) (T, error)) ([]T, error) {
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchFiltered(ctx, []string{prefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		m.forget(edge)
		return nil, fmt.Errorf("access: edge %s: list %s*: %w", edge, prefix, err)
	}
	defer func() { _ = w.Stop() }()
	type named struct {
		name string
		v    T
	}
	var all []named
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // the initial values are all delivered
				slices.SortFunc(all, func(a, b named) int { return strings.Compare(a.name, b.name) })
				out := make([]T, len(all))
				for i, n := range all {
					out[i] = n.v
				}
				return out, nil
			}
			name := strings.TrimPrefix(e.Key(), prefix)
			v, err := parse(name, e.Value())
			if err != nil {
				return nil, fmt.Errorf("access: edge %s: stored %s%s: %w", edge, prefix, name, err)
			}
			all = append(all, named{name, v})
		case <-ctx.Done():
			return nil, fmt.Errorf("access: edge %s: list %s*: %w", edge, prefix, ctx.Err())
		}
	}
}

// removeNamed deletes the group or schedule name from edge's bucket unless
// a credential that is not revoked names it (uses returns the names a
// credential lists).
func (m *Manager) removeNamed(ctx context.Context, edge, kind string, part topic.Part, prefix, name string, uses func(*Credential) []string) (uint64, error) {
	if err := topic.ValidateToken(part, name); err != nil {
		return 0, nameError(kind, name, err)
	}
	ctx, cancel := m.ctx(ctx)
	defer cancel()
	kv, _, err := m.bucket(ctx, edge)
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, prefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("access: edge %s: no %s %s: %w", edge, kind, name, err)
	}
	if err != nil {
		m.forget(edge)
		return 0, fmt.Errorf("access: edge %s: get %s %s: %w", edge, kind, name, err)
	}
	creds, err := m.List(ctx, edge)
	if err != nil {
		return 0, err
	}
	var naming []string
	for _, c := range creds {
		if c.State != StateRevoked && slices.Contains(uses(c), name) {
			naming = append(naming, c.ID)
		}
	}
	if len(naming) > 0 {
		slices.Sort(naming)
		return 0, &InUseError{Kind: kind, Name: name, Edge: edge, Credentials: naming}
	}
	// Only the value checked: a concurrent change makes this fail.
	if err := kv.Delete(ctx, prefix+name, jetstream.LastRevision(e.Revision())); err != nil {
		m.forget(edge)
		return 0, fmt.Errorf("access: edge %s: remove %s %s: %w", edge, kind, name, err)
	}
	m.log.Info("removed "+kind, message.LogKeyEdge, edge, "name", name)
	return m.Version(ctx, edge)
}
