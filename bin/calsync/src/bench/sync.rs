//! `calsync bench sync`: full sync through the emulator against the
//! store's own ceiling, then change-to-mirror latency through a server.

use std::time::Instant;

use calsync_domain::ids::{CalendarId, EventId};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{Duration, Utc};

use super::fixtures::{pass, percentile};
use crate::error::CommandError;

pub(super) async fn run(
    events: usize,
    changes: usize,
    postgres_url: Option<&str>,
) -> Result<(), CommandError> {
    let dir = std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
    let result = sync_bench(&dir, events, changes, postgres_url).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
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
        "--google-principal-rate-per-minute",
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
