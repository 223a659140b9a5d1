ALTER TABLE calendar_sync_states DROP COLUMN lease_seen_seq;
