-- The kind of an outbox row's last_error (PushFailure: conflict, gone,
-- refused, temporary), recorded beside the text wherever the text is, so
-- readers (a write's verdict: was the refusal a conflict?) decide on the
-- kind instead of matching Google's words. Keep in step with
-- migrations/postgres.
--
-- No backfill: rows written before this migration have none (NULL), and
-- none reads as "not a conflict". No CHECK: SQLite cannot widen one in
-- place, and the store refuses a kind it does not know when it reads it.
ALTER TABLE calendar_outbox ADD COLUMN last_failure TEXT;
