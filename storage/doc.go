// Package storage keeps Lintel's history in PostgreSQL, with TimescaleDB
// when the server has it: every message central receives ([Event]), the
// command audit trail ([Command], [CommandAck]), the liveness of things
// ([LivenessEvent], [ThingLiveness]) and access decisions
// ([AccessDecision]). [Ingest] fills the tables from a JetStream stream,
// exactly once; [Store] answers the queries.
//
// # Use
//
// [Migrate] creates or updates the schema "lintel" (safe to run from
// several instances at once; a no-op when current) and decides the
// [Flavor]: TimescaleDB with compression and a continuous aggregate,
// TimescaleDB under the Apache license, or plain PostgreSQL with daily
// partitions. [New] returns the [Store] on a pgx pool.
//
// [NewIngest] reads central's event stream of an org; [Ingest.Start]
// returns an [IngestRun] once it has started, and only the run's Stop (the
// batch in hand is not committed) or Drain (it is) stops it; [Ingest.Run]
// is the blocking form. The ingest:
//
//   - stores each event once, however often it is delivered: its position
//     in the stream is committed with each batch in the same transaction
//     ([Store.IngestPosition]), and a re-read event is skipped;
//   - believes a message only from where it may come
//     ([IngestConfig.Origins], an *authz.SourceTable);
//   - sends what it cannot decode, may not believe or the database refuses
//     to [IngestConfig.DeadLetterSubject], and stores the rest of the batch;
//   - fills the derived tables (commands and their acks, liveness, access
//     decisions) from the events, in the same transaction;
//   - waits out a slow or absent database, retrying the batch in hand;
//   - shares the work with instances on other central nodes: one is
//     active, the others stand by ([IngestStats.Active]).
//
// An event is stored under [Event.Time]: its device time when that is
// plausible ([Config.ClockPast], [Config.ClockFuture]), else its receive
// time; [Event.DeviceTime] keeps what the device said.
//
// [Store.StartMaintenance] keeps partitions, retention, compression and
// the hourly aggregate up to date, and [Store.Health] reports on them for
// readiness checks. [Store.Events], [Store.Commands] and
// [Store.AccessDecisions] page by an opaque cursor; [Store.Latest] and
// [Store.Aggregate] summarise. The Example migrates a database and pages
// through a thing's events.
//
// # Design notes
//
// The schema and its flavors, why events are keyed and partitioned by
// [Event.Time], the ingest's batches, dead letters and derived tables:
// docs/storage-model.md. Origins, the ingest's position and throughput
// figures: docs/ingest.md. Maintenance, health and query figures:
// docs/storage.md.
package storage
