package api

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/central"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// EdgeStatus is one edge as the API reports it: what central holds about
// it ([central.EdgeStatus]), with the backlog and the credential sync's age
// spelled out.
type EdgeStatus struct {
	central.EdgeStatus
	// Backlog is what the edge holds that central has not stored, as of
	// its last status report at StatusAt (nil when central holds none).
	Backlog *uint64 `json:"backlog,omitempty"`
	// SyncAgeSeconds is how long ago the edge last confirmed receiving
	// its credentials (CredentialsSyncedAt); nil when it never has.
	SyncAgeSeconds *float64 `json:"sync_age_seconds,omitempty"`
}

func (s *Server) listEdges(c *call) (any, error) {
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	return s.edgeStatus(ctx, s.edges())
}

func (s *Server) getEdge(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	out, err := s.edgeStatus(ctx, []string{edge})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (s *Server) edgeStatus(ctx context.Context, edges []string) ([]EdgeStatus, error) {
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	mgr, err := s.manager()
	if err != nil {
		return nil, err
	}
	sts := central.ReadEdgeStatus(ctx, s.js, hub, mgr, edges)
	now := time.Now()
	out := make([]EdgeStatus, len(sts))
	for i, st := range sts {
		out[i].EdgeStatus = st
		if st.Status != nil {
			out[i].Backlog = &st.Status.Backlog
		}
		if !st.CredentialsSyncedAt.IsZero() {
			age := now.Sub(st.CredentialsSyncedAt).Seconds()
			out[i].SyncAgeSeconds = &age
		}
	}
	return out, nil
}

// ThingStatus is a thing of the inventory and its liveness.
type ThingStatus struct {
	Thing string `json:"thing"` // EDGE.TYPE.CODE
	Edge  string `json:"edge"`  // the edge code
	Type  string `json:"type"`  // the message type
	Code  string `json:"code"`  // the thing code
	// State is "online", "stale" (online, but silent for longer than the
	// server's stale-after), "offline" (its last word was a death) or
	// "unknown" (central holds nothing from it).
	State    string    `json:"state"`
	LastSeen time.Time `json:"last_seen,omitzero"` // its last message at central
}

func (s *Server) listThings(c *call) (any, error) {
	edge, err := s.edgeFilter(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	things := s.things(edge)
	now := time.Now()
	type live struct {
		online   bool
		lastSeen time.Time
	}
	known := map[topic.Thing]live{}
	if st := s.central.Store(); st != nil {
		ls, err := st.Liveness(ctx, s.org, edge)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			known[l.Thing] = live{online: l.Online, lastSeen: l.LastSeenAt}
		}
	} else {
		str, err := s.eventStream(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range things {
			last, err := str.GetLastMsgForSubject(ctx, t.String()+".*")
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			l := live{online: true, lastSeen: last.Time}
			if state, err := str.GetLastMsgForSubject(ctx, t.Subject(topic.State).String()); err == nil {
				if e, err := message.FromMsg(&nats.Msg{Subject: state.Subject, Header: state.Header, Data: state.Data}); err == nil {
					l.online = e.Name != message.NameThingDeath
				}
			}
			known[t] = l
		}
	}
	out := make([]ThingStatus, 0, len(things))
	for _, t := range things {
		ts := ThingStatus{Thing: thingRef(t), Edge: t.Edge, Type: t.Type, Code: t.Code, State: "unknown"}
		if l, ok := known[t]; ok {
			ts.LastSeen = l.lastSeen.UTC()
			switch {
			case !l.online:
				ts.State = "offline"
			case now.Sub(l.lastSeen) > s.cfg.StaleAfter:
				ts.State = "stale"
			default:
				ts.State = "online"
			}
		}
		out = append(out, ts)
	}
	return out, nil
}

func (s *Server) getAuditStatus(c *call) (any, error) {
	edge := c.r.PathValue("edge")
	if err := s.edge(edge); err != nil {
		return nil, err
	}
	hub, err := s.hub()
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.call(c.r.Context())
	defer cancel()
	r, err := access.ReadAuditReport(ctx, s.js, hub.EventStream(), "", s.org, edge)
	if err != nil {
		return nil, err
	}
	return struct {
		*access.AuditReport
		Intact bool `json:"intact"`
	}{r, r.Intact()}, nil
}
