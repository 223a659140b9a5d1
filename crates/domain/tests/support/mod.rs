//! What the domain's test binaries share: a sync-state store to watch and
//! steer the services through.
#![allow(dead_code)] // each test binary uses its own part
#![allow(clippy::unwrap_used)] // test code fails loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use calsync_domain::Result;
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::SyncStateStore;
use calsync_domain::sync::{SyncLease, SyncOutcome, SyncState};
use calsync_domain::testing::MemoryStore;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

/// Sync states in memory, counting reads and marks; reads (the first step
/// of every webhook commit) wait for a permit, so a test can hold a commit
/// open while others arrive. With `mark_during_sync` on, each sync's
/// calendar is marked again just before its lease is released, as a
/// notification arriving mid-sync would.
pub struct GatedStates {
    pub inner: Arc<MemoryStore>,
    pub reads: AtomicU32,
    pub marks: AtomicU32,
    pub gate: Semaphore,
    pub mark_during_sync: AtomicBool,
}

impl GatedStates {
    /// Closed: no read passes until the test adds permits.
    pub fn new(inner: Arc<MemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            reads: AtomicU32::new(0),
            marks: AtomicU32::new(0),
            gate: Semaphore::new(0),
            mark_during_sync: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl SyncStateStore for GatedStates {
    async fn sync_state(&self, calendar_id: &CalendarId) -> Result<Option<SyncState>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.unwrap().forget();
        self.inner.sync_state(calendar_id).await
    }
    async fn list_sync_states(&self) -> Result<Vec<SyncState>> {
        self.inner.list_sync_states().await
    }
    async fn mark_dirty(&self, calendar_id: &CalendarId, full: bool) -> Result<()> {
        self.marks.fetch_add(1, Ordering::SeqCst);
        self.inner.mark_dirty(calendar_id, full).await
    }
    async fn mark_swept(&self, calendar_ids: &[CalendarId]) -> Result<u64> {
        self.marks.fetch_add(1, Ordering::SeqCst);
        self.inner.mark_swept(calendar_ids).await
    }
    async fn lease_dirty(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        self.inner.lease_dirty(owner, now, until).await
    }
    async fn next_lease_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        self.inner.next_lease_at(now).await
    }
    async fn lease_calendar(
        &self,
        calendar_id: &CalendarId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>> {
        self.inner
            .lease_calendar(calendar_id, owner, now, until)
            .await
    }
    async fn extend_lease(&self, lease: &SyncLease, until: DateTime<Utc>) -> Result<bool> {
        self.inner.extend_lease(lease, until).await
    }
    async fn release_lease(
        &self,
        lease: &SyncLease,
        outcome: &SyncOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if self.mark_during_sync.load(Ordering::SeqCst) {
            self.inner.mark_dirty(&lease.calendar_id, false).await?;
        }
        self.inner.release_lease(lease, outcome, now).await
    }
    async fn mark_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.inner
            .mark_reconnect_required(calendar_id, error, now)
            .await
    }
    async fn clear_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        full_sync: bool,
    ) -> Result<()> {
        self.inner
            .clear_reconnect_required(calendar_id, full_sync)
            .await
    }
    async fn mark_read_only(
        &self,
        calendar_id: &CalendarId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.inner.mark_read_only(calendar_id, reason, now).await
    }
    async fn clear_read_only(&self, calendar_id: &CalendarId) -> Result<bool> {
        self.inner.clear_read_only(calendar_id).await
    }
}
