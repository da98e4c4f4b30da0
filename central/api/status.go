package api

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/edgekit/access"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// linkHeardWithin is how recently central must have heard from an edge's
// event flow (its messages, or the idle heartbeat sent every second while
// sourcing runs) for the link to count as up.
const linkHeardWithin = 10 * time.Second

// EdgeStatus is one edge as the API reports it.
type EdgeStatus struct {
	Edge string `json:"edge"` // the edge code
	// Link is "up" when central heard from the edge's event flow within
	// the last 10 s, else "down"; LastHeard is when it last did.
	Link      string    `json:"link"`
	LastHeard time.Time `json:"last_heard,omitzero"` // when central last heard from its event flow
	// Backlog is what the edge holds that central has not stored, as of
	// its last status report at StatusAt; Status is that report (nil when
	// central holds none).
	Backlog  *uint64             `json:"backlog,omitempty"`
	Status   *edgekit.NodeStatus `json:"status,omitempty"`   // its status
	StatusAt time.Time           `json:"status_at,omitzero"` // when the edge published Status
	// CredentialVersion is the edge's credential set version at central,
	// CredentialsReceived the version the edge has confirmed receiving,
	// CredentialsSyncedAt when it last confirmed, and SyncAgeSeconds how
	// long ago that was.
	CredentialVersion   uint64    `json:"credential_version"`
	CredentialsReceived uint64    `json:"credentials_received"`           // see CredentialVersion
	CredentialsSyncedAt time.Time `json:"credentials_synced_at,omitzero"` // see CredentialVersion
	SyncAgeSeconds      *float64  `json:"sync_age_seconds,omitempty"`     // see CredentialVersion
	// Errors lists what could not be read about the edge.
	Errors []string `json:"errors,omitempty"`
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
	now := time.Now()
	heard := map[string]time.Time{}
	sources, srcErr := hub.Sources(ctx)
	for _, src := range sources {
		if src.Flow == edgekit.FlowEvents && !src.Missing && src.Active >= 0 {
			heard[src.Edge] = now.Add(-src.Active)
		}
	}
	events, evErr := s.js.Stream(ctx, hub.EventStream())
	out := make([]EdgeStatus, 0, len(edges))
	for _, e := range edges {
		st := EdgeStatus{Edge: e, Link: "down", LastHeard: heard[e]}
		if srcErr != nil {
			st.Errors = append(st.Errors, "sources: "+srcErr.Error())
		} else if t := heard[e]; !t.IsZero() && now.Sub(t) <= linkHeardWithin {
			st.Link = "up"
		}
		if evErr != nil {
			st.Errors = append(st.Errors, "event stream: "+evErr.Error())
		} else if err := lastStatus(ctx, events, s.org, e, &st); err != nil {
			st.Errors = append(st.Errors, "status: "+err.Error())
		}
		if v, err := mgr.Version(ctx, e); err != nil {
			st.Errors = append(st.Errors, "credential version: "+err.Error())
		} else {
			st.CredentialVersion = v
		}
		if err := credentialsReceived(ctx, s.js, s.org, e, &st); err != nil {
			st.Errors = append(st.Errors, "credential sync: "+err.Error())
		} else if !st.CredentialsSyncedAt.IsZero() {
			age := now.Sub(st.CredentialsSyncedAt).Seconds()
			st.SyncAgeSeconds = &age
		}
		out = append(out, st)
	}
	return out, nil
}

// lastStatus reads the edge's last status report from central's event
// stream into st; none is not an error.
func lastStatus(ctx context.Context, events jetstream.Stream, org, edge string, st *EdgeStatus) error {
	self := topic.Thing{Org: org, Edge: edge, Type: topic.ThingTypeEdge, Code: edge}
	raw, err := events.GetLastMsgForSubject(ctx, self.Subject(topic.State).String())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	e, err := message.FromMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		return err
	}
	ns, err := message.DecodePayload[edgekit.NodeStatus](e)
	if err != nil {
		return err
	}
	st.Status, st.StatusAt, st.Backlog = &ns, e.Time, &ns.Backlog
	return nil
}

// credentialsReceived reads, from central's consumer through which the
// edge mirrors its credential bucket, the revision the edge has confirmed
// receiving and when.
func credentialsReceived(ctx context.Context, js jetstream.JetStream, org, edge string, st *EdgeStatus) error {
	n, err := authz.NamesFor(org, edge)
	if err != nil {
		return err
	}
	c, err := js.PushConsumer(ctx, n.CredentialStream, n.CredentialConsumer)
	if err != nil {
		return err
	}
	info := c.CachedInfo()
	st.CredentialsReceived = info.AckFloor.Stream
	if info.AckFloor.Last != nil {
		st.CredentialsSyncedAt = *info.AckFloor.Last
	}
	return nil
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
	edge := c.r.URL.Query().Get("edge")
	if edge != "" {
		if err := s.edge(edge); err != nil {
			return nil, err
		}
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
		hub, err := s.hub()
		if err != nil {
			return nil, err
		}
		str, err := s.js.Stream(ctx, hub.EventStream())
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
