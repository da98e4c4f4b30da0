// Package storage keeps Lintel's history in PostgreSQL, with TimescaleDB
// when the server has it: every message central receives ([Event]), the
// command audit trail ([Command], [CommandAck]), the liveness of things
// ([LivenessEvent], [ThingLiveness]) and access decisions
// ([AccessDecision]). [Ingest] fills the events table from a JetStream
// stream, exactly once; [Store] answers the queries.
//
// # Schema and migrations
//
// [Migrate] applies versioned SQL migrations embedded in the binary to the
// schema "lintel", under a PostgreSQL advisory lock, so that several
// central instances can start at once; running it again is a no-op. The
// runner is small and ours rather than goose's: it needs pgx (not
// database/sql), the advisory lock, per-flavor variants of one version and
// checksums, and nothing of goose's dozens of drivers. A file is
// NNNN_name.sql for every flavor, or NNNN_name.TAG.sql for some: "postgres",
// "timescaledb" (any TimescaleDB) or "tsl" (TimescaleDB under its Community
// license). Applied migrations must never be edited; [ErrChecksum] catches
// it, and [SchemaHash] identifies the set for test templates.
//
// The [Flavor] is decided at the first migration and kept:
//
//   - [FlavorTimescale]: the timescaledb extension exists or can be
//     created and SHOW timescaledb.license says 'timescale'. Events are a
//     hypertable with one-day chunks, compressed after 14 days, dropped
//     after 400 days by a retention policy ([Store.SetRetentionPolicy]),
//     and summarised per thing, message type, name and hour by the
//     continuous aggregate lintel.events_hourly, refreshed every 30 minutes
//     over the last 7 days (start_offset) so that events replayed late
//     after an outage of up to a week still reach it.
//   - [FlavorTimescaleApache]: the license is 'apache', which has
//     hypertables and drop_chunks but no compression, no policies and no
//     continuous aggregates. Events are the same hypertable; retention is
//     [Store.EnforceRetention]; aggregates are computed with time_bucket.
//   - [FlavorPostgres]: PostgreSQL 14 or later without TimescaleDB. Events
//     are range-partitioned by day on time, with a DEFAULT partition so that
//     an insert never fails for want of a partition. Inserts create the
//     partitions they need, [Store.MaintainPartitions] creates them ahead
//     of time (moving any rows out of the default partition), and
//     [Store.EnforceRetention] drops whole old partitions. Aggregates use
//     date_bin.
//
// # Time
//
// Every event has three times: its device time (the envelope's time, by
// the device's clock), its receive time (when central's stream stored it),
// and Time, the one it is partitioned, ordered, paginated, aggregated and
// retained under.
//
// The unique key must contain the partitioning column (PostgreSQL and
// TimescaleDB both require it) and must be the same on every delivery of
// an event, or a redelivery would be stored twice. The receive time
// differs between deliveries, so it cannot be in the key: the key is
// (Time, ID), with ID the envelope's id and Time taken from the envelope.
//
// Partitioning by raw device time would be wrong for devices whose clock
// is far off: an event dated 1970 would land in a chunk that retention
// drops at its next run, one dated 2150 in a chunk that is never dropped,
// and plain PostgreSQL would need a partition for each. So Time is the
// device time when that is plausible (within [Config.ClockPast] before and
// [Config.ClockFuture] after the receive time: 30 days and a day by
// default; 30 days covers events replayed after a long edge outage, which
// must keep their device time), and otherwise the receive time of the
// event's first delivery. That choice is recorded in
// lintel.event_time_overrides the first time the event is seen, and every
// later delivery looks it up, so the key stays stable even when a
// redelivery would judge plausibility differently (a device time that was
// plausible becomes implausible as the receive time moves on, and the
// other way round); a redelivery of an event already stored under its
// device time is recognised as such before any override is made. Only
// implausible events get a row there, and it is deleted with the event by
// retention. The device time is always kept unchanged in
// [Event.DeviceTime], and [Event.ClockSkewed] tells which events moved.
//
// As a result Time always lies within a month of the receive time:
// retention by Time keeps every event for about its retention period after
// it arrived, whatever the device's clock said, and no partition or chunk
// is created far from now.
//
// # Ingest
//
// [Ingest] pulls batches from a durable JetStream pull consumer (by size,
// [IngestConfig.BatchSize], and by time, [IngestConfig.BatchWait]), decodes
// the envelopes with [DecodeEnvelope] (message.DecodeMsg: msgpack or
// CloudEvents JSON by the Content-Type header, the schema version header,
// the subject check; msgpack payloads are transcoded to JSON for the jsonb
// column; the envelope column keeps the original bytes), and stores each
// batch with [Store.InsertEvents]: pgx CopyFrom into a temporary staging
// table, then INSERT … SELECT … ON CONFLICT DO NOTHING on (Time, ID) in the
// same transaction. Messages are acked only after the commit, so a crash
// means redelivery, and redelivery means a duplicate that is skipped.
//
// One bad row must not poison its batch: when PostgreSQL rejects the data
// (for example a JSON payload with \u0000, which jsonb refuses, failing the
// whole COPY), the batch is bisected until the bad rows are isolated; they
// are published to [IngestConfig.DeadLetterSubject] and the rest is
// stored. A message that cannot be decoded goes there too. A dead letter
// carries the original data and headers plus the reason
// ([HeaderDeadLetterReason]) and origin; the original is acked only once
// JetStream has confirmed the dead letter, so nothing is dropped silently
// and nothing is retried forever.
//
// When the database is slow or down, the batch in hand is retried with
// exponential backoff and progress acks keep it from redelivery; nothing
// more is pulled until it is stored, and the ingest resumes by itself when
// the database returns.
//
// # Derived tables
//
// Some events also fill a table of their own, in the transaction that
// stores the batch, so that the tables never disagree with the events:
//
//   - an ack (message type ack, payload message.Ack, the command's id as
//     CorrelationID or, failing that, as the payload's command_id) adds a
//     [CommandAck] to lintel.command_acks and re-derives the command's
//     status: the latest final ack if any, else the latest ack, whatever
//     order they arrive in and even before the command is recorded;
//   - a command (message type cmd, payload message.Command), if the stream
//     carries any, adds a [Command] to lintel.commands, as
//     [Store.RecordCommand] does when central sends one (the first record
//     of a command id wins);
//   - a thing.birth, thing.heartbeat or thing.death (message type state)
//     adds a [LivenessEvent] to lintel.liveness_events and folds into the
//     thing's [ThingLiveness] in lintel.liveness (latest birth, death and
//     message, boot, online);
//   - an access.granted or access.denied event (message type evt, payload
//     message.AccessDecision) adds an [AccessDecision] to
//     lintel.access_decisions, queryable by credential hash, holder, door,
//     outcome, offline and time. The credential_hash column holds the
//     payload's Credential, the keyed hash of the credential presented
//     (see [HashCredential]), and the holder column its Holder reference;
//     for an event from an older edge, whose payload has no Credential,
//     both columns hold its Holder reference, credential_hash as it always
//     did. The payload has no field for a clear credential, and the table
//     never receives one.
//
// Derived rows are dated like their event: the device time when
// plausible, else the receive time (see "Time"). Every derived row is
// keyed on its envelope id and inserted with ON CONFLICT DO NOTHING, and
// the liveness and command status updates only fold in rows that were new
// (or recompute from the stored acks), so redelivery changes nothing.
// Concurrent writers of a command and its acks serialise on a
// transaction-scoped advisory lock per command id, taken in id order.
//
// The fast path stays fast: deciding whether an event makes a derived row
// is a comparison of its message type, and a batch with none costs
// nothing more. A batch with some adds one round trip: one multi-row
// INSERT … SELECT FROM unnest(…) per kind present, pipelined.
//
// A derived row never poisons its batch, and never costs its event. An
// event whose payload does not make a valid row (an ack with an unknown
// status or no command id, a decision whose payload contradicts its name,
// a command with no action) is stored without one; so is an event whose
// derived row the database refuses, which the bisection of the batch
// isolates like a refused event and then stores alone without the row.
// Either way [InsertResult.Skipped] lists it with the reason, the ingest
// logs it and counts it in [IngestStats.DerivedSkipped], and the message
// is acked: the event is kept, so nothing is lost, and dead-lettering it
// would take the event away. A birth, heartbeat or death needs no
// payload: its kind is its name and its boot the payload's or the
// envelope's.
//
// # Replayed events
//
// An event is marked replayed when the message carries the
// [IngestConfig.ReplayedHeader] header (edges set it when they forward
// their buffer after an outage) or when it arrived more than
// [IngestConfig.ReplayedAfter] after its device time; [IngestConfig.Replayed]
// replaces the rule.
//
// # Forged acknowledgements
//
// nats-server accepts a publish to "$JS.ACK.…" from a leaf node
// connection whatever the leaf's permissions, and for an AckExplicit
// consumer it takes an ack (or +TERM) of a stream sequence that is
// pending or awaiting redelivery as final; only the stream sequence in
// the subject matters, and (in the v2.15 server this module uses) acks
// beyond the consumer's delivery pointer are ignored. So a compromised
// edge, whose leaf connection is bound to its org's account on central,
// can ack the in-flight messages of an ingest consumer living in that
// account, for every edge of the org: the names are predictable
// (events-{org}, [DefaultDurable]) and sequences consecutive. The ingest
// keeps every batch it holds until it is stored, so a forged ack alone
// loses nothing; but a message so acked is never redelivered, so if the
// ingest stops or crashes before its commit, or a dead letter cannot be
// published and the message is nak'ed, that message silently never
// reaches the database.
//
// The mitigation belongs to the deployment: run the ingest's consumer in
// an account that no leaf connection is bound to and that exports nothing
// under "$JS.ACK.>". Central's org account keeps events-{org}; a storage
// account holds a stream that sources (or mirrors) it across accounts,
// the org account exporting the JetStream API of that stream and the
// source's deliver subject and the storage account importing them under
// the prefix given as the source's External.APIPrefix; and the [Ingest]
// gets a JetStream context of the storage account and that stream. The
// only consumer left in the org account is then the source's
// flow-controlled one, whose position the sourcing stream keeps itself.
// A Durable name that is not [DefaultDurable] and cannot be guessed
// raises the bar (the ack subject names the consumer) but is no fix.
// Detecting such a loss inside storage would mean recording the
// committed stream sequences in the same transaction and reconciling
// them with the consumer's ack floor, re-reading any gap from the stream
// by sequence; that is not implemented.
//
// # Queries
//
// [Store.Events], [Store.Commands] and [Store.AccessDecisions] paginate by
// keyset: the opaque cursor holds the last row's (time, id), and the next
// page starts strictly after it, so pages are exact across boundaries
// even among events with equal times. [Store.Latest] returns the latest
// event per thing, [Store.Aggregate] time-bucketed counts and min/avg/max
// of readings.
package storage
