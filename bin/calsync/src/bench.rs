//! `calsync bench ...`: throughput figures measured on real databases.

use std::time::Instant;

use calsync_domain::event::{Attendee, EventStatus, EventTime};
use calsync_domain::ids::{CalendarId, EntityRef, Etag, EventId};
use calsync_domain::ports::Store;
use calsync_domain::sync::{RemoteEvent, SyncCompletion, SyncPage, SyncRun};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{Duration, Utc};
use clap::Subcommand;

use crate::cli::CommandError;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Upsert N calendar-like events (~1 KB each) in pages of 2500 through
    /// the sync path, on embedded SQLite and (with --postgres-url) Postgres;
    /// prints rows/s for the first pass (inserts) and a second (updates).
    Store {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 2500)]
        page_size: usize,
        /// A Postgres database to benchmark too (its tables are created if
        /// missing; use a scratch database).
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Seed the emulator with N events and full-sync them through the Google
    /// adapter into SQLite and (with --postgres-url) Postgres, printing
    /// events/s beside the store's own rows/s; then run the server and time
    /// change-to-mirror latency (p50/p99) over --changes changes.
    Sync {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 1000)]
        changes: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Start `calsync serve` (this binary) on a database seeded with N
    /// events, load `/webhooks/calendar` and `/health/live` with
    /// --concurrency clients for --duration-secs each, then time
    /// `/health/calendar`. SQLite always; Postgres with --postgres-url (a
    /// scratch database: the seed is kept there for re-runs).
    Http {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        #[arg(long, default_value_t = 50)]
        health_samples: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
}

impl Bench {
    pub async fn run(self) -> Result<(), CommandError> {
        match self {
            Self::Http {
                events,
                concurrency,
                duration_secs,
                health_samples,
                postgres_url,
            } => {
                crate::bench_http::HttpBench {
                    events,
                    concurrency: concurrency.max(1),
                    duration: std::time::Duration::from_secs(duration_secs.max(1)),
                    health_samples: health_samples.max(1),
                    postgres_url,
                }
                .run()
                .await
            }
            Self::Sync {
                events,
                changes,
                postgres_url,
            } => {
                let dir = std::env::temp_dir()
                    .join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
                let result = sync_bench(&dir, events, changes, postgres_url.as_deref()).await;
                let _ = std::fs::remove_dir_all(&dir);
                result
            }
            Self::Store {
                events,
                page_size,
                postgres_url,
            } => {
                let dir = std::env::temp_dir()
                    .join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
                let sqlite = DatabaseUrl::Sqlite(dir.join("bench.db"));
                let result = store_bench(&sqlite, events, page_size).await;
                let _ = std::fs::remove_dir_all(&dir);
                result?;
                if let Some(url) = postgres_url {
                    store_bench(&DatabaseUrl::parse(Some(&url))?, events, page_size).await?;
                }
                Ok(())
            }
        }
    }
}

/// A remote event of about 1 KB once stored.
pub(crate) fn synthetic_event(calendar: &str, index: usize, generation: u32) -> RemoteEvent {
    let start = Utc::now() + Duration::minutes(i64::try_from(index).unwrap_or(0) * 30);
    RemoteEvent {
        id: EventId::for_local(calsync_domain::ids::LocalEventId::from_uuid(
            uuid::Uuid::from_u128(index as u128),
        )),
        status: EventStatus::Confirmed,
        ical_uid: Some(format!("bench{index}@google.com")),
        summary: Some(format!("Customer meeting #{index} (revision {generation})")),
        description: Some("Agenda: review the proposal, agree next steps and owners. ".repeat(10)),
        location: Some("Meeting room 3, 2nd floor, Example Street 12, 10115 Berlin".into()),
        start: Some(EventTime::at(start, None)),
        end: Some(EventTime::at(start + Duration::minutes(30), None)),
        attendees: (0..3)
            .filter_map(|a| Attendee::new(format!("person{a}@{calendar}")).ok())
            .collect(),
        organizer: None,
        recurrence: Vec::new(),
        recurring_event_id: None,
        original_start: None,
        etag: Etag::new(format!("\"{generation}{index:012}\"")).ok(),
        updated: Some(Utc::now()),
        html_link: Some(format!(
            "https://calendar.google.com/calendar/event?eid=bench{index}"
        )),
        entity: EntityRef::new("deal", index.to_string()).ok(),
    }
}

