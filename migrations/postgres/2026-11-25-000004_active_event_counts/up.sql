-- Active (not cancelled) events per calendar, kept by triggers so the health
-- report reads one small table instead of counting a million rows.
-- Statement-level triggers with transition tables: one counter update per
-- statement (a sync page is one statement), not one per row.
CREATE TABLE calendar_event_counts (
    calendar_id  TEXT PRIMARY KEY,
    active       BIGINT NOT NULL DEFAULT 0
);

INSERT INTO calendar_event_counts (calendar_id, active)
SELECT calendar_id, COUNT(*) FROM calendar_events WHERE status <> 'cancelled' GROUP BY calendar_id;

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

-- The oldest and newest active event, without walking past cancelled ones
-- (retention cancels the oldest events first).
CREATE INDEX calendar_events_active_start ON calendar_events (start_at) WHERE status <> 'cancelled';
