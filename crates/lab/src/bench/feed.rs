//! `calsync-lab bench feed`: the change feed and outbound webhooks (issue
//! 24) on a real `calsync serve` process (the `calsync` binary, see
//! [`ServerBin`]) and an emulator in this process, per backend:
//!
//! 1. the feed table is pre-filled with `--feed-rows` changes straight in
//!    SQL (about 1.5 KB of payload each), so everything below runs on a
//!    feed of production size;
//! 2. remote edits at the emulator at `--changes-per-min`, each timed until
//!    a reader long-polling `GET /calendar/changes` sees it and until a
//!    receiver subscribed through `POST /calendar/webhooks` gets it (its
//!    signature checked);
//! 3. reads of 1,000 changes from random cursors across the pre-filled
//!    range, and reads filtered by entity;
//! 4. a full sync of `--events` beside the store's ceiling, on the same
//!    database, the feed written by both.
//!
//! Each figure is printed on a `feed bench:` line beside its goal.

mod full_sync;
mod live;
mod prefill;
mod reads;
mod receiver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use calsync_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use calsync_store::{DatabaseUrl, StoreOptions};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::LabError;
use crate::harness::{pg, procs};

const API_TOKEN: &str = "bench-api-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";

/// The goals, printed beside the figures.
const FEED_P99_GOAL: Duration = Duration::from_millis(200);
const WEBHOOK_P99_GOAL: Duration = Duration::from_secs(1);
const READ_P99_GOAL: Duration = Duration::from_millis(50);
const FULL_SYNC_RATIO_GOAL: f64 = 0.85;

/// Pre-filled rows when `--feed-rows` is not given: the 10M on
/// Postgres; SQLite, a single-file embedded store, a tenth of it.
const DEFAULT_POSTGRES_ROWS: u64 = 10_000_000;
const DEFAULT_SQLITE_ROWS: u64 = 1_000_000;

/// One `bench feed` run.
#[derive(Debug, Clone)]
pub struct FeedBench {
    pub changes_per_min: u32,
    pub duration: Duration,
    /// `None`: [`DEFAULT_POSTGRES_ROWS`] / [`DEFAULT_SQLITE_ROWS`].
    pub feed_rows: Option<u64>,
    /// Timed reads of each kind.
    pub reads: usize,
    /// Events of the full sync.
    pub events: usize,
    pub postgres_url: Option<String>,
    pub server_bin: PathBuf,
}

