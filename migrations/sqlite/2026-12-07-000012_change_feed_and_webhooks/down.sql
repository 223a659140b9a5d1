DROP TABLE calendar_webhook_attempts;
DROP TABLE calendar_webhooks;
DROP TABLE calendar_change_feed;
DROP TABLE calendar_changes;
