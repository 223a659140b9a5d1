ALTER TABLE calendar_outbox DROP COLUMN payload;
DROP INDEX calendar_events_push_conflict;
ALTER TABLE calendar_events DROP COLUMN pushed_at;
ALTER TABLE calendar_events DROP COLUMN push_conflict;
ALTER TABLE calendar_events DROP COLUMN push_note;
