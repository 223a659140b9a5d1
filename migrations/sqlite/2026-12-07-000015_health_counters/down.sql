DROP INDEX calendar_events_calendar_status_start;
DROP INDEX calendar_events_status_start;
DROP TRIGGER calendar_event_counts_delete;
DROP TRIGGER calendar_event_counts_update;
DROP TRIGGER calendar_event_counts_insert;

-- Migration 4's triggers, which keep `active` only.
CREATE TRIGGER calendar_event_counts_insert AFTER INSERT ON calendar_events
WHEN NEW.status <> 'cancelled'
BEGIN
    INSERT INTO calendar_event_counts (calendar_id, active) VALUES (NEW.calendar_id, 1)
    ON CONFLICT (calendar_id) DO UPDATE SET active = active + 1;
END;

CREATE TRIGGER calendar_event_counts_update AFTER UPDATE OF status, calendar_id ON calendar_events
WHEN (OLD.status <> 'cancelled') <> (NEW.status <> 'cancelled') OR OLD.calendar_id <> NEW.calendar_id
BEGIN
    UPDATE calendar_event_counts SET active = active - 1
    WHERE calendar_id = OLD.calendar_id AND OLD.status <> 'cancelled';
    INSERT INTO calendar_event_counts (calendar_id, active)
    SELECT NEW.calendar_id, 1 WHERE NEW.status <> 'cancelled'
    ON CONFLICT (calendar_id) DO UPDATE SET active = active + 1;
END;

CREATE TRIGGER calendar_event_counts_delete AFTER DELETE ON calendar_events
WHEN OLD.status <> 'cancelled'
BEGIN
    UPDATE calendar_event_counts SET active = active - 1 WHERE calendar_id = OLD.calendar_id;
END;

ALTER TABLE calendar_event_counts DROP COLUMN unreadable_series;
ALTER TABLE calendar_event_counts DROP COLUMN push_conflicts;
ALTER TABLE calendar_event_counts DROP COLUMN push_failed;
