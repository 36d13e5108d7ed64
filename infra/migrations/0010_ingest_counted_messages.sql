-- depends: 0009_company_consent_whole_hour
-- Messages whose dead letters or consent drops the worker has recorded, by a digest of topic and
-- payload. A message the worker committed but could not acknowledge (it crashed in between)
-- comes back from the broker flagged DUP; its telemetry rows are idempotent on their natural
-- keys, and this ledger makes its dead letters and consent drops idempotent too: a DUP message
-- whose digest is already here is not recorded again. Kept as long as the broker keeps the
-- worker's session (LDL_INGEST_SESSION_EXPIRY_SECONDS); the worker forgets older entries.
CREATE TABLE ingest_counted_messages (
    digest     bytea PRIMARY KEY,
    counted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_counted_messages_counted_at_idx ON ingest_counted_messages (counted_at);
GRANT SELECT, INSERT, DELETE ON ingest_counted_messages TO ldl_app;
