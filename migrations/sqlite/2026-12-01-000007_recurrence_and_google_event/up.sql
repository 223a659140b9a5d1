-- Recurring series and the whole Google event. Keep in step with migrations/postgres.
--
-- event_type: Google's eventType, by Google's name.
-- kind:       single | master (a series' recurrence and first occurrence) |
--             exception (one changed or cancelled occurrence); derived from
--             recurrence and recurring_event_id on every write.
-- details:    reminders, visibility, transparency, colour, conference (JSON text).
-- google:     Google's event resource as last read, verbatim (JSON text).
-- last_end_at: when the row's last occurrence ends: end_at for singles and
--             exceptions, a bounded series' last occurrence's end for a
--             master, NULL for an endless series (never retired).
ALTER TABLE calendar_events ADD COLUMN event_type TEXT NOT NULL DEFAULT 'default';
ALTER TABLE calendar_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'single'
    CHECK (kind IN ('single', 'master', 'exception'));
ALTER TABLE calendar_events ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
ALTER TABLE calendar_events ADD COLUMN google TEXT;
ALTER TABLE calendar_events ADD COLUMN last_end_at TEXT;

-- Backfill. SQL cannot expand recurrence rules, so an existing master's
-- last end stays NULL: it counts as an endless series (listed in every
-- window from its start on, never retired wrongly) until its next write
-- computes the real one.
UPDATE calendar_events SET kind = CASE
    WHEN recurring_event_id IS NOT NULL THEN 'exception'
    WHEN recurrence <> '[]' THEN 'master'
    ELSE 'single'
END;
UPDATE calendar_events SET last_end_at = end_at WHERE kind <> 'master';

-- Masters of a calendar for a window (they start before its end).
CREATE INDEX calendar_events_masters ON calendar_events (calendar_id, start_at) WHERE kind = 'master';
-- A series' exceptions.
CREATE INDEX calendar_events_exceptions ON calendar_events (calendar_id, recurring_event_id)
    WHERE recurring_event_id IS NOT NULL;
-- Retention walks active rows by their last end (end_at for all but masters).
DROP INDEX calendar_events_active_end;
CREATE INDEX calendar_events_active_last_end ON calendar_events (last_end_at) WHERE status <> 'cancelled';
