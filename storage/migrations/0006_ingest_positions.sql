-- Where each ingest stands in its JetStream stream: the last stream
-- sequence whose events are committed. The ingest advances it in the
-- transaction that stores the events, guarded by the value it read, so
-- that the rows and the position never disagree and two ingests of the
-- same stream can never both commit the same range. gap_messages and
-- gaps count stream sequences that were never delivered (removed from
-- the stream before the ingest read them).
CREATE TABLE lintel.ingest_positions (
    stream       text        NOT NULL,
    name         text        NOT NULL,
    seq          bigint      NOT NULL DEFAULT 0,
    gaps         bigint      NOT NULL DEFAULT 0,
    gap_messages bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, name)
);
