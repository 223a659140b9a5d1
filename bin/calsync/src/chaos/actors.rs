//! What runs concurrently during the chaos phase: API writers, the remote
//! changer ("someone edits in Google"), the fault controller, and the
//! killer, which SIGKILLs and restarts the server and probes how long the
//! mirror takes to catch up after each restart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::check::Time;
use super::net::{Http, Reply};
use super::procs::Proc;
use super::rng::Rng;

pub const API_TOKEN: &str = "chaos-api-token-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "chaos-webhook-secret-0123456789abcdef";
/// The entity type of every event the API writers create.
pub const ENTITY_TYPE: &str = "chaos";
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Keeps each writer's working set (and the calendar) small enough to compare often.
const MAX_LIVE_PER_WRITER: usize = 25;
const MAX_REMOTE_LIVE: usize = 80;

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

    fn winding_down(&self) -> bool {
        self.winding_down.load(Ordering::SeqCst)
    }

    pub fn stop_faults(&self) {
        self.faults_stop.store(true, Ordering::SeqCst);
    }

    fn faults_stopped(&self) -> bool {
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
                                "rateLimitExceeded" | "userRateLimitExceeded"
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
    fn contest(&self, google_id: &str, why: &str) {
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
async fn pause(shared: &Shared, millis: u64) {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until && !shared.stopping() {
        tokio::time::sleep(Duration::from_millis(50).min(until - Instant::now())).await;
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The same instant written three ways: the mirror must keep the instant
/// whatever the notation.
fn notation(at: DateTime<Utc>, rng: &mut Rng) -> Value {
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

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// One API client: creates events for its entities (with an
/// Idempotency-Key), patches and deletes only its own events.
pub async fn writer(shared: Arc<Shared>, index: usize, mut rng: Rng) {
    let mut live: Vec<String> = Vec::new();
    let mut created = 0u64;
    while !shared.stopping() {
        {
            let model = lock(&shared.model);
            live.retain(|id| model.api.get(id).is_some_and(|e| !e.contested));
        }
        let roll = rng.below(100);
        if live.is_empty() || (roll < 40 && live.len() < MAX_LIVE_PER_WRITER) {
            created += 1;
            if let Some(id) = create(&shared, index, created, &mut rng).await {
                live.push(id);
            }
        } else if let Some(id) = rng.pick(&live).cloned() {
            if roll < 85 {
                patch(&shared, &id, &mut rng).await;
            } else if delete(&shared, &id).await {
                live.retain(|other| other != &id);
            }
        }
        pause(&shared, rng.range(150, 500)).await;
    }
}

async fn create(shared: &Shared, writer: usize, n: u64, rng: &mut Rng) -> Option<String> {
    let entity_id = format!("{}-w{writer}-{n}", shared.run_id);
    let (start_json, end_json, start, end) = event_times(rng);
    let summary = format!("api {entity_id}");
    let mut body = json!({
        "entityType": ENTITY_TYPE,
        "entityId": entity_id,
        "summary": summary,
        "start": start_json,
        "end": end_json,
    });
    if rng.chance(0.3) {
        // Personal data the logs must only ever show masked.
        body["attendees"] = json!([{ "email": format!("chaos.guest.{n}@example.com") }]);
        body["description"] = json!(format!("Call jane.roe.{writer}.{n}@example.org first"));
    }
    let key = uuid::Uuid::new_v4().to_string();
    let answer = shared
        .call_server(
            "POST",
            "/calendar/events",
            &[("idempotency-key", key.as_str())],
            Some(&body),
        )
        .await;
    match answer {
        Answer::Acked(reply) => {
            if reply.replayed {
                shared.count("api_create_replayed");
            }
            let google_id = reply.body["googleEventId"].as_str().unwrap_or_default();
            let local_id = reply.body["id"].as_str().unwrap_or_default();
            if google_id.is_empty() || local_id.is_empty() {
                shared.fail(format!(
                    "create {entity_id} answered without ids: {}",
                    reply.brief()
                ));
                return None;
            }
            shared.count("api_create");
            if reply.body["status"].as_str() != Some("confirmed") {
                shared.fail(format!("create {entity_id} answered {}", reply.brief()));
            }
            lock(&shared.model).api.insert(
                google_id.to_owned(),
                ApiEvent {
                    entity_id: entity_id.clone(),
                    local_id: local_id.to_owned(),
                    google_id: google_id.to_owned(),
                    summary,
                    start: start.clone(),
                    end: end.clone(),
                    status: "confirmed".into(),
                    deleted: false,
                    contested: false,
                    uncertain: false,
                },
            );
            shared.note(
                google_id,
                format!("api create acked ({}): entity {entity_id} local {local_id} start {start} end {end}", reply.status),
            );
            Some(google_id.to_owned())
        }
        Answer::Refused { reply, .. } => {
            shared.fail(format!("create {entity_id} refused: {}", reply.brief()));
            None
        }
        Answer::GaveUp(last) => {
            shared.count("api_create_unanswered");
            shared.mark(format!("create {entity_id} never answered ({last})"));
            lock(&shared.model).unacked_creates.push(entity_id);
            None
        }
    }
}

async fn patch(shared: &Shared, google_id: &str, rng: &mut Rng) {
    let Some(mut expected) = lock(&shared.model).api.get(google_id).cloned() else {
        return;
    };
    let mut body = Map::new();
    let roll = rng.below(10);
    if roll <= 4 || roll == 8 {
        let summary = format!("api edit {}", short_id());
        body.insert("summary".into(), json!(summary));
        expected.summary = summary;
    }
    if (5..=8).contains(&roll) {
        let (start_json, end_json, start, end) = event_times(rng);
        body.insert("start".into(), start_json);
        body.insert("end".into(), end_json);
        expected.start = start;
        expected.end = end;
    }
    if roll == 9 {
        let status = if expected.status == "tentative" {
            "confirmed"
        } else {
            "tentative"
        };
        body.insert("status".into(), json!(status));
        expected.status = status.into();
    }
    let body = Value::Object(body);
    let path = format!("/calendar/events/{}", expected.local_id);
    // Some patches are conditional, on the etag a read just returned.
    let etag = match rng.chance(0.2) {
        true => current_etag(shared, &path).await,
        false => None,
    };
    let headers: Vec<(&str, &str)> = etag.iter().map(|e| ("if-match", e.as_str())).collect();
    match shared
        .call_server("PATCH", &path, &headers, Some(&body))
        .await
    {
        Answer::Refused { reply, retried } if reply.status == 412 && etag.is_some() => {
            if retried {
                // The unanswered attempt may have been applied, moving the etag.
                unanswered(shared, google_id, "patch", "412 after a retry");
            } else {
                shared.count("api_patch_conflict");
                shared.note(google_id, format!("api patch if-match {etag:?}: 412"));
            }
        }
        Answer::Acked(reply) => {
            if etag.is_some() {
                shared.count("api_patch_conditional");
            }
            shared.count("api_patch");
            shared.note(
                google_id,
                format!("api patch acked ({}): {body}", reply.status),
            );
            if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
                event.summary = expected.summary;
                event.start = expected.start;
                event.end = expected.end;
                event.status = expected.status;
            }
        }
        Answer::Refused { reply, .. } => refused(shared, google_id, "patch", &reply),
        Answer::GaveUp(last) => unanswered(shared, google_id, "patch", &last),
    }
}

/// The event's etag from `GET`, if it has one (it has none until pushed).
async fn current_etag(shared: &Shared, path: &str) -> Option<String> {
    let url = format!("{}{path}", shared.server);
    let auth = shared.auth();
    match shared
        .http
        .send("GET", &url, &[("authorization", auth.as_str())], None)
        .await
    {
        Ok(reply) if reply.status >= 500 => {
            shared.server_error("GET", path, &reply);
            None
        }
        Ok(reply) if reply.status == 200 => reply.etag,
        _ => None,
    }
}

/// True once the delete is acknowledged.
async fn delete(shared: &Shared, google_id: &str) -> bool {
    let Some(local_id) = lock(&shared.model)
        .api
        .get(google_id)
        .map(|e| e.local_id.clone())
    else {
        return false;
    };
    let path = format!("/calendar/events/{local_id}");
    match shared.call_server("DELETE", &path, &[], None).await {
        Answer::Acked(reply) => {
            shared.count("api_delete");
            shared.note(google_id, format!("api delete acked ({})", reply.status));
            if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
                event.deleted = true;
            }
            true
        }
        Answer::Refused { reply, .. } => {
            refused(shared, google_id, "delete", &reply);
            false
        }
        Answer::GaveUp(last) => {
            unanswered(shared, google_id, "delete", &last);
            false
        }
    }
}

fn refused(shared: &Shared, google_id: &str, what: &str, reply: &Reply) {
    shared.count(&format!("api_{what}_refused"));
    shared.note(google_id, format!("api {what} refused: {}", reply.brief()));
    lock(&shared.model).refusals.push((
        google_id.to_owned(),
        format!(
            "t={:.1}s {what} of {google_id} refused: {}",
            shared.secs(),
            reply.brief()
        ),
    ));
}

fn unanswered(shared: &Shared, google_id: &str, what: &str, last: &str) {
    shared.count(&format!("api_{what}_unanswered"));
    shared.note(google_id, format!("api {what} never answered ({last})"));
    if let Some(event) = lock(&shared.model).api.get_mut(google_id) {
        event.uncertain = true;
    }
}

/// Someone else in Google: inserts, edits and deletes events of their own
/// (the seeded ones and those they insert), sometimes edits or deletes an
/// event calsync created (marking it contested), and sometimes has the
/// emulator make random changes anywhere.
pub async fn remote(shared: Arc<Shared>, mut live: Vec<String>, mut rng: Rng) {
    let mut inserted = 0u64;
    while !shared.stopping() {
        let roll = rng.below(100);
        if live.is_empty() || (roll < 30 && live.len() < MAX_REMOTE_LIVE) {
            inserted += 1;
            remote_insert(&shared, &mut live, inserted, &mut rng).await;
        } else if roll < 60 {
            remote_patch(&shared, &mut live, &mut rng).await;
        } else if roll < 72 {
            remote_delete(&shared, &mut live, &mut rng).await;
        } else if roll < 86 {
            remote_contest(&shared, &mut rng).await;
        } else {
            admin_changes(&shared, &mut live, &mut rng).await;
        }
        pause(&shared, rng.range(300, 900)).await;
    }
}

async fn remote_insert(shared: &Shared, live: &mut Vec<String>, n: u64, rng: &mut Rng) {
    // A client-chosen id makes a retried insert safe: a repeat is 409.
    let id = format!("rc{}", uuid::Uuid::new_v4().simple());
    let (start, end, _, _) = event_times(rng);
    let body = json!({ "id": id, "summary": format!("remote {n}"), "start": start, "end": end });
    match shared.call_google("POST", "", Some(&body)).await {
        Ok(reply) if reply.status == 200 || reply.status == 409 => {
            shared.count("remote_insert");
            shared.note(&id, format!("remote insert ({})", reply.status));
            live.push(id);
        }
        Ok(reply) => remote_odd(shared, &id, "insert", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "insert gave up", &last),
    }
}

async fn remote_patch(shared: &Shared, live: &mut Vec<String>, rng: &mut Rng) {
    let Some(id) = rng.pick(live).cloned() else {
        return;
    };
    let body = if rng.chance(0.7) {
        json!({ "summary": format!("remote edit {}", short_id()) })
    } else {
        let (start, end, _, _) = event_times(rng);
        json!({ "start": start, "end": end })
    };
    match shared
        .call_google("PATCH", &format!("/{id}"), Some(&body))
        .await
    {
        Ok(reply) if reply.status == 200 => {
            shared.count("remote_patch");
            shared.note(&id, format!("remote patch: {body}"));
        }
        Ok(reply) if reply.status == 410 || reply.status == 404 => {
            // Deleted by the emulator's random changes meanwhile.
            live.retain(|other| other != &id);
        }
        Ok(reply) => remote_odd(shared, &id, "patch", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "patch gave up", &last),
    }
}

async fn remote_delete(shared: &Shared, live: &mut Vec<String>, rng: &mut Rng) {
    let Some(id) = rng.pick(live).cloned() else {
        return;
    };
    match shared.call_google("DELETE", &format!("/{id}"), None).await {
        // 410: an earlier attempt was applied and only its answer dropped.
        Ok(reply) if reply.status == 204 || reply.status == 410 => {
            shared.count("remote_delete");
            shared.note(&id, format!("remote delete ({})", reply.status));
            live.retain(|other| other != &id);
        }
        Ok(reply) => remote_odd(shared, &id, "delete", &reply.brief()),
        Err(last) => remote_odd(shared, &id, "delete gave up", &last),
    }
}

/// An edit or deletion in Google of an event calsync created.
async fn remote_contest(shared: &Shared, rng: &mut Rng) {
    let ids: Vec<String> = lock(&shared.model)
        .api
        .values()
        .filter(|e| !e.deleted)
        .map(|e| e.google_id.clone())
        .collect();
    let Some(id) = rng.pick(&ids).cloned() else {
        return;
    };
    let deleting = rng.chance(0.3);
    shared.contest(
        &id,
        if deleting {
            "remote delete"
        } else {
            "remote patch"
        },
    );
    let reply = if deleting {
        shared.call_google("DELETE", &format!("/{id}"), None).await
    } else {
        let body = json!({ "summary": format!("remote contest {}", short_id()) });
        shared
            .call_google("PATCH", &format!("/{id}"), Some(&body))
            .await
    };
    shared.count(if deleting {
        "remote_contest_delete"
    } else {
        "remote_contest_patch"
    });
    match reply {
        Ok(reply) => shared.note(&id, format!("remote contest answered {}", reply.brief())),
        Err(last) => shared.note(&id, format!("remote contest gave up ({last})")),
    }
}

/// The emulator's own random changes: edits, deletions and inserts of any
/// live event, calsync's included.
async fn admin_changes(shared: &Shared, live: &mut Vec<String>, rng: &mut Rng) {
    let count = rng.range(1, 4);
    let reply = shared
        .admin(
            "POST",
            "/calendars/primary/changes",
            Some(&json!({ "count": count })),
        )
        .await;
    let Ok(reply) = reply else {
        return;
    };
    shared.count("remote_admin_changes");
    let Some(changed) = reply.body["changed"].as_array() else {
        return;
    };
    for event in changed {
        let Some(id) = event["id"].as_str() else {
            continue;
        };
        let cancelled = event["status"].as_str() == Some("cancelled");
        let summary = event["summary"].as_str().unwrap_or_default();
        shared.contest(id, "the emulator's random change");
        shared.note(
            id,
            format!(
                "emulator random change: status {} summary {summary:?}",
                event["status"]
            ),
        );
        let ours = lock(&shared.model).api.contains_key(id);
        if cancelled {
            live.retain(|other| other != id);
        } else if !ours && !live.iter().any(|other| other == id) {
            live.push(id.to_owned());
        }
    }
}

/// The emulator refused "someone in Google": a harness matter, reported, not failed.
fn remote_odd(shared: &Shared, id: &str, what: &str, detail: &str) {
    shared.count("remote_unexpected");
    shared.note(id, format!("remote {what}: {detail}"));
}

const FAULT_KINDS: &[&str] = &[
    "503",
    "500",
    "429",
    "403 rateLimitExceeded",
    "403 userRateLimitExceeded",
    "latency",
    "drop",
    "applyThenDrop",
    "sync-token invalidation",
    "mixed",
];
const FAULT_OPS: &[&str] = &["list", "get", "insert", "patch", "delete"];

fn fault(kind: &str, rng: &mut Rng) -> Value {
    match kind {
        "500" => json!({ "status": 500 }),
        "429" => json!({ "status": 429, "retryAfter": rng.range(1, 3) }),
        "403 rateLimitExceeded" => json!({ "status": 403, "reason": "rateLimitExceeded" }),
        "403 userRateLimitExceeded" => {
            json!({ "status": 403, "reason": "userRateLimitExceeded" })
        }
        "drop" => json!({ "drop": true }),
        "applyThenDrop" => json!({ "applyThenDrop": true }),
        _ => json!({ "status": 503 }),
    }
}

fn fault_plan(kind: &str, rng: &mut Rng) -> Value {
    match kind {
        "latency" => json!({ "latencyMs": rng.range(100, 1200) }),
        "mixed" => {
            let random: Vec<Value> = [
                "503",
                "429",
                "drop",
                "applyThenDrop",
                "403 rateLimitExceeded",
            ]
            .iter()
            .map(|k| fault(k, rng))
            .collect();
            json!({ "probability": 0.25, "random": random, "latencyMs": rng.range(0, 300) })
        }
        _ if rng.chance(0.5) => {
            let mut scheduled = fault(kind, rng);
            scheduled["count"] = json!(rng.range(1, 5));
            if let Some(op) = rng.pick(FAULT_OPS).filter(|_| rng.chance(0.7)) {
                scheduled["op"] = json!(op);
            }
            json!({ "schedule": [scheduled] })
        }
        _ => {
            let probability = rng.range(10, 40) as f64 / 100.0;
            json!({ "probability": probability, "random": [fault(kind, rng)] })
        }
    }
}

async fn fault_pause(shared: &Shared, millis: u64) {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until && !shared.faults_stopped() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets a fault plan of a random kind for a few seconds, clears it for a
/// few, and so on; sometimes invalidates every sync token instead.
pub async fn faults(shared: Arc<Shared>, mut rng: Rng) {
    while !shared.faults_stopped() {
        let kind = rng.pick(FAULT_KINDS).copied().unwrap_or("503");
        if kind == "sync-token invalidation" {
            if let Ok(reply) = shared.admin("POST", "/sync-tokens/invalidate", None).await
                && reply.status < 300
            {
                shared.count("fault sync-token invalidation");
                shared.mark("sync tokens invalidated".into());
            }
        } else {
            let plan = fault_plan(kind, &mut rng);
            match shared.admin("PUT", "/faults", Some(&plan)).await {
                Ok(reply) if reply.status < 300 => {
                    shared.count(&format!("fault {kind}"));
                    shared.mark(format!("faults: {plan}"));
                }
                Ok(reply) => shared.mark(format!("fault plan {plan} refused: {}", reply.brief())),
                Err(error) => shared.mark(format!("fault plan {plan} not set: {error}")),
            }
        }
        fault_pause(&shared, rng.range(1500, 5000)).await;
        let _ = shared.admin("DELETE", "/faults", None).await;
        fault_pause(&shared, rng.range(500, 3000)).await;
    }
    let _ = shared.admin("DELETE", "/faults", None).await;
}

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

async fn restart(shared: &Shared, server: &mut Proc) -> Result<(), String> {
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
async fn probe(shared: Arc<Shared>, number: u64, ready_at: Instant) {
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

/// Every id "someone in Google" may edit from the start: the seeded events.
pub fn seeded_ids(truth: &Value) -> Vec<String> {
    truth["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
