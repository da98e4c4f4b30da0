// Command demo is Lintel's quickstart: it builds a subject, stamps an access
// event in the standard envelope, and round-trips it through an embedded
// NATS server, printing what a subscriber receives in CloudEvents JSON.
//
// Usage:
//
//	go run ./apps/demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: the demo takes none", args)
	}

	// A door reader at the "hq" site of organisation "acme".
	reader := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "door-1"}
	subject, err := topic.New(reader.Org, reader.Edge, reader.Type, reader.Code, topic.Event)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "subject:", subject)

	// An embedded NATS server on a random loopback port.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		return fmt.Errorf("start NATS: %w", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("NATS server did not become ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()

	// Subscribe to everything of the edge, then publish one access event.
	filter, err := topic.EdgeFilter(reader.Org, reader.Edge)
	if err != nil {
		return err
	}
	sub, err := nc.SubscribeSync(filter.String())
	if err != nil {
		return err
	}

	var ids message.IDGenerator
	env := &message.Envelope{Type: topic.Event, Name: message.NameAccessGranted}
	message.NewStamper(reader, ids.New()).Stamp(env)
	decision := message.AccessDecision{Granted: true, Door: "front", Holder: "holder-42", CredentialSetVersion: 7}
	if err := message.SetPayload(env, decision); err != nil {
		return err
	}
	msg, err := env.ToMsg(nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published: %s %s (%d bytes msgpack)\n", env.Name, env.ID, len(msg.Data))
	if err := nc.PublishMsg(msg); err != nil {
		return err
	}

	recvCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := sub.NextMsgWithContext(recvCtx)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	received, err := message.FromMsg(got)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "received on %s: same id %v, Nats-Msg-Id %s\n", got.Subject, received.ID == env.ID, got.Header.Get(message.HeaderMsgID))
	ce, err := received.AppendCloudEvent(nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "as CloudEvents JSON: %s\n", ce)
	return nil
}
