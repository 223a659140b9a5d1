-- A calendar calsync's principal may read but not write (Google: 403
-- requiredAccessLevel): since when, and Google's words. NULL: writable.
-- Writes to it wait and are retried; the first one that lands clears both.
-- Keep in step with migrations/sqlite.
ALTER TABLE calendar_sync_states ADD COLUMN read_only_since TIMESTAMPTZ;
ALTER TABLE calendar_sync_states ADD COLUMN read_only_reason TEXT;
