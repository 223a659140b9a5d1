//! `calsync-lab bench fleet`: many calendars under many principals against an
//! emulator that checks service-account JWTs and enforces Google's default
//! quotas (600/min per principal, 10,000/min per project), with random
//! remote changes; what a company's deployment meets.
//!
//! One replica runs in this process. With `--replicas N` (Postgres), N
//! `calsync serve` processes (the `calsync` binary, [`ServerBin`]) share
//! one database behind a round-robin
//! balancer, and one of them is SIGKILLed halfway through the changes:
//! every calendar must still converge, and no job tick may run twice.

mod balancer;
mod replicas;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calsync::server::Running;
use calsync_domain::calendar::Subject;
use calsync_domain::grant::GrantId;
use calsync_domain::ids::{CalendarId, EventId};
use calsync_domain::ports::Store;
use calsync_domain::services::ActingAs;
use calsync_emulator::{Change, Emulator, EmulatorAuth, EmulatorConfig, RunningEmulator};
use rand::Rng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use super::fixtures::{percentile, rss_mb, start_server};
use crate::error::LabError;
use crate::harness::net::Http;
use crate::harness::server_bin::ServerBin;

/// One fleet run; [`FleetBench::run`] prints its `fleet: key=value ...`
/// line and answers the same figures.
#[derive(Debug, Clone)]
pub struct FleetBench {
    pub calendars: usize,
    pub principals: usize,
    pub changes_per_min: u32,
    pub duration: Duration,
    pub postgres_url: Option<String>,
    /// Server processes on the Postgres database; 1 runs the server in
    /// this process instead.
    pub replicas: usize,
    /// The replicas' executable (used when `replicas > 1`).
    pub server_bin: ServerBin,
    /// Each calendar is its own user's, managed through the grant that
    /// user connects (the OAuth flow at the emulator), instead of through
    /// the principals' domain-wide delegation.
    pub grants: bool,
}

/// What a run measured, as its `fleet:` line says it.
#[derive(Debug, Clone)]
pub struct FleetReport {
    /// Remote changes made during the run.
    pub changes: u64,
    pub totals: Totals,
    /// The job ticks in the replicas' logs (`--replicas` above 1 only).
    pub ticks: Option<TickCounts>,
    /// With grants: the users' token refreshes Google saw, from the first
    /// connection to the end of the run.
    pub token_refreshes: Option<u64>,
}

/// Job ticks the replicas' logs show started.
#[derive(Debug, Clone, Copy)]
pub struct TickCounts {
    pub started: usize,
    /// Ticks started by more than one replica.
    pub duplicates: usize,
    /// Renewal ticks no replica started.
    pub missed: usize,
    /// Ticks scheduled after the kill: the survivors' alone.
    pub after_kill: usize,
}

/// The emulator and the service-account key the replicas sign with.
struct Google {
    emulator: RunningEmulator,
    key_file: std::path::PathBuf,
}

impl FleetBench {
    /// Fails when the fleet did not converge within Google's quotas (and,
    /// with replicas, when a job tick ran twice or was skipped).
    pub async fn run(self) -> Result<FleetReport, LabError> {
        if self.grants && self.replicas > 1 {
            return Err("--grants runs one replica, in this process".into());
        }
        if self.replicas > 1 && self.postgres_url.is_none() {
            return Err("--replicas needs --postgres-url: replicas share one Postgres".into());
        }
        // Found before anything starts: a missing binary fails at once.
        let server_bin = if self.replicas > 1 {
            Some(self.server_bin.resolve()?)
        } else {
            None
        };
        let dir =
            std::env::temp_dir().join(format!("calsync-fleet-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let result = match start_google(&dir).await {
            Ok(google) => {
                let result = match &server_bin {
                    Some(server_bin) => replicas::measure(&self, &google, &dir, server_bin).await,
                    None => self.measure_in_process(&google, &dir).await,
                };
                google.emulator.stop().await;
                result
            }
            Err(error) => Err(error),
        };
        // A failed run keeps the replicas' logs to look at.
        if result.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn measure_in_process(
        &self,
        google: &Google,
        dir: &std::path::Path,
    ) -> Result<FleetReport, LabError> {
        let database = match &self.postgres_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.join("fleet.db").display()),
        };
        let key_path = google.key_file.display().to_string();
        // Real service-account credentials for an emulator on this machine
        // (development rules: a loopback http webhook is accepted).
        let api = google.emulator.base_url.clone();
        let flags = [
            "--env",
            "development",
            "--bind",
            "127.0.0.1:0",
            "--database-url",
            &database,
            "--google-service-account-json-file",
            &key_path,
            "--emulator-url",
            &api,
            "--webhook-rate-per-minute",
            "1000000",
            // New calendars are picked up within a second (the API's add
            // wakes the worker; this in-process call does not).
            "--sync-poll-secs",
            "1",
        ];
        let running = start_server(&flags).await?;
        let result = self
            .drive_in_process(&running, &google.emulator.emulator)
            .await;
        running.stop().await;
        result
    }

