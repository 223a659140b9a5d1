-- calsync schema, Postgres dialect. Keep in step with migrations/sqlite.

CREATE TABLE calendar_events (
    id                  TEXT PRIMARY KEY,
    calendar_id         TEXT NOT NULL,
    google_event_id     TEXT NOT NULL,
    ical_uid            TEXT,
    summary             TEXT,
    description         TEXT,
    location            TEXT,
    -- start_at/end_at order and index every event; all-day events also keep
    -- their dates (end exclusive) so they are never read back as instants.
    start_at            TIMESTAMPTZ NOT NULL,
    end_at              TIMESTAMPTZ NOT NULL,
    start_date          DATE,
    end_date            DATE,
    start_time_zone     TEXT,
    end_time_zone       TEXT,
    status              TEXT NOT NULL CHECK (status IN ('confirmed', 'tentative', 'cancelled')),
    attendees           TEXT NOT NULL DEFAULT '[]',
    organizer           TEXT,
    recurrence          TEXT NOT NULL DEFAULT '[]',
    recurring_event_id  TEXT,
    original_start      TEXT,
    etag                TEXT,
    google_updated      TIMESTAMPTZ,
    html_link           TEXT,
    entity_type         TEXT,
    entity_id           TEXT,
    push_state          TEXT NOT NULL CHECK (push_state IN ('pending', 'synced', 'failed')),
    sync_run_id         TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT calendar_events_google_id UNIQUE (calendar_id, google_event_id)
);
CREATE INDEX calendar_events_entity ON calendar_events (entity_type, entity_id, start_at);
CREATE INDEX calendar_events_start ON calendar_events (start_at, id);
CREATE INDEX calendar_events_calendar_start ON calendar_events (calendar_id, start_at);
-- Retention cleanup and the active-event aggregates skip cancelled rows.
CREATE INDEX calendar_events_active_end ON calendar_events (end_at) WHERE status <> 'cancelled';
CREATE INDEX calendar_events_push_failed ON calendar_events (push_state) WHERE push_state = 'failed';

CREATE TABLE calendar_sync_states (
    calendar_id               TEXT PRIMARY KEY,
    sync_token                TEXT,
    last_full_sync_at         TIMESTAMPTZ,
    last_incremental_sync_at  TIMESTAMPTZ,
    last_status               TEXT,
    last_error                TEXT,
    last_error_at             TIMESTAMPTZ,
    error_count               INTEGER NOT NULL DEFAULT 0,
    dirty_seq                 BIGINT NOT NULL DEFAULT 0,
    clean_seq                 BIGINT NOT NULL DEFAULT 0,
    full_sync_requested       BOOLEAN NOT NULL DEFAULT FALSE,
    reconnect_required        BOOLEAN NOT NULL DEFAULT FALSE,
    lease_owner               TEXT,
    lease_until               TIMESTAMPTZ
);
CREATE INDEX calendar_sync_states_dirty ON calendar_sync_states (lease_until)
    WHERE dirty_seq > clean_seq OR full_sync_requested;

CREATE TABLE calendar_watch_channels (
    id                    TEXT PRIMARY KEY,
    calendar_id           TEXT NOT NULL,
    resource_id           TEXT,
    expiration            TIMESTAMPTZ NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'active', 'stopped')),
    created_at            TIMESTAMPTZ NOT NULL,
    last_notification_at  TIMESTAMPTZ,
    last_message_number   BIGINT
);
CREATE INDEX calendar_watch_channels_status ON calendar_watch_channels (status, expiration);

CREATE TABLE calendar_outbox (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES calendar_events (id) ON DELETE CASCADE,
    calendar_id      TEXT NOT NULL,
    google_event_id  TEXT NOT NULL,
    op               TEXT NOT NULL CHECK (op IN ('insert', 'patch', 'delete')),
    if_match         TEXT,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead_letter')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX calendar_outbox_due ON calendar_outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX calendar_outbox_event ON calendar_outbox (event_id, id);
CREATE INDEX calendar_outbox_pending_age ON calendar_outbox (created_at) WHERE state = 'pending';
CREATE INDEX calendar_outbox_dead ON calendar_outbox (state) WHERE state = 'dead_letter';

CREATE TABLE drive_notifications (
    id              BIGSERIAL PRIMARY KEY,
    channel_id      TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    resource_uri    TEXT NOT NULL,
    resource_state  TEXT NOT NULL,
    message_number  BIGINT NOT NULL,
    changed         TEXT NOT NULL DEFAULT '',
    received_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX drive_notifications_received ON drive_notifications (received_at);

CREATE TABLE job_ticks (
    job            TEXT NOT NULL,
    scheduled_for  TIMESTAMPTZ NOT NULL,
    claimed_by     TEXT NOT NULL,
    claimed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, scheduled_for)
);
