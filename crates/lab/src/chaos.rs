//! `calsync-lab chaos`: the project's chaos battery. For each backend it
//! starts a separate `calsync emulator` and a `calsync serve` (children
//! running the `calsync` binary, [`ServerBin`]), then for a while runs
//! together: edits made directly in "Google", API writes, injected Google
//! faults of every kind, users revoking calsync's access to their own
//! accounts and connecting again ([`actors::grants`]), and SIGKILLs of the
//! server (restarted at once on the same database). Then the faults are cleared,
//! writing stops, and the mirror must converge to Google's truth with every
//! acknowledged write there exactly once, no 5xx, no panic and no leak in
//! the logs. Meanwhile a flaky webhook receiver ([`receiver`]) is
//! subscribed to the change feed; at the end every change of the mirror
//! must be in the feed, every change must have reached the receiver,
//! signed, and replaying the feed must rebuild the mirror
//! ([`check::feed`]). Exits non-zero otherwise, printing the seed to
//! replay with.

mod actors;
mod check;
mod feed;
mod receiver;
mod report;
mod rng;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use serde_json::json;

use crate::error::LabError;
use crate::harness::server_bin::ServerBin;
use crate::harness::{net, pg, procs};
use actors::{API_TOKEN, Shared, WEBHOOK_SECRET, lock};
use check::{Diff, Snapshot, WriteVerdict};
use net::Http;
use procs::Proc;
use receiver::Receiver;
use report::{FeedFigures, Figures, report};
use rng::Rng;

/// Events "someone" has in Google before calsync watches the calendar.
const SEEDED_EVENTS: usize = 40;
/// How long in-flight writes may still retry once the chaos stops.
const WRITE_GRACE: Duration = Duration::from_secs(30);
/// The key sealing webhook secrets: the base64 of 32 bytes.
const SECRETS_KEY: &str = "Y2hhb3Mtc2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2Q=";
/// Reads of the feed and the mirror at the end that may race a late change.
const FEED_READS: usize = 3;

/// The flags' defaults, also [`ChaosArgs::default`]'s.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_DURATION_SECS: u64 = 100;
const DEFAULT_MIN_KILLS: u32 = 5;
const DEFAULT_CONVERGE_SECS: u64 = 60;
const DEFAULT_WRITERS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// sqlite, postgres, or both (one after the other).
    #[arg(long, value_enum, default_value = "both")]
    pub backend: BackendChoice,
    /// The Postgres server for the postgres backend; each run works in a
    /// schema of its own there (dropped when the run passes).
    #[arg(
        long,
        env = "CALSYNC_TEST_DATABASE_URL",
        default_value = DEFAULT_POSTGRES_URL,
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// How long writes, faults and kills go on, per backend.
    #[arg(long, default_value_t = DEFAULT_DURATION_SECS)]
    pub duration_secs: u64,
    /// SIGKILLs of the server per backend, at least (the chaos lasts longer
    /// if needed); 0 runs without any.
    #[arg(long, default_value_t = DEFAULT_MIN_KILLS)]
    pub min_kills: u32,
    /// Seed of every random choice; random when absent. Printed at the start and on failure.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The longest wait for the mirror to converge once the chaos stops.
    #[arg(long, default_value_t = DEFAULT_CONVERGE_SECS)]
    pub converge_secs: u64,
    /// Concurrent API clients (each writes only its own events).
    #[arg(long, default_value_t = DEFAULT_WRITERS)]
    pub writers: usize,
    /// Keep the run directory (logs, SQLite file) and schema even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// The server and the emulator run as `calsync serve` and `calsync emulator`.
    #[command(flatten)]
    pub server_bin: ServerBin,
}

/// The command line's defaults, except that no environment variable is read.
impl Default for ChaosArgs {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Both,
            postgres_url: DEFAULT_POSTGRES_URL.to_owned(),
            duration_secs: DEFAULT_DURATION_SECS,
            min_kills: DEFAULT_MIN_KILLS,
            seed: None,
            converge_secs: DEFAULT_CONVERGE_SECS,
            writers: DEFAULT_WRITERS,
            keep: false,
            server_bin: ServerBin::default(),
        }
    }
}

