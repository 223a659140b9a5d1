use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, ProviderErrorKind, Result};
use crate::ids::CalendarId;
use crate::ports::{CalendarProvider, CalendarStore, Clock, EventStore, SyncStateStore, Timer};
use crate::sync::{
    ListRequest, PageOutcome, SyncCompletion, SyncLease, SyncOutcome, SyncPage, SyncRun,
};

/// Google's largest page.
pub const MAX_PAGE_SIZE: u32 = 2500;

/// How long a calendar rests after an incremental sync that found nothing
/// new while more notifications for it arrived. Under a notification storm
/// (Google announcing changes faster than they happen, a replay, a flood)
/// each sync would otherwise be followed at once by another that finds
/// nothing either, spending the principal's quota and the database. The
/// first notification after a quiet spell, and every sync that found
/// something, is followed at once.
pub const DEFAULT_FOLLOW_UP_REST: Duration = Duration::from_millis(DEFAULT_FOLLOW_UP_REST_MS);
/// [`DEFAULT_FOLLOW_UP_REST`] in milliseconds, as settings take it.
pub const DEFAULT_FOLLOW_UP_REST_MS: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Incremental from the stored token; full when there is none or it expired.
    Auto,
    /// List everything and cancel what Google no longer has.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub calendar_id: CalendarId,
    pub full: bool,
    /// A stored token had expired (410) and a full sync replaced it.
    pub token_expired: bool,
    pub pages: u32,
    pub outcome: PageOutcome,
    /// Run for the safety sweep alone (its `pages` are the sweep's list
    /// calls).
    pub swept: bool,
}

/// Called with a run's figures after each page.
pub type ProgressFn = Arc<dyn Fn(&SyncReport) + Send + Sync>;

/// Syncs calendars from the provider into the event store.
#[derive(Clone)]
pub struct SyncService {
    provider: Arc<dyn CalendarProvider>,
    events: Arc<dyn EventStore>,
    states: Arc<dyn SyncStateStore>,
    clock: Arc<dyn Clock>,
    page_size: u32,
    retention: Option<Duration>,
    lease_ttl: Duration,
    follow_up_rest: Duration,
    timer: Option<Arc<dyn Timer>>,
    progress: Option<ProgressFn>,
    /// When set, the sweep covers managed calendars only.
    calendars: Option<Arc<dyn CalendarStore>>,
}

