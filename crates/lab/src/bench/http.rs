//! `calsync-lab bench http`: load on the HTTP endpoints of a real `calsync
//! serve` process (the `calsync` binary, started as a child), against a
//! database seeded with N events. Measures `/webhooks/calendar` beside `/health/live`
//! under the same load (closed loop: throughput; then open loop at a fixed
//! rate: one request's latency without a queue), then `/health/calendar` latency, then `GET
//! /calendar/events` by entity, by time window and by status (one request
//! at a time, as the health report), with [`SERIES`] recurring series
//! mirrored beside the N single events.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use calsync_domain::ids::{CalendarId, ChannelId};
use calsync_domain::ports::Store;
use calsync_domain::sync::{SyncPage, SyncRun};
use calsync_domain::webhook::WebhookSecret;
use calsync_store::{DatabaseUrl, StoreOptions};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::fixtures::{percentile, rss_mb, synthetic_event};
use crate::error::LabError;

const API_TOKEN: &str = "bench-api-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";
/// Seeded events live in a calendar the server never syncs, so the mirror
/// holds N rows without a background sync touching them during the run.
const SEED_CALENDAR: &str = "bench-seed@example.com";

/// Recurring series mirrored beside the single events (the sizing:
/// 1M events and 10k series), in a calendar of their own, so a window over
/// the seed calendar walks single events, not a page filled by masters.
const SERIES: usize = 10_000;
const SERIES_CALENDAR: &str = "bench-series@example.com";

type HttpClient = Client<HttpConnector, Full<Bytes>>;
/// Makes the next query string of a listing route.
type QueryFn<'a> = Box<dyn Fn() -> String + 'a>;

pub struct HttpBench {
    pub events: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub health_samples: usize,
    /// Requests a second of the open-loop phase (0: none).
    pub paced_rate: u32,
    pub postgres_url: Option<String>,
    /// The `calsync` executable to serve with.
    pub server_bin: PathBuf,
}

