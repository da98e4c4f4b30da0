package edgekit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/edgekit"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
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
	hub, err := edgekit.NewHub(js, edgekit.HubConfig{Org: "acme"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := hub.Provision(ctx, "hq"); err != nil {
		fmt.Println(err)
		return
	}
	sup := hub.Supervise(ctx) // restarts stalled sources
	defer sup.Stop()

	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "front"}
	_, err = hub.SendCommand(ctx, lock, message.Command{
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
	// Output:
	// edges: [hq]
	// event stream: events-acme
	// commands waiting: 1
}
