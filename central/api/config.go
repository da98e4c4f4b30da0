package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
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

func (s *Server) listGroups(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	entries, err := s.bucketEntries(ctx, edge, access.KeyPrefixGroup)
	if err != nil {
		return nil, err
	}
	out := []GroupItem{}
	for name, v := range entries {
		g, err := access.ParseDoorGroup(name, v)
		if err != nil {
			return nil, fmt.Errorf("stored group %s: %w", name, err)
		}
		out = append(out, GroupItem{Name: name, Doors: g.Doors})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) listSchedules(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	entries, err := s.bucketEntries(ctx, edge, access.KeyPrefixSchedule)
	if err != nil {
		return nil, err
	}
	out := []ScheduleItem{}
	for name, v := range entries {
		sc, err := access.ParseSchedule(name, v)
		if err != nil {
			return nil, fmt.Errorf("stored schedule %s: %w", name, err)
		}
		out = append(out, ScheduleItem{Name: name, Intervals: sc.Intervals})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
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

func (s *Server) putGroup(c *call) (any, error) {
	edge, name := c.r.PathValue("edge"), c.r.PathValue("name")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	if err := topic.ValidateToken(topic.PartThingCode, name); err != nil {
		return nil, invalid("name", "group name %q: %v", name, err)
	}
	body, err := c.readBody()
	if err != nil {
		return nil, err
	}
	g, err := access.ParseDoorGroup(name, body)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before := s.previous(ctx, edge, access.GroupKey(name))
	rev, err := m.PutGroup(ctx, edge, g)
	if err != nil {
		return nil, err
	}
	c.change = &change{object: "edge " + edge + " group " + name, before: before, after: GroupItem{Name: name, Doors: g.Doors}}
	return namedChange{Edge: edge, Name: name, Revision: rev}, nil
}

func (s *Server) putSchedule(c *call) (any, error) {
	edge, name := c.r.PathValue("edge"), c.r.PathValue("name")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	if err := topic.ValidateToken(topic.PartThingCode, name); err != nil {
		return nil, invalid("name", "schedule name %q: %v", name, err)
	}
	body, err := c.readBody()
	if err != nil {
		return nil, err
	}
	sc, err := access.ParseSchedule(name, body)
	if err != nil {
		return nil, err
	}
	m, err := s.manager()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	before := s.previous(ctx, edge, access.ScheduleKey(name))
	rev, err := m.PutSchedule(ctx, edge, sc)
	if err != nil {
		return nil, err
	}
	c.change = &change{object: "edge " + edge + " schedule " + name, before: before, after: ScheduleItem{Name: name, Intervals: sc.Intervals}}
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
