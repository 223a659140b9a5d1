-- Every per-event figure of the health report, kept per calendar by
-- triggers in the writing transaction, so health reads one small table and
-- never aggregates over calendar_events (on Postgres such a COUNT was planned
-- from stale statistics as a parallel bitmap scan, ~50 ms a request at 1M
-- events). Beside `active` (migration 4): rows with push_state 'failed', rows
-- flagged push_conflict (cancelled rows included in both, as before), and
-- live series whose recurrence cannot be expanded. Keep in step with
-- migrations/postgres.
ALTER TABLE calendar_event_counts ADD COLUMN push_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calendar_event_counts ADD COLUMN push_conflicts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calendar_event_counts ADD COLUMN unreadable_series BIGINT NOT NULL DEFAULT 0;

-- A recount from the rows (which also mends any drift in `active`).
DELETE FROM calendar_event_counts;
INSERT INTO calendar_event_counts (calendar_id, active, push_failed, push_conflicts, unreadable_series)
SELECT calendar_id,
       SUM(status <> 'cancelled'),
       SUM(push_state = 'failed'),
       SUM(push_conflict <> 0),
       SUM(recurrence_unreadable <> 0 AND status <> 'cancelled')
FROM calendar_events GROUP BY calendar_id;

DROP TRIGGER calendar_event_counts_insert;
DROP TRIGGER calendar_event_counts_update;
DROP TRIGGER calendar_event_counts_delete;

-- Each trigger adds a row's contributions (0 or 1 per counter) to its
-- calendar, or takes them away; an update does both when any of them, or
-- the calendar, changes.
CREATE TRIGGER calendar_event_counts_insert AFTER INSERT ON calendar_events
WHEN NEW.status <> 'cancelled' OR NEW.push_state = 'failed' OR NEW.push_conflict
    OR NEW.recurrence_unreadable
BEGIN
    INSERT INTO calendar_event_counts (calendar_id, active, push_failed, push_conflicts, unreadable_series)
    VALUES (NEW.calendar_id, NEW.status <> 'cancelled', NEW.push_state = 'failed',
            NEW.push_conflict <> 0, NEW.recurrence_unreadable <> 0 AND NEW.status <> 'cancelled')
    ON CONFLICT (calendar_id) DO UPDATE SET
        active = active + excluded.active,
        push_failed = push_failed + excluded.push_failed,
        push_conflicts = push_conflicts + excluded.push_conflicts,
        unreadable_series = unreadable_series + excluded.unreadable_series;
END;

CREATE TRIGGER calendar_event_counts_update
AFTER UPDATE OF status, calendar_id, push_state, push_conflict, recurrence_unreadable ON calendar_events
WHEN OLD.calendar_id <> NEW.calendar_id
    OR (OLD.status <> 'cancelled') <> (NEW.status <> 'cancelled')
    OR (OLD.push_state = 'failed') <> (NEW.push_state = 'failed')
    OR (OLD.push_conflict <> 0) <> (NEW.push_conflict <> 0)
    OR (OLD.recurrence_unreadable <> 0) <> (NEW.recurrence_unreadable <> 0)
BEGIN
    UPDATE calendar_event_counts SET
        active = active - (OLD.status <> 'cancelled'),
        push_failed = push_failed - (OLD.push_state = 'failed'),
        push_conflicts = push_conflicts - (OLD.push_conflict <> 0),
        unreadable_series = unreadable_series
            - (OLD.recurrence_unreadable <> 0 AND OLD.status <> 'cancelled')
    WHERE calendar_id = OLD.calendar_id;
    INSERT INTO calendar_event_counts (calendar_id, active, push_failed, push_conflicts, unreadable_series)
    VALUES (NEW.calendar_id, NEW.status <> 'cancelled', NEW.push_state = 'failed',
            NEW.push_conflict <> 0, NEW.recurrence_unreadable <> 0 AND NEW.status <> 'cancelled')
    ON CONFLICT (calendar_id) DO UPDATE SET
        active = active + excluded.active,
        push_failed = push_failed + excluded.push_failed,
        push_conflicts = push_conflicts + excluded.push_conflicts,
        unreadable_series = unreadable_series + excluded.unreadable_series;
END;

CREATE TRIGGER calendar_event_counts_delete AFTER DELETE ON calendar_events
WHEN OLD.status <> 'cancelled' OR OLD.push_state = 'failed' OR OLD.push_conflict
    OR OLD.recurrence_unreadable
BEGIN
    UPDATE calendar_event_counts SET
        active = active - (OLD.status <> 'cancelled'),
        push_failed = push_failed - (OLD.push_state = 'failed'),
        push_conflicts = push_conflicts - (OLD.push_conflict <> 0),
        unreadable_series = unreadable_series
            - (OLD.recurrence_unreadable <> 0 AND OLD.status <> 'cancelled')
    WHERE calendar_id = OLD.calendar_id;
END;

-- `GET /calendar/events?status=...` (with or without `calendarId`) reads
-- its rows in page order: with only (start_at, id) and (calendar_id,
-- start_at), a status few rows have (cancelled, tentative) walked every
-- row of the table or calendar, about a second at 1M events. Not partial:
-- the status is a bound parameter.
CREATE INDEX calendar_events_status_start ON calendar_events (status, start_at, id);
CREATE INDEX calendar_events_calendar_status_start ON calendar_events (calendar_id, status, start_at, id);
