-- The safety sweep's dirty marks are leased after every other (a push
-- notification's, a request's): a slice of thousands of calendars must not
-- queue in front of a calendar that just changed. `swept` is set only by
-- the sweep, on calendars it found clean, and cleared by any other mark.
-- The dirty index leads with it, so the lease query reads the changed
-- calendars first from the index, in lease order.
-- Keep in step with the other dialect's migration.
ALTER TABLE calendar_sync_states ADD COLUMN swept BOOLEAN NOT NULL DEFAULT 0;
DROP INDEX calendar_sync_states_dirty;
CREATE INDEX calendar_sync_states_dirty ON calendar_sync_states (swept, lease_until)
    WHERE dirty_seq > clean_seq OR full_sync_requested;
