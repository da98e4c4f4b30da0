package central

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

// EdgeStatus is one edge as central sees it, read by [ReadEdgeStatus].
type EdgeStatus struct {
	Edge string `json:"edge"` // the edge code
	// Link is "up" when central heard from the edge's event flow within
	// the last 10 s, else "down"; LastHeard is when it last did.
	Link      string    `json:"link"`
	LastHeard time.Time `json:"last_heard,omitzero"` // see Link
	// Status is the edge's last status report in central's event stream,
	// and StatusAt when the edge published it; nil when central holds
	// none.
	Status   *edgekit.NodeStatus `json:"status,omitempty"`
	StatusAt time.Time           `json:"status_at,omitzero"` // see Status
	// CredentialVersion is the edge's credential set version at central,
	// CredentialsReceived the version the edge has confirmed receiving,
	// and CredentialsSyncedAt when it last confirmed.
	CredentialVersion   uint64    `json:"credential_version"`
	CredentialsReceived uint64    `json:"credentials_received"`           // see CredentialVersion
	CredentialsSyncedAt time.Time `json:"credentials_synced_at,omitzero"` // see CredentialVersion
	// Errors lists what could not be read about the edge.
	Errors []string `json:"errors,omitempty"`
}

// ReadEdgeStatus reads, through js, the status of each of edges of hub's
// org: its link from hub's sources, its last status report from hub's
// event stream, its credential set version from mgr and what it has
// confirmed receiving from central's consumer of its credential mirror.
// It returns one EdgeStatus per edge, in the order given; what it cannot
// read about an edge it records in that edge's Errors rather than
// returning an error.
func ReadEdgeStatus(ctx context.Context, js jetstream.JetStream, hub *edgekit.Hub, mgr *access.Manager, edges []string) []EdgeStatus {
	now := time.Now()
	heard := map[string]time.Time{}
	sources, srcErr := hub.Sources(ctx)
	for _, src := range sources {
		if src.Flow == edgekit.FlowEvents && !src.Missing && src.Active >= 0 {
			heard[src.Edge] = now.Add(-src.Active)
		}
	}
	events, evErr := js.Stream(ctx, hub.EventStream())
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
		} else if err := lastStatus(ctx, events, hub.Org(), e, &st); err != nil {
			st.Errors = append(st.Errors, "status: "+err.Error())
		}
		if v, err := mgr.Version(ctx, e); err != nil {
			st.Errors = append(st.Errors, "credential version: "+err.Error())
		} else {
			st.CredentialVersion = v
		}
		if err := credentialsReceived(ctx, js, hub.Org(), e, &st); err != nil {
			st.Errors = append(st.Errors, "credential sync: "+err.Error())
		}
		out = append(out, st)
	}
	return out
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
	st.Status, st.StatusAt = &ns, e.Time
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
