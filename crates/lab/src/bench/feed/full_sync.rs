//! The full sync with the feed being written, against the store's own
//! ceiling, measured as `bench sync` measures it (its functions are that
//! module's own, so the method is repeated here): a fresh calendar of N
//! events at the emulator is full-synced through the Google adapter into
//! the bench's database (the pre-filled feed in it), then the same pages,
//! listed again untimed, are applied straight to the store as one full run
//! of another calendar, only the applies timed. Both write every event's
//! change to the feed.

use std::sync::Arc;
use std::time::Instant;

use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{CalendarProvider, Clock, Store, SystemClock};
use calsync_domain::services::{DEFAULT_SYNC_PAGE_SIZE, SyncMode, SyncService};
use calsync_domain::sync::{ListRequest, SyncCompletion, SyncPage, SyncRun};
use calsync_emulator::RunningEmulator;
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::Utc;

use crate::error::LabError;

pub(super) struct FullSync {
    pub sync_rate: f64,
    pub ceiling_rate: f64,
    /// Changes the full sync added to the feed (one per event).
    pub feed_rows_written: u64,
}

pub(super) async fn measure(
    url: &DatabaseUrl,
    emulator: &RunningEmulator,
    events: usize,
) -> Result<FullSync, LabError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let calendar = CalendarId::new(format!("feed-sync-{}@example.com", &run[..8]))?;
    emulator.emulator.seed(calendar.as_str(), events)?;
    let mut config = GoogleConfig::new(Credentials::AccessToken("bench".into()));
    config.api_base_url = emulator.calendar_api_url();
    config.rate_limits.project_per_minute = u32::MAX / 2;
    config.rate_limits.per_key_per_minute = u32::MAX / 2;
    let google: Arc<dyn CalendarProvider> = Arc::new(
        GoogleCalendar::new(config)
            .await
            .map_err(|e| e.to_string())?,
    );
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sync = SyncService::new(google.clone(), store.clone(), store.clone(), clock)
        .with_page_size(DEFAULT_SYNC_PAGE_SIZE);
    let before = store.latest_cursor().await?.seq();
    let started = Instant::now();
    let report = sync.sync_calendar(&calendar, SyncMode::Full, None).await?;
    let sync_rate = report.outcome.inserted as f64 / started.elapsed().as_secs_f64();
    let feed_rows_written = store.latest_cursor().await?.seq().saturating_sub(before);
    let target = CalendarId::new(format!("feed-ceiling-{}@example.com", &run[..8]))?;
    let ceiling_rate = ceiling(store.as_ref(), google.as_ref(), &calendar, &target).await?;
    Ok(FullSync {
        sync_rate,
        ceiling_rate,
        feed_rows_written,
    })
}

/// Rows per second of `apply_sync_page` alone, for `source`'s pages
/// applied to `target`.
async fn ceiling(
    store: &dyn Store,
    google: &dyn CalendarProvider,
    source: &CalendarId,
    target: &CalendarId,
) -> Result<f64, LabError> {
    let run = SyncRun::Full {
        run_id: "feed-bench-ceiling".into(),
        started_at: Utc::now(),
    };
    let (mut rows, mut applying) = (0usize, std::time::Duration::ZERO);
    let mut page_token = None;
    loop {
        let listed = google
            .list_events(
                source,
                &ListRequest {
                    sync_token: None,
                    page_token: page_token.take(),
                    max_results: DEFAULT_SYNC_PAGE_SIZE,
                },
            )
            .await?;
        rows += listed.events.len();
        let page = SyncPage {
            calendar_id: target.clone(),
            run: run.clone(),
            events: listed.events,
            completion: listed
                .next_sync_token
                .map(|next_sync_token| SyncCompletion { next_sync_token }),
            retention_cutoff: None,
            now: Utc::now(),
        };
        let started = Instant::now();
        store.apply_sync_page(&page).await?;
        applying += started.elapsed();
        match listed.next_page_token {
            Some(token) => page_token = Some(token),
            None => break,
        }
    }
    Ok(rows as f64 / applying.as_secs_f64().max(1e-9))
}
