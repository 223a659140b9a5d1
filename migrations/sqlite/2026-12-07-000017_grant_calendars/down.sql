ALTER TABLE calendar_grants DROP COLUMN refresh_until;
ALTER TABLE calendar_grants DROP COLUMN refresh_holder;
DROP INDEX calendar_calendars_grant;
ALTER TABLE calendar_calendars DROP COLUMN grant_id;
