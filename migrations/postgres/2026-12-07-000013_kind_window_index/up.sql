-- A window of one kind of row in one calendar (the single events of a
-- `singleEvents=true` page or a free/busy answer, a calendar's masters)
-- walks only rows of that kind. With (calendar_id, start_at) alone, a
-- calendar's recurring masters, which all start before any later window,
-- were read and discarded by every such query. Not partial: the kind is a
-- bound parameter, which a partial index's predicate cannot match.
-- Keep in step with the other dialect's migration.
CREATE INDEX calendar_events_calendar_kind_start ON calendar_events (calendar_id, kind, start_at, id);
