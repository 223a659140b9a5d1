//! What the actors share: the model of acknowledged writes, the server's
//! address and clients, and small helpers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::chaos::check::Time;
use crate::chaos::rng::Rng;
use crate::harness::net::{Http, Reply};

pub const API_TOKEN: &str = "chaos-api-token-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "chaos-webhook-secret-0123456789abcdef";
/// The entity type of every event the API writers create.
pub const ENTITY_TYPE: &str = "chaos";
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Keeps each writer's working set (and the calendar) small enough to compare often.
pub(super) const MAX_LIVE_PER_WRITER: usize = 25;
pub(super) const MAX_REMOTE_LIVE: usize = 80;

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an acknowledged API write says must hold for one event.
#[derive(Debug, Clone)]
pub struct ApiEvent {
    pub entity_id: String,
    pub local_id: String,
    pub google_id: String,
    pub summary: String,
    pub start: Time,
    pub end: Time,
    /// confirmed | tentative
    pub status: String,
    pub deleted: bool,
    /// Also changed in Google by someone else: only mirror == truth holds.
    pub contested: bool,
    /// A write to it was never answered: its outcome is unknown.
    pub uncertain: bool,
}

#[derive(Default)]
pub struct Model {
    /// By Google event id.
    pub api: BTreeMap<String, ApiEvent>,
    /// Entity ids of creates never acknowledged (at most one may exist).
    pub unacked_creates: Vec<String>,
    /// What the battery did to each event, by Google id, for failure reports.
    pub history: BTreeMap<String, Vec<String>>,
    /// 4xx answers to writes on events not (yet) known to be contested;
    /// judged at the end, when every remote touch is known.
    pub refusals: Vec<(String, String)>,
}

pub struct Shared {
    pub t0: Instant,
    pub http: Http,
    pub server: String,
    pub emulator: String,
    pub run_id: String,
    /// Users' accounts connected through grants (each one's calendar is its email).
    pub accounts: Vec<String>,
    /// Each account's grant id, once connected.
    pub grants: Mutex<BTreeMap<String, String>>,
    /// Probe events live in their own far-future hours.
    pub probe_base: DateTime<Utc>,
    pub phase_start: Mutex<Instant>,
    stop: AtomicBool,
    winding_down: AtomicBool,
    faults_stop: AtomicBool,
    give_up_at: Mutex<Option<Instant>>,
    pub model: Mutex<Model>,
    counts: Mutex<BTreeMap<String, u64>>,
    /// Failures seen as they happened (5xx, unexpected exits).
    pub failures: Mutex<Vec<String>>,
    /// Kills and fault plans, in order.
    pub timeline: Mutex<Vec<String>>,
    pub gaps: Mutex<Vec<Duration>>,
    pub restarts: Mutex<Vec<Duration>>,
}

pub enum Answer {
    Acked(Reply),
    /// A 4xx; `retried` when an earlier attempt went unanswered (and may
    /// have been applied).
    Refused {
        reply: Reply,
        retried: bool,
    },
    GaveUp(String),
}

impl Shared {
    pub fn new(http: Http, server: String, emulator: String, run_id: String) -> Self {
        let now = Utc::now().timestamp();
        let far = now + 3000 * 86_400;
        Self {
            t0: Instant::now(),
            http,
            server,
            emulator,
            run_id,
            accounts: super::grants::accounts(),
            grants: Mutex::new(BTreeMap::new()),
            probe_base: DateTime::from_timestamp(far - far % 3600, 0).unwrap_or_else(Utc::now),
            phase_start: Mutex::new(Instant::now()),
            stop: AtomicBool::new(false),
            winding_down: AtomicBool::new(false),
            faults_stop: AtomicBool::new(false),
            give_up_at: Mutex::new(None),
            model: Mutex::new(Model::default()),
            counts: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
            timeline: Mutex::new(Vec::new()),
            gaps: Mutex::new(Vec::new()),
            restarts: Mutex::new(Vec::new()),
        }
    }

    /// Every calendar calsync manages in the run: the service account's
    /// `primary` and each account's own.
    pub fn calendars(&self) -> Vec<String> {
        std::iter::once("primary".to_owned())
            .chain(self.accounts.iter().cloned())
            .collect()
    }

