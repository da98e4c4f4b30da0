package edgekit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cmdSite is central with a Hub, an edge node linked to it through a
// proxy, and the deployment's credentials.
type cmdSite struct {
	env     *nodeEnv
	central *nodeCentral
	hub     *edgekit.Hub
	sup     *edgekit.Supervisor
	node    *edgekit.Node
}

// startCmdSite starts central, provisions the hub for edge hq with its
// supervisor running, and starts edge hq's node with the link up.
func startCmdSite(t *testing.T) *cmdSite {
	t.Helper()
	env := newNodeEnv(t, 0)
	central := nodeStartCentral(t, env)
	hub, err := edgekit.NewHub(central.js, edgekit.HubConfig{Org: "acme", Inventory: env.inv, CommandKey: env.secrets.CommandSeeds["acme"]})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Provision(nodeCtx(t), "hq"); err != nil {
		t.Fatal(err)
	}
	sup, err := hub.Supervise(nodeCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sup.Stop)
	node := nodeStart(t, nodeTestConfig(t, env, central.hubURL()))
	nodeWaitFor(t, "leaf link", node.LinkUp)
	return &cmdSite{env: env, central: central, hub: hub, sup: sup, node: node}
}

func (s *cmdSite) send(t *testing.T, th topic.Thing, action, key string, deadline time.Time) *edgekit.CommandResult {
	t.Helper()
	res, err := s.hub.SendCommand(nodeCtx(t), th, message.Command{Action: action, Deadline: deadline, IdempotencyKey: key}, "operator:alice")
	if err != nil {
		t.Fatalf("SendCommand %s to %s: %v", action, th, err)
	}
	return res
}

