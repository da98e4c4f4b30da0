-- TimescaleDB with timescaledb.license = 'timescale' (Community edition):
-- compression, retention and a continuous aggregate, all run by
-- TimescaleDB's job scheduler. With the Apache-2 license none of these
-- exist; this migration is then skipped, and the application's calls to
-- Store.EnforceRetention do the retention (with drop_chunks), and hourly
-- aggregates are computed from the raw events.

-- Compress chunks once they are 14 days old: twice the 7-day window in
-- which the continuous aggregate still refreshes, so that events replayed
-- late after an outage normally land in uncompressed chunks. (TimescaleDB
-- 2.11 and later also accept inserts into compressed chunks, so later
-- replays still succeed, only more slowly.) Segmenting by thing keeps each
-- thing's rows together, which is how history is read.
ALTER TABLE lintel.events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'org, edge, thing_type, thing_code',
    timescaledb.compress_orderby = 'time DESC, id'
);
SELECT add_compression_policy('lintel.events', compress_after => INTERVAL '14 days');

-- Keep raw events for 400 days; Store.SetRetention changes it.
SELECT add_retention_policy('lintel.events', drop_after => INTERVAL '400 days');

-- Hourly counts and readings per thing, message type and name. Created WITH
-- NO DATA, which TimescaleDB allows inside a transaction; the policy fills
-- it. materialized_only = false adds the not yet materialized recent rows
-- at query time (real-time aggregation).
CREATE MATERIALIZED VIEW lintel.events_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       org, edge, thing_type, thing_code, message_type, name,
       count(*)     AS events,
       count(value) AS readings,
       min(value)   AS min_value,
       avg(value)   AS avg_value,
       max(value)   AS max_value
FROM lintel.events
GROUP BY bucket, org, edge, thing_type, thing_code, message_type, name
WITH NO DATA;

-- Refresh every 30 minutes the buckets from 7 days ago up to one hour ago.
-- The 7-day start offset is what lets events replayed late after an outage
-- (an edge buffers up to a week in its JetStream) still reach the
-- aggregate: a refresh recomputes every bucket in the window that changed.
-- Events arriving later than that are stored but stay out of the
-- materialized aggregate until refreshed by hand
-- (CALL refresh_continuous_aggregate('lintel.events_hourly', from, to)).
-- The 1-hour end offset keeps the current, still-changing hour out of the
-- materialization; real-time aggregation covers it.
SELECT add_continuous_aggregate_policy('lintel.events_hourly',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