    async fn drive_in_process(
        &self,
        running: &Running,
        emulator: &Emulator,
    ) -> Result<FleetReport, LabError> {
        let calendars = self.calendar_ids()?;
        let refreshes_before = emulator.calls("token.refresh_token");
        let connecting = Instant::now();
        let connected = if self.grants {
            Some(connect_accounts(running, emulator, &calendars).await?)
        } else {
            None
        };
        let connect_time = connecting.elapsed();
        let started = Instant::now();
        for (i, calendar) in calendars.iter().enumerate() {
            let acting = match &connected {
                Some(grants) => ActingAs::Grant(grants[i].clone()),
                None => ActingAs::Subject(self.subject_of(i)?),
            };
            running.calendars.add(calendar, acting).await?;
        }
        let run = Run {
            store: running.store.clone(),
            emulator,
            calendars: &calendars,
            metrics_at: Some(running.address),
        };
        let first_full_sync = run.first_full_sync(started).await?;
        let refreshes_synced = emulator.calls("token.refresh_token");
        let changes = run.changes(self, || {}).await?;
        let totals = run.totals().await?;
        let grants = match &connected {
            // Refreshes while the first full sync ran (each grant's first
            // access token), then while the changes ran: with Google's
            // hour-long tokens, none.
            Some(grants) => format!(
                " grants={} connect_s={:.1} token_refreshes_first_sync={} token_refreshes_during_changes={} refreshes_per_grant={:.2}",
                grants.len(),
                connect_time.as_secs_f64(),
                refreshes_synced.saturating_sub(refreshes_before),
                emulator
                    .calls("token.refresh_token")
                    .saturating_sub(refreshes_synced),
                emulator
                    .calls("token.refresh_token")
                    .saturating_sub(refreshes_before) as f64
                    / grants.len().max(1) as f64,
            ),
            None => String::new(),
        };
        println!(
            "fleet: calendars={} principals={} replicas=1 changes={} first_full_sync_s={:.1} {changes} {totals}{grants} rss_mb={:.0}",
            self.calendars,
            if connected.is_some() {
                self.calendars
            } else {
                self.principals
            },
            changes.made,
            first_full_sync.as_secs_f64(),
            // The emulator shares this process: an upper bound.
            rss_mb("self"),
        );
        if totals.unconverged > 0 || totals.quota_errors > 0 {
            return Err(
                format!("the fleet did not converge within Google's quotas: {totals}").into(),
            );
        }
        Ok(FleetReport {
            changes: changes.made,
            totals,
            ticks: None,
            token_refreshes: connected.as_ref().map(|_| {
                emulator
                    .calls("token.refresh_token")
                    .saturating_sub(refreshes_before)
            }),
        })
    }

    fn calendar_ids(&self) -> Result<Vec<CalendarId>, LabError> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        Ok((0..self.calendars)
            .map(|i| CalendarId::new(format!("c{i}-{}@fleet.example.com", &run[..8])))
            .collect::<Result<_, _>>()?)
    }

    /// Calendar `i`'s owner: the calendars are dealt round the principals.
    fn subject_of(&self, i: usize) -> Result<Subject, LabError> {
        Ok(Subject::new(format!(
            "p{}@fleet.example.com",
            i % self.principals.max(1)
        ))?)
    }
}