impl FeedBench {
    /// SQLite, then Postgres with `--postgres-url`. A failed run keeps its
    /// directory (the server's log) and says where.
    pub async fn run(self) -> Result<(), LabError> {
        let dir =
            std::env::temp_dir().join(format!("calsync-feed-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut backends = vec![DatabaseUrl::Sqlite(dir.join("feed-bench.db"))];
        if let Some(url) = &self.postgres_url {
            backends.push(DatabaseUrl::parse(Some(url))?);
        }
        let mut result = Ok(());
        for url in &backends {
            result = self.run_backend(&dir, url).await;
            if result.is_err() {
                break;
            }
        }
        match &result {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(_) => eprintln!("feed bench: the server's log is kept in {}", dir.display()),
        }
        result
    }

    async fn run_backend(&self, dir: &Path, url: &DatabaseUrl) -> Result<(), LabError> {
        // Postgres: a schema of its own, dropped afterwards (10M rows of
        // earlier runs are not kept around).
        let schema = pg::fresh_schema_for(url).await?;
        let database = match &schema {
            Some(schema) => schema.url.clone(),
            None => match url {
                DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
                DatabaseUrl::Postgres(url) => url.clone(),
            },
        };
        let result = self.measure(dir, url.backend(), &database).await;
        if let Some(schema) = &schema
            && let Err(error) = pg::drop_schema(schema).await
        {
            eprintln!("feed bench: cannot drop the scratch schema: {error}");
        }
        result
    }

    async fn measure(&self, dir: &Path, backend: &str, database: &str) -> Result<(), LabError> {
        let url = DatabaseUrl::parse(Some(database))?;
        let rows = self.feed_rows.unwrap_or(match url {
            DatabaseUrl::Postgres(_) => DEFAULT_POSTGRES_ROWS,
            DatabaseUrl::Sqlite(_) => DEFAULT_SQLITE_ROWS,
        });
        // Migrated (the feed's tables made) before the SQL fills them.
        let store = calsync_store::connect(&url, &StoreOptions::default()).await?;
        let filled = prefill::fill(&url, rows).await?;
        // Nothing else writes meanwhile: the fill's seqs are the newest.
        let first_seq = store.latest_cursor().await?.seq().saturating_sub(rows);
        println!(
            "feed bench: backend={backend} result=prefill feed_rows={rows} entities={} payload_bytes={} secs={:.1} rows_per_sec={:.0}",
            filled.entities,
            filled.payload_bytes,
            filled.elapsed.as_secs_f64(),
            rows as f64 / filled.elapsed.as_secs_f64().max(1e-9),
        );
        drop(store);

        let emulator = Emulator::new(EmulatorConfig::default())?
            .start("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
        let served = self
            .serve(dir, backend, database, &emulator, first_seq, &filled)
            .await;
        let synced = match served {
            Ok(()) => full_sync::measure(&url, &emulator, self.events).await,
            Err(error) => Err(error),
        };
        emulator.stop().await;
        let figures = synced?;
        let ratio = figures.sync_rate / figures.ceiling_rate.max(1.0);
        println!(
            "feed bench: backend={backend} result=full_sync events={} feed_rows_written={} full_sync_events_per_sec={:.0} store_rows_per_sec={:.0} ratio={ratio:.2} goal_ratio={FULL_SYNC_RATIO_GOAL} {}",
            self.events,
            figures.feed_rows_written,
            figures.sync_rate,
            figures.ceiling_rate,
            met(ratio >= FULL_SYNC_RATIO_GOAL),
        );
        Ok(())
    }

    /// Phases 2 and 3, on a `calsync serve` child process.
    async fn serve(
        &self,
        dir: &Path,
        backend: &str,
        database: &str,
        emulator: &RunningEmulator,
        first_seq: u64,
        filled: &prefill::Filled,
    ) -> Result<(), LabError> {
        let port = procs::free_port()?;
        let mut server = procs::Proc::new(
            "serve",
            &self.server_bin,
            &["serve"],
            server_env(port, database, &emulator.base_url),
            dir.join(format!("serve-{backend}.log")),
        );
        server.spawn(0.0)?;
        let api = Api::new(format!("http://127.0.0.1:{port}"));
        let result = async {
            api.wait_ready().await?;
            let live = live::measure(
                &api,
                &emulator.emulator,
                self.changes_per_min,
                self.duration,
            )
            .await?;
            live.print(backend);
            let reads = reads::measure(&api, first_seq, filled, self.reads).await?;
            reads.print(backend, filled.rows);
            let mut broken = Vec::new();
            if live.feed.missing > 0 {
                broken.push(format!(
                    "{} changes never appeared in the feed",
                    live.feed.missing
                ));
            }
            if live.webhook.missing > 0 {
                broken.push(format!(
                    "{} changes never reached the receiver",
                    live.webhook.missing
                ));
            }
            if live.bad_signatures > 0 {
                broken.push(format!(
                    "{} deliveries failed the signature check",
                    live.bad_signatures
                ));
            }
            if !broken.is_empty() {
                return Err(LabError::from(broken.join("; ")));
            }
            Ok(())
        }
        .await;
        if let Some(exited) = server.exited() {
            eprintln!("feed bench: calsync serve exited early: {exited}");
        }
        server.kill();
        result
    }
}

/// `calsync serve` in development against the emulator, every limit that
/// would measure itself instead of the pipeline lifted.
fn server_env(port: u16, database: &str, emulator: &str) -> Vec<(String, String)> {
    [
        // Development: webhooks may go to plain http on loopback.
        ("CALSYNC_ENV", "development".to_owned()),
        ("CALSYNC_BIND", format!("127.0.0.1:{port}")),
        ("DATABASE_URL", database.to_owned()),
        ("CALSYNC_EMULATOR_URL", emulator.to_owned()),
        ("CALSYNC_API_TOKENS", API_TOKEN.to_owned()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("CALSYNC_WEBHOOK_RATE_PER_MINUTE", "100000000".to_owned()),
        ("CALSYNC_GOOGLE_RATE_PER_MINUTE", "100000000".to_owned()),
        (
            "CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE",
            "100000000".to_owned(),
        ),
        ("CALSYNC_LOG_LEVEL", "warning".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `goal_met=yes|no`.
fn met(yes: bool) -> &'static str {
    if yes { "goal_met=yes" } else { "goal_met=no" }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Latencies, sorted.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self(samples)
    }

    fn p(&self, fraction: f64) -> Duration {
        super::fixtures::percentile(&self.0, fraction)
    }

    /// `samples=N p50_ms=.. p99_ms=.. max_ms=..`
    fn summary(&self) -> String {
        format!(
            "samples={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
            self.0.len(),
            ms(self.p(0.50)),
            ms(self.p(0.99)),
            ms(self.0.last().copied().unwrap_or_default()),
        )
    }

    /// `goal_p99_ms=.. goal_met=..`; an empty sample meets nothing.
    fn goal(&self, p99: Duration) -> String {
        format!(
            "goal_p99_ms={:.0} {}",
            ms(p99),
            met(!self.0.is_empty() && self.p(0.99) < p99)
        )
    }
}

/// The server's API over HTTP/1.1, with the bench's token. Answers are
/// read whole before the clock stops, and parsed after.
#[derive(Clone)]
struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Api {
    fn new(base: String) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base,
        }
    }

    async fn wait_ready(&self) -> Result<(), LabError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self
                .call("GET", "/health/ready", None, Duration::from_secs(2))
                .await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("calsync serve was not ready within 60 s".into())
    }

    /// Status and body; `Err` when no answer came within `timeout`.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), LabError> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {API_TOKEN}"));
        let payload = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{method} {path}: {e:?}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{method} {path}: {e:?}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        };
        Ok(tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {timeout:?}"))??)
    }

    /// The JSON answer of a call that must answer `expect`.
    async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        expect: u16,
    ) -> Result<serde_json::Value, LabError> {
        let (status, bytes) = self
            .call(method, path, body, Duration::from_secs(30))
            .await?;
        if status != expect {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            return Err(format!("{method} {path} answered {status}: {text}").into());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| LabError::from(format!("{method} {path}: not JSON: {e}")))
    }
}
