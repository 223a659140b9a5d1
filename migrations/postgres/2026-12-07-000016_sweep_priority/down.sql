DROP INDEX calendar_sync_states_dirty;
CREATE INDEX calendar_sync_states_dirty ON calendar_sync_states (lease_until)
    WHERE dirty_seq > clean_seq OR full_sync_requested;
ALTER TABLE calendar_sync_states DROP COLUMN swept;
