// Package edgekit runs Lintel's data flows between the edges and central:
// the edge node at a site ([Node]) and central's side of the links ([Hub]).
//
// # The edge node
//
// A [Node], started with [Start] (or [NewNode] and [Node.Run]), is an
// embedded nats-server configured by package authz ([authz.EdgeOptions]):
// a leaf node of central that logs in with the edge's NKey, JetStream on
// file storage in the edge's own domain, the org's account with its device
// users, and the system account exporting the org's client disconnect
// events. Devices are authenticated by an [authz.EdgeAuthenticator]
// (cached bcrypt, [Node.UpdateCredentials] without reload). The node starts
// without central and keeps running through any outage; the link comes up
// whenever central answers (authz renders a 5 s ping interval instead of
// nats-server's two minutes, so a dead link is noticed within seconds).
// On the server runs the edge service, connected in-process ([Node.Conn]).
//
// Start-up order matters: the event and telemetry streams and central's
// consumers on them are created before any device may log in (the node's
// authentication admits only its own edge service until then).
//
// # Events: nothing central has not stored is ever deleted
//
// Every event, state message and ack a device publishes lands in the edge's
// event stream ([authz.EdgeNames].EventStream) before anything else
// happens, and every telemetry message in the edge's telemetry stream
// ([authz.EdgeNames].TelemetryStream); devices publish with a JetStream
// acknowledgement (package devicekit). Both streams are configured so that
// only central's storing a message can remove it:
//
//   - no age or count limit, and deny_delete: a message stays until
//     central's durable sourcing consumer ("to-hub" on the event stream,
//     "to-hub-tlm" on the telemetry stream) has acknowledged it through
//     flow control; then the node releases it, purging each stream up to
//     that acknowledgement in one range (docs/edge-release.md).
//   - a size bound (NodeConfig.EventStreamMaxBytes,
//     NodeConfig.TelemetryStreamMaxBytes) with discard-new: a full stream
//     refuses new messages (a full telemetry stream refuses telemetry only),
//     and a device gets
//     devicekit.ErrStreamFull, never a silent drop. A full JetStream store
//     (the disk) answers "insufficient resources", which devicekit reports
//     as ErrStreamFull too.
//   - a deduplication window (NodeConfig.DuplicateWindow,
//     [DefaultDuplicateWindow]): an envelope sent again with the same ID
//     within it is acknowledged and stored once, across a restart of the
//     node for what the edge still holds (nats-server rebuilds the window
//     from the stored messages, not from those already released to
//     central). A device's outbox (devicekit.Config.Outbox) must send
//     again within it: its OutboxRetry is far shorter.
//
// Each device gets a bounded share of the event stream: at most
// NodeConfig.EventMaxMsgsPerSubject messages per subject (one device's
// events, states or acks; [DefaultEventMaxMsgsPerSubject]) with
// discard-new per subject, and no message above NodeConfig.EventMaxMsgSize
// ([DefaultEventMaxMsgSize]). A device that floods while the link is down
// has its own new messages refused (devicekit.ErrStreamFull); the others
// keep theirs. Central's stream, which sources it, has no per-subject
// limit: a refusal there would stall the whole edge's source. The bound is
// on what a device holds, not on its rate: nats-server has no publish rate
// limit per user.
//
// # Platform records: a stream no device can write
//
// What the platform itself records at the edge goes into the edge's
// platform stream ([authz.EdgeNames].PlatformStream): the access service's
// audit trail, and the node's own messages (its status, birth and fill
// alarms, the deaths it declares for devices and the expiry acks it writes
// for their commands). They are published on "_lintel.{org}.{edge}.rec.…"
// ([authz.EdgeNames.PlatformSubject]), which only the edge service may
// publish, and stored under the subject of the thing they are about, so
// central, storage and the auditor read them as before ([FlowPlatform]).
// Devices can neither fill that stream nor pre-empt its deduplication IDs;
// it has the event stream's guarantees and a size bound of its own
// (NodeConfig.PlatformStreamMaxBytes). Live subscribers at the edge see
// these records only on the "_lintel" subject.
//
// As the stream (or the store) fills, the node raises [NameStreamFilling]
// alarms at NodeConfig.FillAlarms (80 % and 95 % by default) as events of
// the edge itself on "{org}.{edge}._edge.{edge}.evt", and [NodeStatus]
// carries the fill and the alarm level. The alarms are checked every
// CheckInterval, so a burst that fills the last 5 % faster than that stores
// no 95 % alarm; the status still shows it.
//
// # Durability: fsync before acknowledging
//
// The edge holds the only copy of what central has not stored, and
// nats-server's file store by default fsyncs only every two minutes (the
// 2025 Jepsen analysis of NATS lost acknowledged writes on power loss that
// way). The node therefore runs JetStream with sync_interval "always"
// (server.Options.SyncAlways) unless NodeConfig.SyncInterval says
// otherwise: the event stream (the audit trail) and the command stream are
// fsynced before a write is acknowledged. The credential mirror, which
// central refills from its last stored sequence, uses per-stream
// asynchronous persistence (PersistMode async) and pays no fsync per write.
// BenchmarkNodeIngest measures the cost.
//
// Telemetry has a stream of its own, as authz's topology fixes it, so that
// high-rate telemetry never queues ahead of audit writes. In one stream, a
// telemetry flood shared the event stream's write path and its fsync per
// message: acknowledged events fell from 2,500-4,000/s to 812/s under
// 2,000 telemetry messages/s, and other devices' events were refused with
// "too many requests" (JetStream error 10167) at full speed. With the
// telemetry stream, the same flood leaves acknowledged events where they
// are without it (BenchmarkNodeIngest, fsync=always). The
// telemetry stream is persisted asynchronously (PersistMode async, which
// nats-server honours per stream although the server runs with
// sync_interval "always"), so telemetry neither pays nor delays an fsync;
// the price is that a power loss of the edge may lose the telemetry of its
// last moments that central had not yet stored, never an event. Not
// persisting telemetry at the edge at all (live forwarding only) was the
// alternative; it was not chosen because telemetry would then be lost
// whenever the link is down, and a device's acknowledged telemetry publish
// needs a stream at the edge to answer it. Central's event stream sources
// both streams of each edge (two sources, [FlowEvents] and
// [FlowTelemetry]), so storage's ingest reads telemetry where it always
// did; an edge's telemetry and its events are each in order there, but not
// in order with each other. BenchmarkNodeIngest's "devicekit+tlm-flood"
// case measures events under a 2,000/s telemetry flood. The node does not
// rate-limit telemetry; a flood fills the telemetry stream, whose bound
// then refuses telemetry only.
//
// # Commands
//
// Central writes a command into its command stream on
// [authz.CommandSubject] of the device; the edge's command stream sources
// only the edge's own. The envelope's Source is the device the command is
// for, so its subject (Envelope.Subject) is the device's cmd subject,
// "{org}.{edge}.{type}.{code}.cmd"; the node checks that the stream
// subject ([authz.ParseCommandSubject]) names the same thing, and rejects
// the command otherwise. The edge service, the only publisher on device cmd
// subjects, consumes the command stream with a durable consumer
// ([CommandDispatcher]) and for each command:
//
//   - past its deadline: does not deliver it; stores an expired ack
//     (message.Ack with CorrelationID the command ID, error
//     [AckReasonExpired]) on the device's ack subject, in the event stream,
//     so it reaches central like the device's own acks;
//   - device connected and subscribed to its cmd subject: publishes the
//     command there unchanged, then acknowledges it in the command stream;
//   - otherwise: holds it (unacknowledged, kept in progress) until the
//     device is back (its birth or heartbeat, then its subscription) or the
//     deadline passes, whichever comes first.
//
// A command ID handed out once is not handed out again, even if central's
// stream holds it twice; devices recognise repeated IDs and idempotency
// keys anyway. Delivery to the device is at most once: a command published
// just as the device's connection drops is lost, and central sees no ack.
//
// On central, [Hub.SendCommand] first records the command in central's
// event stream ([CommandRecordThing], so storage keeps it in history with
// its acks), then writes it into the command stream, and returns a
// [CommandResult] whose Wait follows the thing's acks in central's event
// stream until the outcome is final, across any outage of the link;
// [Hub.CommandStatus] looks an outcome up later. See
// docs/command-outcomes.md.
//
// # Liveness and status
//
// Devices announce each boot with a birth and send heartbeats on their
// state subject (Sparkplug B's model). The edge service follows them and the
// server's disconnect events and keeps each device [DeviceOnline],
// [DeviceStale] (connected, but silent for NodeConfig.HeartbeatMisses
// heartbeat intervals) or [DeviceOffline]. When a device's last connection
// drops without its own death, the edge stores a death (message.Death,
// reason [DeathReasonConnectionLost], the boot that ended) on the device's
// state subject. Flap suppression: the edge stores at most one death per
// device per NodeConfig.FlapWindow (10 s by default); a connection lost
// again within the window gets its death when the window ends, and none if
// the device is back by then (its next birth or heartbeat says it is
// alive). Births and heartbeats are the devices' own messages and are never
// suppressed.
//
// The node publishes its [NodeStatus] (link up, backlog not yet
// acknowledged by central and stream fill, of the event and of the
// telemetry stream, devices online, stale and offline,
// commands waiting) on "{org}.{edge}._edge.{edge}.state" every
// NodeConfig.StatusInterval and when the link, the device counts or the
// alarm level change, at most once per CheckInterval.
//
// # MQTT
//
// [MQTTConfig] enables nats-server's MQTT listener for devices that speak
// only MQTT: same users, same authenticator, same permissions (MQTT topic
// "org/edge/type/code/evt" is subject "org.edge.type.code.evt").
package edgekit
