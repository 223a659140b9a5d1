-- The managed calendars: the calendars calsync mirrors, and whom it acts as
-- for each. Keep in step with migrations/sqlite.
--
-- subject: the user calls for the calendar act as (domain-wide delegation's
--          `sub`); NULL: the deployment's default.
CREATE TABLE calendar_calendars (
    calendar_id  TEXT PRIMARY KEY,
    subject      TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Backfill: every calendar already synced stays managed, as the default
-- principal. (now() is the transaction's start: one instant for all rows.)
INSERT INTO calendar_calendars (calendar_id, subject, created_at, updated_at)
SELECT calendar_id, NULL, date_trunc('microseconds', now()), date_trunc('microseconds', now())
FROM calendar_sync_states;
