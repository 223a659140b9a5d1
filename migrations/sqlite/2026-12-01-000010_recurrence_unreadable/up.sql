-- A master whose recurrence calsync cannot expand (Event::series_unreadable:
-- a line it cannot parse, a VALUE=PERIOD RDATE, an unknown zone...). Such a
-- series is listed as its master row and reported in health. Set by the
-- store from the event on every row write (insert, update, sync upsert), so
-- health counts these rows without parsing rules. Keep in step with
-- migrations/postgres.
--
-- No backfill: SQL cannot parse recurrence rules, so rows written before
-- this migration read false until their next write.
ALTER TABLE calendar_events ADD COLUMN recurrence_unreadable BOOLEAN NOT NULL DEFAULT 0;
-- Health's count of live unreadable series per calendar reads only this
-- (tiny) index: calendar_id and status are in it, and the bare-column
-- predicate is spelled as the query's (`WHERE recurrence_unreadable`).
CREATE INDEX calendar_events_recurrence_unreadable ON calendar_events (calendar_id, status)
    WHERE recurrence_unreadable;
