//! The events API end to end: the real server, its outbox worker, the
//! emulator over HTTP through google-calendar3, and SQLite or Postgres.

use std::time::Duration;

use calsync::server::Running;
use calsync_emulator::{Change, Fault, FaultPlan};
use serde_json::{Value, json};

use crate::helpers::{
    OTHER_TOKEN, TempDir, bearer, drop_schema, eventually, http, http_with_headers,
    postgres_schema, server,
};

/// Quick outbox retries, so an outage of a few seconds drains within the test.
const FAST_OUTBOX: [&str; 6] = [
    "--outbox-retry-base-ms",
    "100",
    "--outbox-retry-cap-secs",
    "1",
    "--outbox-poll-ms",
    "100",
];

/// The real server on SQLite or Postgres, with quick outbox retries.
pub(crate) struct Api {
    pub(crate) running: Running,
    base: String,
    _dir: Option<TempDir>,
    pg_url: Option<String>,
}

impl Api {
    pub(crate) async fn sqlite() -> Self {
        let (running, dir) = server(None, &FAST_OUTBOX).await;
        Self::new(running, dir, None)
    }

    pub(crate) async fn postgres() -> Option<Self> {
        let url = postgres_schema().await?;
        let (running, dir) = server(Some(&url), &FAST_OUTBOX).await;
        Some(Self::new(running, dir, Some(url)))
    }

    /// [`Api::sqlite`] with more flags after the quick outbox ones.
    pub(crate) async fn sqlite_with(extra: &[&str]) -> Self {
        let args = [&FAST_OUTBOX[..], extra].concat();
        let (running, dir) = server(None, &args).await;
        Self::new(running, dir, None)
    }

    /// [`Api::postgres`] with more flags after the quick outbox ones.
    pub(crate) async fn postgres_with(extra: &[&str]) -> Option<Self> {
        let url = postgres_schema().await?;
        let args = [&FAST_OUTBOX[..], extra].concat();
        let (running, dir) = server(Some(&url), &args).await;
        Some(Self::new(running, dir, Some(url)))
    }

    fn new(running: Running, dir: Option<TempDir>, pg_url: Option<String>) -> Self {
        let base = format!("http://{}", running.address);
        Self {
            running,
            base,
            _dir: dir,
            pg_url,
        }
    }

    /// Every byte the database holds, as an operator's backup would: the
    /// SQLite file and its WAL, or `pg_dump` of the test's schema.
    pub(crate) fn database_dump(&self) -> Vec<u8> {
        if let Some(url) = &self.pg_url {
            let (base, schema) = url.split_once("options=-csearch_path%3D").unwrap();
            let output = std::process::Command::new("pg_dump")
                .args([
                    "--schema",
                    schema,
                    "--dbname",
                    base.trim_end_matches(['?', '&']),
                ])
                .output()
                .expect("pg_dump runs");
            assert!(output.status.success(), "{output:?}");
            return output.stdout;
        }
        let dir = &self._dir.as_ref().unwrap().0;
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        bytes
    }

    pub(crate) fn emulator(&self) -> &calsync_emulator::Emulator {
        &self.running.emulator.as_ref().unwrap().emulator
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (name, value) = bearer();
        http(
            method,
            &format!("{}{path}", self.base),
            &[(name, &value)],
            body,
        )
        .await
    }

    /// Events at Google carrying this entity id, deleted ones included.
    fn at_google(&self, entity_id: &str) -> Vec<Value> {
        self.emulator()
            .events("primary")
            .into_iter()
            .filter(|e| e["extendedProperties"]["private"]["entity_id"] == entity_id)
            .collect()
    }

