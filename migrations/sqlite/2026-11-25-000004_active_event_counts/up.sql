-- Active (not cancelled) events per calendar, kept by triggers so the health
-- report reads one small table instead of counting a million rows.
CREATE TABLE calendar_event_counts (
    calendar_id  TEXT PRIMARY KEY,
    active       BIGINT NOT NULL DEFAULT 0
);

INSERT INTO calendar_event_counts (calendar_id, active)
SELECT calendar_id, COUNT(*) FROM calendar_events WHERE status <> 'cancelled' GROUP BY calendar_id;

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

-- The oldest and newest active event, without walking past cancelled ones
-- (retention cancels the oldest events first).
CREATE INDEX calendar_events_active_start ON calendar_events (start_at) WHERE status <> 'cancelled';
