package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

// linkHeardWithin is how recently central must have heard from an edge's
// event flow (messages, or the idle heartbeat sent every second while
// sourcing runs) for the link to count as up.
const linkHeardWithin = 10 * time.Second

// edgeStatus is one edge's line of "status".
type edgeStatus struct {
	Edge string `json:"edge"`
	// Link is "up" when central heard from the edge's event flow within
	// linkHeardWithin, else "down".
	Link string `json:"link"`
	// LastHeard is when central last heard from the edge's event flow.
	LastHeard time.Time `json:"last_heard,omitzero"`
	// Status is the edge's last published status, and StatusAt when it
	// published it; nil when central holds none.
	Status   *edgekit.NodeStatus `json:"status,omitempty"`
	StatusAt time.Time           `json:"status_at,omitzero"`
	// CredentialVersion is the edge's credential set version at central;
	// CredentialsReceived the version the edge has confirmed receiving,
	// and CredentialsSyncedAt when it last confirmed.
	CredentialVersion   uint64    `json:"credential_version"`
	CredentialsReceived uint64    `json:"credentials_received"`
	CredentialsSyncedAt time.Time `json:"credentials_synced_at,omitzero"`
	// Errors lists what could not be read about the edge.
	Errors []string `json:"errors,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var o liveFlags
	cmd := &cobra.Command{
		Use:   "status [EDGE...]",
		Short: "Show each edge's link, backlog, credential sync and devices",
		Long: `status reads, at central, the state of each edge of the org (or of the
edges named):

  LINK      up when central heard from the edge's event flow in the last
            10 s (its messages, or the heartbeat sent every second)
  BACKLOG   messages the edge holds that central has not stored yet, as of
            the edge's last status report (STATUS, how long ago)
  CREDS     the edge's credential set version at central, and the version
            the edge confirmed receiving; SYNCED, how long ago it confirmed
  DEVICES   the edge's devices online / stale / offline

An edge central has never heard from shows "-". status exits with 1 when
an edge named is not in the inventory.`,
		Example: `  lintelctl status
  lintelctl status hq --output json`,
		RunE: a.runE(func(cmd *cobra.Command, args []string) error { return a.status(cmd.Context(), &o, args) }),
	}
	addLiveFlags(cmd, &o)
	return cmd
}

func (a *app) status(ctx context.Context, o *liveFlags, names []string) error {
	d, err := o.dial(ctx, "status")
	if err != nil {
		return err
	}
	defer d.close()
	edges, err := d.edges()
	if err != nil {
		return err
	}
	if len(names) > 0 {
		known := map[string]bool{}
		for _, e := range edges {
			known[e] = true
		}
		for _, n := range names {
			if !known[n] {
				return fmt.Errorf("edge %q: not an edge of org %s in the inventory", n, d.cx.Org)
			}
		}
		edges = names
	}
	hub, err := d.hub(false)
	if err != nil {
		return err
	}
	mgr, err := d.manager(false)
	if err != nil {
		return err
	}
	call, cancel := o.call(ctx)
	defer cancel()
	now := time.Now()
	heard := map[string]time.Time{}
	sources, srcErr := hub.Sources(call)
	for _, s := range sources {
		if s.Flow == edgekit.FlowEvents && !s.Missing && s.Active >= 0 {
			heard[s.Edge] = now.Add(-s.Active)
		}
	}
	events, evErr := d.js.Stream(call, hub.EventStream())
	out := make([]edgeStatus, 0, len(edges))
	for _, e := range edges {
		st := edgeStatus{Edge: e, Link: "down", LastHeard: heard[e]}
		if srcErr != nil {
			st.Errors = append(st.Errors, "sources: "+srcErr.Error())
		} else if t := heard[e]; !t.IsZero() && now.Sub(t) <= linkHeardWithin {
			st.Link = "up"
		}
		if evErr != nil {
			st.Errors = append(st.Errors, "event stream: "+evErr.Error())
		} else if err := lastStatus(call, events, d.cx.Org, e, &st); err != nil {
			st.Errors = append(st.Errors, "status: "+err.Error())
		}
		if v, err := mgr.Version(call, e); err != nil {
			st.Errors = append(st.Errors, "credential version: "+err.Error())
		} else {
			st.CredentialVersion = v
		}
		if err := credentialsReceived(call, d.js, d.cx.Org, e, &st); err != nil {
			st.Errors = append(st.Errors, "credential sync: "+err.Error())
		}
		out = append(out, st)
	}
	if o.json() {
		return a.writeJSON(out)
	}
	tw := a.table()
	fmt.Fprintln(tw, "EDGE\tLINK\tBACKLOG\tSTATUS\tCREDS\tSYNCED\tDEVICES")
	for _, s := range out {
		backlog, devices := "-", "-"
		if s.Status != nil {
			backlog = fmt.Sprint(s.Status.Backlog)
			devices = fmt.Sprintf("%d/%d/%d", s.Status.DevicesOnline, s.Status.DevicesStale, s.Status.DevicesOffline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.Edge, s.Link, backlog, ago(now, s.StatusAt),
			s.CredentialVersion, s.CredentialsReceived, ago(now, s.CredentialsSyncedAt), devices)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range out {
		for _, e := range s.Errors {
			fmt.Fprintf(a.stderr, "lintelctl: edge %s: %s\n", s.Edge, e)
		}
	}
	return nil
}

// lastStatus reads the edge's last status report from central's event
// stream into st; none is not an error.
func lastStatus(ctx context.Context, events jetstream.Stream, org, edge string, st *edgeStatus) error {
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
func credentialsReceived(ctx context.Context, js jetstream.JetStream, org, edge string, st *edgeStatus) error {
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
