//! `calsync-lab bench sync`: full sync through the emulator against the
//! store's own ceiling, then change-to-mirror latency through a server,
//! then a `calsync serve` process's memory through a full sync.

use std::path::Path;
use std::time::Instant;

use calsync_domain::ids::{CalendarId, EventId};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{Duration, Utc};

use super::fixtures::percentile;
use crate::error::LabError;

pub(super) async fn run(
    events: usize,
    changes: usize,
    postgres_url: Option<&str>,
    server_bin: &Path,
) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
    let result = sync_bench(&dir, events, changes, postgres_url, server_bin).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn full_sync_rate(
    url: &DatabaseUrl,
    google: std::sync::Arc<dyn calsync_domain::ports::CalendarProvider>,
    calendar: &CalendarId,
) -> Result<(f64, f64), LabError> {
    use calsync_domain::services::{SyncMode, SyncService};
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    let clock: std::sync::Arc<dyn calsync_domain::ports::Clock> =
        std::sync::Arc::new(calsync_domain::ports::SystemClock);
    let sync = SyncService::new(google.clone(), store.clone(), store.clone(), clock)
        .with_page_size(calsync_domain::services::DEFAULT_SYNC_PAGE_SIZE);
    let started = Instant::now();
    let report = sync.sync_calendar(calendar, SyncMode::Full, None).await?;
    let sync_rate = report.outcome.inserted as f64 / started.elapsed().as_secs_f64();
    // The store's own ceiling, in the same run, on a calendar of its own.
    let ceiling_calendar = CalendarId::new(format!(
        "ceiling-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))?;
    let rows_rate =
        store_ceiling(store.as_ref(), google.as_ref(), calendar, &ceiling_calendar).await?;
    Ok((sync_rate, rows_rate))
}

/// The store's ceiling for exactly what the sync wrote: the same pages,
/// listed again (untimed) and applied as one full run to another calendar,
/// only the applies timed. Rows per second.
async fn store_ceiling(
    store: &dyn calsync_domain::ports::Store,
    google: &dyn calsync_domain::ports::CalendarProvider,
    source: &CalendarId,
    target: &CalendarId,
) -> Result<f64, LabError> {
    use calsync_domain::sync::{ListRequest, SyncCompletion, SyncPage, SyncRun};
    let run = SyncRun::Full {
        run_id: "bench-ceiling".into(),
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
                    max_results: calsync_domain::services::DEFAULT_SYNC_PAGE_SIZE,
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

async fn sync_bench(
    dir: &Path,
    events: usize,
    changes: usize,
    postgres_url: Option<&str>,
    server_bin: &Path,
) -> Result<(), LabError> {
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
        // Postgres: a schema of its own, so rows of earlier runs (and the
        // full run's sweep of them) are not measured.
        let schema = crate::harness::pg::fresh_schema_for(url).await?;
        let target = match &schema {
            Some(schema) => DatabaseUrl::parse(Some(&schema.url))?,
            None => url.clone(),
        };
        let measured = full_sync_rate(&target, google.clone(), &calendar).await;
        if let Some(schema) = &schema {
            crate::harness::pg::drop_schema(schema).await?;
        }
        let (sync_rate, rows_rate) = measured?;
        println!(
            "sync bench: result=full_sync backend={} events={events} full_sync_events_per_sec={sync_rate:.0} store_rows_per_sec={rows_rate:.0} ratio={:.2}",
            url.backend(),
            sync_rate / rows_rate.max(1.0)
        );
    }
    emulator.stop().await;
    latency_bench(dir, changes).await?;
    for url in &backends {
        serve_rss(dir, url, events, server_bin).await?;
    }
    Ok(())
}

/// `calsync serve` as its own process (`server_bin`) full-syncs N events
/// from an emulator in this process: its resident memory while the sync
/// runs (peak, sampled every 50 ms) and once it is done. Pages are
/// streamed, so neither should grow with N.
async fn serve_rss(
    dir: &Path,
    url: &DatabaseUrl,
    events: usize,
    server_bin: &Path,
) -> Result<(), LabError> {
    use crate::harness::{net::Http, pg, procs};
    use calsync_emulator::{Emulator, EmulatorConfig};
    let calendar = CalendarId::new("primary")?;
    let emulator = Emulator::new(EmulatorConfig::default())?
        .start("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    emulator.emulator.seed(calendar.as_str(), events)?;
    let schema = pg::fresh_schema_for(url).await?;
    let database = match (&schema, url) {
        (Some(schema), _) => schema.url.clone(),
        (None, _) => format!("sqlite://{}", dir.join("serve-rss.db").display()),
    };
    let port = procs::free_port()?;
    let env = [
        ("CALSYNC_ENV", "development".to_owned()),
        ("CALSYNC_BIND", format!("127.0.0.1:{port}")),
        ("DATABASE_URL", database.clone()),
        ("CALSYNC_EMULATOR_URL", emulator.base_url.clone()),
        (
            "CALSYNC_API_TOKENS",
            "bench-api-token-0123456789".to_owned(),
        ),
        (
            "WEBHOOK_SECRET",
            "bench-webhook-secret-0123456789".to_owned(),
        ),
        ("CALSYNC_GOOGLE_RATE_PER_MINUTE", "100000000".to_owned()),
        (
            "CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE",
            "100000000".to_owned(),
        ),
        ("CALSYNC_LOG_LEVEL", "warning".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    // The page size (memory against calls) and the allocator's options
    // can be compared across runs.
    .chain(
        std::env::vars()
            .filter(|(name, _)| name == "CALSYNC_SYNC_PAGE_SIZE" || name.starts_with("MIMALLOC_")),
    )
    .collect();
    let mut server = procs::Proc::new(
        "serve",
        server_bin,
        &["serve"],
        env,
        dir.join("serve-rss.log"),
    );
    server.spawn(0.0)?;
    let result = async {
        let http = Http::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while !http
            .send("GET", &format!("{base}/health/ready"), &[], None)
            .await
            .is_ok_and(|r| r.status == 200)
        {
            if Instant::now() > deadline {
                return Err::<_, LabError>("calsync serve was not ready within 60 s".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let pid = server.pid().ok_or("calsync serve exited")?.to_string();
        let store = calsync_store::connect(
            &DatabaseUrl::parse(Some(&database))?,
            &StoreOptions::default(),
        )
        .await?;
        let idle = super::fixtures::rss_mb(&pid);
        let started = Instant::now();
        // Watching the calendar queues its first (full) sync.
        let watched = http
            .send(
                "POST",
                &format!("{base}/calendar/channels"),
                &[("authorization", "Bearer bench-api-token-0123456789")],
                None,
            )
            .await?;
        if watched.status != 201 {
            return Err(format!("watching the calendar: {}", watched.brief()).into());
        }
        let mut peak = idle;
        loop {
            peak = peak.max(super::fixtures::rss_mb(&pid));
            let synced = store
                .sync_state(&calendar)
                .await?
                .is_some_and(|s| s.sync_token.is_some());
            if synced {
                break;
            }
            if started.elapsed() > std::time::Duration::from_secs(1800) {
                return Err("the full sync did not finish within 30 min".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let full_sync = started.elapsed();
        let mirrored = store
            .health_stats(Utc::now(), Utc::now())
            .await?
            .active_events;
        if mirrored < u64::try_from(events).unwrap_or(u64::MAX) {
            return Err(format!("only {mirrored} of {events} events were mirrored").into());
        }
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        println!(
            "sync bench: result=serve_rss backend={} events={events} mirrored={mirrored} full_sync_s={:.1} idle_rss_mb={idle:.0} peak_rss_mb={peak:.0} after_rss_mb={:.0}",
            url.backend(),
            full_sync.as_secs_f64(),
            super::fixtures::rss_mb(&pid),
        );
        Ok(())
    }
    .await;
    server.kill();
    emulator.stop().await;
    if let Some(schema) = &schema {
        pg::drop_schema(schema).await?;
    }
    result
}

/// Runs the real server (SQLite, built-in emulator), watches a calendar,
/// and times each change from the emulator until the mirror holds it.
async fn latency_bench(dir: &Path, changes: usize) -> Result<(), LabError> {
    let database = format!("sqlite://{}", dir.join("latency.db").display());
    // Quotas lifted: this measures the pipeline, not Google's 600/min per calendar.
    let flags = [
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
    let running = super::fixtures::start_server(&flags).await?;
    let result = measure_latency(&running, changes).await;
    running.stop().await;
    let mut latencies = result?;
    latencies.sort();
    println!(
        "sync bench: result=change_to_mirror changes={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
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
) -> Result<Vec<std::time::Duration>, LabError> {
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
