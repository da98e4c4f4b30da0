package api

import (
	"context"
	"errors"
	"iter"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// CredentialItem is a credential as the API shows it: its id (the keyed
// hash of the card number or PIN), never the number itself.
type CredentialItem struct {
	ID         string    `json:"id"`                   // its id
	Edge       string    `json:"edge,omitempty"`       // the edge code
	Holder     string    `json:"holder"`               // who holds it
	Kind       string    `json:"kind,omitempty"`       // card, pin or mobile
	State      string    `json:"state"`                // active, suspended or revoked
	Reason     string    `json:"reason,omitempty"`     // why it is suspended or revoked
	Doors      []string  `json:"doors,omitempty"`      // the door codes
	Groups     []string  `json:"groups,omitempty"`     // door groups whose doors it opens
	Schedules  []string  `json:"schedules,omitempty"`  // schedules that say when it may be used
	ValidFrom  time.Time `json:"valid_from,omitzero"`  // when it becomes valid; zero for always
	ValidUntil time.Time `json:"valid_until,omitzero"` // when it stops being valid; zero for never
	Changed    time.Time `json:"changed,omitzero"`     // when central last changed it
	// Revision is the edge's credential set version the credential was
	// stored (or read) at.
	Revision uint64 `json:"revision"`
}

func credentialItem(edge string, c *access.Credential) *CredentialItem {
	if c == nil {
		return nil
	}
	return &CredentialItem{ID: c.ID, Edge: edge, Holder: c.Holder, Kind: string(c.Kind), State: string(c.State), Reason: c.Reason,
		Doors: c.Doors, Groups: c.Groups, Schedules: c.Schedules, ValidFrom: c.ValidFrom, ValidUntil: c.ValidUntil,
		Changed: c.Changed, Revision: c.Revision}
}

// credentialBody is the body of createCredential and updateCredential. A
// credential is created from its card number (Card) or PIN, which central
// hashes, or from its id (ID, the keyed hash made with the org's hash key
// on the operator's machine) and its Kind, so that the secret never
// leaves that machine.
type credentialBody struct {
	Card       *string  `json:"card"`
	PIN        *string  `json:"pin"`
	ID         *string  `json:"id"`
	Kind       *string  `json:"kind"`
	Holder     string   `json:"holder"`
	Doors      []string `json:"doors"`
	Groups     []string `json:"groups"`
	Schedules  []string `json:"schedules"`
	ValidFrom  string   `json:"valid_from"`
	ValidUntil string   `json:"valid_until"`
}

// apply sets c's changeable fields from b; it returns a problem naming a
// validity time that is not RFC 3339.
func (b *credentialBody) apply(c *access.Credential) error {
	c.Holder, c.Doors, c.Groups, c.Schedules = b.Holder, b.Doors, b.Groups, b.Schedules
	c.ValidFrom, c.ValidUntil = time.Time{}, time.Time{}
	for _, v := range []struct {
		field, value string
		to           *time.Time
	}{{"valid_from", b.ValidFrom, &c.ValidFrom}, {"valid_until", b.ValidUntil, &c.ValidUntil}} {
		if v.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v.value)
		if err != nil {
			return invalid(v.field, "%s %q: want an RFC 3339 time such as 2027-01-31T18:00:00Z", v.field, v.value)
		}
		*v.to = t.UTC()
	}
	return nil
}

func (s *Server) listCredentials(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	list, err := m.List(ctx, edge)
	if err != nil {
		return nil, err
	}
	out := make([]*CredentialItem, len(list))
	for i, cr := range list {
		out[i] = credentialItem(edge, cr)
	}
	return out, nil
}

// credentialID reads and checks the {id} path parameter.
func credentialID(c *call) (string, error) {
	id := c.r.PathValue("id")
	if err := access.ValidCredentialID(id); err != nil {
		return "", invalid("id", "credential id %q: want the 64 lower-case hex characters of its hash", id)
	}
	return id, nil
}

func (s *Server) getCredential(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	id, err := credentialID(c)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	cr, err := m.Get(ctx, edge, id)
	if err != nil {
		return nil, err
	}
	return credentialItem(edge, cr), nil
}

