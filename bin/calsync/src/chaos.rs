//! `calsync chaos`: the project's chaos battery. For each backend it starts
//! a separate emulator and a `calsync serve` (this binary, as children),
//! then for a while runs together: edits made directly in "Google", API
//! writes, injected Google faults of every kind, and SIGKILLs of the server
//! (restarted at once on the same database). Then the faults are cleared,
//! writing stops, and the mirror must converge to Google's truth with every
//! acknowledged write there exactly once, no 5xx, no panic and no leak in
//! the logs. Exits non-zero otherwise, printing the seed to replay with.

mod actors;
mod check;
mod rng;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use serde_json::{Value, json};

use crate::error::CommandError;
use crate::harness::{net, pg, procs};
use actors::{API_TOKEN, Shared, WEBHOOK_SECRET, lock};
use check::{Diff, Snapshot, WriteVerdict};
use net::Http;
use procs::Proc;
use rng::Rng;

/// Events "someone" has in Google before calsync watches the calendar.
const SEEDED_EVENTS: usize = 40;
/// How long in-flight writes may still retry once the chaos stops.
const WRITE_GRACE: Duration = Duration::from_secs(30);
/// Lines of each kind of finding printed (all are counted).
const SHOWN: usize = 15;

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
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// How long writes, faults and kills go on, per backend.
    #[arg(long, default_value_t = 100)]
    pub duration_secs: u64,
    /// SIGKILLs of the server per backend, at least (the chaos lasts longer
    /// if needed); 0 runs without any.
    #[arg(long, default_value_t = 5)]
    pub min_kills: u32,
    /// Seed of every random choice; random when absent. Printed at the start and on failure.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The longest wait for the mirror to converge once the chaos stops.
    #[arg(long, default_value_t = 60)]
    pub converge_secs: u64,
    /// Concurrent API clients (each writes only its own events).
    #[arg(long, default_value_t = 3)]
    pub writers: usize,
    /// Keep the run directory (logs, SQLite file) and schema even when the run passes.
    #[arg(long)]
    pub keep: bool,
}

