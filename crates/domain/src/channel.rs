//! Watch channels: Google's push subscriptions for a calendar's events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ids::{CalendarId, ChannelId, ResourceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    /// Stored before `events.watch` returns, so an early `sync` message finds it.
    Pending,
    Active,
    /// Stopped at Google (or replaced by a renewal, or never granted).
    Stopped,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Stopped => "stopped",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "stopped" => Ok(Self::Stopped),
            _ => Err(Error::invalid(
                "status",
                "must be pending, active or stopped",
            )),
        }
    }
}

/// A watch channel as calsync stores it. No secret is stored: the channel's
/// token is derived from its id (see [`crate::webhook::WebhookSecret`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchChannel {
    pub id: ChannelId,
    pub calendar_id: CalendarId,
    /// Known once Google grants the watch.
    pub resource_id: Option<ResourceId>,
    /// The expiry Google granted (or, while pending, the one requested).
    pub expiration: DateTime<Utc>,
    pub status: ChannelStatus,
    pub created_at: DateTime<Utc>,
    pub last_notification_at: Option<DateTime<Utc>>,
    pub last_message_number: Option<u64>,
}

impl WatchChannel {
    /// When to replace this channel: `window` before it expires, or half the
    /// granted lifetime before, whichever is later (short TTLs would otherwise
    /// be renewed the moment they are created).
    pub fn renew_at(&self, window: Duration) -> DateTime<Utc> {
        let lifetime = self.expiration - self.created_at;
        let half = lifetime / 2;
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.expiration - window.min(half).max(chrono::Duration::zero())
    }

    pub fn needs_renewal(&self, now: DateTime<Utc>, window: Duration) -> bool {
        self.status == ChannelStatus::Active && now >= self.renew_at(window)
    }
}

/// What calsync asks Google to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRequest {
    pub channel_id: ChannelId,
    pub token: String,
    /// The public HTTPS URL Google will POST to.
    pub address: String,
    pub ttl: Duration,
}

/// What Google granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchGrant {
    pub resource_id: ResourceId,
    /// Google may grant less (or more) than requested; this is what counts.
    pub expiration: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn channel(created: DateTime<Utc>, ttl_hours: i64) -> WatchChannel {
        WatchChannel {
            id: ChannelId::new("c1").unwrap(),
            calendar_id: CalendarId::new("cal@x.y").unwrap(),
            resource_id: Some(ResourceId::new("r1").unwrap()),
            expiration: created + chrono::Duration::hours(ttl_hours),
            status: ChannelStatus::Active,
            created_at: created,
            last_notification_at: None,
            last_message_number: None,
        }
    }

    #[test]
    fn renewal_uses_the_window_or_half_the_ttl_if_shorter() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let day = Duration::from_secs(24 * 3600);
        // 7-day channel: renew 24 h before expiry.
        let week = channel(t0, 24 * 7);
        assert_eq!(
            week.renew_at(day),
            week.expiration - chrono::Duration::hours(24)
        );
        assert!(!week.needs_renewal(t0 + chrono::Duration::hours(24 * 6 - 1), day));
        assert!(week.needs_renewal(t0 + chrono::Duration::hours(24 * 6), day));
        // 2-hour channel: a 24 h window would renew at once; half the TTL is used.
        let short = channel(t0, 2);
        assert_eq!(short.renew_at(day), t0 + chrono::Duration::hours(1));
        assert!(!short.needs_renewal(t0 + chrono::Duration::minutes(59), day));
        assert!(short.needs_renewal(t0 + chrono::Duration::minutes(60), day));
    }

    #[test]
    fn stopped_channels_are_never_renewed() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut c = channel(t0, 1);
        c.status = ChannelStatus::Stopped;
        assert!(!c.needs_renewal(t0 + chrono::Duration::hours(5), Duration::from_secs(60)));
    }
}