/// Each calendar's user connects their account, as a browser would: the
/// server starts the authorization, the emulator's OAuth server approves
/// it for the `login_hint` account and redirects with a code, and the
/// server exchanges it (PKCE) for the grant. Answers the grants, in the
/// calendars' order; each user's own calendar is the one listed.
async fn connect_accounts(
    running: &Running,
    emulator: &Emulator,
    calendars: &[CalendarId],
) -> Result<Vec<GrantId>, LabError> {
    let grants = running
        .grants
        .as_ref()
        .ok_or("the server has no grants (no OAuth client)")?;
    let http = Http::new();
    let mut connected = Vec::with_capacity(calendars.len());
    for calendar in calendars {
        // The calendar is its user's primary one: Google names it by the
        // account's email.
        let account = calendar.as_str();
        emulator.create_user_calendar(account, account, "fleet user");
        let started = grants.start(Some(account.to_owned()), None).await?;
        let reply = http
            .send("GET", &started.authorization_url, &[], None)
            .await?;
        let location = match (reply.status, reply.location) {
            (302, Some(location)) => location,
            (status, _) => {
                return Err(format!(
                    "the consent for {account} answered {status}: {}",
                    reply.text
                )
                .into());
            }
        };
        let code = query_param(&location, "code")
            .ok_or_else(|| format!("no code in Google's redirect: {location}"))?;
        let state = query_param(&location, "state")
            .ok_or_else(|| format!("no state in Google's redirect: {location}"))?;
        let grant = grants.complete(&state, Some(&code), None).await?.grant;
        connected.push(grant.id);
    }
    Ok(connected)
}

/// `name`'s value in `url`'s query, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decoded(value))
    })
}

fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An emulator with real JWT checks and Google's quotas, and a key file
/// for it.
async fn start_google(dir: &std::path::Path) -> Result<Google, LabError> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| format!("key: {e}"))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("key: {e}"))?
        .to_string();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("key: {e}"))?;
    let emulator = Emulator::new(
        EmulatorConfig {
            auth: EmulatorAuth::ServiceAccount {
                public_key_pem: public_pem,
            },
            ..EmulatorConfig::default()
        }
        .with_google_quotas(),
    )?
    .start("127.0.0.1:0")
    .await
    .map_err(|e| format!("emulator: {e}"))?;
    let key_file = dir.join("service-account.json");
    let key_json = serde_json::json!({
        "type": "service_account",
        "project_id": "calsync-fleet",
        "private_key_id": "fleet",
        "private_key": private_pem,
        "client_email": "calsync@calsync-fleet.iam.gserviceaccount.com",
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": emulator.token_url(),
    });
    std::fs::write(&key_file, key_json.to_string()).map_err(|e| e.to_string())?;
    Ok(Google { emulator, key_file })
}

/// What one run measures on, whichever way the replicas are deployed.
struct Run<'a> {
    store: Arc<dyn Store>,
    emulator: &'a Emulator,
    calendars: &'a [CalendarId],
    /// The server whose `/metrics` tell the sweep's list calls apart (the
    /// in-process one; `None` with replicas, one of which is killed).
    metrics_at: Option<std::net::SocketAddr>,
}

/// The remote changes and how they reached the mirror.
struct Changes {
    made: u64,
    p50: Duration,
    p99: Duration,
    list_calls_per_change: f64,
    /// `events.list` calls of syncs only the safety sweep asked for.
    sweep_list_calls: Option<u64>,
}

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "change_p50_ms={:.0} change_p99_ms={:.0} list_calls_per_change={:.2}",
            ms(self.p50),
            ms(self.p99),
            self.list_calls_per_change
        )?;
        match self.sweep_list_calls {
            Some(sweep) => {
                let all = self.list_calls_per_change * self.made.max(1) as f64;
                let of_changes = (all - sweep as f64).max(0.0) / self.made.max(1) as f64;
                write!(
                    f,
                    " sweep_list_calls={sweep} change_list_calls_per_change={of_changes:.2}"
                )
            }
            None => write!(f, " sweep_list_calls=n/a"),
        }
    }
}

/// What went wrong anywhere, from the emulator's and the store's view.
#[derive(Debug, Clone, Copy)]
pub struct Totals {
    /// Calls the emulator refused for Google's quotas.
    pub quota_errors: u64,
    /// Dead-lettered outbox rows and events whose push failed.
    pub failed_writes: u64,
    /// Calendars with sync errors or needing a reconnect.
    pub failed_syncs: usize,
    /// Live events in Google the mirror does not hold at Google's etag.
    pub unconverged: usize,
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "quota_errors={} failed_writes={} failed_syncs={} unconverged={}",
            self.quota_errors, self.failed_writes, self.failed_syncs, self.unconverged
        )
    }
}

