-- Idempotency-Key values of event-creating requests: a retried POST with the
-- same key finds the event the first one created. Purged by the cleanup job.
CREATE TABLE calendar_idempotency_keys (
    key          TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX calendar_idempotency_keys_created ON calendar_idempotency_keys (created_at);
