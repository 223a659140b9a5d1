//! `calsync-lab bench series`: a week's window expanded over N mirrored
//! recurring series (what `GET /calendar/events?singleEvents=true` does),
//! in milliseconds per request, on SQLite and optionally Postgres.

use std::time::Instant;

use calsync_domain::event::EventTime;
use calsync_domain::ids::{CalendarId, EventId, LocalEventId};
use calsync_domain::ports::SystemClock;
use calsync_domain::ports::{EventQuery, Store};
use calsync_domain::services::{
    OccurrenceQuery, SeriesIndex, list_occurrences, list_occurrences_indexed,
};
use calsync_domain::sync::{SyncCompletion, SyncPage, SyncRun};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{Duration, Utc};

use super::fixtures::{percentile, synthetic_event};
use crate::error::LabError;

pub(super) async fn run(
    series: usize,
    requests: usize,
    postgres_url: Option<&str>,
) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
    let sqlite = DatabaseUrl::Sqlite(dir.join("bench.db"));
    let result = series_bench(&sqlite, series, requests).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if let Some(url) = postgres_url {
        series_bench(&DatabaseUrl::parse(Some(url))?, series, requests).await?;
    }
    Ok(())
}

/// Mirrors `count` series through the sync path: weekly, daily and
/// monthly rules, started over the past year, a third of them bounded.
async fn mirror_series(
    store: &dyn Store,
    calendar: &CalendarId,
    count: usize,
) -> Result<(), LabError> {
    let run = SyncRun::Full {
        run_id: "bench-series".into(),
        started_at: Utc::now(),
    };
    let now = Utc::now();
    let mut done = 0;
    while done < count {
        let end = (done + 2500).min(count);
        let events = (done..end)
            .map(|i| {
                let mut event = synthetic_event(calendar.as_str(), i, 1);
                let start = now - Duration::hours(i64::try_from(i % 8760).unwrap_or(0));
                event.id = EventId::for_local(LocalEventId::from_uuid(uuid::Uuid::from_u128(
                    (1 << 64) + i as u128,
                )));
                event.start = Some(EventTime::at(start, None));
                event.end = Some(EventTime::at(start + Duration::minutes(30), None));
                event.recurrence = vec![match i % 3 {
                    0 => "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR".into(),
                    1 => "RRULE:FREQ=DAILY;INTERVAL=2".into(),
                    _ => "RRULE:FREQ=MONTHLY;COUNT=24".into(),
                }];
                event
            })
            .collect();
        store
            .apply_sync_page(&SyncPage {
                calendar_id: calendar.clone(),
                run: run.clone(),
                events,
                completion: (end == count).then(|| SyncCompletion {
                    next_sync_token: "bench".into(),
                }),
                retention_cutoff: None,
                now: Utc::now(),
            })
            .await?;
        done = end;
    }
    Ok(())
}

async fn series_bench(url: &DatabaseUrl, series: usize, requests: usize) -> Result<(), LabError> {
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    let calendar = CalendarId::new(format!(
        "bench-series-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))?;
    mirror_series(store.as_ref(), &calendar, series).await?;
    let from = Utc::now() + Duration::days(7);
    let query = OccurrenceQuery {
        filter: EventQuery {
            calendar_id: Some(calendar.clone()),
            ..EventQuery::default()
        },
        from: Some(from),
        until: from + Duration::days(7),
        after: None,
        limit: 101,
    };
    // Reading every master from the store (before the series index) and
    // through the index, in one run so the ratio is measured on one machine state.
    let mut plain = Vec::with_capacity(requests);
    let mut listed = 0;
    for _ in 0..requests.max(1) {
        let started = Instant::now();
        listed = list_occurrences(store.as_ref(), &query).await?.len();
        plain.push(started.elapsed());
    }
    let index = SeriesIndex::new(
        store.clone(),
        store.clone(),
        std::sync::Arc::new(SystemClock),
    );
    let started = Instant::now();
    let cold_listed = list_occurrences_indexed(store.as_ref(), &index, &query)
        .await?
        .len();
    let cold = started.elapsed();
    let mut indexed = Vec::with_capacity(requests);
    for _ in 0..requests.max(1) {
        let started = Instant::now();
        let got = list_occurrences_indexed(store.as_ref(), &index, &query)
            .await?
            .len();
        indexed.push(started.elapsed());
        if got != listed || cold_listed != listed {
            return Err(LabError::Failed(format!(
                "the index listed {got} (cold {cold_listed}), the store {listed}"
            )));
        }
    }
    plain.sort();
    indexed.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "series bench: backend={} series={series} window_days=7 page={listed} requests={} store_p50_ms={:.1} store_p99_ms={:.1} indexed_cold_ms={:.1} indexed_p50_ms={:.2} indexed_p99_ms={:.2}",
        url.backend(),
        plain.len(),
        ms(percentile(&plain, 0.50)),
        ms(percentile(&plain, 0.99)),
        ms(cold),
        ms(percentile(&indexed, 0.50)),
        ms(percentile(&indexed, 0.99)),
    );
    Ok(())
}
