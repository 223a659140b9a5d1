-- The dirty_seq a running sync saw when it took its lease: a notification
-- arriving while dirty_seq already exceeds it is covered by the follow-up
-- sync, so it needs no write (webhook storms cost reads, not row locks).
ALTER TABLE calendar_sync_states ADD COLUMN lease_seen_seq BIGINT;