    pub(crate) async fn pushed(&self, id: &str) -> Value {
        let path = format!("/calendar/events/{id}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, event) = self.call("GET", &path, None).await;
            if event["pushState"] == "synced" {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never pushed: {event}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.running.stop().await;
        if let Some(url) = &self.pg_url {
            drop_schema(url).await;
        }
    }
}

fn new_event(entity_id: &str, summary: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    json!({
        "entityType": "deal",
        "entityId": entity_id,
        "summary": summary,
        "location": "Room 1",
        "start": {"dateTime": start.to_rfc3339(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339(), "timeZone": "Europe/Berlin"},
        "attendees": [{"email": "guest@example.com"}],
    })
}

async fn create_then_push_with_the_entity_link(api: Api) {
    let (name, value) = bearer();
    let (status, headers, created) = http_with_headers(
        "POST",
        &format!("{}/calendar/events", api.base),
        &[(name, &value), ("X-Request-Id", "e2e-create-1")],
        Some(new_event("42", "Kick-off")),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(
        headers["x-request-id"], "e2e-create-1",
        "the caller's id is echoed"
    );
    assert_eq!(created["pushState"], "pending");
    assert_eq!(
        (created["entityType"].as_str(), created["entityId"].as_str()),
        (Some("deal"), Some("42"))
    );
    let id = created["id"].as_str().unwrap();

    let pushed = api.pushed(id).await;
    let remote = api.at_google("42");
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert_eq!(remote[0]["id"], created["googleEventId"]);
    assert_eq!(
        remote[0]["extendedProperties"]["private"]["entity_type"],
        "deal"
    );
    assert_eq!(remote[0]["summary"], "Kick-off");
    assert_eq!(remote[0]["start"]["timeZone"], "Europe/Berlin");
    assert_eq!(
        pushed["etag"], remote[0]["etag"],
        "Google's etag is recorded"
    );
    assert!(pushed["htmlLink"].is_string());

    // Listed by entity, and `?wait=true` answers with Google's verdict.
    let (status, page) = api
        .call("GET", "/calendar/events?entityType=deal&entityId=42", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (status, waited) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(new_event("43", "Waited for")),
        )
        .await;
    assert_eq!(
        (status, waited["pushState"].as_str()),
        (201, Some("synced")),
        "{waited}"
    );
    assert_eq!(api.at_google("43").len(), 1);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_created_event_reaches_google_with_its_entity_link_sqlite() {
    create_then_push_with_the_entity_link(Api::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_created_event_reaches_google_with_its_entity_link_postgres() {
    let Some(api) = Api::postgres().await else {
        return;
    };
    create_then_push_with_the_entity_link(api).await;
}

async fn outage_then_everything_arrives_once(api: Api) {
    // Every Google call fails with 503 until the plan is lifted.
    api.emulator().set_faults(FaultPlan {
        probability: 1.0,
        random: vec![Fault::status(503)],
        ..FaultPlan::default()
    });
    let mut ids = Vec::new();
    for i in 0..12 {
        let (status, created) = api
            .call(
                "POST",
                "/calendar/events",
                Some(new_event(&format!("outage-{i}"), "During the outage")),
            )
            .await;
        assert_eq!(
            status, 202,
            "writes are accepted while Google is down: {created}"
        );
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{}", ids[0]),
            Some(json!({"summary": "Renamed during the outage"})),
        )
        .await;
    assert_eq!(status, 202, "{patched}");
    // The adapter retries each call a few times before the outbox records
    // the failure and schedules its own retry.
    let path = format!("/calendar/events/{}", ids[1]);
    let mut last = Value::Null;
    for _ in 0..300 {
        let (_, event) = api.call("GET", &path, None).await;
        last = event;
        if last["pushError"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["pushState"], "pending", "{last}");
    assert!(
        last["pushError"]
            .as_str()
            .is_some_and(|e| e.contains("transient") || e.contains("503")),
        "the last error is visible: {last}"
    );
    assert!(
        api.emulator().calls("insert") > 12,
        "the worker kept trying"
    );
    let (_, report) = api.call("GET", "/health/calendar", None).await;
    assert_eq!(report["outboxPending"], 13, "{report}");

    api.emulator().set_faults(FaultPlan::default());
    for id in &ids {
        api.pushed(id).await;
    }
    for i in 0..12 {
        let remote = api.at_google(&format!("outage-{i}"));
        assert_eq!(remote.len(), 1, "exactly once: {remote:?}");
    }
    assert_eq!(
        api.at_google("outage-0")[0]["summary"],
        "Renamed during the outage",
        "the patch went after the insert"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn google_down_then_back_loses_nothing_and_duplicates_nothing_sqlite() {
    outage_then_everything_arrives_once(Api::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn google_down_then_back_loses_nothing_and_duplicates_nothing_postgres() {
    let Some(api) = Api::postgres().await else {
        return;
    };
    outage_then_everything_arrives_once(api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_post_with_the_same_idempotency_key_creates_one_event() {
    let api = Api::sqlite().await;
    let (name, value) = bearer();
    let url = format!("{}/calendar/events", api.base);
    let headers = [(name, value.as_str()), ("Idempotency-Key", "create-deal-7")];
    let body = new_event("7", "Once");
    let first_body = body.clone();
    let (first_status, _, first) =
        http_with_headers("POST", &url, &headers, Some(body.clone())).await;
    let (second_status, second_headers, second) =
        http_with_headers("POST", &url, &headers, Some(body)).await;
    assert_eq!((first_status, second_status), (202, 202));
    assert_eq!(first["id"], second["id"], "the first result comes back");
    assert_eq!(second_headers["idempotent-replayed"], "true");
    api.pushed(first["id"].as_str().unwrap()).await;
    assert_eq!(api.at_google("7").len(), 1);
    let (_, page) = api
        .call("GET", "/calendar/events?entityType=deal&entityId=7", None)
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "one event in the mirror"
    );

    let (status, _, error) =
        http_with_headers("POST", &url, &headers, Some(new_event("7", "Other body"))).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // Another API client with the same key and body is refused, not handed this event.
    let other = format!("Bearer {OTHER_TOKEN}");
    let (status, _, error) = http_with_headers(
        "POST",
        &url,
        &[
            ("Authorization", &other),
            ("Idempotency-Key", "create-deal-7"),
        ],
        Some(first_body),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{error}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_with_a_stale_etag_is_412_and_a_delete_cancels_here_and_at_google() {
    let api = Api::sqlite().await;
    let (_, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(new_event("9", "Draft")),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first_etag = created["etag"].as_str().unwrap().to_owned();
    let (name, value) = bearer();
    let path = format!("{}/calendar/events/{id}?wait=true", api.base);
    let (status, _, patched) = http_with_headers(
        "PATCH",
        &path,
        &[(name, &value), ("If-Match", &first_etag)],
        Some(json!({"summary": "Final", "description": null})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_ne!(patched["etag"].as_str(), Some(first_etag.as_str()));
    assert_eq!(api.at_google("9")[0]["summary"], "Final");

    let (status, _, stale) = http_with_headers(
        "PATCH",
        &path,
        &[(name, &value), ("If-Match", &first_etag)],
        Some(json!({"summary": "Lost update"})),
    )
    .await;
    assert_eq!(
        (status, stale["error"]["code"].as_str()),
        (412, Some("precondition_failed"))
    );
    assert_eq!(
        api.at_google("9")[0]["summary"],
        "Final",
        "nothing reached Google"
    );

    // Someone changes the event in Google: our etag is now stale there too.
    let google_id = created["googleEventId"].as_str().unwrap();
    let Value::Object(change) = json!({"summary": "Edited in Google"}) else {
        unreachable!()
    };
    api.emulator()
        .change(
            "primary",
            Change::Patch {
                id: google_id.to_owned(),
                fields: change,
            },
        )
        .unwrap();
    let current_etag = patched["etag"].as_str().unwrap();
    let (status, _, refused) = http_with_headers(
        "PATCH",
        &path,
        &[(name, &value), ("If-Match", current_etag)],
        Some(json!({"summary": "Overwrite"})),
    )
    .await;
    assert_eq!(status, 412, "Google refuses the lost update: {refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("conflict")),
        "{refused}"
    );
    // The caller demanded that etag: a conflict, Google's version kept.
    assert_eq!(refused["event"]["pushState"], "conflict");
    assert_ne!(api.at_google("9")[0]["summary"], "Overwrite");

    let (status, deleted) = api
        .call("DELETE", &format!("/calendar/events/{id}?wait=true"), None)
        .await;
    assert_eq!(
        (status, deleted["status"].as_str()),
        (200, Some("cancelled")),
        "{deleted}"
    );
    assert_eq!(api.at_google("9")[0]["status"], "cancelled");
    let (_, event) = api
        .call("GET", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(
        (event["status"].as_str(), event["pushState"].as_str()),
        (Some("cancelled"), Some("synced"))
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_a_4xx_naming_the_field() {
    let api = Api::sqlite().await;
    // `None`: the field is named in the message (serde's own wording).
    let cases = [
        (json!({"entityType": "deal"}), None),
        (
            json!({"entityType": "deal", "entityId": "1", "start": {"dateTime": "tomorrow"}, "end": {"date": "2026-12-02"}}),
            Some("start.dateTime"),
        ),
        (
            json!({"entityType": "deal", "entityId": "1", "start": {"date": "2026-12-02"}, "end": {"date": "2026-12-02"}}),
            Some("end"),
        ),
        (
            json!({"entityType": "bad type!", "entityId": "1", "start": {"date": "2026-12-01"}, "end": {"date": "2026-12-02"}}),
            Some("entityType"),
        ),
        (
            json!({"entityType": "deal", "entityId": "1", "start": {"date": "2026-12-01"}, "end": {"date": "2026-12-02"}, "attendees": [{"email": "nope"}]}),
            Some("attendees[0].email"),
        ),
        (
            json!({"entityType": "deal", "entityId": "1", "start": {"date": "2026-12-01"}, "end": {"date": "2026-12-02"}, "colour": "red"}),
            None,
        ),
    ];
    for (body, field) in cases {
        let (status, error) = api
            .call("POST", "/calendar/events", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} -> {error}");
        let named = error["error"]["field"].as_str();
        let message = error["error"]["message"].as_str().unwrap_or_default();
        match field {
            Some(field) => assert_eq!(named, Some(field), "{body} -> {error}"),
            None => assert!(
                message.contains("entityId") || message.contains("colour"),
                "{body} -> {error}"
            ),
        }
    }
    for (path, status) in [
        ("/calendar/events/not-a-uuid", 404),
        ("/calendar/events?limit=0", 400),
        ("/calendar/events?timeMin=yesterday", 400),
        ("/calendar/events?entityType=deal", 400),
        ("/calendar/events?pageToken=garbage", 400),
        ("/calendar/events?sort=asc", 400),
    ] {
        let (got, error) = api.call("GET", path, None).await;
        assert_eq!(got, status, "{path}: {error}");
        assert!(error["error"]["code"].is_string(), "{path}: {error}");
    }
    let (status, error) = http(
        "POST",
        &format!("{}/calendar/events", api.base),
        &[],
        Some(new_event("1", "x")),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let huge =
        json!({"entityType": "deal", "entityId": "1", "description": "x".repeat(300 * 1024)});
    let (status, error) = api.call("POST", "/calendar/events", Some(huge)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "bodies are size-capped: {error}"
    );
    for (method, path, status) in [
        ("GET", "/calendar/nowhere", 404),
        ("GET", "/nowhere/at/all", 404),
        ("PUT", "/calendar/events", 405),
        ("GET", "/health/nowhere", 404),
    ] {
        let (got, error) = api.call(method, path, None).await;
        assert_eq!(got, status, "{method} {path}: {error}");
        assert!(
            error["error"]["code"].is_string(),
            "{method} {path}: {error}"
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_page_by_cursor_without_gaps_or_repeats() {
    let api = Api::sqlite().await;
    for i in 0..7 {
        let (status, _) = api
            .call(
                "POST",
                "/calendar/events",
                Some(new_event(&format!("p{i}"), "Paged")),
            )
            .await;
        assert_eq!(status, 202);
    }
    let mut seen = Vec::new();
    let mut path = "/calendar/events?limit=3".to_owned();
    loop {
        let (status, page) = api.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(token) => path = format!("/calendar/events?limit=3&pageToken={token}"),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (7, 7));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_degrades_on_a_lapsed_channel_or_a_failed_push_and_recovers() {
    let api = Api::sqlite().await;
    let health = || async {
        let (status, report) = api.call("GET", "/health/calendar", None).await;
        assert_eq!(status, 200, "{report}");
        report
    };
    let codes = |report: &Value| -> Vec<String> {
        report["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, channel) = api
        .call("POST", "/calendar/channels", Some(json!({})))
        .await;
    assert_eq!(status, 201);
    let healthy = eventually(Duration::from_secs(15), || async {
        health().await["status"] == "healthy"
    })
    .await;
    assert!(healthy, "{}", health().await);

    // The channel lapses (stopped, nothing renews it): degraded.
    let channel_id = channel["id"].as_str().unwrap();
    let (status, _) = api
        .call("DELETE", &format!("/calendar/channels/{channel_id}"), None)
        .await;
    assert_eq!(status, 200);
    let report = health().await;
    assert_eq!(report["status"], "degraded");
    assert!(
        codes(&report).contains(&"no_active_channels".to_owned()),
        "{report}"
    );
    api.call("POST", "/calendar/channels", Some(json!({})))
        .await;
    assert_eq!(health().await["status"], "healthy");

    // Google refuses an insert for good: the event fails, health says so.
    api.emulator()
        .schedule_fault(Some("insert"), 1, Fault::status(400).with_reason("invalid"));
    let (status, failed) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(new_event("f1", "Refused")),
        )
        .await;
    assert_eq!(
        (status, failed["error"]["code"].as_str()),
        (502, Some("google_refused")),
        "{failed}"
    );
    assert_eq!(failed["event"]["pushState"], "failed");
    let report = health().await;
    assert!(
        codes(&report).contains(&"push_failures".to_owned()),
        "{report}"
    );
    assert_eq!(report["eventsPushFailed"], 1);

    // Cancelling the failed event resolves it.
    let id = failed["event"]["id"].as_str().unwrap();
    let (status, _) = api
        .call("DELETE", &format!("/calendar/events/{id}?wait=true"), None)
        .await;
    assert_eq!(status, 200);
    let report = health().await;
    assert_eq!(report["status"], "healthy", "{report}");
    assert_eq!(
        report["outboxDeadLetters"], 1,
        "the dead letter stays as history"
    );

    let (live, _) = api.call("GET", "/health/live", None).await;
    let (ready, _) = api.call("GET", "/health/ready", None).await;
    assert_eq!((live, ready), (200, 200));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_webhooks_google_calls_and_the_outbox() {
    let api = Api::sqlite().await;
    let (_, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(new_event("m1", "Measured")),
        )
        .await;
    assert_eq!(created["pushState"], "synced");
    api.call("POST", "/calendar/channels", Some(json!({})))
        .await;
    let (status, _) = http(
        "POST",
        &format!("{}/webhooks/calendar", api.base),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400);
    let url = format!("{}/metrics", api.base);
    let (name, value) = bearer();
    let (status, headers, _) = http_with_headers("GET", &url, &[(name, &value)], None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let needles = [
        "calsync_http_requests_total{route=\"/calendar/events\",method=\"POST\",status=\"201\"} 1",
        "calsync_webhook_notifications_total{source=\"calendar\",outcome=\"missing_header\"} 1",
        "calsync_google_calls_total{op=\"insert\",outcome=\"success\"} 1",
        "calsync_outbox_pushes_total{outcome=\"pushed\"} 1",
        "calsync_outbox_pending 0",
        // The channel's initial sync finishes in the background.
        "# TYPE calsync_sync_duration_seconds histogram",
    ];
    let mut text = String::new();
    for _ in 0..100 {
        text = raw_get(&url).await;
        if needles.iter().all(|needle| text.contains(needle)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for needle in needles {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    api.stop().await;
}

async fn raw_get(url: &str) -> String {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_route_is_served_and_every_served_route_is_documented() {
    let api = Api::sqlite().await;
    let (status, spec) = http("GET", &format!("{}/openapi.json", api.base), &[], None).await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    // `calsync_http::ROUTES` is generated from the same declaration that
    // mounts the routes, so this compares the document with what is served.
    let mut served: Vec<(String, String)> = calsync_http::ROUTES
        .iter()
        .map(|(method, path)| (method.to_uppercase(), (*path).to_owned()))
        .collect();
    served.sort();
    assert!(served.len() >= 16, "{served:?}");
    assert_eq!(
        documented, served,
        "the OpenAPI document drifted from the routes"
    );
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let (status, body) = api.call(method, &concrete, None).await;
        let code = body["error"]["code"].as_str();
        assert!(
            status != 405 && code != Some("no_route") && code != Some("method_not_allowed"),
            "{method} {path} is documented but not routed ({status} {body})"
        );
    }
    api.stop().await;
}
