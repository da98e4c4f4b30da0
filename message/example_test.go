package message_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go/jetstream"
)

// exampleStamper returns a Stamper with a fixed clock and seeded randomness,
// so that the examples print the same IDs every time. Real producers set
// only Source and BootID.
func exampleStamper() *message.Stamper {
	clock := func() time.Time { return time.Date(2026, 3, 1, 8, 30, 0, 123456789, time.UTC) }
	ids := &message.IDGenerator{Now: clock, Rand: rand.NewPCG(1, 2)}
	reader := topic.Thing{Org: "acme", Edge: "hq", Type: "reader", Code: "door-1"}
	s := message.NewStamper(reader, ids.New())
	s.Now, s.IDs = clock, ids
	return s
}

// A reader reports a granted access: stamp an envelope, give it a payload,
// encode it as msgpack, and decode it on the other side.
func Example() {
	stamper := exampleStamper()

	env := message.Envelope{Type: topic.Event, Name: message.NameAccessGranted}
	stamper.Stamp(&env)
	if err := message.SetPayload(&env, message.AccessDecision{Granted: true, Door: "door-1", CredentialSetVersion: 7}); err != nil {
		fmt.Println(err)
		return
	}
	buf, err := env.AppendMsgpack(nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	var got message.Envelope
	if err := (message.MsgpackCodec{}).Unmarshal(buf, &got); err != nil {
		fmt.Println(err)
		return
	}
	decision, err := message.DecodePayload[message.AccessDecision](&got)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Subject(), got.Name, "seq", got.Seq, "at", got.Time.Format(time.RFC3339Nano))
	fmt.Printf("granted=%v door=%s credential set v%d\n", decision.Granted, decision.Door, decision.CredentialSetVersion)
	fmt.Println(len(buf), "bytes of msgpack")
	// Output:
	// acme.hq.reader.door-1.evt access.granted seq 1 at 2026-03-01T08:30:00.123456789Z
	// granted=true door=door-1 credential set v7
	// 198 bytes of msgpack
}

// The CloudEvents form of an envelope, for HTTP.
func ExampleEnvelope_AppendCloudEvent() {
	env := message.Envelope{Type: topic.Event, Name: message.NameDoorForcedOpen}
	exampleStamper().Stamp(&env)
	if err := message.SetPayload(&env, message.DoorState{Door: "door-1", Open: true, Locked: true, Forced: true}); err != nil {
		fmt.Println(err)
		return
	}
	b, err := env.AppendCloudEvent(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	_ = json.Indent(&out, b, "", "  ")
	fmt.Println(out.String())
	// Output:
	// {
	//   "specversion": "1.0",
	//   "id": "019ca884-c7bb-74ee-9d87-5a0f312f8088",
	//   "source": "/acme/hq/reader/door-1",
	//   "type": "io.lintel.evt.door.forced_open",
	//   "time": "2026-03-01T08:30:00.123456789Z",
	//   "schemaversion": "1.0",
	//   "sequence": "00000000000000000001",
	//   "bootid": "019ca884-c7bb-74ee-9d87-5a0e56eef510",
	//   "datacontenttype": "application/json",
	//   "data": {
	//     "door": "door-1",
	//     "open": true,
	//     "locked": true,
	//     "forced": true
	//   }
	// }
}

// Decoding errors name the field and wrap a sentinel error.
func ExampleDecodeError() {
	err := json.Unmarshal([]byte(`{"specversion":"1.0","id":"0195512a-1bdb-7a3f-9c2e-5d6f7a8b9c0d",
		"source":"/acme/hq/reader/door-1","type":"io.lintel.evt","time":"2026-03-01T08:30:00Z",
		"schemaversion":"2.0"}`), new(message.Envelope))
	fmt.Println(err)
	// Output:
	// message: cloudevents: field "schemaversion": unsupported version: schema version 2.0, this package reads major version 1
}

// An expired command must never run.
func ExampleCommand_Expired() {
	now := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	cmd := message.Command{Action: "unlock", Deadline: now.Add(5 * time.Second)}
	fmt.Println(cmd.Expired(now), cmd.Expired(now.Add(5*time.Second)))
	// Output:
	// false true
}

// Envelopes travel over NATS with ToMsg and FromMsg; the message ID header
// lets JetStream drop duplicates.
func ExampleFromMsg() {
	srv, err := natstest.NewServer(nil)
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

	sub, err := nc.SubscribeSync("acme.hq.*.*.evt")
	if err != nil {
		fmt.Println(err)
		return
	}
	env := message.Envelope{Type: topic.Event, Name: message.NameDoorHeldOpen}
	exampleStamper().Stamp(&env)
	msg, err := env.ToMsg(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := nc.PublishMsg(msg); err != nil {
		fmt.Println(err)
		return
	}

	in, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := message.FromMsg(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(in.Subject, in.Header.Get(message.HeaderContentType), in.Header.Get(message.HeaderSchemaVersion))
	fmt.Println(got.Name, got.ID == env.ID, in.Header.Get(message.HeaderMsgID) == env.ID.String())
	// Output:
	// acme.hq.reader.door-1.evt application/msgpack 1.0
	// door.held_open true true
}

// Messages from a JetStream consumer decode with FromJetStream (or
// DecodeJetStream), without building a nats.Msg first.
func ExampleFromJetStream() {
	srv, err := natstest.NewServer(nil)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"acme.hq.*.*.evt"}})
	if err != nil {
		fmt.Println(err)
		return
	}

	env := message.Envelope{Type: topic.Event, Name: message.NameDoorForcedOpen}
	exampleStamper().Stamp(&env)
	msg, err := env.ToMsg(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		fmt.Println(err)
		return
	}

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := message.FromJetStream(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(in.Subject(), got.Name, got.ID == env.ID)
	// Output:
	// acme.hq.reader.door-1.evt door.forced_open true
}
