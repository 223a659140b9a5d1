DROP INDEX calendar_events_active_last_end;
CREATE INDEX calendar_events_active_end ON calendar_events (end_at) WHERE status <> 'cancelled';
DROP INDEX calendar_events_exceptions;
DROP INDEX calendar_events_masters;
ALTER TABLE calendar_events DROP COLUMN last_end_at;
ALTER TABLE calendar_events DROP COLUMN google;
ALTER TABLE calendar_events DROP COLUMN details;
ALTER TABLE calendar_events DROP COLUMN kind;
ALTER TABLE calendar_events DROP COLUMN event_type;
