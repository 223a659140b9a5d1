//! The killer: SIGKILLs and restarts the server, and probes how long the
//! mirror takes to catch up after each restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use super::shared::*;
use crate::chaos::rng::Rng;
use crate::harness::net::Http;
use crate::harness::procs::Proc;

pub struct KillerOutcome {
    pub server: Proc,
    pub kills: u32,
    pub probes: Vec<JoinHandle<()>>,
    pub error: Option<String>,
}

/// Waits until the server answers `/health/ready`, or it exits, or `limit` passes.
pub async fn wait_ready(
    http: &Http,
    server: &mut Proc,
    url: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = server.exited() {
            return Err(format!("it exited ({status})"));
        }
        if let Ok(reply) = http.send("GET", url, &[], None).await
            && reply.status == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("not ready within {} s", limit.as_secs()))
}

pub(super) async fn restart(shared: &Shared, server: &mut Proc) -> Result<(), String> {
    let started = Instant::now();
    let ready = format!("{}/health/ready", shared.server);
    let mut last = String::new();
    // A start can lose the port to a lingering socket: try a few times.
    for _ in 0..3 {
        server.spawn(shared.secs())?;
        match wait_ready(&shared.http, server, &ready, Duration::from_secs(60)).await {
            Ok(()) => {
                lock(&shared.restarts).push(started.elapsed());
                return Ok(());
            }
            Err(error) => {
                shared.fail(format!("server restart failed: {error}"));
                server.kill();
                last = error;
            }
        }
    }
    Err(format!("the server does not come back: {last}"))
}

/// SIGKILLs the server at random moments (at least `min_kills` times,
/// spread over `duration`, more if time allows), restarts it at once with
/// the same database and settings, and probes each restart.
pub async fn killer(
    shared: Arc<Shared>,
    mut server: Proc,
    min_kills: u32,
    duration: Duration,
    mut rng: Rng,
) -> KillerOutcome {
    let mut probes = Vec::new();
    let mut kills = 0u32;
    let phase_start = *lock(&shared.phase_start);
    let error = loop {
        if min_kills == 0 {
            // No kills asked for: only watch for the server exiting by itself.
            while !shared.winding_down() {
                if let Some(status) = server.exited() {
                    shared.count("server_exited_by_itself");
                    shared.fail(format!(
                        "the server exited by itself ({status}); see its log"
                    ));
                    if let Err(error) = restart(&shared, &mut server).await {
                        return KillerOutcome {
                            server,
                            kills,
                            probes,
                            error: Some(error),
                        };
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            break None;
        }
        let done = |kills: u32| shared.winding_down() && kills >= min_kills;
        if done(kills) {
            break None;
        }
        let wait = if shared.winding_down() {
            Duration::from_millis(rng.range(500, 1500))
        } else {
            let remaining = duration.saturating_sub(phase_start.elapsed());
            let left = u64::from(min_kills.saturating_sub(kills)).max(1);
            let mean = (u64::try_from(remaining.as_millis()).unwrap_or(0) / (left + 1)).max(2000);
            Duration::from_millis(rng.range(mean / 2, mean * 3 / 2))
        };
        let until = Instant::now() + wait;
        let mut crashed = None;
        while Instant::now() < until && !done(kills) && crashed.is_none() {
            crashed = server.exited();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(status) = crashed {
            shared.count("server_exited_by_itself");
            shared.fail(format!(
                "the server exited by itself ({status}); see its log"
            ));
        } else if done(kills) {
            break None;
        } else {
            server.kill();
            kills += 1;
            shared.count("kills");
            shared.mark(format!("SIGKILL #{kills}"));
        }
        if let Err(error) = restart(&shared, &mut server).await {
            break Some(error);
        }
        shared.mark(format!("server ready after restart #{}", server.starts - 1));
        probes.push(tokio::spawn(probe(
            shared.clone(),
            u64::from(server.starts),
            Instant::now(),
        )));
    };
    KillerOutcome {
        server,
        kills,
        probes,
        error,
    }
}

/// Right after a restart, "someone" adds an event in Google; the gap is how
/// long until the mirror shows it. Probes sit in their own far-future hour,
/// so one time-window query finds each.
pub(super) async fn probe(shared: Arc<Shared>, number: u64, ready_at: Instant) {
    let start = shared.probe_base + chrono::Duration::hours(i64::try_from(number).unwrap_or(0));
    let end = start + chrono::Duration::minutes(30);
    let id = format!("probe{number}{}", short_id());
    let body = json!({
        "id": id,
        "summary": format!("probe {number}"),
        "start": { "dateTime": rfc3339(start) },
        "end": { "dateTime": rfc3339(end) },
    });
    match shared.call_google("POST", "", Some(&body)).await {
        Ok(reply) if reply.status == 200 || reply.status == 409 => {
            shared.note(&id, format!("probe insert ({})", reply.status));
        }
        _ => {
            shared.count("probe_not_made");
            return;
        }
    }
    let path = format!(
        "/calendar/events?calendarId=primary&timeMin={}&timeMax={}",
        rfc3339(start),
        rfc3339(end)
    );
    let url = format!("{}{path}", shared.server);
    let auth = shared.auth();
    while !shared.giving_up() {
        match shared
            .http
            .send("GET", &url, &[("authorization", auth.as_str())], None)
            .await
        {
            Ok(reply) if reply.status >= 500 => shared.server_error("GET", &path, &reply),
            Ok(reply)
                if reply.body["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|e| e["googleEventId"] == id)) =>
            {
                let gap = ready_at.elapsed();
                shared.note(
                    &id,
                    format!("probe seen in the mirror after {:.1} s", gap.as_secs_f64()),
                );
                lock(&shared.gaps).push(gap);
                return;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    shared.count("probe_unseen");
}