    pub fn secs(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn count(&self, what: &str) {
        *lock(&self.counts).entry(what.to_owned()).or_default() += 1;
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    pub fn fail(&self, what: String) {
        lock(&self.failures).push(format!("t={:.1}s {what}", self.secs()));
    }

    pub fn mark(&self, what: String) {
        lock(&self.timeline).push(format!("t={:.1}s {what}", self.secs()));
    }

    pub fn note(&self, google_id: &str, what: String) {
        let line = format!("t={:.1}s {what}", self.secs());
        lock(&self.model)
            .history
            .entry(google_id.to_owned())
            .or_default()
            .push(line);
    }

    /// Writers and the remote changer start nothing new.
    pub fn stop_writing(&self, grace: Duration) {
        *lock(&self.give_up_at) = Some(Instant::now() + grace);
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Retries end: set once the chaos is over and a grace period passed.
    pub fn giving_up(&self) -> bool {
        lock(&self.give_up_at).is_some_and(|at| Instant::now() >= at)
    }

    pub fn wind_down(&self) {
        self.winding_down.store(true, Ordering::SeqCst);
    }

    pub(super) fn winding_down(&self) -> bool {
        self.winding_down.load(Ordering::SeqCst)
    }

    pub fn stop_faults(&self) {
        self.faults_stop.store(true, Ordering::SeqCst);
    }

    pub(super) fn faults_stopped(&self) -> bool {
        self.faults_stop.load(Ordering::SeqCst)
    }

    pub fn auth(&self) -> String {
        format!("Bearer {API_TOKEN}")
    }

    /// A 5xx from the server: it was up and failed a request.
    pub fn server_error(&self, method: &str, path: &str, reply: &Reply) {
        self.count("server_5xx");
        self.fail(format!(
            "server answered {method} {path} with {}",
            reply.brief()
        ));
    }

    /// One authorized `GET` of calsync's API: the body of its 200 (a 5xx is
    /// also counted against the server).
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.server);
        let auth = self.auth();
        let reply = self
            .http
            .send("GET", &url, &[("authorization", auth.as_str())], None)
            .await?;
        if reply.status >= 500 {
            self.server_error("GET", path, &reply);
        }
        if reply.status != 200 {
            return Err(format!("GET {path}: {}", reply.brief()));
        }
        Ok(reply.body)
    }

    /// A request to calsync, repeated with the same bytes (so the same
    /// Idempotency-Key) on connection errors and 5xx until it is answered.
    pub async fn call_server(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let url = format!("{}{path}", self.server);
        let auth = self.auth();
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        let mut last = String::from("never sent");
        let mut retried = false;
        loop {
            if self.giving_up() {
                return Answer::GaveUp(last);
            }
            match self.http.send(method, &url, &headers, body).await {
                Err(error) => {
                    // The server is down (killed on purpose): not counted against it.
                    self.count("server_unreachable");
                    retried = true;
                    last = error;
                }
                Ok(reply) if reply.status >= 500 => {
                    self.server_error(method, path, &reply);
                    retried = true;
                    last = reply.brief();
                }
                Ok(reply) if reply.status < 300 => return Answer::Acked(reply),
                Ok(reply) => return Answer::Refused { reply, retried },
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// A Calendar API call to the emulator as another Google user would
    /// make it, through the same faults the server meets: retried on
    /// dropped connections, 5xx and rate limits; any other answer returned.
    pub async fn call_google(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!(
            "{}/calendar/v3/calendars/primary/events{path}",
            self.emulator
        );
        let headers = [("authorization", "Bearer someone-in-google")];
        let mut last = String::new();
        for _ in 0..60 {
            if self.giving_up() {
                break;
            }
            match self.http.send(method, &url, &headers, body).await {
                Err(error) => last = error,
                Ok(reply)
                    if reply.status >= 500
                        || reply.status == 429
                        || (reply.status == 403
                            && matches!(
                                reply.reason(),
                                "rateLimitExceeded"
                                    | "userRateLimitExceeded"
                                    | "requiredAccessLevel"
                            )) =>
                {
                    last = reply.brief();
                }
                Ok(reply) => return Ok(reply),
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Err(last)
    }

    /// The emulator's admin API (never faulted).
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!("{}/emulator{path}", self.emulator);
        self.http.send(method, &url, &[], body).await
    }

    /// Marks an event as changed in Google by someone else.
    pub(super) fn contest(&self, google_id: &str, why: &str) {
        let known = match lock(&self.model).api.get_mut(google_id) {
            Some(event) => {
                event.contested = true;
                true
            }
            None => false,
        };
        if known {
            self.note(google_id, format!("contested: {why}"));
        }
    }
}

/// Sleeps, waking early once the writers are told to stop.
pub(super) async fn pause(shared: &Shared, millis: u64) {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until && !shared.stopping() {
        tokio::time::sleep(Duration::from_millis(50).min(until - Instant::now())).await;
    }
}

pub(super) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The same instant written three ways: the mirror must keep the instant
/// whatever the notation.
pub(super) fn notation(at: DateTime<Utc>, rng: &mut Rng) -> Value {
    let (offset, zone) = match rng.below(3) {
        0 => return json!({ "dateTime": rfc3339(at) }),
        1 => (FixedOffset::east_opt(3600), "Europe/Berlin"),
        _ => (FixedOffset::west_opt(5 * 3600), "America/New_York"),
    };
    match offset {
        Some(offset) => json!({
            "dateTime": at.with_timezone(&offset).to_rfc3339_opts(SecondsFormat::Secs, false),
            "timeZone": zone,
        }),
        None => json!({ "dateTime": rfc3339(at) }),
    }
}

/// A start and end in the coming weeks: timed (whole minutes) or all-day.
pub fn event_times(rng: &mut Rng) -> (Value, Value, Time, Time) {
    let now = Utc::now().timestamp();
    let offset = i64::try_from(rng.range(3600, 60 * 86_400)).unwrap_or(3600);
    let secs = now + offset;
    let start = DateTime::from_timestamp(secs - secs % 60, 0).unwrap_or_else(Utc::now);
    if rng.chance(0.1) {
        let day = start.date_naive();
        let next = day.succ_opt().unwrap_or(day);
        return (
            json!({ "date": day.to_string() }),
            json!({ "date": next.to_string() }),
            Time::Day(day),
            Time::Day(next),
        );
    }
    let minutes = i64::try_from(rng.range(15, 180)).unwrap_or(30);
    let end = start + chrono::Duration::minutes(minutes);
    (
        notation(start, rng),
        notation(end, rng),
        Time::At(start),
        Time::At(end),
    )
}

pub(super) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
