-- A Drive notification is identified by its channel and message number:
-- Google's retries and replays of one are recorded once.
DELETE FROM drive_notifications
WHERE id NOT IN (SELECT MIN(id) FROM drive_notifications GROUP BY channel_id, message_number);
CREATE UNIQUE INDEX drive_notifications_message ON drive_notifications (channel_id, message_number);