impl Run<'_> {
    /// Waits until every calendar has completed its first full sync.
    async fn first_full_sync(&self, started: Instant) -> Result<Duration, LabError> {
        loop {
            let states = self.store.list_sync_states().await?;
            let done = states
                .iter()
                .filter(|s| self.calendars.contains(&s.calendar_id) && s.sync_token.is_some())
                .count();
            if done == self.calendars.len() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(1800) {
                return Err(format!("only {done} calendars synced within 30 min").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Remote changes at the asked rate for the asked time; each is timed
    /// until the mirror holds its etag. `halfway` runs once, halfway.
    async fn changes(
        &self,
        bench: &FleetBench,
        halfway: impl FnOnce(),
    ) -> Result<Changes, LabError> {
        let lists_before = self.emulator.calls("list");
        let sweep_before = self.sweep_list_calls().await;
        let every = Duration::from_secs_f64(60.0 / f64::from(bench.changes_per_min.max(1)));
        let begun = Instant::now();
        let deadline = begun + bench.duration;
        let mut halfway = Some(halfway);
        let mut pending: HashMap<(CalendarId, EventId), (String, Instant)> = HashMap::new();
        let mut latencies = Vec::new();
        let mut made = 0u64;
        let mut next_change = Instant::now();
        while Instant::now() < deadline || !pending.is_empty() {
            if begun.elapsed() >= bench.duration / 2
                && let Some(halfway) = halfway.take()
            {
                halfway();
            }
            if Instant::now() >= next_change && Instant::now() < deadline {
                let calendar = &self.calendars[rand::rng().random_range(0..self.calendars.len())];
                let start =
                    chrono::Utc::now() + chrono::Duration::hours(rand::rng().random_range(1..500));
                let serde_json::Value::Object(body) = serde_json::json!({
                    "summary": format!("fleet change {made}"),
                    "start": {"dateTime": start.to_rfc3339()},
                    "end": {"dateTime": (start + chrono::Duration::minutes(30)).to_rfc3339()},
                }) else {
                    continue;
                };
                let created = self
                    .emulator
                    .change(calendar.as_str(), Change::Insert(body))?;
                let id = EventId::new(created["id"].as_str().unwrap_or_default())?;
                let etag = created["etag"].as_str().unwrap_or_default().to_owned();
                pending.insert((calendar.clone(), id), (etag, Instant::now()));
                made += 1;
                next_change += every;
            }
            let mut arrived = Vec::new();
            for ((calendar, id), (etag, at)) in &pending {
                let mirrored = self.store.find_by_google_id(calendar, id).await?;
                if mirrored.is_some_and(|e| e.etag.as_ref().is_some_and(|t| t.as_str() == etag)) {
                    latencies.push(at.elapsed());
                    arrived.push((calendar.clone(), id.clone()));
                } else if at.elapsed() > Duration::from_secs(120) {
                    return Err(format!("a change to {calendar} never reached the mirror").into());
                }
            }
            for key in arrived {
                pending.remove(&key);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort();
        let lists = self.emulator.calls("list").saturating_sub(lists_before);
        let sweep_after = self.sweep_list_calls().await;
        Ok(Changes {
            made,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            list_calls_per_change: lists as f64 / made.max(1) as f64,
            sweep_list_calls: sweep_before
                .zip(sweep_after)
                .map(|(before, after)| after.saturating_sub(before)),
        })
    }

    /// `calsync_sweep_list_calls_total` from the server's `/metrics`.
    async fn sweep_list_calls(&self) -> Option<u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_at?)
            .await
            .ok()?;
        // HTTP/1.0: the server closes the connection after its answer.
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        // No line until the first count (the family has no label set yet).
        Some(
            answer
                .lines()
                .find_map(|line| line.strip_prefix("calsync_sweep_list_calls_total "))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0),
        )
    }

    async fn totals(&self) -> Result<Totals, LabError> {
        let stats = self
            .store
            .health_stats(chrono::Utc::now(), chrono::Utc::now())
            .await?;
        let failed_syncs = stats
            .calendars
            .iter()
            .filter(|c| c.error_count > 0 || c.reconnect_required)
            .count();
        let mut unconverged = 0;
        for calendar in self.calendars {
            for event in self.emulator.events(calendar.as_str()) {
                if event["status"] == "cancelled" {
                    continue;
                }
                let id = EventId::new(event["id"].as_str().unwrap_or_default())?;
                let mirrored = self.store.find_by_google_id(calendar, &id).await?;
                let etag = event["etag"].as_str().unwrap_or_default();
                let held =
                    mirrored.is_some_and(|e| e.etag.as_ref().is_some_and(|t| t.as_str() == etag));
                if !held {
                    unconverged += 1;
                }
            }
        }
        Ok(Totals {
            quota_errors: self.emulator.quota_refusals(),
            failed_writes: stats.outbox_dead_letters + stats.events_push_failed,
            failed_syncs,
            unconverged,
        })
    }
}
