-- The version of the credential set an access decision was made with
-- (message.AccessDecision.CredentialSetVersion), for the audit of
-- decisions taken on a stale set; 0 when unknown.
ALTER TABLE lintel.access_decisions ADD COLUMN credential_set_version bigint NOT NULL DEFAULT 0;