impl ChaosArgs {
    /// Runs the battery on each backend, printing its report; fails when
    /// any backend's run did.
    pub async fn run(self) -> Result<(), LabError> {
        let program = self.server_bin.resolve()?;
        let seed = self
            .seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        let backends: &[Backend] = match self.backend {
            BackendChoice::Sqlite => &[Backend::Sqlite],
            BackendChoice::Postgres => &[Backend::Postgres],
            BackendChoice::Both => &[Backend::Sqlite, Backend::Postgres],
        };
        println!(
            "chaos: seed={seed} duration_secs={} min_kills={} writers={} backends={:?}",
            self.duration_secs,
            self.min_kills,
            self.writers,
            backends.iter().map(|b| b.name()).collect::<Vec<_>>()
        );
        let mut failed = Vec::new();
        for backend in backends {
            match self.run_backend(*backend, seed, &program).await {
                Ok(true) => {}
                Ok(false) => failed.push(backend.name().to_owned()),
                Err(error) => {
                    println!("chaos[{}]: ERROR {error}", backend.name());
                    failed.push(format!("{} ({error})", backend.name()));
                }
            }
        }
        if failed.is_empty() {
            println!("chaos: PASS seed={seed}");
            return Ok(());
        }
        Err(format!(
            "chaos battery FAILED for {} with seed {seed}; replay with: calsync-lab chaos --seed {seed} --duration-secs {} --min-kills {} --backend <backend>",
            failed.join(", "),
            self.duration_secs,
            self.min_kills
        )
        .into())
    }

