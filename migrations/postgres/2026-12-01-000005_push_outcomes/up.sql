-- Why a local write did not apply as written (deleted at Google, or a
-- conflict with an edit made in Google), and when a write last reached
-- Google (a full sync's deletion sweep spares rows pushed after it began).
-- A conflict is a flag beside push_state = 'synced' (the mirror holds
-- Google's version): SQLite cannot widen push_state's CHECK in place.
ALTER TABLE calendar_events ADD COLUMN push_note TEXT;
ALTER TABLE calendar_events ADD COLUMN push_conflict BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE calendar_events ADD COLUMN pushed_at TIMESTAMPTZ;
CREATE INDEX calendar_events_push_conflict ON calendar_events (push_conflict) WHERE push_conflict;
-- The fields a queued patch changes and the values they were based on (JSON).
ALTER TABLE calendar_outbox ADD COLUMN payload TEXT;
-- Statistics for the new column now, not at autovacuum's leisure: without
-- them the planner guesses half the rows are conflicts and scans them all.
ANALYZE calendar_events;
