-- Plain PostgreSQL (14 or later): events partitioned by day on time, with
-- a DEFAULT partition that catches any row whose day has no partition yet,
-- so that an insert never fails for want of a partition.
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
) PARTITION BY RANGE (time);

CREATE INDEX events_thing ON lintel.events (org, edge, thing_type, thing_code, time, id);

CREATE TABLE lintel.events_default PARTITION OF lintel.events DEFAULT;

-- ensure_event_partitions creates the missing daily (UTC) partitions for
-- every day from p_from to p_to, and returns how many it created. Rows that
-- landed in the default partition for such a day are moved into the new
-- partition. It serialises with itself through an advisory lock, so that
-- several instances can call it at once.
CREATE FUNCTION lintel.ensure_event_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    lo      timestamptz;
    hi      timestamptz;
    part    text;
    created integer := 0;
BEGIN
    IF p_to < p_from THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(7813425109216948001);
    FOR d IN SELECT generate_series((p_from AT TIME ZONE 'UTC')::date, (p_to AT TIME ZONE 'UTC')::date, interval '1 day')::date
    LOOP
        part := 'events_p' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('lintel.' || part) IS NOT NULL;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        IF EXISTS (SELECT 1 FROM lintel.events_default WHERE time >= lo AND time < hi) THEN
            EXECUTE format('CREATE TABLE lintel.%I (LIKE lintel.events INCLUDING DEFAULTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM lintel.events_default WHERE time >= %L AND time < %L RETURNING *)
                            INSERT INTO lintel.%I SELECT * FROM moved', lo, hi, part);
            EXECUTE format('ALTER TABLE lintel.events ATTACH PARTITION lintel.%I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE lintel.%I PARTITION OF lintel.events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        END IF;
        created := created + 1;
    END LOOP;
    RETURN created;
END $$;

-- drop_event_partitions drops the daily partitions that end at or before
-- p_cutoff, deletes older rows from the default partition, and returns the
-- number of partitions dropped.
CREATE FUNCTION lintel.drop_event_partitions(p_cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part    text;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7813425109216948001);
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'lintel.events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
    LOOP
        IF (to_date(substr(part, 9), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= p_cutoff THEN
            EXECUTE format('DROP TABLE lintel.%I', part);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM lintel.events_default WHERE time < p_cutoff;
    RETURN dropped;
END $$;
