// Package devicekit is the device side of Lintel: what a card reader, a lock,
// a door sensor or an environment sensor does with its edge.
//
// [Device] is the contract, implemented over NATS by [*Client] (made with
// [Connect]) and over HTTP by [*HTTPDevice] (made with [ConnectHTTP]), which
// speaks to the edge through package gateway; package devicetest holds the
// conformance suite both must pass, and package simulator runs fleets of
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
// Without more, retrying lasts as long as the call: what was not yet
// acknowledged when the call gives up, or the device crashes or loses
// power, is forgotten, and an application that publishes it again makes a
// new envelope, with a new ID, which the edge may store a second time. The
// optional outbox ([Config.Outbox], a directory) closes that gap. Each
// acknowledged publish is written there, stamped, and synced before it is
// sent, and removed once the edge's stream has stored it. One whose
// publish ends without an answer ([ErrNotAcknowledged], [ErrClosed]) stays
// there and is sent again, unchanged: by the running client after each
// reconnection, every [Config.OutboxRetry] and before any later publish,
// and after a restart by [Connect], before anything new. Do not publish
// its content again as a new envelope. So an envelope handed to a Publish*
// call whose outbox write succeeded reaches the edge at least once, across
// outages and device restarts, unless the edge refuses it for good (set
// aside as .bad, and logged).
//
// The edge stores a repeated envelope once as long as it arrives within
// the edge's duplicate window after the first copy was stored
// (edgekit.NodeConfig.DuplicateWindow, 2 minutes by default): the edge
// forgets IDs older than that. A running device re-sends within seconds
// of the edge answering again, and a device that restarts within the
// window is covered too; an envelope that waited longer (a device that
// stayed away that long after the edge stored it without the device
// hearing of it) is still sent, since it may never have arrived, and may
// then be stored twice at the edge, with the same ID; central's database
// stores an envelope ID once all the same. The outbox is never pruned by
// age: dropping old envelopes would lose every event of an edge outage
// longer than the window.
//
// Order: a publish sends every envelope left in the outbox before its own
// (waiting for the re-send in progress, if any), one at a time in the
// order they were written, and fails with [ErrNotAcknowledged], its own
// envelope queued behind them, when one of them cannot be stored yet. So a
// device that publishes one envelope at a time has them stored by the
// edge, and so reaching central, in the order it published them, re-sends
// included; a repeat of one the edge already holds leaves it where it was
// first stored. Calls that overlap have no order between them. What the
// outbox does not keep (the birth, heartbeats, the death, command acks,
// unacknowledged telemetry) is not held back by it.
//
// The price is a pair of fsyncs (the file, then the directory) on every
// acknowledged publish, which usually costs more than the publish itself
// (BenchmarkPublish measures both), and, while envelopes wait in the
// outbox, one round trip each as they are sent again one at a time.
// [Stats].OutboxPending and OutboxResent tell what is waiting and what was
// sent again and stored.
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
