package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/edgekit/rules"
	"github.com/lintel-io/lintel/topic"
)

// GroupItem is a door group as the API shows it.
type GroupItem struct {
	Name  string   `json:"name"`  // its name
	Doors []string `json:"doors"` // the door codes
}

// ScheduleItem is a weekly schedule as the API shows it.
type ScheduleItem struct {
	Name      string            `json:"name"`      // its name
	Intervals []access.Interval `json:"intervals"` // the weekly intervals
}

// bucketEntries returns the values under prefix in the edge's credential
// bucket, by the rest of their key.
func (s *Server) bucketEntries(ctx context.Context, edge, prefix string) (map[string][]byte, error) {
	n, err := authz.NamesFor(s.org, edge)
	if err != nil {
		return nil, err
	}
	kv, err := s.js.KeyValue(ctx, n.CredentialBucket)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(k, prefix)] = e.Value()
	}
	return out, nil
}

// namedKind is a kind of named object in an edge's credential bucket that
// the API lists and defines one by one: door groups and schedules. T is
// the object as package access reads it, I as the API shows it.
type namedKind[T, I any] struct {
	name   string                                    // "group", "schedule"
	prefix string                                    // the prefix of its keys in the bucket
	parse  func(name string, data []byte) (T, error) // access.ParseDoorGroup, ...
	// put stores it at the edge and returns the revision.
	put  func(m *access.Manager, ctx context.Context, edge string, v T) (uint64, error)
	item func(name string, v T) I // as the API shows it
}

var (
	groupKind = namedKind[*access.DoorGroup, GroupItem]{
		name: "group", prefix: access.KeyPrefixGroup, parse: access.ParseDoorGroup, put: (*access.Manager).PutGroup,
		item: func(name string, g *access.DoorGroup) GroupItem { return GroupItem{Name: name, Doors: g.Doors} },
	}
	scheduleKind = namedKind[*access.Schedule, ScheduleItem]{
		name: "schedule", prefix: access.KeyPrefixSchedule, parse: access.ParseSchedule, put: (*access.Manager).PutSchedule,
		item: func(name string, sc *access.Schedule) ScheduleItem {
			return ScheduleItem{Name: name, Intervals: sc.Intervals}
		},
	}
)

func (s *Server) listGroups(c *call) (any, error)    { return listNamed(s, c, groupKind) }
func (s *Server) listSchedules(c *call) (any, error) { return listNamed(s, c, scheduleKind) }
func (s *Server) putGroup(c *call) (any, error)      { return putNamed(s, c, groupKind) }
func (s *Server) putSchedule(c *call) (any, error)   { return putNamed(s, c, scheduleKind) }

// listNamed answers with the objects of kind k at the {edge}, by name.
func listNamed[T, I any](s *Server, c *call, k namedKind[T, I]) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	entries, err := s.bucketEntries(ctx, edge, k.prefix)
	if err != nil {
		return nil, err
	}
	out := []I{}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		v, err := k.parse(name, entries[name])
		if err != nil {
			return nil, fmt.Errorf("stored %s %s: %w", k.name, name, err)
		}
		out = append(out, k.item(name, v))
	}
	return out, nil
}

// namedChange is the answer to putGroup and putSchedule.
type namedChange struct {
	Edge     string `json:"edge"`
	Name     string `json:"name"`
	Revision uint64 `json:"revision"`
}

// previous returns the stored value of key at edge as JSON, or nil.
func (s *Server) previous(ctx context.Context, edge, key string) json.RawMessage {
	n, err := authz.NamesFor(s.org, edge)
	if err != nil {
		return nil
	}
	kv, err := s.js.KeyValue(ctx, n.CredentialBucket)
	if err != nil {
		return nil
	}
	e, err := kv.Get(ctx, key)
	if err != nil || !json.Valid(e.Value()) {
		return nil
	}
	return e.Value()
}

// putNamed stores the body as the object of kind k named {name} at the
// {edge}.
func putNamed[T, I any](s *Server, c *call, k namedKind[T, I]) (any, error) {
	edge, name := c.r.PathValue("edge"), c.r.PathValue("name")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	if err := topic.ValidateToken(topic.PartThingCode, name); err != nil {
		return nil, invalid("name", "%s name %q: %v", k.name, name, err)
	}
	body, err := c.readBody()
	if err != nil {
		return nil, err
	}
	v, err := k.parse(name, body)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before := s.previous(ctx, edge, k.prefix+name)
	rev, err := k.put(m, ctx, edge, v)
	if err != nil {
		return nil, err
	}
	c.change = &change{object: "edge " + edge + " " + k.name + " " + name, before: before, after: k.item(name, v)}
	return namedChange{Edge: edge, Name: name, Revision: rev}, nil
}

func (s *Server) getRules(c *call) (any, error) {
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
	doc, rev, err := m.Rules(ctx, edge)
	if err != nil {
		return nil, err
	}
	c.raw = true
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("ETag", fmt.Sprintf(`"%d"`, rev))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(doc)
	return nil, nil
}

// rulesReport is the answer to validateRules and putRules.
type rulesReport struct {
	Edge     string `json:"edge"`
	Rules    int    `json:"rules"`
	Valid    bool   `json:"valid"`
	Revision uint64 `json:"revision,omitempty"`
}

// parseRules reads and checks the body as the edge's rules document.
func (s *Server) parseRules(c *call) (string, []byte, *rules.RuleSet, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return "", nil, nil, err
	}
	doc, err := c.readBody()
	if err != nil {
		return "", nil, nil, err
	}
	rs, err := rules.Parse(doc, rules.Scope{Org: s.org, Edge: edge})
	if err != nil {
		return "", nil, nil, err
	}
	return edge, doc, rs, nil
}

func (s *Server) validateRules(c *call) (any, error) {
	edge, _, rs, err := s.parseRules(c)
	if err != nil {
		return nil, err
	}
	return rulesReport{Edge: edge, Rules: rs.Len(), Valid: true}, nil
}

func (s *Server) putRules(c *call) (any, error) {
	edge, doc, rs, err := s.parseRules(c)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before := s.previous(ctx, edge, access.KeyRules)
	rev, err := m.PutRules(ctx, edge, doc)
	if err != nil {
		return nil, err
	}
	var after any = json.RawMessage(doc)
	if !json.Valid(doc) {
		after = string(doc)
	}
	c.change = &change{object: "edge " + edge + " rules", before: before, after: after}
	return rulesReport{Edge: edge, Rules: rs.Len(), Valid: true, Revision: rev}, nil
}
