-- TimescaleDB, any license: events in a hypertable on time with one-day
-- chunks. Hypertables and drop_chunks are in the Apache-2 edition.
CREATE TABLE lintel.events (
    time           timestamptz      NOT NULL,
    id             uuid             NOT NULL,
    device_time    timestamptz      NOT NULL,
    received_at    timestamptz      NOT NULL,
    org            text             NOT NULL,
    edge           text             NOT NULL,
    thing_type     text             NOT NULL,
    thing_code     text             NOT NULL,
    message_type   text             NOT NULL,
    name           text             NOT NULL DEFAULT '',
    boot_id        uuid,
    seq            bigint           NOT NULL DEFAULT 0,
    correlation_id uuid,
    replayed       boolean          NOT NULL DEFAULT false,
    value          double precision,
    payload        jsonb,
    envelope       bytea            NOT NULL,
    PRIMARY KEY (time, id)
);

-- One-day chunks: at IoT volumes (tens of millions of events a day at most
-- for one central) a day's chunk with its indexes stays well within the
-- memory TimescaleDB recommends (a quarter of RAM for the recent chunks),
-- retention drops whole days, and queries for the last hours touch one or
-- two chunks. The time column is never far from the receive time (see
-- doc.go), so no far-off chunk is ever created for a bad device clock.
SELECT create_hypertable('lintel.events', by_range('time', INTERVAL '1 day'), create_default_indexes => false);

CREATE INDEX events_thing ON lintel.events (org, edge, thing_type, thing_code, time, id);
