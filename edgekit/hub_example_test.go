package edgekit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/authz"
	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// ExampleHub provisions the central side of org acme with one edge and
// sends a command, which waits in the org's command stream until the edge
// sources it. Central here is a bare JetStream server in domain "hub"; in
// production it runs from authz.CentralOptions.
func ExampleHub() {
	opts := natstest.DefaultOptions()
	opts.JetStreamDomain = "hub"
	srv, err := natstest.NewServer(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, err := srv.Connect()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv := &authz.Inventory{
		Orgs:   []authz.Org{{Code: "acme"}},
		Edges:  []authz.Edge{{Org: "acme", Code: "hq"}},
		Things: []authz.Thing{{Thing: topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front"}}},
	}
	// Central signs every command with the org's command key; in a
	// deployment its seed comes from authz's Secrets.CommandSeeds["acme"].
	cmdKey, _ := nkeys.CreateUser()
	seed, _ := cmdKey.Seed()
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme", Inventory: inv, CommandKey: authz.NewSecret(string(seed))})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := hub.Provision(ctx, "hq"); err != nil {
		fmt.Println(err)
		return
	}
	sup, err := hub.Supervise(ctx) // restarts stalled sources, until Stop
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sup.Stop()

	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front"}
	res, err := hub.SendCommand(ctx, lock, message.Command{
		Action:         "unlock",
		Deadline:       time.Now().Add(30 * time.Second),
		IdempotencyKey: "visit-42",
	}, "operator:alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	edges, _ := hub.Edges(ctx)
	cmds, _ := js.Stream(ctx, hub.CommandStream())
	fmt.Println("edges:", edges)
	fmt.Println("event stream:", hub.EventStream())
	fmt.Println("commands waiting:", cmds.CachedInfo().State.Msgs)
	// No edge is up: the command waits, and so would res.Wait(ctx).
	out, err := res.Status(ctx)
	fmt.Println("outcome pending:", out.Pending(), err)
	// Output:
	// edges: [hq]
	// event stream: events-acme
	// commands waiting: 1
	// outcome pending: true <nil>
}