impl SyncService {
    pub fn new(
        provider: Arc<dyn CalendarProvider>,
        events: Arc<dyn EventStore>,
        states: Arc<dyn SyncStateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider,
            events,
            states,
            clock,
            page_size: MAX_PAGE_SIZE,
            retention: None,
            // Long without a heartbeat, so a slow page cannot outlive it;
            // the server sets a short one and renews it.
            lease_ttl: Duration::from_secs(120),
            follow_up_rest: DEFAULT_FOLLOW_UP_REST,
            timer: None,
            progress: None,
            calendars: None,
        }
    }

    /// Called after every applied page with the run's figures so far (for
    /// progress displays).
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Page size for `events.list` (clamped to 1..=2500).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Don't mirror events that ended longer ago than this.
    /// Sweeps only the calendars `calendars` manages (a removed calendar's
    /// sync state stays, but it is no longer synced by the sweep).
    pub fn with_calendars(mut self, calendars: Arc<dyn CalendarStore>) -> Self {
        self.calendars = Some(calendars);
        self
    }

    /// The rest after a sync that found nothing while notifications kept
    /// coming ([`DEFAULT_FOLLOW_UP_REST`]); zero follows up at once.
    pub fn with_follow_up_rest(mut self, rest: Duration) -> Self {
        self.follow_up_rest = rest;
        self
    }

    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How long a sync lease lasts (it is extended after every page), and
    /// a timer that renews it every third of that while a sync runs, so a
    /// short lease (quick takeover after a crash) survives a slow page.
    pub fn with_lease(mut self, ttl: Duration, timer: Option<Arc<dyn Timer>>) -> Self {
        self.lease_ttl = ttl;
        self.timer = timer;
        self
    }

    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        crate::later(self.clock.now(), self.lease_ttl)
    }

    /// Takes one dirty calendar's lease, syncs it and releases it. `None` when
    /// no calendar is dirty (or all dirty ones are leased elsewhere).
    pub async fn sync_next_dirty(&self, owner: &str) -> Result<Option<Result<SyncReport>>> {
        let now = self.clock.now();
        let Some(lease) = self
            .states
            .lease_dirty(owner, now, self.lease_until())
            .await?
        else {
            return Ok(None);
        };
        let synced = self.sync_leased(&lease, SyncMode::Auto).await;
        Ok(Some(synced.map(|report| SyncReport {
            swept: lease.swept,
            ..report
        })))
    }

    /// How long until a dirty calendar that is leased elsewhere or resting
    /// (after a failure, or a sync that found nothing) can be taken: a
    /// worker with nothing to do waits this long at most, so a rest ends
    /// in a sync without a wake-up. `None`: no such calendar.
    pub async fn next_lease_in(&self) -> Result<Option<Duration>> {
        let now = self.clock.now();
        let next = self.states.next_lease_at(now).await?;
        Ok(next.map(|at| (at - now).to_std().unwrap_or_default()))
    }

    /// Syncs one calendar now, under its lease. `Ok(None)` if another worker
    /// holds the lease (that worker's sync covers the request).
    pub async fn sync_now(
        &self,
        calendar_id: &CalendarId,
        mode: SyncMode,
        owner: &str,
    ) -> Result<Option<SyncReport>> {
        let now = self.clock.now();
        let Some(lease) = self
            .states
            .lease_calendar(calendar_id, owner, now, self.lease_until())
            .await?
        else {
            return Ok(None);
        };
        self.sync_leased(&lease, mode).await.map(Some)
    }

    async fn sync_leased(&self, lease: &SyncLease, mode: SyncMode) -> Result<SyncReport> {
        let mode = if lease.full_sync_requested {
            SyncMode::Full
        } else {
            mode
        };
        let result = crate::heartbeat::run(
            self.timer.as_ref(),
            crate::heartbeat::interval(self.lease_ttl),
            self.sync_calendar(&lease.calendar_id, mode, Some(lease)),
            || self.states.extend_lease(lease, self.lease_until()),
        )
        .await;
        let outcome = match &result {
            Ok(report) => SyncOutcome::Succeeded {
                full: report.full,
                rest_until: (!report.full
                    && !report.outcome.changed_any()
                    && !self.follow_up_rest.is_zero())
                .then(|| crate::later(self.clock.now(), self.follow_up_rest)),
            },
            Err(error) => SyncOutcome::Failed {
                error: error.to_string(),
                reconnect_required: error.provider_kind()
                    == Some(ProviderErrorKind::ReconnectRequired),
            },
        };
        self.states
            .release_lease(lease, &outcome, self.clock.now())
            .await?;
        result
    }

    /// Syncs a calendar: incremental when a token is stored, else (or on 410)
    /// a full listing with deletion detection. Callers normally hold the
    /// calendar's lease; pass it so it is extended page by page.
    pub async fn sync_calendar(
        &self,
        calendar_id: &CalendarId,
        mode: SyncMode,
        lease: Option<&SyncLease>,
    ) -> Result<SyncReport> {
        let token = match mode {
            SyncMode::Full => None,
            SyncMode::Auto => self
                .states
                .sync_state(calendar_id)
                .await?
                .and_then(|state| state.sync_token),
        };
        if let Some(token) = token {
            match self.run(calendar_id, Some(token), lease).await {
                Err(error)
                    if error.provider_kind() == Some(ProviderErrorKind::SyncTokenExpired) =>
                {
                    let mut report = self.run(calendar_id, None, lease).await?;
                    report.token_expired = true;
                    return Ok(report);
                }
                other => return other,
            }
        }
        self.run(calendar_id, None, lease).await
    }

    async fn run(
        &self,
        calendar_id: &CalendarId,
        sync_token: Option<String>,
        lease: Option<&SyncLease>,
    ) -> Result<SyncReport> {
        let run = match sync_token {
            Some(_) => SyncRun::Incremental,
            None => SyncRun::Full {
                run_id: Uuid::new_v4().to_string(),
                started_at: self.clock.now(),
            },
        };
        let mut report = SyncReport {
            calendar_id: calendar_id.clone(),
            full: matches!(run, SyncRun::Full { .. }),
            token_expired: false,
            pages: 0,
            outcome: PageOutcome::default(),
            swept: false,
        };
        let request = |page_token| ListRequest {
            sync_token: sync_token.clone(),
            page_token,
            max_results: self.page_size,
        };
        let mut page = self
            .provider
            .list_events(calendar_id, &request(None))
            .await?;
        loop {
            let next_page = page
                .next_page_token
                .take()
                .filter(|token| !token.is_empty());
            let completion = match (&next_page, page.next_sync_token.take()) {
                (Some(_), _) => None,
                (None, Some(next_sync_token)) => Some(SyncCompletion { next_sync_token }),
                (None, None) => {
                    return Err(Error::provider(
                        ProviderErrorKind::Transient,
                        "the last page of events.list carried no nextSyncToken",
                    ));
                }
            };
            let now = self.clock.now();
            let applied = SyncPage {
                calendar_id: calendar_id.clone(),
                run: run.clone(),
                events: std::mem::take(&mut page.events),
                completion,
                retention_cutoff: self
                    .retention
                    .and_then(|keep| chrono::Duration::from_std(keep).ok())
                    .map(|keep| now - keep),
                now,
            };
            // Page n+1 is fetched and decoded while page n is written: one
            // page ahead, never more, so memory stays at two pages. A failed
            // write drops the fetched page; a failed fetch after a good
            // write fails the run like any list error (the token is stored
            // only with the last page). `join`, not `try_join`: a fetch
            // failing first must not cancel a write mid-transaction.
            let outcome = match &next_page {
                Some(token) => {
                    let next_request = request(Some(token.clone()));
                    let (outcome, next) = futures_util::future::join(
                        self.events.apply_sync_page(&applied),
                        self.provider.list_events(calendar_id, &next_request),
                    )
                    .await;
                    let outcome = outcome?;
                    page = next?;
                    outcome
                }
                None => self.events.apply_sync_page(&applied).await?,
            };
            report.pages += 1;
            report.outcome.add(&outcome);
            if let Some(progress) = &self.progress {
                progress(&report);
            }
            if next_page.is_none() {
                return Ok(report);
            }
            if let Some(lease) = lease
                && !self.states.extend_lease(lease, self.lease_until()).await?
            {
                return Err(Error::Storage(
                    "sync lease lost to another worker mid-sync".into(),
                ));
            }
        }
    }

    /// Marks every calendar with a stored state dirty: the periodic safety
    /// sweep, since push delivery is not guaranteed. Returns how many.
    pub async fn mark_all_dirty(&self) -> Result<usize> {
        self.mark_slice_dirty(0, 1).await
    }

    /// Marks the calendars of one slice of `slices` dirty: the sweep spread
    /// over its interval, so a fleet does not sync in lockstep. A calendar's
    /// slice is a hash of its id, the same on every replica.
    pub async fn mark_slice_dirty(&self, slice: u32, slices: u32) -> Result<usize> {
        let slices = slices.max(1);
        let states = self.states.list_sync_states().await?;
        let managed: Option<std::collections::HashSet<CalendarId>> = match &self.calendars {
            Some(calendars) => Some(
                calendars
                    .list_calendars()
                    .await?
                    .into_iter()
                    .map(|c| c.calendar_id)
                    .collect(),
            ),
            None => None,
        };
        let due: Vec<CalendarId> = states
            .into_iter()
            .filter(|s| {
                !s.reconnect_required
                    && sweep_slice(&s.calendar_id, slices) == slice
                    && managed.as_ref().is_none_or(|m| m.contains(&s.calendar_id))
            })
            .map(|s| s.calendar_id)
            .collect();
        // At the sweep's priority: behind every calendar a notification or
        // a request marked, so a slice of thousands never delays a change.
        let marked = self.states.mark_swept(&due).await?;
        Ok(usize::try_from(marked).unwrap_or(usize::MAX))
    }
}

/// Which of `slices` sweep slices a calendar falls in.
pub fn sweep_slice(calendar: &CalendarId, slices: u32) -> u32 {
    slice_of(calendar.as_str(), slices)
}

/// Which of `slices` slices `key` falls in: the same on every replica.
pub fn slice_of(key: &str, slices: u32) -> u32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&digest[..4]);
    u32::from_le_bytes(bytes) % slices.max(1)
}
