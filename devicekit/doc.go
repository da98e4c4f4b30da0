// Package devicekit is the device side of Lintel: what a card reader, a lock,
// a door sensor or an environment sensor does with its edge.
//
// [Device] is the contract, implemented over NATS by [*Client] (made with
// [Connect]) and over HTTP by the gateway's client; package devicetest holds
// the conformance suite both must pass, and package simulator runs fleets of
// simulated devices for tests, benchmarks and demos.
//
// # Connecting
//
// A device logs in to its edge's NATS server with a user and password (see
// [Config]). Its user may publish only on its own subjects,
// {org}.{edge}.{type}.{code}.{evt|tlm|state|ack|req}, and subscribe only to its
// own cmd and cfg subjects and its own reply inbox, thing.InboxPrefix()+".>",
// which is why the client uses that inbox prefix. It never touches the
// JetStream API.
//
// Each Connect is a boot: a new boot ID, and a sequence that starts at 1 with
// the birth (message.NameThingBirth on the state subject). Heartbeats follow
// every [Config.HeartbeatInterval], and one at once after each reconnection;
// [Client.Close] publishes the death.
//
// # Publishing
//
// [Client.PublishEvent], [Client.PublishState] and [Client.PublishTelemetry]
// wrap a payload in an envelope stamped with a new ID, the time, the source,
// the boot ID and the next sequence number, and publish it with a JetStream
// acknowledgement: the call returns nil only once the edge's stream has
// stored the message. An attempt without an acknowledgement is repeated with
// the same envelope ID, which the stream deduplicates, until the context
// ends; telemetry may opt out of waiting ([Config.TelemetryUnacknowledged]).
// Nothing is dropped silently: a [*PublishError] says which subject and
// envelope failed and why, wrapping [ErrNotAcknowledged], [ErrStreamFull],
// [ErrStreamRejected], [ErrBufferFull] (disconnected, and the reconnect
// buffer is full), [ErrPermissionDenied] or [ErrClosed]. The Publish*
// calls return the envelope's ID, stamped before sending, so that it names
// the envelope even when the acknowledgement did not arrive.
//
// # Surviving a restart: the outbox
//
// Without more, retrying lasts as long as the process: what was not yet
// acknowledged when the device crashes or loses power is forgotten, and an
// application that publishes it again after the restart makes a new
// envelope, with a new ID, which the edge may store a second time. The
// optional outbox ([Config.Outbox], a directory) closes that gap. Each
// acknowledged publish is written there, stamped, and synced before it is
// sent, and removed once the edge's stream has stored it; the next
// [Connect] sends what is left again, unchanged and in order, before
// anything new. So an envelope handed to a Publish* call whose outbox
// write succeeded reaches the edge at least once across device restarts,
// unless the edge refuses it for good (the call's error, or Connect's log,
// says so). It is stored exactly once, and so reaches central once, as long
// as it is sent again within the edge's duplicate window of 2 minutes after
// the edge stored it, which in practice means a device back within 2
// minutes of its crash: the edge drops a repeated envelope ID only within
// that window. Beyond it, an envelope the edge had stored without the
// device hearing of it may be stored a second time, with the same ID, and
// reach central twice. A publish that ends with [ErrNotAcknowledged] or
// [ErrClosed] leaves its envelope in the outbox for the next Connect: do
// not publish its content again as a new envelope; other errors mean it
// was not stored and is not kept. The price is a pair of fsyncs (the file,
// then the directory) on every acknowledged publish, which usually costs
// more than the publish itself (BenchmarkPublish measures both). [Stats].OutboxPending and
// OutboxResent tell what is waiting and what was sent again.
//
// # Commands
//
// [Client.HandleCommands] runs a [Handler] for each command sent to the
// device and acks each one automatically: accepted, then completed or failed;
// expired, without running, when its deadline has passed (checked on receipt
// and again just before the handler runs); rejected when malformed. A command
// whose ID or idempotency key the device has seen recently is not run again;
// its recorded outcome is sent again instead. Only commands signed for the
// device by central or by its edge run ([Config].CommandKeys): anything else
// on the cmd subject is dropped without an ack and counted
// ([Stats].CommandsRefused); see docs/command-signing.md.
//
// # Requests
//
// [Client.Request] sends a request on the device's req subject, such as a
// card reader's access request, and returns the edge's reply, which arrives
// on the device's own inbox.
package devicekit
