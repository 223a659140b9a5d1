DROP INDEX calendar_events_calendar_status_start;
DROP INDEX calendar_events_status_start;
DROP TRIGGER calendar_event_counts_delete ON calendar_events;
DROP TRIGGER calendar_event_counts_update ON calendar_events;
DROP TRIGGER calendar_event_counts_insert ON calendar_events;
DROP FUNCTION calendar_event_counts_on_write();

-- Migration 4's functions and triggers, which keep `active` only.
CREATE FUNCTION calendar_event_counts_add(deltas_calendar TEXT[], deltas_count BIGINT[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO calendar_event_counts (calendar_id, active)
    SELECT c, n FROM unnest(deltas_calendar, deltas_count) AS d (c, n) WHERE n <> 0 ORDER BY c
    ON CONFLICT (calendar_id) DO UPDATE SET active = calendar_event_counts.active + EXCLUDED.active;
$$;

CREATE FUNCTION calendar_event_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calendar_event_counts_add(array_agg(calendar_id), array_agg(n))
    FROM (SELECT calendar_id, COUNT(*) AS n FROM new_rows WHERE status <> 'cancelled' GROUP BY calendar_id) d
    HAVING COUNT(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION calendar_event_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calendar_event_counts_add(array_agg(calendar_id), array_agg(n))
    FROM (
        SELECT calendar_id, SUM(delta)::BIGINT AS n FROM (
            SELECT calendar_id, 1 AS delta FROM new_rows WHERE status <> 'cancelled'
            UNION ALL
            SELECT calendar_id, -1 FROM old_rows WHERE status <> 'cancelled'
        ) changes GROUP BY calendar_id
    ) d
    HAVING COUNT(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION calendar_event_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM calendar_event_counts_add(array_agg(calendar_id), array_agg(-n))
    FROM (SELECT calendar_id, COUNT(*) AS n FROM old_rows WHERE status <> 'cancelled' GROUP BY calendar_id) d
    HAVING COUNT(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER calendar_event_counts_insert AFTER INSERT ON calendar_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_insert();
CREATE TRIGGER calendar_event_counts_update AFTER UPDATE ON calendar_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_update();
CREATE TRIGGER calendar_event_counts_delete AFTER DELETE ON calendar_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION calendar_event_counts_on_delete();

ALTER TABLE calendar_event_counts DROP COLUMN unreadable_series;
ALTER TABLE calendar_event_counts DROP COLUMN push_conflicts;
ALTER TABLE calendar_event_counts DROP COLUMN push_failed;
