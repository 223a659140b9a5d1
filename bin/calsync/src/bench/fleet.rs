//! `calsync bench fleet`: many calendars under many principals against an
//! emulator that checks service-account JWTs and enforces Google's default
//! quotas (600/min per principal, 10,000/min per project), with random
//! remote changes; what a company's deployment meets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use calsync::server::Running;
use calsync_domain::calendar::Subject;
use calsync_domain::ids::{CalendarId, EventId};
use calsync_emulator::{Change, Emulator, EmulatorAuth, EmulatorConfig};
use rand::Rng;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use super::fixtures::percentile;
use crate::error::CommandError;

pub(super) struct FleetBench {
    pub calendars: usize,
    pub principals: usize,
    pub changes_per_min: u32,
    pub duration: Duration,
    pub postgres_url: Option<String>,
}

/// The server's resident memory, from `/proc` (Linux); the emulator runs
/// in the same process, so this is an upper bound.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl FleetBench {
    pub async fn run(self) -> Result<(), CommandError> {
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
        let dir =
            std::env::temp_dir().join(format!("calsync-fleet-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
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
        let result = self.measure(&emulator, &dir, &key_file).await;
        emulator.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn measure(
        &self,
        emulator: &calsync_emulator::RunningEmulator,
        dir: &std::path::Path,
        key_file: &std::path::Path,
    ) -> Result<(), CommandError> {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            serve: calsync::settings::ServeArgs,
        }
        let database = match &self.postgres_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.join("fleet.db").display()),
        };
        let key_path = key_file.display().to_string();
        // Real service-account credentials for an emulator on this machine
        // (development rules: a loopback http webhook is accepted).
        let api = emulator.base_url.clone();
        let argv = [
            "calsync",
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
        let settings = Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .serve
            .settings()?;
        let running =
            calsync::server::start(settings, slog::Logger::root(slog::Discard, slog::o!())).await?;
        let result = self.drive(&running, &emulator.emulator).await;
        running.stop().await;
        result
    }

    async fn drive(&self, running: &Running, emulator: &Emulator) -> Result<(), CommandError> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let calendars: Vec<CalendarId> = (0..self.calendars)
            .map(|i| CalendarId::new(format!("c{i}-{}@fleet.example.com", &run[..8])))
            .collect::<Result<_, _>>()?;
        let started = Instant::now();
        for (i, calendar) in calendars.iter().enumerate() {
            let subject =
                Subject::new(format!("p{}@fleet.example.com", i % self.principals.max(1)))?;
            running.calendars.add(calendar, Some(subject)).await?;
        }
        // Every calendar has completed its first full sync.
        loop {
            let states = running.store.list_sync_states().await?;
            let done = states
                .iter()
                .filter(|s| calendars.contains(&s.calendar_id) && s.sync_token.is_some())
                .count();
            if done == calendars.len() {
                break;
            }
            if started.elapsed() > Duration::from_secs(1800) {
                return Err(format!("only {done} calendars synced within 30 min").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let first_full_sync = started.elapsed();
        let lists_before = emulator.calls("list");

        // Remote changes at the asked rate; each is timed until the mirror
        // holds its etag.
        let every = Duration::from_secs_f64(60.0 / f64::from(self.changes_per_min.max(1)));
        let deadline = Instant::now() + self.duration;
        let mut pending: HashMap<(CalendarId, EventId), (String, Instant)> = HashMap::new();
        let mut latencies = Vec::new();
        let mut made = 0u64;
        let mut next_change = Instant::now();
        while Instant::now() < deadline || !pending.is_empty() {
            if Instant::now() >= next_change && Instant::now() < deadline {
                let calendar = &calendars[rand::rng().random_range(0..calendars.len())];
                let start =
                    chrono::Utc::now() + chrono::Duration::hours(rand::rng().random_range(1..500));
                let serde_json::Value::Object(body) = serde_json::json!({
                    "summary": format!("fleet change {made}"),
                    "start": {"dateTime": start.to_rfc3339()},
                    "end": {"dateTime": (start + chrono::Duration::minutes(30)).to_rfc3339()},
                }) else {
                    continue;
                };
                let created = emulator.change(calendar.as_str(), Change::Insert(body))?;
                let id = EventId::new(created["id"].as_str().unwrap_or_default())?;
                let etag = created["etag"].as_str().unwrap_or_default().to_owned();
                pending.insert((calendar.clone(), id), (etag, Instant::now()));
                made += 1;
                next_change += every;
            }
            let mut arrived = Vec::new();
            for ((calendar, id), (etag, at)) in &pending {
                let mirrored = running.store.find_by_google_id(calendar, id).await?;
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
        let lists = emulator.calls("list").saturating_sub(lists_before);
        let stats = running
            .store
            .health_stats(chrono::Utc::now(), chrono::Utc::now())
            .await?;
        let failed_syncs = stats
            .calendars
            .iter()
            .filter(|c| c.error_count > 0 || c.reconnect_required)
            .count();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "fleet: calendars={} principals={} changes={made} first_full_sync_s={:.1} change_p50_ms={:.0} change_p99_ms={:.0} list_calls_per_change={:.2} quota_errors={} failed_writes={} failed_syncs={failed_syncs} rss_mb={:.0}",
            self.calendars,
            self.principals,
            first_full_sync.as_secs_f64(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            lists as f64 / made.max(1) as f64,
            emulator.quota_refusals(),
            stats.outbox_dead_letters + stats.events_push_failed,
            rss_mb(),
        );
        Ok(())
    }
}
