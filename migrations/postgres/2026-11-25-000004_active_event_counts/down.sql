DROP INDEX calendar_events_active_start;
DROP TRIGGER calendar_event_counts_delete ON calendar_events;
DROP TRIGGER calendar_event_counts_update ON calendar_events;
DROP TRIGGER calendar_event_counts_insert ON calendar_events;
DROP FUNCTION calendar_event_counts_on_delete();
DROP FUNCTION calendar_event_counts_on_update();
DROP FUNCTION calendar_event_counts_on_insert();
DROP FUNCTION calendar_event_counts_add(TEXT[], BIGINT[]);
DROP TABLE calendar_event_counts;
