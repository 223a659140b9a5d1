use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::ports::{ChangeFeedStore, Clock, DriveNotificationStore, EventStore, WebhookStore};

/// The instant before which ended events are past retention.
pub fn retention_cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    // A retention reaching past chrono's range keeps everything.
    now.checked_sub_signed(chrono::Duration::days(i64::from(retention_days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A retention in days as a duration.
pub fn retention(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub cutoff: DateTime<Utc>,
    pub cancelled: u64,
    pub batches: u32,
    /// Idempotency keys past [`IDEMPOTENCY_KEY_TTL`], forgotten.
    pub idempotency_keys_purged: u64,
    /// Drive notifications received before the cutoff, deleted.
    pub drive_notifications_purged: u64,
    /// Changes older than the feed's retention, deleted.
    pub changes_purged: u64,
    /// Webhook delivery attempts older than the feed's retention, deleted.
    pub webhook_attempts_purged: u64,
}

/// How long an `Idempotency-Key` is remembered: long enough for any client
/// retry loop, short enough that the table stays small.
pub const IDEMPOTENCY_KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Soft-deletes (marks cancelled) events that ended before the retention
/// cutoff, in bounded batches. It never deletes anything at Google.
#[derive(Clone)]
pub struct CleanupService {
    events: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    retention_days: u32,
    batch_size: u32,
    drive: Option<Arc<dyn DriveNotificationStore>>,
    feed: Option<FeedRetention>,
}

/// The change feed's stores and how many days it keeps a change.
#[derive(Clone)]
struct FeedRetention {
    changes: Arc<dyn ChangeFeedStore>,
    attempts: Arc<dyn WebhookStore>,
    days: u32,
}

impl CleanupService {
    pub const DEFAULT_BATCH: u32 = 1000;

    pub fn new(events: Arc<dyn EventStore>, clock: Arc<dyn Clock>, retention_days: u32) -> Self {
        Self {
            events,
            clock,
            retention_days,
            batch_size: Self::DEFAULT_BATCH,
            drive: None,
            feed: None,
        }
    }

    /// Also forgets changes (and webhook attempts) older than `retention_days`.
    pub fn with_change_feed(
        mut self,
        feed: Arc<dyn ChangeFeedStore>,
        webhooks: Arc<dyn WebhookStore>,
        retention_days: u32,
    ) -> Self {
        self.feed = Some(FeedRetention {
            changes: feed,
            attempts: webhooks,
            days: retention_days,
        });
        self
    }

    /// Also deletes Drive notifications past retention.
    pub fn with_drive_notifications(mut self, drive: Arc<dyn DriveNotificationStore>) -> Self {
        self.drive = Some(drive);
        self
    }

    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn retention(&self) -> Duration {
        retention(self.retention_days)
    }

    pub async fn run(&self) -> Result<CleanupReport> {
        let cutoff = retention_cutoff(self.clock.now(), self.retention_days);
        let mut report = CleanupReport {
            cutoff,
            cancelled: 0,
            batches: 0,
            idempotency_keys_purged: 0,
            drive_notifications_purged: 0,
            changes_purged: 0,
            webhook_attempts_purged: 0,
        };
        if let Some(feed) = &self.feed {
            let before = retention_cutoff(self.clock.now(), feed.days);
            loop {
                let purged = feed.changes.purge_changes(before, self.batch_size).await?;
                report.changes_purged += purged;
                if purged < u64::from(self.batch_size) {
                    break;
                }
            }
            report.webhook_attempts_purged = feed.attempts.purge_webhook_attempts(before).await?;
        }
        if let Some(drive) = &self.drive {
            report.drive_notifications_purged = drive.purge_drive_notifications(cutoff).await?;
        }
        let forget_before = self.clock.now()
            - chrono::Duration::from_std(IDEMPOTENCY_KEY_TTL).unwrap_or(chrono::Duration::zero());
        report.idempotency_keys_purged = self.events.purge_idempotency_keys(forget_before).await?;
        loop {
            let cancelled = self
                .events
                .cancel_ended_before(cutoff, self.batch_size, self.clock.now())
                .await?;
            report.cancelled += cancelled;
            report.batches += 1;
            if cancelled < u64::from(self.batch_size) {
                return Ok(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cutoff_is_retention_days_before_now() {
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
        assert_eq!(
            retention_cutoff(now, 180),
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap()
        );
        assert_eq!(retention_cutoff(now, 0), now);
        assert_eq!(retention_cutoff(now, u32::MAX), DateTime::<Utc>::MIN_UTC);
    }
}
