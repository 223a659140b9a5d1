-- The change feed and the application's webhook subscriptions. Keep in step
-- with migrations/sqlite.
--
-- calendar_changes: every change to the mirror, written in the transaction
--   that makes it. seq is the feed's cursor; writers take one advisory lock
--   just before inserting their change rows (their last statement), so seq
--   order is commit order and a reader that reads MAX(seq) first never
--   misses a change that commits later with a smaller seq.
-- kind:      the change type ('event.created', ...).
-- origin:    google | api | calsync.
-- payload:   the event after the change, the changed fields and the detail
--            (the domain's ChangePayload).
CREATE TABLE calendar_changes (
    seq              BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL,
    origin           TEXT NOT NULL CHECK (origin IN ('google', 'api', 'calsync')),
    occurred_at      TIMESTAMPTZ NOT NULL,
    calendar_id      TEXT,
    event_id         TEXT,
    google_event_id  TEXT,
    entity_type      TEXT,
    entity_id        TEXT,
    etag             TEXT,
    payload          JSONB NOT NULL
);
-- Retention purges by age; reads filter by calendar or entity in seq order.
CREATE INDEX calendar_changes_occurred ON calendar_changes (occurred_at);
CREATE INDEX calendar_changes_calendar ON calendar_changes (calendar_id, seq);
CREATE INDEX calendar_changes_entity ON calendar_changes (entity_type, entity_id, seq);

-- The feed's one row: the highest seq purged. A cursor before it expired.
CREATE TABLE calendar_change_feed (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO calendar_change_feed (id, purged_through) VALUES (1, 0);

-- types:   JSON array of change type names; empty: every type.
-- secret, previous_secret: sealed by the SecretKeeper, never in clear.
-- cursor:  delivered (or passed over by the filters) up to this seq.
-- lease_owner/lease_until: the replica delivering to it now.
CREATE TABLE calendar_webhooks (
    id                     TEXT PRIMARY KEY,
    url                    TEXT NOT NULL,
    types                  JSONB NOT NULL DEFAULT '[]',
    entity_type            TEXT,
    calendar_id            TEXT,
    description            TEXT,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  TIMESTAMPTZ,
    enabled                BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason        TEXT,
    cursor                 BIGINT NOT NULL DEFAULT 0,
    failures               INTEGER NOT NULL DEFAULT 0,
    failing_since          TIMESTAMPTZ,
    next_attempt_at        TIMESTAMPTZ NOT NULL,
    last_delivered_at      TIMESTAMPTZ,
    lease_owner            TEXT,
    lease_until            TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX calendar_webhooks_due ON calendar_webhooks (next_attempt_at) WHERE enabled;

-- One attempt to deliver a change (cursor) or a test (cursor NULL).
-- outcome: delivered | failed | gone; status: the receiver's, if it answered.
CREATE TABLE calendar_webhook_attempts (
    id            BIGSERIAL PRIMARY KEY,
    webhook_id    TEXT NOT NULL REFERENCES calendar_webhooks (id) ON DELETE CASCADE,
    cursor        BIGINT,
    kind          TEXT NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed', 'gone')),
    status        INTEGER,
    latency_ms    INTEGER NOT NULL,
    error         TEXT
);
CREATE INDEX calendar_webhook_attempts_webhook ON calendar_webhook_attempts (webhook_id, id);
CREATE INDEX calendar_webhook_attempts_at ON calendar_webhook_attempts (attempted_at);
