package edgekit

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// hubInventory is the hub's inventory, indexed for its checks.
type hubInventory struct {
	edges  map[string]bool
	things map[topic.Thing]bool
	// gateway holds the things marked authz.Thing.CentralGateway, whose
	// commands go to the central gateway instead of their edge.
	gateway map[topic.Thing]bool
}

// SetInventory replaces the inventory the hub checks edges and things
// against (see [HubConfig].Inventory), for example after things were added.
// It is safe to call while the hub is in use. It returns an error wrapping
// [ErrInvalidHubConfig] for a nil inventory or one that does not list the
// hub's org.
func (h *Hub) SetInventory(inv *authz.Inventory) error {
	if inv == nil {
		return fmt.Errorf("%w: no inventory", ErrInvalidHubConfig)
	}
	known := &hubInventory{edges: map[string]bool{}, things: map[topic.Thing]bool{}, gateway: map[topic.Thing]bool{}}
	org := false
	for _, o := range inv.Orgs {
		org = org || o.Code == h.cfg.Org
	}
	if !org {
		return fmt.Errorf("%w: the inventory does not list org %q", ErrInvalidHubConfig, h.cfg.Org)
	}
	for _, e := range inv.Edges {
		if e.Org == h.cfg.Org {
			known.edges[e.Code] = true
		}
	}
	for _, t := range inv.Things {
		if t.Org == h.cfg.Org {
			known.things[t.Thing] = true
			if t.CentralGateway {
				known.gateway[t.Thing] = true
			}
		}
	}
	h.known.Store(known)
	return nil
}

// checkEdge returns an error wrapping ErrUnknownEdge unless the inventory
// lists edge.
func (h *Hub) checkEdge(edge string) error {
	if !h.known.Load().edges[edge] {
		return fmt.Errorf("%w: org %s has no edge %q", ErrUnknownEdge, h.cfg.Org, edge)
	}
	return nil
}

// checkThing returns an error wrapping ErrUnknownThing unless the
// inventory lists t.
func (h *Hub) checkThing(t topic.Thing) error {
	if !h.known.Load().things[t] {
		return fmt.Errorf("%w: %s", ErrUnknownThing, t)
	}
	return nil
}

// viaGateway reports whether t is a device of the central gateway: its
// commands go on [topology.GatewayCommandSubject] and its acks arrive
// in the org's gateway stream.
func (h *Hub) viaGateway(t topic.Thing) bool {
	return h.known.Load().gateway[t]
}

// checkInbox returns an error wrapping ErrInboxPrefix when nc logs in as a
// user named in its options or URL but does not use that user's reply
// inbox, [authz.UserInboxPrefix]: the server would refuse its inbox
// subscription, and every request would time out.
func checkInbox(nc *nats.Conn) error {
	if nc == nil {
		return nil
	}
	opts := nc.Opts
	user := opts.User
	for _, s := range append([]string{opts.Url}, opts.Servers...) {
		if user != "" {
			break
		}
		if u, err := url.Parse(s); err == nil && u.User != nil {
			user = u.User.Username()
		}
	}
	if user == "" {
		return nil
	}
	want := authz.UserInboxPrefix(user)
	got := opts.InboxPrefix
	if got == "" {
		got = nats.InboxPrefix
	}
	if strings.TrimSuffix(got, ".") != want {
		return fmt.Errorf("%w: user %q connects with reply inbox %q but may only subscribe below %q: connect with authz.ServiceOptions, or add nats.CustomInboxPrefix(authz.UserInboxPrefix(user))",
			ErrInboxPrefix, user, strings.TrimSuffix(got, "."), want)
	}
	return nil
}
