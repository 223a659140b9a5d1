-- Calendars managed through a connected account (its grant) instead of the
-- service account, and the claim that lets one replica at a time refresh
-- a grant's access token. Keep in step with the other dialect's migration.
ALTER TABLE calendar_calendars ADD COLUMN grant_id TEXT;
CREATE INDEX calendar_calendars_grant ON calendar_calendars (grant_id) WHERE grant_id IS NOT NULL;
ALTER TABLE calendar_grants ADD COLUMN refresh_holder TEXT;
ALTER TABLE calendar_grants ADD COLUMN refresh_until TIMESTAMPTZ;
