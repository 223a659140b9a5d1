DROP TABLE calendar_idempotency_keys;
