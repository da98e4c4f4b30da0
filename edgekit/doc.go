// Package edgekit runs Lintel's data flows between the edges and central:
// the edge node at a site ([Node]) and central's side of the links ([Hub]).
//
// # The edge node
//
// [Start] starts a [Node] from a [NodeConfig]: an embedded nats-server,
// configured by package authz from the inventory, that is a leaf node of
// central, runs JetStream in the edge's own domain and authenticates the
// edge's devices. It starts without central and keeps working through any
// outage of the link. ctx bounds the start only; [Node.Stop] (or
// [Node.Close]) stops the node; the Start example runs one. [Node.Run] is
// the blocking form for a caller with nothing else to do.
//
// Devices connect to [Node.ClientURL] with package devicekit. What they
// publish is stored at the edge before it is acknowledged, and stays there
// until central has stored it:
//
//   - events, state messages and acks in the edge's event stream, telemetry
//     in a stream of its own, each bounded in size ([NodeConfig]): a full
//     stream refuses new messages (devicekit.ErrStreamFull), it never drops
//     one;
//   - by default events are fsynced before they are acknowledged
//     (NodeConfig.SyncInterval); telemetry is written asynchronously;
//   - a command central sends is held until its device is connected and
//     delivered then, or acked expired once its deadline has passed;
//   - the node follows the devices' births, heartbeats and connections
//     ([Node.DeviceState]) and declares a death for a device that vanished;
//   - [Node.Status] reports the link, the backlog for central, the fill of
//     the streams and the devices' states; the node publishes it as well.
//
// [MQTTConfig] adds an MQTT listener for devices that speak only MQTT.
//
// # Central's side
//
// [NewHub] returns the [Hub] of one org at central. [Hub.Provision] creates
// the org's event and command streams and registers edges, whose streams
// central's event stream then sources; [Hub.Supervise] starts the
// [Supervisor] that restarts stalled sources until its Stop; and
// [Hub.SendCommand] sends a signed command and returns a [CommandResult]
// whose Wait follows its acks to the final outcome, as the Hub example
// shows.
//
// # Design notes
//
// How the node is built and why (stream limits, durability and the fsync
// cost, the telemetry stream, command delivery, liveness):
// docs/edge-node.md. Releasing what central has stored:
// docs/edge-release.md. Command outcomes: docs/command-outcomes.md.
package edgekit