async fn pass(
    store: &dyn Store,
    calendar: &CalendarId,
    events: usize,
    page_size: usize,
    generation: u32,
) -> Result<f64, CommandError> {
    let run = SyncRun::Full {
        run_id: format!("bench-{generation}"),
        started_at: chrono::Utc::now(),
    };
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let end = (done + page_size).min(events);
        let page = SyncPage {
            calendar_id: calendar.clone(),
            run: run.clone(),
            events: (done..end)
                .map(|i| synthetic_event(calendar.as_str(), i, generation))
                .collect(),
            completion: (end == events).then(|| SyncCompletion {
                next_sync_token: format!("bench-token-{generation}"),
            }),
            retention_cutoff: None,
            now: Utc::now(),
        };
        store.apply_sync_page(&page).await?;
        done = end;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

async fn store_bench(
    url: &DatabaseUrl,
    events: usize,
    page_size: usize,
) -> Result<(), CommandError> {
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    // A fresh calendar per run, so repeated runs against one database compare.
    let calendar = CalendarId::new(format!(
        "bench-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))?;
    let page_size = page_size.clamp(1, 2500);
    let inserts = pass(store.as_ref(), &calendar, events, page_size, 1).await?;
    let updates = pass(store.as_ref(), &calendar, events, page_size, 2).await?;
    println!(
        "store bench: backend={} events={events} page_size={page_size} insert_rows_per_sec={inserts:.0} update_rows_per_sec={updates:.0}",
        url.backend()
    );
    Ok(())
}

async fn full_sync_rate(
    url: &DatabaseUrl,
    google: std::sync::Arc<dyn calsync_domain::ports::CalendarProvider>,
    calendar: &CalendarId,
    events: usize,
) -> Result<(f64, f64), CommandError> {
    use calsync_domain::services::{SyncMode, SyncService};
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    let clock: std::sync::Arc<dyn calsync_domain::ports::Clock> =
        std::sync::Arc::new(calsync_domain::ports::SystemClock);
    let sync = SyncService::new(google, store.clone(), store.clone(), clock);
    let started = Instant::now();
    let report = sync.sync_calendar(calendar, SyncMode::Full, None).await?;
    let sync_rate = report.outcome.inserted as f64 / started.elapsed().as_secs_f64();
    // The store's own ceiling, in the same run, on a calendar of its own.
    let ceiling_calendar = CalendarId::new(format!(
        "ceiling-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))?;
    let rows_rate = pass(store.as_ref(), &ceiling_calendar, events, 2500, 1).await?;
    Ok((sync_rate, rows_rate))
}

pub(crate) fn percentile(sorted: &[std::time::Duration], fraction: f64) -> std::time::Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

async fn sync_bench(
    dir: &std::path::Path,
    events: usize,
    changes: usize,
    postgres_url: Option<&str>,
) -> Result<(), CommandError> {
    use calsync_emulator::{Emulator, EmulatorConfig};
    use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
    let calendar = CalendarId::new("bench@example.com")?;
    let emulator = Emulator::new(EmulatorConfig::default())?
        .start("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    emulator.emulator.seed(calendar.as_str(), events)?;
    let mut config = GoogleConfig::new(Credentials::AccessToken("bench".into()));
    config.api_base_url = emulator.calendar_api_url();
    config.rate_limits.project_per_minute = u32::MAX / 2;
    config.rate_limits.per_key_per_minute = u32::MAX / 2;
    let google: std::sync::Arc<dyn calsync_domain::ports::CalendarProvider> = std::sync::Arc::new(
        GoogleCalendar::new(config)
            .await
            .map_err(|e| e.to_string())?,
    );
    let mut backends = vec![DatabaseUrl::Sqlite(dir.join("sync-bench.db"))];
    if let Some(url) = postgres_url {
        backends.push(DatabaseUrl::parse(Some(url))?);
    }
    for url in &backends {
        let (sync_rate, rows_rate) = full_sync_rate(url, google.clone(), &calendar, events).await?;
        println!(
            "sync bench: backend={} events={events} full_sync_events_per_sec={sync_rate:.0} store_rows_per_sec={rows_rate:.0}",
            url.backend()
        );
    }
    emulator.stop().await;
    latency_bench(dir, changes).await
}

/// Runs the real server (SQLite, built-in emulator), watches a calendar,
/// and times each change from the emulator until the mirror holds it.
async fn latency_bench(dir: &std::path::Path, changes: usize) -> Result<(), CommandError> {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: calsync::settings::ServeArgs,
    }
    let database = format!("sqlite://{}", dir.join("latency.db").display());
    // Quotas lifted: this measures the pipeline, not Google's 600/min per calendar.
    let argv = [
        "calsync",
        "--bind",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--sync-poll-secs",
        "60",
        "--google-calendar-rate-per-minute",
        "1000000",
        "--google-rate-per-minute",
        "1000000",
        "--webhook-rate-per-minute",
        "1000000",
    ];
    let settings = Args::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .serve
        .settings()?;
    let running =
        calsync::server::start(settings, slog::Logger::root(slog::Discard, slog::o!())).await?;
    let result = measure_latency(&running, changes).await;
    running.stop().await;
    let mut latencies = result?;
    latencies.sort();
    println!(
        "sync bench: change_to_mirror changes={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
    Ok(())
}

async fn measure_latency(
    running: &calsync::server::Running,
    changes: usize,
) -> Result<Vec<std::time::Duration>, CommandError> {
    use calsync_emulator::Change;
    let calendar = CalendarId::new("primary")?;
    let emulator = running
        .emulator
        .as_ref()
        .ok_or("the benchmark needs the built-in emulator")?;
    running.channels.create(&calendar).await?;
    let mut latencies = Vec::with_capacity(changes);
    for i in 0..changes {
        let start = Utc::now() + Duration::hours(1);
        let serde_json::Value::Object(body) = serde_json::json!({
            "summary": format!("latency probe {i}"),
            "start": {"dateTime": start.to_rfc3339()},
            "end": {"dateTime": (start + Duration::minutes(30)).to_rfc3339()},
        }) else {
            continue;
        };
        let started = Instant::now();
        let created = emulator
            .emulator
            .change(calendar.as_str(), Change::Insert(body))?;
        let id = EventId::new(created["id"].as_str().unwrap_or_default())?;
        loop {
            if running
                .store
                .find_by_google_id(&calendar, &id)
                .await?
                .is_some()
            {
                break;
            }
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!("change {i} did not reach the mirror within 30 s").into());
            }
            tokio::time::sleep(std::time::Duration::from_micros(500)).await;
        }
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