impl ChaosArgs {
    pub async fn run(self) -> Result<(), CommandError> {
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
            match self.run_backend(*backend, seed).await {
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
            "chaos battery FAILED for {} with seed {seed}; replay with: calsync chaos --seed {seed} --duration-secs {} --min-kills {} --backend <backend>",
            failed.join(", "),
            self.duration_secs,
            self.min_kills
        )
        .into())
    }

    async fn run_backend(&self, backend: Backend, seed: u64) -> Result<bool, CommandError> {
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
        let outcome = self.drive(backend, rng, &dir, &database_url).await;
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
    ) -> Result<bool, CommandError> {
        let tag = format!("chaos[{}]", backend.name());
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let http = Http::new();
        let emulator_port = procs::free_port()?;
        let server_port = procs::free_port()?;
        let emulator_bind = format!("127.0.0.1:{emulator_port}");
        let mut emulator = Proc::new(
            "emulator",
            &exe,
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
            &exe,
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

        // The chaos phase.
        let duration = Duration::from_secs(self.duration_secs.max(1));
        *lock(&shared.phase_start) = Instant::now();
        let writers: Vec<_> = (0..self.writers.max(1))
            .map(|i| tokio::spawn(actors::writer(shared.clone(), i, rng.fork(10 + i as u64))))
            .collect();
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
        shared.admin("DELETE", "/faults", None).await?;
        shared.stop_writing(WRITE_GRACE);
        for writer in writers {
            let _ = writer.await;
        }
        let _ = remote.await;
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
        let stats = shared.admin("GET", "/stats", None).await.ok();
        server.kill();
        emulator.kill();
        let logs = check::scan_logs(
            &server.log,
            &[emulator.log.as_path()],
            &[API_TOKEN, WEBHOOK_SECRET, channel_token.as_str()],
        );
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
        ("CALSYNC_DEFAULT_CALENDAR", "primary".to_owned()),
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

struct Figures {
    chaos_secs: f64,
    kills: u32,
    starts: u32,
    converged: Option<Duration>,
    limit: Duration,
    last: Option<(Snapshot, Diff, WriteVerdict)>,
    stats: Option<Value>,
    logs: check::LogVerdict,
    server_log: PathBuf,
}

fn show(tag: &str, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!("{tag}: {title} ({}):", lines.len());
    for line in lines.iter().take(SHOWN) {
        println!("{tag}:   {line}");
    }
    if lines.len() > SHOWN {
        println!("{tag}:   ... and {} more", lines.len() - SHOWN);
    }
}

fn count_of(counts: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    counts.get(key).copied().unwrap_or(0)
}

/// Prints the figures and every finding; true when the run passed.
fn report(tag: &str, shared: &Shared, figures: Figures) -> bool {
    let counts = shared.counts();
    let c = |key: &str| count_of(&counts, key);
    println!(
        "{tag}: chaos {:.0} s: kills={} server starts={} exits by itself={} restart-to-ready max={:.1} s",
        figures.chaos_secs,
        figures.kills,
        figures.starts,
        c("server_exited_by_itself"),
        lock(&shared.restarts)
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
    );
    println!(
        "{tag}: acknowledged API writes: create={} (replayed for their key={}) patch={} (with If-Match={}, 412={}) delete={}; unanswered: create={} patch={} delete={}; refused: patch={} delete={}",
        c("api_create"),
        c("api_create_replayed"),
        c("api_patch"),
        c("api_patch_conditional"),
        c("api_patch_conflict"),
        c("api_delete"),
        c("api_create_unanswered"),
        c("api_patch_unanswered"),
        c("api_delete_unanswered"),
        c("api_patch_refused"),
        c("api_delete_refused"),
    );
    println!(
        "{tag}: changes in Google: insert={} patch={} delete={} on calsync's events: patch={} delete={}; emulator random-change batches={}; odd answers={}",
        c("remote_insert"),
        c("remote_patch"),
        c("remote_delete"),
        c("remote_contest_patch"),
        c("remote_contest_delete"),
        c("remote_admin_changes"),
        c("remote_unexpected"),
    );
    let plans: Vec<String> = counts
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("fault ").map(|kind| format!("{kind}={v}")))
        .collect();
    println!("{tag}: fault plans set: {}", plans.join(", "));
    let stats = figures.stats.unwrap_or(Value::Null);
    match stats.get("faultsFired").and_then(Value::as_object) {
        Some(fired) => {
            let fired: Vec<String> = fired.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("{tag}: faults fired (emulator): {}", fired.join(", "));
        }
        None => println!("{tag}: faults fired: the emulator does not report them"),
    }
    println!(
        "{tag}: emulator calls: {}; notifications delivered={} failed={}",
        stats["calls"], stats["notificationsDelivered"], stats["notificationsFailed"]
    );
    println!(
        "{tag}: server: unreachable attempts (killed)={} 5xx={}",
        c("server_unreachable"),
        c("server_5xx")
    );
    let gaps = lock(&shared.gaps).clone();
    println!(
        "{tag}: sync gap after a restart (remote change to mirror): max={:.1} s over {} probes; unseen={} not made={}",
        gaps.iter().max().copied().unwrap_or_default().as_secs_f64(),
        gaps.len(),
        c("probe_unseen"),
        c("probe_not_made"),
    );

    let mut passed = true;
    let mut divergent: Vec<String> = Vec::new();
    match &figures.last {
        None => {
            println!("{tag}: FAIL: the mirror could not be read after the chaos");
            passed = false;
        }
        Some((snapshot, diff, verdict)) => {
            match figures.converged {
                Some(after) => println!(
                    "{tag}: converged {:.1} s after the chaos stopped",
                    after.as_secs_f64()
                ),
                None => {
                    println!(
                        "{tag}: FAIL: not converged {} s after the chaos stopped",
                        figures.limit.as_secs()
                    );
                    passed = false;
                }
            }
            println!(
                "{tag}: compared {} events (mirror {}, Google {}): missing={} extra={} mismatched={} duplicated={} pending pushes={} failed pushes={}",
                diff.compared,
                snapshot.mirror.len(),
                snapshot.truth.len(),
                diff.missing.len(),
                diff.extra.len(),
                diff.mismatched.len(),
                diff.duplicated.len(),
                diff.pending,
                diff.push_failed.len()
            );
            println!(
                "{tag}: acknowledged creates checked={}: lost or stale={} duplicated={} refused={}",
                verdict.checked,
                verdict.lost.len(),
                verdict.duplicated.len(),
                verdict.refused.len()
            );
            show(tag, "missing from the mirror", &diff.missing);
            show(tag, "in the mirror, not at Google", &diff.extra);
            show(tag, "mismatched", &diff.mismatched);
            show(tag, "duplicated in the mirror", &diff.duplicated);
            let dead_lettered: Vec<String> = {
                let model = lock(&shared.model);
                diff.push_failed
                    .iter()
                    .map(|id| {
                        let who = match model.api.get(id) {
                            Some(event) if event.contested => "also changed in Google",
                            Some(_) => "written by calsync only",
                            None => "not created through the API",
                        };
                        let history = model
                            .history
                            .get(id)
                            .map(|h| h.join(" | "))
                            .unwrap_or_default();
                        format!("{id} ({who}): {history}")
                    })
                    .collect()
            };
            show(tag, "pushes dead-lettered", &dead_lettered);
            show(tag, "acknowledged writes lost or stale", &verdict.lost);
            show(
                tag,
                "duplicated at Google or in the mirror",
                &verdict.duplicated,
            );
            show(
                tag,
                "API writes refused on events nobody else touched",
                &verdict.refused,
            );
            passed &= diff.clean() && verdict.clean();
            divergent.extend(diff.ids.iter().cloned());
            divergent.extend(verdict.ids.iter().cloned());
        }
    }
    let failures = lock(&shared.failures).clone();
    show(tag, "failures during the run", &failures);
    passed &= failures.is_empty();
    println!(
        "{tag}: logs: {} lines scanned ({}): panics={} leaks={}",
        figures.logs.lines,
        figures.server_log.display(),
        figures.logs.panics.len(),
        figures.logs.leaks.len()
    );
    show(tag, "panics", &figures.logs.panics);
    show(tag, "leaks", &figures.logs.leaks);
    passed &= figures.logs.panics.is_empty() && figures.logs.leaks.is_empty();

    if !passed {
        divergent.sort();
        divergent.dedup();
        let model = lock(&shared.model);
        for id in divergent.iter().take(SHOWN) {
            println!("{tag}: history of {id}:");
            for line in model.history.get(id).into_iter().flatten() {
                println!("{tag}:   {line}");
            }
        }
        drop(model);
        let timeline = lock(&shared.timeline).clone();
        println!("{tag}: timeline (kills, faults):");
        for line in &timeline {
            println!("{tag}:   {line}");
        }
    }
    if !passed {
        println!(
            "{tag}: the final mirror and Google are in final-state.json beside {}",
            figures.server_log.display()
        );
    }
    println!("{tag}: {}", if passed { "PASS" } else { "FAIL" });
    passed
}