func (s *Server) createCredential(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	var b credentialBody
	if err := c.decode(&b); err != nil {
		return nil, err
	}
	var given []string
	for name, p := range map[string]*string{"card": b.Card, "pin": b.PIN, "id": b.ID} {
		if p != nil {
			given = append(given, name)
		}
	}
	slices.Sort(given) // card, id, pin
	switch {
	case len(given) == 0:
		return nil, invalid("card", "give the card number (card), the PIN (pin), or the credential's hash (id) and its kind")
	case len(given) > 1:
		return nil, invalid(given[len(given)-1], "give one of card, pin and id, not %s", strings.Join(given, " and "))
	case b.Kind != nil && b.ID == nil:
		return nil, invalid("kind", "kind goes with id only: card and pin say their kind")
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	cr := &access.Credential{State: access.StateActive}
	if err := b.apply(cr); err != nil {
		return nil, err
	}
	field := "card"
	if b.ID != nil {
		field = "id"
		if err := access.ValidCredentialID(*b.ID); err != nil {
			return nil, invalid("id", "id %q: want the 64 lower-case hex characters of the credential's hash, made with the org's hash key", *b.ID)
		}
		switch kind := message.CredentialKind(deref(b.Kind)); kind {
		case message.CredentialCard, message.CredentialPIN:
			cr.ID, cr.Kind = *b.ID, kind
		case "":
			return nil, invalid("kind", "kind is required with id: card or pin")
		default:
			return nil, invalid("kind", "kind %q: want card or pin", kind)
		}
	} else {
		secret, kind := b.Card, message.CredentialCard
		if b.PIN != nil {
			secret, kind, field = b.PIN, message.CredentialPIN, "pin"
		}
		v := strings.TrimSpace(*secret)
		if v == "" || len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, invalid(field, "%s: want 1 to 256 printable characters", field)
		}
		cr.Kind = kind
		if cr.ID, err = m.Hash(message.Credential(v)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before, err := m.Get(ctx, edge, cr.ID)
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		return nil, err
	}
	if before != nil {
		return nil, problemf(http.StatusConflict, slugConflict, field, "edge %s already holds this credential as %s: update it with PUT %s/edges/%s/credentials/%s",
			edge, before.ID, PathPrefix, edge, before.ID)
	}
	if _, err := m.Put(ctx, edge, cr); err != nil {
		return nil, err
	}
	out := credentialItem(edge, cr)
	c.status = http.StatusCreated
	c.change = &change{object: "edge " + edge + " credential " + cr.ID, after: out}
	return out, nil
}

func (s *Server) updateCredential(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	id, err := credentialID(c)
	if err != nil {
		return nil, err
	}
	var b credentialBody
	if err := c.decode(&b); err != nil {
		return nil, err
	}
	if b.Card != nil || b.PIN != nil || b.ID != nil || b.Kind != nil {
		return nil, invalid("card", "a credential's card number, PIN, id or kind cannot change: create a new credential")
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	cur, err := m.Get(ctx, edge, id)
	if err != nil {
		return nil, err
	}
	before := credentialItem(edge, cur)
	next := *cur
	if err := b.apply(&next); err != nil {
		return nil, err
	}
	if _, err := m.Put(ctx, edge, &next); err != nil {
		return nil, err
	}
	out := credentialItem(edge, &next)
	c.change = &change{object: "edge " + edge + " credential " + id, before: before, after: out}
	return out, nil
}

// stateChange is the answer to suspend, reinstate and revoke: the new
// revision (the edge's new credential set version) by edge.
type stateChange struct {
	ID        string            `json:"id"`
	State     string            `json:"state"`
	Revisions map[string]uint64 `json:"revisions"`
}

func (s *Server) suspendCredential(c *call) (any, error) {
	return s.changeState(c, access.StateSuspended)
}

func (s *Server) reinstateCredential(c *call) (any, error) {
	return s.changeState(c, access.StateActive)
}

func (s *Server) revokeCredential(c *call) (any, error) {
	return s.changeState(c, access.StateRevoked)
}

func (s *Server) changeState(c *call, state access.CredentialState) (any, error) {
	id, err := credentialID(c)
	if err != nil {
		return nil, err
	}
	var b struct {
		Reason string `json:"reason"`
	}
	if state != access.StateActive {
		if err := c.decode(&b); err != nil {
			return nil, err
		}
		if strings.TrimSpace(b.Reason) == "" {
			return nil, invalid("reason", "say why, in reason")
		}
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before := heldAt(ctx, m, id, slices.Values(s.edges()))
	revs, err := m.SetState(ctx, id, state, b.Reason)
	if len(revs) > 0 {
		c.change = &change{object: "credential " + id, before: before, after: heldAt(ctx, m, id, maps.Keys(revs))}
	}
	if err != nil {
		if len(revs) > 0 {
			// Some edges changed: the change is logged, the failure reported.
			s.log.Warn("credential state changed at some edges only", "credential", id, "state", state, "err", err)
		}
		return nil, err
	}
	return stateChange{ID: id, State: string(state), Revisions: revs}, nil
}

// heldAt returns credential id as each of edges holds it, by edge, leaving
// out the edges where it cannot be read.
func heldAt(ctx context.Context, m *access.Manager, id string, edges iter.Seq[string]) map[string]*CredentialItem {
	out := map[string]*CredentialItem{}
	for e := range edges {
		if cr, err := m.Get(ctx, e, id); err == nil {
			out[e] = credentialItem(e, cr)
		}
	}
	return out
}

// deref returns *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) getGroup(c *call) (any, error) {
	return getNamedItem(s, c, groupKind, (*access.Manager).Group)
}

func (s *Server) getSchedule(c *call) (any, error) {
	return getNamedItem(s, c, scheduleKind, (*access.Manager).Schedule)
}

func (s *Server) removeGroup(c *call) (any, error) {
	return removeNamedItem(s, c, groupKind, (*access.Manager).Group, (*access.Manager).RemoveGroup)
}

func (s *Server) removeSchedule(c *call) (any, error) {
	return removeNamedItem(s, c, scheduleKind, (*access.Manager).Schedule, (*access.Manager).RemoveSchedule)
}

// namedGetter reads a group or schedule at an edge with its revision:
// (*access.Manager).Group or Schedule.
type namedGetter[T any] func(m *access.Manager, ctx context.Context, edge, name string) (T, uint64, error)

// namedPath reads and checks the {edge} and {name} path parameters.
func (s *Server) namedPath(c *call, kind string) (edge, name string, err error) {
	edge, name = c.r.PathValue("edge"), c.r.PathValue("name")
	if err := s.edge(edge); err != nil {
		return "", "", err
	}
	if err := topic.ValidateToken(topic.PartThingCode, name); err != nil {
		return "", "", invalid("name", "%s name %q: %v", kind, name, err)
	}
	return edge, name, nil
}

// getNamedItem answers with the object of kind k named {name} at the
// {edge}.
func getNamedItem[T, I any](s *Server, c *call, k namedKind[T, I], get namedGetter[T]) (any, error) {
	edge, name, err := s.namedPath(c, k.name)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	v, _, err := get(m, ctx, edge, name)
	if err != nil {
		return nil, err
	}
	return k.item(name, v), nil
}

// removeNamedItem removes the object of kind k named {name} at the
// {edge}; a credential that names it makes it a 409 naming the
// credentials.
func removeNamedItem[T, I any](s *Server, c *call, k namedKind[T, I], get namedGetter[T],
	remove func(m *access.Manager, ctx context.Context, edge, name string) (uint64, error)) (any, error) {
	edge, name, err := s.namedPath(c, k.name)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	v, _, err := get(m, ctx, edge, name)
	if err != nil {
		return nil, err
	}
	rev, err := remove(m, ctx, edge, name)
	if err != nil {
		return nil, err
	}
	c.change = &change{object: "edge " + edge + " " + k.name + " " + name, before: k.item(name, v)}
	return namedChange{Edge: edge, Name: name, Revision: rev}, nil
}
