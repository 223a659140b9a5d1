//! Where Drive notifications go when the embedder names no sink.

use slog::info;

/// The default Drive sink: logs each notification.
pub struct LoggingDriveSink(pub slog::Logger);

#[async_trait::async_trait]
impl calsync_domain::ports::DriveNotificationSink for LoggingDriveSink {
    async fn drive_changed(
        &self,
        notification: &calsync_domain::webhook::DriveNotification,
    ) -> calsync_domain::Result<()> {
        info!(self.0, "drive change notified";
            "action" => "webhook_drive", "status" => notification.state.as_str(),
            "channel_id" => notification.envelope.channel_id.to_string(),
            "resource_id" => notification.envelope.resource_id.to_string(),
            "changed" => notification.changed.join(","));
        Ok(())
    }
}