// TestHubCommandOutcomes sends commands through the hub to a devicekit
// device behind a real edge node and waits for their outcomes: completed
// for a device that runs it, expired for a device that is offline until
// the deadline. Each command is recorded in central's event stream, and its
// outcome can be looked up later by thing and ID.
func TestHubCommandOutcomes(t *testing.T) {
	s := startCmdSite(t)

	t.Run("completed", func(t *testing.T) {
		rec := nodeCommandDevice(t, s.env, s.node, nodeL1)
		res := s.send(t, nodeL1, "unlock", "k-done", time.Now().Add(time.Minute))
		out, err := res.Wait(nodeCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != message.AckCompleted || !out.Final() || out.ID != res.ID() || out.Thing != nodeL1 {
			t.Fatalf("outcome %+v, want completed", out)
		}
		if n := rec.count(res.ID()); n != 1 {
			t.Fatalf("the device ran the command %d times", n)
		}
		if acc, err := res.WaitAccepted(nodeCtx(t)); err != nil || acc.Pending() {
			t.Fatalf("WaitAccepted after the outcome: %+v, %v", acc, err)
		}
		for name, get := range map[string]func() (edgekit.CommandOutcome, error){
			"CommandResult.Status": func() (edgekit.CommandOutcome, error) { return res.Status(nodeCtx(t)) },
			"Hub.CommandStatus":    func() (edgekit.CommandOutcome, error) { return s.hub.CommandStatus(nodeCtx(t), nodeL1, res.ID()) },
		} {
			got, err := get()
			if err != nil || got.Status != message.AckCompleted {
				t.Fatalf("%s: %+v, %v; want completed", name, got, err)
			}
			// Each ack counted is listed: accepted, then completed.
			if len(got.AckList) != got.Acks || got.Acks < 2 || got.AckList[0].Status != message.AckAccepted ||
				got.AckList[len(got.AckList)-1].Status != message.AckCompleted || got.AckList[0].ID.IsZero() || got.AckList[0].ReceivedAt.IsZero() {
				t.Fatalf("%s: acks %+v (count %d); want each, accepted first and completed last", name, got.AckList, got.Acks)
			}
		}
		// Asked with another thing, of the same edge or not, the command
		// is unknown: central's record names the thing it was sent to.
		for _, other := range []topic.Thing{nodeR1, {Org: "acme", Edge: "lab", Type: "lock", Code: "l1"}} {
			if got, err := s.hub.CommandStatus(nodeCtx(t), other, res.ID()); !errors.Is(err, edgekit.ErrUnknownCommand) {
				t.Fatalf("CommandStatus of %s's command with thing %s: %+v, %v; want ErrUnknownCommand", nodeL1, other, got, err)
			}
		}
		rec2 := centralRecord(t, s.central.js, s.hub, nodeL1, res.ID())
		if rec2.Command.Action != "unlock" || rec2.Command.RequestedBy != "operator:alice" || rec2.Subject != nodeL1.Subject(topic.Command).String() {
			t.Fatalf("central's record of the command: %+v", rec2)
		}
	})

	t.Run("offline device expires", func(t *testing.T) {
		res := s.send(t, nodeS1, "calibrate", "k-expire", time.Now().Add(time.Second))
		out, err := res.Wait(testCtx(t, 3*time.Minute)) // generous: the ack crosses the link
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != message.AckExpired || out.Error != edgekit.AckReasonExpired {
			t.Fatalf("outcome %+v, want expired by the edge", out)
		}
	})

	t.Run("unknown command", func(t *testing.T) {
		var ids message.IDGenerator
		id := ids.New()
		if _, err := s.hub.CommandStatus(nodeCtx(t), nodeL1, id); !errors.Is(err, edgekit.ErrUnknownCommand) || !strings.Contains(err.Error(), id.String()) {
			t.Fatalf("CommandStatus of a command never sent: %v, want ErrUnknownCommand naming it", err)
		}
	})
}

// TestHubCommandWaitAcrossCut sends a command while the edge's link to
// central is cut: a caller that gives up sees it pending, a caller that
// keeps waiting gets the completed outcome once the link is back, and so
// does a later lookup.
func TestHubCommandWaitAcrossCut(t *testing.T) {
	s := startCmdSite(t)
	rec := nodeCommandDevice(t, s.env, s.node, nodeL1)
	s.central.proxy.Cut()
	nodeWaitFor(t, "the link down", func() bool { return !s.node.LinkUp() })

	res := s.send(t, nodeL1, "unlock", "k-cut", time.Now().Add(2*time.Minute))
	short, cancel := context.WithTimeout(nodeCtx(t), 300*time.Millisecond)
	out, err := res.Wait(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !out.Pending() {
		t.Fatalf("Wait that gave up during the cut: %+v, %v; want pending and the context's error", out, err)
	}
	type result struct {
		out edgekit.CommandOutcome
		err error
	}
	done := make(chan result, 1)
	// After a cut, the edge's sourcing of its commands resumes when
	// nats-server retries it, with a back-off that can reach minutes on a
	// loaded machine: a generous bound.
	long := testCtx(t, 3*time.Minute)
	go func() {
		out, err := res.Wait(long)
		done <- result{out, err}
	}()
	s.central.proxy.Restore()
	r := <-done
	if r.err != nil || r.out.Status != message.AckCompleted {
		st, stErr := s.hub.CommandStatus(nodeCtx(t), nodeL1, res.ID())
		srcs, srcErr := s.hub.Sources(nodeCtx(t))
		t.Logf("sources %+v (%v); supervisor %+v", srcs, srcErr, s.sup.Stats())
		t.Fatalf("Wait across the cut: %+v, %v; want completed (device ran it %d times; link up %t; status now %+v, %v)",
			r.out, r.err, rec.count(res.ID()), s.node.LinkUp(), st, stErr)
	}
	if n := rec.count(res.ID()); n != 1 {
		t.Fatalf("the device ran the command %d times", n)
	}
	if got, err := s.hub.CommandStatus(nodeCtx(t), nodeL1, res.ID()); err != nil || got.Status != message.AckCompleted {
		t.Fatalf("CommandStatus after the cut: %+v, %v", got, err)
	}
}

// centralRecord returns central's record of command id to th from central's
// event stream.
func centralRecord(t *testing.T, js jetstream.JetStream, hub *edgekit.Hub, th topic.Thing, id message.ID) message.CommandSent {
	t.Helper()
	subject := edgekit.CommandRecordThing(th.Org, th.Edge).Subject(topic.Event).String()
	for _, e := range nodeStreamEnvelopes(t, js, hub.EventStream(), subject) {
		if e.Name != message.NameCommandSent {
			continue
		}
		r, err := message.DecodePayload[message.CommandSent](e)
		if err != nil {
			t.Fatal(err)
		}
		if r.CommandID == id {
			return r
		}
	}
	t.Fatalf("no record of command %s in %s", id, hub.EventStream())
	return message.CommandSent{}
}

// TestHubRefusesUnknown sends to a thing the inventory does not list and
// provisions an edge it does not list: both are refused, naming what is
// unknown, and nothing reaches central's streams.
func TestHubRefusesUnknown(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, noSupervisor: true})
	ctx := hubCtx(t)
	if err := h.hub.Provision(ctx, "no-such-edge"); !errors.Is(err, edgekit.ErrUnknownEdge) || !strings.Contains(err.Error(), "no-such-edge") {
		t.Fatalf("Provision of an unknown edge: %v, want ErrUnknownEdge naming it", err)
	}
	if err := h.hub.RegisterEdge(ctx, "no-such-edge"); !errors.Is(err, edgekit.ErrUnknownEdge) {
		t.Fatalf("RegisterEdge of an unknown edge: %v, want ErrUnknownEdge", err)
	}
	if edges, err := h.hub.Edges(ctx); err != nil || len(edges) != 1 || edges[0] != "hq" {
		t.Fatalf("edges: %v, %v; want [hq]", edges, err)
	}
	ghost := topic.Thing{Org: hubOrg, Edge: "hq", Type: "sensor", Code: "ghost"}
	cmd := message.Command{Action: "beep", Deadline: time.Now().Add(time.Minute), IdempotencyKey: "k"}
	if _, err := h.hub.SendCommand(ctx, ghost, cmd, ""); !errors.Is(err, edgekit.ErrUnknownThing) || !strings.Contains(err.Error(), ghost.String()) {
		t.Fatalf("SendCommand to an unknown thing: %v, want ErrUnknownThing naming it", err)
	}
	if n := hubStreamMsgs(h.hubJS, h.hub.CommandStream()); n != 0 {
		t.Fatalf("the command stream holds %d commands", n)
	}
	if n := hubStreamMsgs(h.hubJS, h.hub.EventStream()); n != 0 {
		t.Fatalf("central's event stream holds %d messages", n)
	}
	// Once the inventory lists it, the thing is known.
	inv := *h.inv
	inv.Things = append(append([]authz.Thing(nil), inv.Things...), authz.Thing{Thing: ghost})
	if err := h.hub.SetInventory(&inv); err != nil {
		t.Fatal(err)
	}
	if _, err := h.hub.SendCommand(ctx, ghost, cmd, ""); err != nil {
		t.Fatalf("SendCommand to a thing added to the inventory: %v", err)
	}

	for name, cfg := range map[string]edgekit.HubConfig{
		"no inventory":        {Org: hubOrg},
		"inventory of others": {Org: hubOrg, Inventory: &authz.Inventory{Orgs: []authz.Org{{Code: "globex"}}}},
	} {
		if _, err := edgekit.NewHub(h.hubJS, cfg); !errors.Is(err, edgekit.ErrInvalidHubConfig) {
			t.Errorf("NewHub with %s: %v, want ErrInvalidHubConfig", name, err)
		}
	}
}