    async fn run_backend(
        &self,
        backend: Backend,
        seed: u64,
        program: &Path,
    ) -> Result<bool, LabError> {
        let dir = std::env::temp_dir().join(format!(
            "calsync-chaos-{}-{}",
            backend.name(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(pg::fresh_schema(&self.postgres_url).await?),
        };
        let database_url = match &schema {
            Some(schema) => schema.url.clone(),
            None => format!("sqlite://{}", dir.join("chaos.db").display()),
        };
        // One random stream per backend: a replay of one backend alone makes the same choices.
        let rng = Rng::new(seed).fork(backend as u64 + 1);
        let outcome = self.drive(backend, rng, &dir, &database_url, program).await;
        let passed = matches!(outcome, Ok(true));
        if passed && !self.keep {
            let _ = std::fs::remove_dir_all(&dir);
            if let Some(schema) = &schema
                && let Err(error) = pg::drop_schema(schema).await
            {
                println!(
                    "chaos[{}]: could not drop the run's schema: {error}",
                    backend.name()
                );
            }
        } else {
            println!(
                "chaos[{}]: logs and data kept in {}{}",
                backend.name(),
                dir.display(),
                schema
                    .as_ref()
                    .and_then(|s| s.name())
                    .map(|name| format!(" (Postgres schema {name})"))
                    .unwrap_or_default()
            );
        }
        if !passed {
            println!("chaos[{}]: FAIL seed={seed}", backend.name());
        }
        outcome
    }

    async fn drive(
        &self,
        backend: Backend,
        mut rng: Rng,
        dir: &Path,
        database_url: &str,
        program: &Path,
    ) -> Result<bool, LabError> {
        let tag = format!("chaos[{}]", backend.name());
        let http = Http::new();
        let emulator_port = procs::free_port()?;
        let server_port = procs::free_port()?;
        let emulator_bind = format!("127.0.0.1:{emulator_port}");
        let mut emulator = Proc::new(
            "emulator",
            program,
            &["emulator", "--bind", &emulator_bind],
            Vec::new(),
            dir.join("emulator.log"),
        );
        let run_id = format!("{:08x}", rng.next_u64() as u32);
        let shared = Arc::new(Shared::new(
            http.clone(),
            format!("http://127.0.0.1:{server_port}"),
            format!("http://{emulator_bind}"),
            run_id,
        ));
        emulator.spawn(shared.secs())?;
        wait_answer(
            &http,
            &format!("{}/emulator/stats", shared.emulator),
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| format!("the emulator did not start: {e}"))?;
        let seeded = shared
            .admin(
                "POST",
                "/calendars/primary/seed",
                Some(&json!({ "count": SEEDED_EVENTS })),
            )
            .await?;
        if seeded.status != 200 {
            return Err(format!("seeding the emulator: {}", seeded.brief()).into());
        }
        // Google may answer short or empty pages while more remain: the
        // server's syncs meet them all run long (seeded, so replayable).
        let ragged = shared
            .admin(
                "PUT",
                "/pages",
                Some(&json!({ "raggedSeed": rng.next_u64() % 1_000_000 })),
            )
            .await?;
        if ragged.status >= 300 {
            return Err(format!("turning on ragged pages: {}", ragged.brief()).into());
        }
        let truth = shared
            .admin("GET", "/calendars/primary/events", None)
            .await?;
        let seeded_ids = actors::seeded_ids(&truth.body);

        let mut server = Proc::new(
            "server",
            program,
            &["serve"],
            server_env(database_url, server_port, emulator_port),
            dir.join("server.log"),
        );
        server.spawn(shared.secs())?;
        let ready = format!("{}/health/ready", shared.server);
        actors::wait_ready(&http, &mut server, &ready, Duration::from_secs(90))
            .await
            .map_err(|e| {
                format!(
                    "the server did not start: {e}; see {}",
                    server.log.display()
                )
            })?;
        // The watch channel: from here on the emulator pushes every change.
        let channel = http
            .send(
                "POST",
                &format!("{}/calendar/channels", shared.server),
                &[("authorization", shared.auth().as_str())],
                None,
            )
            .await?;
        if channel.status != 201 {
            return Err(format!("creating the watch channel: {}", channel.brief()).into());
        }
        let channel_token = WebhookSecret::new(WEBHOOK_SECRET)?.channel_token(&ChannelId::new(
            channel.body["id"].as_str().unwrap_or_default(),
        )?);
        initial_sync(&shared, &seeded_ids).await?;
        actors::grants::connect_all(&shared)
            .await
            .map_err(|e| format!("connecting the users' accounts: {e}"))?;
        println!(
            "{tag}: emulator {} server {} database {} run_id {} ready at t={:.1}s",
            shared.emulator,
            shared.server,
            calsync_store::DatabaseUrl::parse(Some(database_url))
                .map(|u| u.redacted())
                .unwrap_or_default(),
            shared.run_id,
            shared.secs()
        );

        // The application's webhook receiver, subscribed to every change
        // from here on.
        let duration = Duration::from_secs(self.duration_secs.max(1));
        let receiver = Receiver::start(duration, rng.fork(5)).await?;
        let subscription = feed::subscribe(&shared, &receiver).await?;
        receiver.set_secret(subscription.secret.clone());
        println!(
            "{tag}: webhook subscription {} from cursor {} to {}",
            subscription.id,
            subscription.start.encode(),
            receiver.url()
        );

        // The chaos phase.
        *lock(&shared.phase_start) = Instant::now();
        receiver.begin();
        let outage = tokio::spawn(receiver::outage(
            shared.clone(),
            receiver.clone(),
            subscription.id.clone(),
        ));
        // The default calendar's writers, then one for each account's calendar.
        let calendars = (0..self.writers.max(1))
            .map(|_| None)
            .chain(shared.accounts.iter().cloned().map(Some));
        let writers: Vec<_> = calendars
            .enumerate()
            .map(|(i, calendar)| {
                tokio::spawn(actors::writer(
                    shared.clone(),
                    i,
                    calendar,
                    rng.fork(10 + i as u64),
                ))
            })
            .collect();
        let revoker = tokio::spawn(actors::grants::revoker(shared.clone(), rng.fork(6)));
        let remote = tokio::spawn(actors::remote(shared.clone(), seeded_ids, rng.fork(2)));
        let faults = tokio::spawn(actors::faults(shared.clone(), rng.fork(3)));
        let killer = tokio::spawn(actors::killer(
            shared.clone(),
            server,
            self.min_kills,
            duration,
            rng.fork(4),
        ));
        tokio::time::sleep(duration).await;
        shared.wind_down();
        let outcome = killer
            .await
            .map_err(|e| format!("the killer task failed: {e}"))?;
        let mut server = outcome.server;
        shared.stop_faults();
        let _ = faults.await;
        let _ = outage.await;
        shared.admin("DELETE", "/faults", None).await?;
        shared.stop_writing(WRITE_GRACE);
        for writer in writers {
            let _ = writer.await;
        }
        let _ = remote.await;
        let _ = revoker.await;
        for probe in outcome.probes {
            let _ = probe.await;
        }
        let chaos_secs = lock(&shared.phase_start).elapsed().as_secs_f64();
        if let Some(error) = &outcome.error {
            shared.fail(format!("chaos stopped early: {error}"));
        }

        // Quiet: no faults, no writes. The mirror must now converge by itself.
        let quiet = Instant::now();
        let limit = Duration::from_secs(self.converge_secs);
        let mut converged = None;
        let mut last: Option<(Snapshot, Diff, WriteVerdict)> = None;
        while quiet.elapsed() < limit {
            if let Some(status) = server.exited() {
                shared.fail(format!("the server exited while converging ({status})"));
                break;
            }
            match check::snapshot(&shared).await {
                Ok(snapshot) => {
                    let diff = check::compare(&snapshot);
                    let verdict = check::check_writes(&lock(&shared.model), &snapshot);
                    let done = diff.clean() && diff.pending == 0 && verdict.clean();
                    last = Some((snapshot, diff, verdict));
                    if done {
                        converged = Some(quiet.elapsed());
                        break;
                    }
                }
                Err(error) => shared.mark(format!("snapshot failed: {error}")),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if let Some((snapshot, _, _)) = &last {
            // Kept with the logs when the run fails (the directory goes when it passes).
            let _ = std::fs::write(dir.join("final-state.json"), snapshot.raw.to_string());
        }
        let grants = match server.exited() {
            Some(status) => Err(format!("the server is not running ({status})")),
            None => actors::grants::verify(&shared).await,
        };
        let feed = match server.exited() {
            Some(status) => {
                FeedFigures::failed(format!("the server is not running ({status})"), &receiver)
            }
            None => feed_figures(&shared, &receiver, &subscription).await,
        };
        receiver.stop();
        let stats = shared.admin("GET", "/stats", None).await.ok();
        // Every refresh token Google issued: none may show in a log.
        let refresh_tokens: Vec<String> =
            match shared.admin("GET", "/oauth/refresh-tokens", None).await {
                Ok(reply) if reply.status == 200 => reply.body["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["token"].as_str().map(str::to_owned))
                    .collect(),
                Ok(reply) => {
                    shared.fail(format!(
                        "listing the refresh tokens to look for in the logs: {}",
                        reply.brief()
                    ));
                    Vec::new()
                }
                Err(error) => {
                    shared.fail(format!(
                        "listing the refresh tokens to look for in the logs: {error}"
                    ));
                    Vec::new()
                }
            };
        server.kill();
        emulator.kill();
        let mut secrets = vec![
            API_TOKEN,
            WEBHOOK_SECRET,
            SECRETS_KEY,
            actors::grants::OAUTH_CLIENT_SECRET,
            channel_token.as_str(),
            subscription.secret.as_str(),
        ];
        secrets.extend(refresh_tokens.iter().map(String::as_str));
        let logs = check::scan_logs(&server.log, &[emulator.log.as_path()], &secrets);
        Ok(report(
            &tag,
            &shared,
            Figures {
                chaos_secs,
                kills: outcome.kills,
                starts: server.starts,
                converged,
                limit,
                last,
                stats: stats.map(|s| s.body),
                feed,
                grants,
                logs,
                server_log: server.log.clone(),
            },
        ))
    }
}

/// `calsync serve`'s settings for the run: the same on every restart, so
/// the channel's webhook address and token stay valid.
fn server_env(database_url: &str, port: u16, emulator_port: u16) -> Vec<(String, String)> {
    [
        ("CALSYNC_ENV", "development".to_owned()),
        ("CALSYNC_BIND", format!("127.0.0.1:{port}")),
        ("DATABASE_URL", database_url.to_owned()),
        (
            "CALSYNC_EMULATOR_URL",
            format!("http://127.0.0.1:{emulator_port}"),
        ),
        ("CALSYNC_API_TOKENS", API_TOKEN.to_owned()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        // Webhook signing secrets are sealed with a key of the run's own,
        // as in production (not the public development key).
        ("CALSYNC_SECRETS_KEY", format!("k1:{SECRETS_KEY}")),
        ("CALSYNC_DEFAULT_CALENDAR", "primary".to_owned()),
        // Users connect their own accounts through this client at the
        // emulator, which sends them back to this address.
        (
            "CALSYNC_GOOGLE_OAUTH_CLIENT_ID",
            actors::grants::OAUTH_CLIENT_ID.to_owned(),
        ),
        (
            "CALSYNC_GOOGLE_OAUTH_CLIENT_SECRET",
            actors::grants::OAUTH_CLIENT_SECRET.to_owned(),
        ),
        ("CALSYNC_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        // A killed replica's leases must lapse quickly for its restart to resume.
        ("CALSYNC_LEASE_TTL_SECS", "6".to_owned()),
        ("CALSYNC_SYNC_POLL_SECS", "1".to_owned()),
        ("CALSYNC_OUTBOX_RETRY_BASE_MS", "200".to_owned()),
        ("CALSYNC_OUTBOX_RETRY_CAP_SECS", "2".to_owned()),
        ("CALSYNC_OUTBOX_POLL_MS", "200".to_owned()),
        // Writes refused by a read-only spell probe again within the run.
        ("CALSYNC_READ_ONLY_PROBE_SECS", "1".to_owned()),
        // The sweep catches notifications lost while the server was dead.
        ("CALSYNC_SWEEP_INTERVAL_SECS", "20".to_owned()),
        ("CALSYNC_SCHEDULER_TICK_SECS", "1".to_owned()),
        // Quotas are the emulator's faults' business here, not the limiter's.
        ("CALSYNC_GOOGLE_RATE_PER_MINUTE", "1000000".to_owned()),
        (
            "CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE",
            "1000000".to_owned(),
        ),
        ("CALSYNC_WEBHOOK_RATE_PER_MINUTE", "1000000".to_owned()),
        ("CALSYNC_LOG_LEVEL", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn wait_answer(http: &Http, url: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http.send("GET", url, &[], None).await {
            Ok(reply) if reply.status == 200 => return Ok(()),
            Ok(reply) => last = reply.brief(),
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// Waits for the channel's first sync to bring every seeded event.
async fn initial_sync(shared: &Shared, seeded: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(snapshot) = check::snapshot(shared).await {
            let have = seeded
                .iter()
                .filter(|id| snapshot.mirror.iter().any(|e| &e.google_id == *id))
                .count();
            if have == seeded.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the initial sync brought {have} of {} seeded events in 60 s",
                    seeded.len()
                ));
            }
        } else if Instant::now() >= deadline {
            return Err("the mirror could not be listed for 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Once the mirror converged: waits for delivery to catch up, then reads
/// the whole feed and the mirror (again if a change came in between) and
/// judges them with what the receiver read.
async fn feed_figures(
    shared: &Shared,
    receiver: &Receiver,
    subscription: &feed::Subscription,
) -> FeedFigures {
    let catch_up = feed::catch_up(shared, receiver, subscription).await;
    let mut last_error = String::from("never read");
    for _ in 0..FEED_READS {
        let read = async {
            let before = feed::latest(shared).await?;
            let changes = feed::read_all(shared).await?;
            let snapshot = check::snapshot(shared).await?;
            let after = feed::latest(shared).await?;
            Ok::<_, String>((before == after, changes, snapshot))
        };
        match read.await {
            Ok((true, changes, snapshot)) => {
                let mirror = snapshot.raw["mirror"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let verdict =
                    check::feed::check(&changes, &mirror, &receiver.receipts(), subscription.start);
                return FeedFigures {
                    verdict: Some(verdict),
                    error: None,
                    receiver: receiver.figures(),
                    catch_up: Some(catch_up),
                };
            }
            Ok((false, _, _)) => last_error = "the feed kept changing while read".into(),
            Err(error) => last_error = error,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    FeedFigures {
        catch_up: Some(catch_up),
        ..FeedFigures::failed(last_error, receiver)
    }
}
