ALTER TABLE calendar_outbox DROP COLUMN last_failure;
