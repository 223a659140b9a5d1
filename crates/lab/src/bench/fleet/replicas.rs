//! `--replicas N`: N `calsync serve` processes (`--server-bin`) on one fresh
//! Postgres schema behind a round-robin balancer, sharing one emulator.
//! Halfway through the remote changes the first replica is SIGKILLed.
//! Afterwards every live event in Google must be mirrored at its etag,
//! and the replicas' logs must show each job tick started once: a claim in
//! `job_ticks` is what makes exactly one replica run it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::balancer::Balancer;
use super::{FleetBench, FleetReport, Google, Run, TickCounts};
use crate::bench::fixtures::rss_mb;
use crate::error::LabError;
use crate::harness::net::Http;
use crate::harness::{pg, procs};

const API_TOKEN: &str = "fleet-api-token-0123456789";
const WEBHOOK_SECRET: &str = "fleet-webhook-secret-0123456789";
/// Short enough that a run of a minute or two sees many ticks of it.
const RENEWAL_EVERY_SECS: i64 = 10;
/// Calendars added at once through the API.
const ADD_CONCURRENCY: usize = 8;

pub(super) async fn measure(
    bench: &FleetBench,
    google: &Google,
    dir: &Path,
    server_bin: &Path,
) -> Result<FleetReport, LabError> {
    let base = bench.postgres_url.as_deref().unwrap_or_default();
    let schema = pg::fresh_schema(base).await?;
    let result = run(bench, google, dir, &schema.url, server_bin).await;
    if let Err(error) = pg::drop_schema(&schema).await {
        eprintln!("fleet: cannot drop the scratch schema: {error}");
    }
    result
}

async fn run(
    bench: &FleetBench,
    google: &Google,
    dir: &Path,
    database: &str,
    server_bin: &Path,
) -> Result<FleetReport, LabError> {
    // Migrated here, once, before any replica starts.
    let store = calsync_store::connect(
        &DatabaseUrl::parse(Some(database))?,
        &StoreOptions::default(),
    )
    .await?;
    let ports = (0..bench.replicas)
        .map(|_| procs::free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let balancer = Balancer::start(
        ports
            .iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
            .collect(),
    )
    .await?;
    let mut replicas: Vec<procs::Proc> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            procs::Proc::new(
                "replica",
                server_bin,
                &["serve"],
                replica_env(bench, google, database, *port, balancer.address),
                dir.join(format!("replica-{i}.log")),
            )
        })
        .collect();
    for replica in &mut replicas {
        replica.spawn(0.0)?;
    }
    let http = Http::new();
    for port in &ports {
        wait_ready(&http, *port).await?;
    }
    let gateway = format!("http://{}", balancer.address);

    let calendars = bench.calendar_ids()?;
    let started = Instant::now();
    add_calendars(bench, &http, &gateway, &calendars).await?;
    let measured = Run {
        store,
        emulator: &google.emulator.emulator,
        calendars: &calendars,
        metrics_at: None,
    };
    let first_full_sync = measured.first_full_sync(started).await?;
    let mut killed_at = None;
    let changes = {
        let (victim, killed_at) = (&mut replicas[0], &mut killed_at);
        measured
            .changes(bench, move || {
                victim.kill();
                *killed_at = Some((Utc::now(), started.elapsed()));
            })
            .await?
    };
    let totals = measured.totals().await?;
    let rss = replicas
        .iter()
        .filter_map(procs::Proc::pid)
        .map(|pid| rss_mb(&pid.to_string()))
        .fold(0.0, f64::max);
    let ended = Utc::now();
    for replica in &mut replicas {
        replica.kill();
    }
    let (killed_wall, killed_secs) = killed_at.ok_or("no replica was killed")?;
    let ticks = Ticks::read(replicas.iter().map(|r| r.log.as_path()), killed_wall)?;
    println!(
        "fleet: calendars={} principals={} replicas={} killed_at_s={:.1} changes={} first_full_sync_s={:.1} {changes} {totals} job_ticks={} duplicate_ticks={} missed_ticks={} ticks_after_kill={} rss_mb_max={rss:.0}",
        bench.calendars,
        bench.principals,
        bench.replicas,
        killed_secs.as_secs_f64(),
        changes.made,
        first_full_sync.as_secs_f64(),
        ticks.started.len(),
        ticks.duplicates(),
        ticks.missed_renewals(),
        ticks.after_kill,
    );
    let mut broken = Vec::new();
    if totals.unconverged > 0 || totals.quota_errors > 0 {
        broken.push(format!("{totals}"));
    }
    if ticks.started.is_empty() {
        broken.push("no job tick found in the replicas' logs".to_owned());
    }
    if ticks.duplicates() > 0 {
        broken.push(format!("{} ticks started twice", ticks.duplicates()));
    }
    if ticks.missed_renewals() > 0 {
        broken.push(format!("{} renewal ticks skipped", ticks.missed_renewals()));
    }
    // The survivors kept the schedule up to the end, not just until the kill.
    let recently = ended - chrono::Duration::seconds(2 * RENEWAL_EVERY_SECS);
    if ticks.after_kill == 0 || !ticks.renewed_since(recently) {
        broken.push("the survivors stopped running the schedule after the kill".to_owned());
    }
    if !broken.is_empty() {
        return Err(format!(
            "the fleet did not hold together: {} (logs in {}: kept)",
            broken.join("; "),
            dir.display()
        )
        .into());
    }
    Ok(FleetReport {
        changes: changes.made,
        totals,
        ticks: Some(TickCounts {
            started: ticks.started.len(),
            duplicates: ticks.duplicates(),
            missed: ticks.missed_renewals(),
            after_kill: ticks.after_kill,
        }),
        token_refreshes: None,
    })
}

