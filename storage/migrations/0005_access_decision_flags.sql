-- What the edge says about how it decided (message.AccessDecision): the
-- holder reference, now apart from the credential's hash in
-- credential_hash; whether it decided offline (no sync with central
-- confirmed since its link came up) or by the door's fallback mode; and
-- the decision's number in the edge's audit chain. Rows from older edges
-- keep the defaults. access_decisions is a plain table in every flavor.
ALTER TABLE lintel.access_decisions
    ADD COLUMN holder    text    NOT NULL DEFAULT '',
    ADD COLUMN offline   boolean NOT NULL DEFAULT false,
    ADD COLUMN fallback  boolean NOT NULL DEFAULT false,
    ADD COLUMN audit_seq bigint  NOT NULL DEFAULT 0;
