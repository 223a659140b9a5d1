//! Per-calendar sync state: the dirty marks, the lease a worker holds while
//! it syncs, and how a sync ended.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::CalendarId;

/// Per-calendar sync bookkeeping. A calendar is dirty while `dirty_seq`
/// exceeds `clean_seq`: each notification bumps `dirty_seq`, and a finished
/// sync sets `clean_seq` to the value it saw when it started, so a
/// notification arriving mid-sync leaves the calendar dirty for a follow-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    pub calendar_id: CalendarId,
    #[serde(skip_serializing)]
    pub sync_token: Option<String>,
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub last_incremental_sync_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub error_count: u32,
    pub dirty_seq: i64,
    pub clean_seq: i64,
    pub full_sync_requested: bool,
    pub reconnect_required: bool,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The `dirty_seq` the lease holder saw when it took the lease.
    pub lease_seen_seq: Option<i64>,
    /// Since when Google has refused this principal's writes to the
    /// calendar (403 `requiredAccessLevel`); `None` while writable.
    pub read_only_since: Option<DateTime<Utc>>,
    /// Google's words for the refusal.
    pub read_only_reason: Option<String>,
}

impl SyncState {
    pub fn new(calendar_id: CalendarId) -> Self {
        Self {
            calendar_id,
            sync_token: None,
            last_full_sync_at: None,
            last_incremental_sync_at: None,
            last_status: None,
            last_error: None,
            last_error_at: None,
            error_count: 0,
            dirty_seq: 0,
            clean_seq: 0,
            full_sync_requested: false,
            reconnect_required: false,
            lease_owner: None,
            lease_until: None,
            lease_seen_seq: None,
            read_only_since: None,
            read_only_reason: None,
        }
    }

    /// Whether writes to the calendar wait for write access.
    pub fn is_read_only(&self) -> bool {
        self.read_only_since.is_some()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty_seq > self.clean_seq || self.full_sync_requested
    }

    /// Whether a change announced now is already covered by a sync that
    /// will start after this moment, so marking the calendar again would
    /// change nothing: either no sync runs and the calendar is already dirty
    /// (the next sync lists after now), or a live sync runs and a mark
    /// arrived since it started (it stays dirty for a follow-up). When in
    /// doubt (an expired lease) it is not covered.
    pub fn covers_new_change(&self, now: DateTime<Utc>) -> bool {
        match (&self.lease_owner, self.lease_seen_seq, self.lease_until) {
            (None, _, _) => self.dirty_seq > self.clean_seq,
            (Some(_), Some(seen), Some(until)) if until > now => self.dirty_seq > seen,
            _ => false,
        }
    }

    /// Until when a change announced is covered whatever any worker does:
    /// a dirty calendar resting (no lease owner, `lease_until` ahead, after
    /// a failure or a sync that found nothing) can be leased by no one
    /// before then, so it stays dirty and its next sync starts after.
    /// `None` when it is not resting, or not dirty.
    pub fn resting_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (&self.lease_owner, self.lease_until) {
            (None, Some(until)) if until > now && self.dirty_seq > self.clean_seq => Some(until),
            _ => None,
        }
    }

    pub fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.last_full_sync_at.max(self.last_incremental_sync_at)
    }

    /// How long a calendar rests after `error_count` consecutive failed syncs
    /// before a worker tries it again: 5 s doubling, at most 10 minutes.
    pub fn retry_delay(error_count: u32) -> std::time::Duration {
        let doubled = 5u64.saturating_mul(1u64 << error_count.saturating_sub(1).min(20));
        std::time::Duration::from_secs(doubled.min(600))
    }

    /// Whether a worker may take the lease now.
    pub fn lease_available(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_none_or(|until| until <= now)
    }
}

/// A held sync lease: who holds it and the dirty mark it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLease {
    pub calendar_id: CalendarId,
    pub owner: String,
    pub until: DateTime<Utc>,
    /// `dirty_seq` when the lease was taken.
    pub seen_seq: i64,
    pub full_sync_requested: bool,
    /// The dirty mark was the safety sweep's (nothing else asked).
    pub swept: bool,
}

/// How a leased sync ended, for the store to record on release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded {
        full: bool,
        /// If the calendar was marked again during the sync, no worker
        /// takes it before this instant (a rest: a notification storm costs
        /// a sync per rest, not one after another). `None`: at once.
        rest_until: Option<DateTime<Utc>>,
    },
    Failed {
        error: String,
        reconnect_required: bool,
    },
    /// Shutting down: give the lease back, keep the calendar dirty.
    Abandoned,
}