impl HttpBench {
    pub async fn run(self) -> Result<(), LabError> {
        let dir =
            std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut backends = vec![DatabaseUrl::Sqlite(dir.join("http-bench.db"))];
        if let Some(url) = &self.postgres_url {
            backends.push(DatabaseUrl::parse(Some(url))?);
        }
        let mut result = Ok(());
        for url in &backends {
            result = self.run_backend(url).await;
            if result.is_err() {
                break;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn run_backend(&self, url: &DatabaseUrl) -> Result<(), LabError> {
        seed(url, self.events).await?;
        let server = Server::start(&self.server_bin, url)?;
        let outcome = self.measure(url, &server).await;
        drop(server);
        outcome
    }

    async fn measure(&self, url: &DatabaseUrl, server: &Server) -> Result<(), LabError> {
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(self.concurrency)
            .build_http();
        server.wait_ready(&client).await?;
        let base = &server.base;
        let channel = request(
            &client,
            "POST",
            &format!("{base}/calendar/channels"),
            &[("authorization", &format!("Bearer {API_TOKEN}"))],
        )
        .await?;
        let channel: serde_json::Value =
            serde_json::from_slice(&channel.1).map_err(|e| e.to_string())?;
        let channel_id = ChannelId::new(channel["id"].as_str().unwrap_or_default())?;
        let resource_id = channel["resourceId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let token = WebhookSecret::new(WEBHOOK_SECRET)?.channel_token(&channel_id);
        let message_number = Arc::new(AtomicU64::new(10));

        let webhook_url = format!("{base}/webhooks/calendar");
        let pid = server.child.id().to_string();
        let idle_rss = rss_mb(&pid);
        // Sampled through the webhook load: its peak.
        let sampling = {
            let pid = pid.clone();
            let until = Instant::now() + self.duration;
            tokio::spawn(async move {
                let mut peak = 0.0f64;
                while Instant::now() < until {
                    peak = peak.max(rss_mb(&pid));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            })
        };
        let webhook = {
            let (channel_id, token, resource_id) =
                (channel_id.to_string(), token.clone(), resource_id.clone());
            move |client: HttpClient| {
                let number = message_number.fetch_add(1, Ordering::Relaxed).to_string();
                let (url, channel_id, token, resource_id) = (
                    webhook_url.clone(),
                    channel_id.clone(),
                    token.clone(),
                    resource_id.clone(),
                );
                async move {
                    let headers = [
                        ("x-goog-channel-id", channel_id.as_str()),
                        ("x-goog-channel-token", token.as_str()),
                        ("x-goog-resource-id", resource_id.as_str()),
                        ("x-goog-resource-state", "exists"),
                        ("x-goog-message-number", number.as_str()),
                        (
                            "x-goog-resource-uri",
                            "https://www.googleapis.com/calendar/v3/calendars/primary/events",
                        ),
                    ];
                    request(&client, "POST", &url, &headers).await.map(|r| r.0)
                }
            }
        };
        let webhook_closed = load(&client, self.concurrency, self.duration, webhook.clone()).await;
        let load_rss = sampling.await.unwrap_or_default();
        let after_webhooks_rss = rss_mb(&pid);
        let live = {
            let live_url = format!("{base}/health/live");
            move |client: HttpClient| {
                let url = live_url.clone();
                async move { request(&client, "GET", &url, &[]).await.map(|r| r.0) }
            }
        };
        let live_closed = load(&client, self.concurrency, self.duration, live.clone()).await;
        for (route, stats) in [
            ("/webhooks/calendar", &webhook_closed),
            ("/health/live", &live_closed),
        ] {
            println!(
                "http bench: backend={} events={} route={route} load=closed concurrency={} secs={} requests={} rps={:.0} p50_ms={:.2} p99_ms={:.2} non_2xx={}",
                url.backend(),
                self.events,
                self.concurrency,
                self.duration.as_secs(),
                stats.latencies.len(),
                stats.latencies.len() as f64 / stats.elapsed.as_secs_f64(),
                percentile(&stats.latencies, 0.50).as_secs_f64() * 1000.0,
                percentile(&stats.latencies, 0.99).as_secs_f64() * 1000.0,
                stats.failures,
            );
        }
        println!(
            "http bench: backend={} result=webhook_ratio closed_rps_ratio={:.2}",
            url.backend(),
            (webhook_closed.latencies.len() as f64 / webhook_closed.elapsed.as_secs_f64())
                / (live_closed.latencies.len() as f64 / live_closed.elapsed.as_secs_f64())
                    .max(1e-9),
        );
        // The same two routes at a steady rate below saturation: what one
        // request costs, without the queue a closed loop builds.
        if self.paced_rate > 0 {
            let webhook_paced = paced(&client, self.paced_rate, self.duration, webhook).await;
            let live_paced = paced(&client, self.paced_rate, self.duration, live).await;
            for (route, stats) in [
                ("/webhooks/calendar", &webhook_paced),
                ("/health/live", &live_paced),
            ] {
                println!(
                    "http bench: backend={} events={} route={route} load=paced rate={} secs={} requests={} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} non_2xx={}",
                    url.backend(),
                    self.events,
                    self.paced_rate,
                    self.duration.as_secs(),
                    stats.latencies.len(),
                    percentile(&stats.latencies, 0.50).as_secs_f64() * 1000.0,
                    percentile(&stats.latencies, 0.99).as_secs_f64() * 1000.0,
                    percentile(&stats.latencies, 0.999).as_secs_f64() * 1000.0,
                    stats
                        .latencies
                        .last()
                        .copied()
                        .unwrap_or_default()
                        .as_secs_f64()
                        * 1000.0,
                    stats.failures,
                );
            }
        }
        println!(
            "http bench: backend={} events={} result=rss idle_rss_mb={idle_rss:.0} webhook_load_peak_rss_mb={load_rss:.0} after_webhooks_rss_mb={after_webhooks_rss:.0}",
            url.backend(),
            self.events,
        );

        // The health report, one request at a time: its own cost, not queueing.
        let health_url = format!("{base}/health/calendar");
        let mut latencies = Vec::with_capacity(self.health_samples);
        let mut active_events = 0;
        // The full report needs a token (anonymous callers get a summary).
        let auth = format!("Bearer {API_TOKEN}");
        for _ in 0..self.health_samples {
            let started = Instant::now();
            let (status, body) =
                request(&client, "GET", &health_url, &[("authorization", &auth)]).await?;
            latencies.push(started.elapsed());
            if status != 200 {
                return Err(format!("/health/calendar answered {status}").into());
            }
            let report: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            active_events = report["activeEvents"].as_u64().unwrap_or(0);
        }
        latencies.sort();
        println!(
            "http bench: backend={} route=/health/calendar active_events={active_events} samples={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
            url.backend(),
            latencies.len(),
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
        self.measure_lists(&client, base, url, &auth).await
    }

    /// `GET /calendar/events` by entity, by time window (a week, anywhere
    /// in the seeded span, in the seed calendar and in the series'), and by
    /// status (common and rare), one request at a time: each line gives
    /// p50/p99 over --health-samples requests.
    async fn measure_lists(
        &self,
        client: &HttpClient,
        base: &str,
        url: &DatabaseUrl,
        auth: &str,
    ) -> Result<(), LabError> {
        let span_start = chrono::Utc::now();
        // The seed's starts run 30 minutes apart from when it was seeded;
        // windows fall where most of them are.
        let span = chrono::Duration::minutes(30 * i64::try_from(self.events).unwrap_or(0));
        let rng = std::cell::Cell::new(uuid::Uuid::new_v4().as_u128() as u64 | 1);
        let next = |n: u64| {
            // xorshift64: enough to spread the requests.
            let mut x = rng.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rng.set(x);
            x % n.max(1)
        };
        let encode = |s: &str| {
            s.replace('@', "%40")
                .replace(':', "%3A")
                .replace('+', "%2B")
        };
        let window = |calendar: &str, from: chrono::DateTime<chrono::Utc>| {
            let to = from + chrono::Duration::days(7);
            format!(
                "calendarId={}&timeMin={}&timeMax={}",
                encode(calendar),
                encode(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                encode(&to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            )
        };
        let routes: [(&str, QueryFn<'_>); 6] = [
            (
                "entity",
                Box::new(|| {
                    format!(
                        "entityType=deal&entityId={}",
                        next(self.events.max(1) as u64)
                    )
                }),
            ),
            (
                "window",
                Box::new(|| {
                    let minutes = next(span.num_minutes().max(1) as u64) as i64;
                    window(
                        SEED_CALENDAR,
                        span_start + chrono::Duration::minutes(minutes),
                    )
                }),
            ),
            (
                "window_series",
                Box::new(|| {
                    let days = next(365) as i64;
                    window(SERIES_CALENDAR, span_start - chrono::Duration::days(days))
                }),
            ),
            ("status_confirmed", Box::new(|| "status=confirmed".into())),
            ("status_cancelled", Box::new(|| "status=cancelled".into())),
            (
                "calendar_status_tentative",
                Box::new(|| format!("calendarId={}&status=tentative", encode(SEED_CALENDAR))),
            ),
        ];
        for (by, query) in routes {
            let mut latencies = Vec::with_capacity(self.health_samples);
            let mut listed = 0;
            for _ in 0..self.health_samples {
                let target = format!("{base}/calendar/events?{}", query());
                let started = Instant::now();
                let (status, body) =
                    request(client, "GET", &target, &[("authorization", auth)]).await?;
                latencies.push(started.elapsed());
                if status != 200 {
                    return Err(format!(
                        "{target} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    )
                    .into());
                }
                let page: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                listed += page["items"].as_array().map_or(0, Vec::len);
            }
            latencies.sort();
            println!(
                "http bench: backend={} events={} series={SERIES} route=/calendar/events by={by} samples={} mean_items={:.1} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
                url.backend(),
                self.events,
                latencies.len(),
                listed as f64 / latencies.len().max(1) as f64,
                percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
                percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
                latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            );
        }
        Ok(())
    }
}

/// Fills the seed calendar up to `events` rows and the series calendar with
/// [`SERIES`] masters (a re-run reuses them).
async fn seed(url: &DatabaseUrl, events: usize) -> Result<(), LabError> {
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    let calendar = CalendarId::new(SEED_CALENDAR)?;
    let series_calendar = CalendarId::new(SERIES_CALENDAR)?;
    // The bench database is a scratch one: its active events are the seed.
    let active = || async {
        Ok::<_, LabError>(
            usize::try_from(
                store
                    .health_stats(chrono::Utc::now(), chrono::Utc::now())
                    .await?
                    .active_events,
            )
            .unwrap_or(usize::MAX),
        )
    };
    if active().await? >= events + SERIES {
        return Ok(());
    }
    let started = Instant::now();
    // Fixed ids: seeding them again changes nothing.
    seed_series(store.as_ref(), &series_calendar).await?;
    let have = active().await?.saturating_sub(SERIES);
    seed_range(store.as_ref(), &calendar, have, events).await?;
    println!(
        "http bench: backend={} result=seed seeded_events={} seed_secs={:.0}",
        url.backend(),
        events.saturating_sub(have),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn seed_range(
    store: &dyn Store,
    calendar: &CalendarId,
    from: usize,
    to: usize,
) -> Result<(), LabError> {
    let mut done = from;
    while done < to {
        let end = (done + 2500).min(to);
        // No completion: the seed calendar gets no sync state, so no job syncs it.
        let page = SyncPage {
            calendar_id: calendar.clone(),
            run: SyncRun::Incremental,
            events: (done..end)
                .map(|i| synthetic_event(calendar.as_str(), i, 1))
                .collect(),
            completion: None,
            retention_cutoff: None,
            now: chrono::Utc::now(),
        };
        store.apply_sync_page(&page).await?;
        done = end;
    }
    Ok(())
}

/// [`SERIES`] weekly, every-other-day and monthly series started over the
/// past year (as `bench series` mirrors them), with ids apart from the
/// single events'.
async fn seed_series(store: &dyn Store, calendar: &CalendarId) -> Result<(), LabError> {
    use calsync_domain::event::EventTime;
    use calsync_domain::ids::{EventId, LocalEventId};
    let now = chrono::Utc::now();
    let mut done = 0;
    while done < SERIES {
        let end = (done + 2500).min(SERIES);
        let events = (done..end)
            .map(|i| {
                let mut event = synthetic_event(calendar.as_str(), i, 1);
                let start = now - chrono::Duration::hours(i64::try_from(i % 8760).unwrap_or(0));
                event.id = EventId::for_local(LocalEventId::from_uuid(uuid::Uuid::from_u128(
                    (1 << 64) + i as u128,
                )));
                event.entity = None;
                event.start = Some(EventTime::at(start, None));
                event.end = Some(EventTime::at(start + chrono::Duration::minutes(30), None));
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
                run: SyncRun::Incremental,
                events,
                completion: None,
                retention_cutoff: None,
                now: chrono::Utc::now(),
            })
            .await?;
        done = end;
    }
    Ok(())
}

/// `calsync serve` as a child process, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(program: &Path, url: &DatabaseUrl) -> Result<Self, LabError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let database = match url {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        };
        let child = Command::new(program)
            .arg("serve")
            .env("CALSYNC_ENV", "development")
            .env("CALSYNC_BIND", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database)
            .env("CALSYNC_API_TOKENS", API_TOKEN)
            .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
            // The load comes from one address: lift the per-source webhook limit.
            .env("CALSYNC_WEBHOOK_RATE_PER_MINUTE", "100000000")
            .env("CALSYNC_GOOGLE_RATE_PER_MINUTE", "100000000")
            .env("CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE", "100000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", program.display()))?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn wait_ready(&self, client: &HttpClient) -> Result<(), LabError> {
        let url = format!("{}/health/ready", self.base);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = request(client, "GET", &url, &[]).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not become ready within 60 s".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Bytes), LabError> {
    let mut builder = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

struct LoadStats {
    latencies: Vec<Duration>,
    failures: u64,
    elapsed: Duration,
}

/// Requests started at `rate` a second for `duration` whatever the answers
/// (an open loop: Google sends notifications when changes happen, not when
/// calsync is free), so a stall of the server holds no request back. Each
/// latency counts from when its request was sent: the timer's millisecond
/// grain sends the requests due within one millisecond together, up to a
/// millisecond late, which is the harness's, not the server's.
async fn paced<F, Fut>(client: &HttpClient, rate: u32, duration: Duration, make: F) -> LoadStats
where
    F: Fn(HttpClient) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u16, LabError>> + Send + 'static,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = Vec::new();
    for n in 0u32.. {
        let due = started + every * n;
        if due >= started + duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let request = make(client.clone());
        let sent = Instant::now();
        tasks.push(tokio::spawn(async move {
            let status = request.await;
            (status, sent.elapsed())
        }));
    }
    let mut stats = LoadStats {
        latencies: Vec::with_capacity(tasks.len()),
        failures: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        match task.await {
            Ok((Ok(status), latency)) if (200..300).contains(&status) => {
                stats.latencies.push(latency);
            }
            _ => stats.failures += 1,
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies.sort();
    stats
}

/// `concurrency` closed-loop clients, each sending its next request when the
/// previous one is answered, for `duration`.
async fn load<F, Fut>(
    client: &HttpClient,
    concurrency: usize,
    duration: Duration,
    make: F,
) -> LoadStats
where
    F: Fn(HttpClient) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<u16, LabError>> + Send,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, make) = (client.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match make(client.clone()).await {
                    Ok(status) if (200..300).contains(&status) => latencies.push(sent.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut stats = LoadStats {
        latencies: Vec::new(),
        failures: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((latencies, failures)) = task.await {
            stats.latencies.extend(latencies);
            stats.failures += failures;
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies.sort();
    stats
}