// TestHubInboxPrefix connects the hub's service user without its own
// reply inbox, which its permissions refuse: the hub says so instead of
// timing out in silence, at once when the connection names its user, and
// when Provision runs out of time otherwise. authz.ServiceOptions connects
// it right.
func TestHubInboxPrefix(t *testing.T) {
	h := startHubTopo(t, hubTopoOptions{devices: 1, noSupervisor: true})
	user := authz.ServiceUser(hubOrg, hubService)
	inv := &authz.Inventory{Orgs: []authz.Org{{Code: hubOrg}}, Edges: []authz.Edge{{Org: hubOrg, Code: "hq"}}}
	connect := func(opts ...nats.Option) jetstream.JetStream {
		t.Helper()
		// The refusal is expected: keep nats.go from printing it.
		quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
		nc, err := h.central.Connect(append([]nats.Option{quiet}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}

	js := connect(nats.UserInfo(user, h.passwords[user]))
	_, err := edgekit.NewHub(js, edgekit.HubConfig{Org: hubOrg, Inventory: inv})
	if !errors.Is(err, edgekit.ErrInboxPrefix) || !strings.Contains(err.Error(), authz.UserInboxPrefix(user)) {
		t.Fatalf("NewHub on a connection with the default inbox: %v, want ErrInboxPrefix naming %s", err, authz.UserInboxPrefix(user))
	}

	// A user the connection's options do not show: the server's refusal
	// of the inbox explains the time-out.
	js = connect(nats.UserInfoHandler(func() (string, string) { return user, h.passwords[user] }))
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: hubOrg, Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(hubCtx(t), 2*time.Second)
	defer cancel()
	err = hub.Provision(ctx, "hq")
	if !errors.Is(err, edgekit.ErrInboxPrefix) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Provision on a connection with the default inbox: %v, want ErrInboxPrefix", err)
	}

	js = connect(authz.ServiceOptions(user, authz.NewSecret(h.passwords[user]))...)
	hub, err = edgekit.NewHub(js, edgekit.HubConfig{Org: hubOrg, Inventory: inv})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Provision(hubCtx(t), "hq"); err != nil {
		t.Fatalf("Provision on a connection made with authz.ServiceOptions: %v", err)
	}
}
