-- Tables common to every flavor. The events table itself is created by
-- 0002 in the flavor's own way.

-- The time an event is stored under when its device clock is implausible
-- (see doc.go, "Time"): decided once, at the first delivery, so that every
-- redelivery of the event gets the same (time, id) key.
CREATE TABLE lintel.event_time_overrides (
    id   uuid        PRIMARY KEY,
    time timestamptz NOT NULL
);
CREATE INDEX event_time_overrides_time ON lintel.event_time_overrides (time);

-- Commands: who asked what of which thing, when, and how it ended.
CREATE TABLE lintel.commands (
    id             uuid        PRIMARY KEY,
    org            text        NOT NULL,
    edge           text        NOT NULL,
    thing_type     text        NOT NULL,
    thing_code     text        NOT NULL,
    action         text        NOT NULL,
    params         jsonb,
    requested_by   text        NOT NULL,
    requested_at   timestamptz NOT NULL,
    deadline       timestamptz,
    correlation_id text        NOT NULL DEFAULT '',
    status         text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'accepted', 'completed', 'failed', 'rejected', 'expired')),
    acked_at       timestamptz,
    error          text        NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commands_thing ON lintel.commands (org, edge, thing_type, thing_code, requested_at, id);
CREATE INDEX commands_requested_by ON lintel.commands (requested_by, requested_at, id);
CREATE INDEX commands_requested_at ON lintel.commands (requested_at, id);

-- Every acknowledgement of a command, in any order and possibly before the
-- command itself is recorded; commands.status is derived from them.
CREATE TABLE lintel.command_acks (
    id          uuid        PRIMARY KEY, -- the ack's envelope id
    command_id  uuid        NOT NULL,
    time        timestamptz NOT NULL,
    status      text        NOT NULL
        CHECK (status IN ('accepted', 'completed', 'failed', 'rejected', 'expired')),
    error       text        NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL
);
CREATE INDEX command_acks_command ON lintel.command_acks (command_id, time);
CREATE INDEX command_acks_time ON lintel.command_acks (time);

-- Liveness: the current state per thing...
CREATE TABLE lintel.liveness (
    org          text        NOT NULL,
    edge         text        NOT NULL,
    thing_type   text        NOT NULL,
    thing_code   text        NOT NULL,
    boot_id      text        NOT NULL DEFAULT '',
    born_at      timestamptz,
    last_seen_at timestamptz NOT NULL,
    died_at      timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, edge, thing_type, thing_code)
);

-- ...and every birth, death and heartbeat, with the boot it belongs to.
CREATE TABLE lintel.liveness_events (
    id          uuid        PRIMARY KEY, -- the envelope id
    time        timestamptz NOT NULL,
    org         text        NOT NULL,
    edge        text        NOT NULL,
    thing_type  text        NOT NULL,
    thing_code  text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('birth', 'death', 'heartbeat')),
    boot_id     text        NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL
);
CREATE INDEX liveness_events_thing ON lintel.liveness_events (org, edge, thing_type, thing_code, time);
CREATE INDEX liveness_events_time ON lintel.liveness_events (time);

-- Access decisions, queryable by credential, door and time. The credential
-- is only ever stored hashed.
CREATE TABLE lintel.access_decisions (
    id              uuid        PRIMARY KEY, -- the envelope id
    time            timestamptz NOT NULL,
    org             text        NOT NULL,
    edge            text        NOT NULL,
    door            text        NOT NULL,
    reader          text        NOT NULL DEFAULT '',
    credential_hash text        NOT NULL,
    granted         boolean     NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL
);
CREATE INDEX access_decisions_credential ON lintel.access_decisions (credential_hash, time, id);
CREATE INDEX access_decisions_door ON lintel.access_decisions (org, edge, door, time, id);
CREATE INDEX access_decisions_time ON lintel.access_decisions (time);
