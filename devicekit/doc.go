// Package devicekit is the device side of Lintel: what a card reader, a lock,
// a door sensor or an environment sensor does with its edge.
//
// [Device] is the contract, implemented over NATS by [*Client] (made with
// [Connect]) and over HTTP by [*HTTPDevice] (made with [ConnectHTTP]), which
// speaks to the edge through package gateway; package devicetest holds the
// conformance suite both must pass, and package simulator runs fleets of
// simulated devices for tests, benchmarks and demos.
//
// Each Connect is a boot: a birth, heartbeats every
// [Config.HeartbeatInterval], and the death at [Client.Close]. The ctx of
// Connect bounds connecting only; the client runs until Close.
// [Client.PublishEvent], [Client.PublishState] and [Client.PublishTelemetry]
// return the envelope's ID, and nil only once the edge's stream has stored
// the message, repeating the same envelope until the context ends. A
// failure is a [*PublishError] wrapping [ErrNotAcknowledged],
// [ErrStreamFull], [ErrStreamRejected], [ErrBufferFull],
// [ErrPermissionDenied] or [ErrClosed]. The optional outbox
// ([Config.Outbox]) keeps what was not acknowledged across outages and
// restarts and sends it again unchanged: it reaches the edge at least
// once, and is stored once if it arrives within the edge's duplicate
// window (2 minutes by default).
//
// [Client.HandleCommands] runs a [Handler] for each command signed for the
// device ([Config].CommandKeys) and acks it automatically; its ctx bounds
// the subscription only, and handling runs until Subscription.Stop or
// Close. [Client.Request] sends a request on the device's req subject and
// returns the edge's reply. The package example connects and publishes an
// event; the HandleCommands example runs a lock.
//
// What the client does on the wire, the outbox's guarantees, order and
// cost, and how commands are acked: docs/devicekit.md. Command signatures:
// docs/command-signing.md.
package devicekit
