package devicekit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lintel-io/lintel/devicekit"
	"github.com/lintel-io/lintel/devicekit/devicetest"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// A card reader connects to its edge and reports an access event, which the
// edge's stream has stored by the time PublishEvent returns.
func Example() {
	// An in-process edge: a NATS server with the devices' stream and users.
	edge, err := devicetest.NewEdge(devicetest.EdgeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reader := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "r1"}
	dev, err := devicekit.Connect(ctx, devicekit.Config{
		Thing:    reader,
		URLs:     []string{edge.Server.ClientURL()},
		Password: devicetest.Password(reader),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()

	decision := message.AccessDecision{Granted: true, Door: "front", CredentialSetVersion: 7}
	if _, err := dev.PublishEvent(ctx, decision.MessageName(), decision); err != nil {
		fmt.Println(err)
		return
	}

	// The edge's side: the event is in the stream.
	stream, err := edge.JetStream.Stream(ctx, edge.Stream)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := stream.GetLastMsgForSubject(ctx, reader.Subject(topic.Event).String())
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := message.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Subject)
	fmt.Println(e.Name, e.Seq, e.BootID == dev.BootID())
	// Output:
	// acme.hq.reader.r1.evt
	// access.granted 2 true
}

// A lock carries out the commands its edge sends, and acks each one
// automatically: accepted, then completed (or failed with the handler's
// error). A command past its deadline is acked expired and never runs.
func ExampleClient_HandleCommands() {
	edge, err := devicetest.NewEdge(devicetest.EdgeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer edge.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lock := topic.Thing{Org: "acme", Edge: "hq", Type: "lock", Code: "l1"}
	dev, err := devicekit.Connect(ctx, edge.Config(lock))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dev.Close()

	sub, err := dev.HandleCommands(ctx, devicekit.HandlerFunc(func(ctx context.Context, cmd devicekit.Command) error {
		switch cmd.Action {
		case "unlock":
			return nil // energise the strike for cmd.Params["duration"]
		default:
			return fmt.Errorf("%w: unknown action %q", devicekit.ErrCommandRejected, cmd.Action)
		}
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Stop()

	// The edge's side: send commands, watch the acks.
	acks, err := devicetest.RecordAcks(edge.Conn, lock)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer acks.Close()
	for _, cmd := range []message.Command{
		{Action: "unlock", Deadline: time.Now().Add(5 * time.Second)},
		{Action: "unlock", Deadline: time.Now().Add(-time.Second)},
		{Action: "dance", Deadline: time.Now().Add(5 * time.Second)},
	} {
		e, err := devicetest.NewCommand(lock, cmd)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := devicetest.PublishCommand(edge.Conn, lock, e, edge.CommandKey); err != nil {
			fmt.Println(err)
			return
		}
		got, err := acks.Wait(ctx, e.ID, 1)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(cmd.Action, devicetest.Statuses(got))
	}
	// Output:
	// unlock [accepted completed]
	// unlock [expired]
	// dance [accepted rejected]
}
