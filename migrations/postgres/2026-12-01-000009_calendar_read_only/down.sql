ALTER TABLE calendar_sync_states DROP COLUMN read_only_reason;
ALTER TABLE calendar_sync_states DROP COLUMN read_only_since;
