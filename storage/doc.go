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
// [Ingest] reads the stream in order through an ordered consumer, which
// needs no acknowledgement, in batches (by size, [IngestConfig.BatchSize],
// and by time, [IngestConfig.BatchWait]); checks each message's origin
// (see "Origins"); decodes
// the envelopes with [DecodeEnvelope] (message.DecodeMsg: msgpack or
// CloudEvents JSON by the Content-Type header, the schema version header,
// the subject check; msgpack payloads are transcoded to JSON for the jsonb
// column; the envelope column keeps the original bytes), and stores each
// batch with [Store.InsertEvents]: a binary COPY straight into the events
// table when every device time is plausible and no duplicate was met
// lately, else into a temporary staging table and INSERT … SELECT … ON
// CONFLICT DO NOTHING on (Time, ID), in one transaction (docs/ingest.md,
// "Throughput"). Its position in the stream, the last stream sequence
// committed, is a row of lintel.ingest_positions ([Store.IngestPosition])
// that the same transaction moves, guarded by the value it was read at: a
// batch is committed with its position or not at all, and every start
// reads on from the committed position. So a crash re-reads at once what
// was not committed, with no acknowledgement wait, and a re-read event is
// a duplicate that is skipped.
//
// [Ingest.Start] returns an [IngestRun], stopped with [IngestRun.Stop]
// (the batch in hand is handed back: not committed) or [IngestRun.Drain]
// (what was read is committed first). Instances with the same stream and
// [IngestConfig.Durable] on several central nodes share the work: one
// holds a PostgreSQL advisory lock and is active, the others stand by
// ([IngestStats.Active]), and the guarded position keeps two that overlap
// from committing the same range. Stream sequences the stream no longer
// held when the ingest read past them are reported as gaps
// ([IngestStats.Gaps], logged at warning). Design and figures:
// docs/ingest.md.
//
// One bad row must not poison its batch: when PostgreSQL rejects the data
// (for example a JSON payload with \u0000, which jsonb refuses, failing the
// whole COPY), the batch is bisected until the bad rows are isolated; they
// are published to [IngestConfig.DeadLetterSubject] and the rest is
// stored. A message that cannot be decoded goes there too. A dead letter
// carries the original data and headers plus the reason
// ([HeaderDeadLetterReason]) and origin; the ingest moves past the
// original only once JetStream has confirmed the dead letter, so nothing
// is dropped silently and nothing is retried forever. [Ingest.Start]
// refuses a DeadLetterSubject that no stream captures, naming it.
//
// When the database is slow or down, the batch in hand is retried with
// exponential backoff; nothing more is read until it is stored, and the
// ingest resumes by itself when the database returns. A stream that does
// not exist (yet) is logged at warning at once, shown in
// [IngestStats.StreamMissing] and looked for again; what the ingest was
// still retrying when it stopped is [IngestRun.Err].
//
// # Origins
//
// An edge may be compromised, and central's stream stores whatever its
// streams hold under whatever subject it chose. [IngestConfig.Origins]
// (the org's *authz.SourceTable) believes a message only when its
// stream-source header, which nats-server writes itself, names a source
// of the edge its subject names, and not on a system subject; an
// unsourced message only on central's own subjects. A refused message is
// dead-lettered, counted ([IngestStats.Refused]) and logged at warning; it
// never reaches the database. [AnyOrigin] believes everything, for a
// stream no edge feeds.
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
//   - central's record of a command it sent (message.NameCommandSent, a
//     message.CommandSent event of the system thing
//     "{org}.{edge}._sys.commands", a subject only central writes; edgekit's
//     Hub.SendCommand stores one in central's event stream before each
//     command) adds a [Command] to lintel.commands under the command's own
//     id, for the thing its subject names, which must be of the record's
//     edge;
//   - a command (message type cmd, payload message.Command), if the stream
//     carries any, adds a [Command] to lintel.commands, as
//     [Store.RecordCommand] does (the first record of a command id wins);
//   - a thing.birth, thing.heartbeat or thing.death (message type state)
//     adds a [LivenessEvent] to lintel.liveness_events and folds into the
//     thing's [ThingLiveness] in lintel.liveness (latest birth, death and
//     message, boot, online);
//   - an access.granted or access.denied event (message type evt, payload
//     message.AccessDecision) of the reserved thing type "_access"
//     (topic.ThingTypeAccess: the edge's access service records the
//     decision on a reader's request on "{org}.{edge}._access.{reader}.evt",
//     which no device may publish) adds an [AccessDecision] to
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
// nothing more. A batch with some adds at most one round trip: one
// multi-row INSERT … SELECT FROM unnest(…) per kind present, pipelined
// (in the ingest, with the position's update).
//
// A derived row never poisons its batch, and never costs its event. An
// event whose payload does not make a valid row (an ack with an unknown
// status or no command id, a decision whose payload contradicts its name,
// a command with no action) is stored without one; so is an event whose
// derived row the database refuses, which the bisection of the batch
// isolates like a refused event and then stores alone without the row.
// Either way [InsertResult.Skipped] lists it with the reason, the ingest
// logs it and counts it in [IngestStats.DerivedSkipped], and the message
// is passed over as stored: the event is kept, so nothing is lost, and dead-lettering it
// would take the event away. A birth, heartbeat or death needs no
// payload: its kind is its name and its boot the payload's or the
// envelope's.
//
// # Replayed events
//
// An event is marked replayed when it arrived more than
// [IngestConfig.ReplayedAfter] after its device time (the time central's
// stream stored it against the envelope's), or when the message carries
// the [IngestConfig.ReplayedHeader] header, which a producer publishing
// directly into central's stream may set (sourcing from an edge cannot add
// a header); [IngestConfig.Replayed] replaces the rule.
//
// # Forged acknowledgements
//
// nats-server accepts a publish to "$JS.ACK.…" from a leaf node
// connection whatever the leaf's permissions, and central's consumers
// live in the org account that the edges' leaf connections are bound to.
// The ingest acknowledges nothing: its consumer is ordered (AckNone) and
// its position is in the database, so there is nothing for an edge to
// forge. See docs/ingest.md.
//
// # Maintenance and health
//
// [Store.StartMaintenance] runs [Store.Maintain] every half hour on every
// flavor: it creates the coming partitions (plain PostgreSQL), enforces
// retention on events and the derived tables, and on FlavorTimescale
// refreshes the hourly continuous aggregate and compresses old chunks by
// calling TimescaleDB's functions directly, instead of trusting its job
// scheduler: with TimescaleDB 2.28 on PostgreSQL 15 every policy job the
// scheduler runs fails (SQLSTATE 24000, "cannot drop portal"), and the
// Apache license has no policies at all. Maintenance unschedules the
// policy jobs it replaces, and a session advisory lock makes one instance
// of a clustered central run each pass. [Store.Health] reports the
// failing TimescaleDB jobs of Lintel's relations (with the error text of
// job_errors; TimescaleDB's own jobs are left out) and the latest
// maintenance pass, for readiness checks; [Maintenance.Stats] counts the
// passes, for metrics. See docs/storage.md.
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
