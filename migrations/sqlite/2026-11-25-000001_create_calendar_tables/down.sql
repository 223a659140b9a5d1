DROP TABLE job_ticks;
DROP TABLE drive_notifications;
DROP TABLE calendar_outbox;
DROP TABLE calendar_watch_channels;
DROP TABLE calendar_sync_states;
DROP TABLE calendar_events;