fn replica_env(
    bench: &FleetBench,
    google: &Google,
    database: &str,
    port: u16,
    gateway: SocketAddr,
) -> Vec<(String, String)> {
    let replicas = u32::try_from(bench.replicas).unwrap_or(u32::MAX).max(1);
    let per_replica = |quota: u32| (quota / replicas).max(1).to_string();
    [
        ("CALSYNC_ENV", "development".to_owned()),
        ("CALSYNC_BIND", format!("127.0.0.1:{port}")),
        ("DATABASE_URL", database.to_owned()),
        (
            "GOOGLE_SERVICE_ACCOUNT_JSON_FILE",
            google.key_file.display().to_string(),
        ),
        ("CALSYNC_EMULATOR_URL", google.emulator.base_url.clone()),
        // Google posts to the balancer, as to a deployment's load balancer.
        ("WEBHOOK_BASE_URL", format!("http://{gateway}")),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("CALSYNC_API_TOKENS", API_TOKEN.to_owned()),
        // Every notification comes from the balancer's one address.
        ("CALSYNC_WEBHOOK_RATE_PER_MINUTE", "100000000".to_owned()),
        // The limiter is per process: each replica gets its share of
        // Google's quotas (docs/OPERATIONS.md, "Replicas and quotas").
        (
            "CALSYNC_GOOGLE_RATE_PER_MINUTE",
            per_replica(calsync_emulator::GOOGLE_PER_PROJECT_PER_MINUTE),
        ),
        (
            "CALSYNC_GOOGLE_PRINCIPAL_RATE_PER_MINUTE",
            per_replica(calsync_emulator::GOOGLE_PER_PRINCIPAL_PER_MINUTE),
        ),
        ("CALSYNC_SCHEDULER_TICK_SECS", "1".to_owned()),
        (
            "CALSYNC_RENEWAL_INTERVAL_SECS",
            RENEWAL_EVERY_SECS.to_string(),
        ),
        ("CALSYNC_SYNC_POLL_SECS", "1".to_owned()),
        // A killed replica's leases pass to the others within 5 s.
        ("CALSYNC_LEASE_TTL_SECS", "5".to_owned()),
        ("CALSYNC_LOG_LEVEL", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn wait_ready(http: &Http, port: u16) -> Result<(), LabError> {
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http
            .send("GET", &url, &[], None)
            .await
            .is_ok_and(|r| r.status == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the replica on port {port} was not ready within 60 s").into())
}

/// Adds every calendar through the API (any replica), as its principal.
async fn add_calendars(
    bench: &FleetBench,
    http: &Http,
    gateway: &str,
    calendars: &[calsync_domain::ids::CalendarId],
) -> Result<(), LabError> {
    let url = format!("{gateway}/calendar/calendars");
    let auth = format!("Bearer {API_TOKEN}");
    let mut tasks = tokio::task::JoinSet::new();
    for (i, calendar) in calendars.iter().enumerate() {
        if tasks.len() >= ADD_CONCURRENCY
            && let Some(done) = tasks.join_next().await
        {
            done.map_err(|e| e.to_string())??;
        }
        let body =
            json!({"calendarId": calendar.as_str(), "subject": bench.subject_of(i)?.as_str()});
        let (http, url, auth) = (http.clone(), url.clone(), auth.clone());
        tasks.spawn(async move {
            let reply = http
                .send("POST", &url, &[("authorization", &auth)], Some(&body))
                .await?;
            if reply.status == 201 {
                Ok(())
            } else {
                Err(format!("adding a calendar: {}", reply.brief()))
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The job ticks the replicas' logs show started.
struct Ticks {
    /// (job, slot) -> how many replicas started it.
    started: BTreeMap<(String, DateTime<Utc>), usize>,
    /// Ticks scheduled after the kill: the survivors' alone.
    after_kill: usize,
    killed_at: DateTime<Utc>,
}

impl Ticks {
    fn read<'a>(
        logs: impl Iterator<Item = &'a Path>,
        killed_at: DateTime<Utc>,
    ) -> Result<Self, LabError> {
        let mut started = BTreeMap::new();
        for log in logs {
            let text = std::fs::read_to_string(log)
                .map_err(|e| format!("cannot read {}: {e}", log.display()))?;
            for line in text.lines() {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if record["msg"] != "job started" {
                    continue;
                }
                let (Some(job), Some(slot)) = (
                    record["action"].as_str(),
                    record["scheduled_for"]
                        .as_str()
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok()),
                ) else {
                    continue;
                };
                *started
                    .entry((job.to_owned(), slot.with_timezone(&Utc)))
                    .or_insert(0) += 1;
            }
        }
        let after_kill = started.keys().filter(|(_, slot)| *slot > killed_at).count();
        Ok(Self {
            started,
            after_kill,
            killed_at,
        })
    }

    /// Whether a renewal tick started at or after `since`.
    fn renewed_since(&self, since: DateTime<Utc>) -> bool {
        self.started
            .keys()
            .any(|(job, slot)| job == "channel_renewal" && *slot >= since)
    }

    fn duplicates(&self) -> usize {
        self.started.values().filter(|n| **n > 1).count()
    }

    /// Renewal slots between the first and the last one seen that no
    /// replica started: a tick the fleet skipped.
    fn missed_renewals(&self) -> usize {
        let slots: BTreeSet<i64> = self
            .started
            .keys()
            .filter(|(job, _)| job == "channel_renewal")
            .map(|(_, slot)| slot.timestamp())
            .collect();
        let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
            return 0;
        };
        // The slot the kill fell in is not counted: the killed replica may
        // have claimed it with its log line still unwritten.
        let killed_slot =
            self.killed_at.timestamp().div_euclid(RENEWAL_EVERY_SECS) * RENEWAL_EVERY_SECS;
        (*first..=*last)
            .step_by(usize::try_from(RENEWAL_EVERY_SECS).unwrap_or(1))
            .filter(|slot| *slot != killed_slot && !slots.contains(slot))
            .count()
    }
}
