-- The managed calendars: the calendars calsync mirrors, and whom it acts as
-- for each. Keep in step with migrations/postgres.
--
-- subject: the user calls for the calendar act as (domain-wide delegation's
--          `sub`); NULL: the deployment's default.
CREATE TABLE calendar_calendars (
    calendar_id  TEXT PRIMARY KEY,
    subject      TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Backfill: every calendar already synced stays managed, as the default
-- principal. Timestamps in the text form the store writes
-- ('YYYY-MM-DD HH:MM:SS.SSS+00:00'; SQLite's clock has milliseconds).
INSERT INTO calendar_calendars (calendar_id, subject, created_at, updated_at)
SELECT calendar_id, NULL,
       strftime('%Y-%m-%d %H:%M:%f', 'now') || '+00:00',
       strftime('%Y-%m-%d %H:%M:%f', 'now') || '+00:00'
FROM calendar_sync_states;
