-- Every per-event figure of the health report, kept per calendar by
-- triggers in the writing transaction, so health reads one small table and
-- never aggregates over calendar_events (`COUNT(*) ... WHERE push_conflict`
-- was planned from stale statistics as a parallel bitmap scan with JIT, ~50
-- ms a request at 1M events). Beside `active` (migration 4): rows with
-- push_state 'failed', rows flagged push_conflict (cancelled rows included
-- in both, as before), and live series whose recurrence cannot be expanded.
-- Keep in step with migrations/sqlite.
ALTER TABLE calendar_event_counts ADD COLUMN push_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calendar_event_counts ADD COLUMN push_conflicts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calendar_event_counts ADD COLUMN unreadable_series BIGINT NOT NULL DEFAULT 0;

-- A recount from the rows (which also mends any drift in `active`).
DELETE FROM calendar_event_counts;
INSERT INTO calendar_event_counts (calendar_id, active, push_failed, push_conflicts, unreadable_series)
SELECT calendar_id,
       COUNT(*) FILTER (WHERE status <> 'cancelled'),
       COUNT(*) FILTER (WHERE push_state = 'failed'),
       COUNT(*) FILTER (WHERE push_conflict),
       COUNT(*) FILTER (WHERE recurrence_unreadable AND status <> 'cancelled')
FROM calendar_events GROUP BY calendar_id;

-- The triggers stay statement-level over transition tables (one counter
-- update per calendar per statement, as migration 4's): each row adds its
-- contributions (0 or 1 per counter) and an old row takes them back; the
-- sums are applied in calendar order, so concurrent writers lock counter
-- rows in one order.
DROP TRIGGER calendar_event_counts_insert ON calendar_events;
DROP TRIGGER calendar_event_counts_update ON calendar_events;
DROP TRIGGER calendar_event_counts_delete ON calendar_events;
DROP FUNCTION calendar_event_counts_on_insert();
DROP FUNCTION calendar_event_counts_on_update();
DROP FUNCTION calendar_event_counts_on_delete();
DROP FUNCTION calendar_event_counts_add(TEXT[], BIGINT[]);

CREATE FUNCTION calendar_event_counts_on_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO calendar_event_counts AS c
            (calendar_id, active, push_failed, push_conflicts, unreadable_series)
        SELECT calendar_id,
               COUNT(*) FILTER (WHERE status <> 'cancelled'),
               COUNT(*) FILTER (WHERE push_state = 'failed'),
               COUNT(*) FILTER (WHERE push_conflict),
               COUNT(*) FILTER (WHERE recurrence_unreadable AND status <> 'cancelled')
        FROM new_rows
        WHERE status <> 'cancelled' OR push_state = 'failed' OR push_conflict OR recurrence_unreadable
        GROUP BY calendar_id ORDER BY calendar_id
        ON CONFLICT (calendar_id) DO UPDATE SET
            active = c.active + EXCLUDED.active,
            push_failed = c.push_failed + EXCLUDED.push_failed,
            push_conflicts = c.push_conflicts + EXCLUDED.push_conflicts,
            unreadable_series = c.unreadable_series + EXCLUDED.unreadable_series;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO calendar_event_counts AS c
            (calendar_id, active, push_failed, push_conflicts, unreadable_series)
        SELECT calendar_id, SUM(active), SUM(failed), SUM(conflict), SUM(unreadable)
        FROM (
            SELECT calendar_id,
                   (status <> 'cancelled')::INT AS active,
                   (push_state = 'failed')::INT AS failed,
                   push_conflict::INT AS conflict,
                   (recurrence_unreadable AND status <> 'cancelled')::INT AS unreadable
            FROM new_rows
            UNION ALL
            SELECT calendar_id,
                   -(status <> 'cancelled')::INT,
                   -(push_state = 'failed')::INT,
                   -push_conflict::INT,
                   -(recurrence_unreadable AND status <> 'cancelled')::INT
            FROM old_rows
        ) d
        GROUP BY calendar_id
        HAVING SUM(active) <> 0 OR SUM(failed) <> 0 OR SUM(conflict) <> 0 OR SUM(unreadable) <> 0
        ORDER BY calendar_id
        ON CONFLICT (calendar_id) DO UPDATE SET
            active = c.active + EXCLUDED.active,
            push_failed = c.push_failed + EXCLUDED.push_failed,
            push_conflicts = c.push_conflicts + EXCLUDED.push_conflicts,
            unreadable_series = c.unreadable_series + EXCLUDED.unreadable_series;
    ELSE
        UPDATE calendar_event_counts AS c SET
            active = c.active - d.active,
            push_failed = c.push_failed - d.failed,
            push_conflicts = c.push_conflicts - d.conflict,
            unreadable_series = c.unreadable_series - d.unreadable
        FROM (
            SELECT calendar_id,
                   COUNT(*) FILTER (WHERE status <> 'cancelled') AS active,
                   COUNT(*) FILTER (WHERE push_state = 'failed') AS failed,
                   COUNT(*) FILTER (WHERE push_conflict) AS conflict,
                   COUNT(*) FILTER (WHERE recurrence_unreadable AND status <> 'cancelled') AS unreadable
            FROM old_rows
            WHERE status <> 'cancelled' OR push_state = 'failed' OR push_conflict OR recurrence_unreadable
            GROUP BY calendar_id ORDER BY calendar_id
        ) d
        WHERE c.calendar_id = d.calendar_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER calendar_event_counts_insert AFTER INSERT ON calendar_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_write();
CREATE TRIGGER calendar_event_counts_update AFTER UPDATE ON calendar_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_write();
CREATE TRIGGER calendar_event_counts_delete AFTER DELETE ON calendar_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_write();

-- `GET /calendar/events?status=...` (with or without `calendarId`) reads
-- its rows in page order: with only (start_at, id) and (calendar_id,
-- start_at), a status few rows have (cancelled, tentative) walked every
-- row of the table or calendar, about a second at 1M events. Not partial:
-- the status is a bound parameter.
CREATE INDEX calendar_events_status_start ON calendar_events (status, start_at, id);
CREATE INDEX calendar_events_calendar_status_start ON calendar_events (calendar_id, status, start_at, id);
