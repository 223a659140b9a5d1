//! The routes, driven through actix's test service against the in-memory ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::{
    ChannelStore, DriveNotificationSink, DriveNotificationStore, SyncStateStore,
};
use calsync_domain::services::{Services, ServicesConfig};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::{DriveNotification, WebhookSecret};
use calsync_http::{ApiTokens, AppState, configure};
use calsync_resilience::{RateLimitConfig, RateLimiter};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TOKEN: &str = "test-api-token-0123456789";

struct World {
    store: Arc<MemoryStore>,
    google: Arc<FakeCalendar>,
    secret: WebhookSecret,
    stops: mpsc::UnboundedReceiver<(CalendarId, ChannelId, ResourceId)>,
    drive_calls: Arc<AtomicUsize>,
    state: web::Data<AppState>,
}

struct CountingSink(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl DriveNotificationSink for CountingSink {
    async fn drive_changed(&self, _: &DriveNotification) -> calsync_domain::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn world(webhook_burst: u32) -> World {
    world_logging(webhook_burst, slog::Logger::root(slog::Discard, slog::o!()))
}

fn world_logging(webhook_burst: u32, logger: slog::Logger) -> World {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let secret = WebhookSecret::new("webhook-secret-0123456789").unwrap();
    let (sender, stops) = mpsc::unbounded_channel();
    let drive_calls = Arc::new(AtomicUsize::new(0));
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock,
        ServicesConfig::new(
            secret.clone(),
            "https://calsync.example.com/webhooks/calendar",
        ),
    );
    let state = web::Data::new(
        AppState::builder(&services)
            .write_wait(Duration::from_millis(200))
            .drive_sink(Arc::new(CountingSink(drive_calls.clone())))
            .api_tokens(ApiTokens::parse(TOKEN).unwrap())
            .default_calendar(Some(CalendarId::new("team@example.com").unwrap()))
            .webhook_limiter(
                RateLimiter::new(RateLimitConfig {
                    project_per_minute: 100_000,
                    per_key_per_minute: 1,
                    project_burst: 1000,
                    per_key_burst: webhook_burst,
                })
                .unwrap(),
            )
            .channel_stops(sender)
            .logger(logger)
            .build(),
    );
    World {
        store,
        google,
        secret,
        stops,
        drive_calls,
        state,
    }
}

async fn call(w: &World, request: test::TestRequest) -> (u16, Value) {
    let app = test::init_service(App::new().configure(configure(w.state.clone()))).await;
    let response: ServiceResponse = app.call(request.to_request()).await.unwrap();
    let status = response.status().as_u16();
    let body = test::read_body(response).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn push(channel: &str, token: Option<&str>, resource: &str, state: &str) -> test::TestRequest {
    let mut request = test::TestRequest::post()
        .uri("/webhooks/calendar")
        .insert_header(("X-Goog-Channel-ID", channel))
        .insert_header(("X-Goog-Message-Number", "2"))
        .insert_header(("X-Goog-Resource-ID", resource))
        .insert_header((
            "X-Goog-Resource-URI",
            "https://www.googleapis.com/calendar/v3/calendars/team%40example.com/events",
        ))
        .insert_header(("X-Goog-Resource-State", state))
        .peer_addr("203.0.113.7:4000".parse().unwrap());
    if let Some(token) = token {
        request = request.insert_header(("X-Goog-Channel-Token", token));
    }
    request
}

fn authorized(request: test::TestRequest) -> test::TestRequest {
    request.insert_header(("Authorization", format!("Bearer {TOKEN}")))
}

async fn watched(w: &World) -> (String, String) {
    let (status, channel) = call(
        w,
        authorized(test::TestRequest::post().uri("/calendar/channels")).set_json(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{channel}");
    (
        channel["id"].as_str().unwrap().to_owned(),
        channel["resourceId"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn a_valid_calendar_notification_marks_the_calendar() {
    let w = world(100);
    let (channel, resource) = watched(&w).await;
    // As after the initial sync: clean.
    let calendar = CalendarId::new("team@example.com").unwrap();
    let now = chrono::Utc::now();
    let lease = w
        .store
        .lease_calendar(&calendar, "test", now, now + chrono::Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    w.store
        .release_lease(
            &lease,
            &calsync_domain::sync::SyncOutcome::Succeeded {
                full: true,
                rest_until: None,
            },
            now,
        )
        .await
        .unwrap();
    let before = w
        .store
        .sync_state(&calendar)
        .await
        .unwrap()
        .unwrap()
        .dirty_seq;
    let token = w.secret.channel_token(&ChannelId::new(&channel).unwrap());
    let (status, _) = call(&w, push(&channel, Some(&token), &resource, "exists")).await;
    assert_eq!(status, 200);
    let after = w
        .store
        .sync_state(&CalendarId::new("team@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .dirty_seq;
    assert_eq!(after, before + 1);
    assert_eq!(
        w.google.calls("list"),
        0,
        "no Google call on the request path"
    );
}

#[actix_web::test]
async fn wrong_or_missing_tokens_are_forbidden_and_change_nothing() {
    let w = world(100);
    let (channel, resource) = watched(&w).await;
    let before = w
        .store
        .sync_state(&CalendarId::new("team@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    for token in [Some("0".repeat(64)), Some("not-even-hex".to_owned()), None] {
        let (status, body) = call(&w, push(&channel, token.as_deref(), &resource, "exists")).await;
        assert_eq!(status, 403, "{token:?}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let after = w
        .store
        .sync_state(&CalendarId::new("team@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.dirty_seq, before.dirty_seq);
}

#[actix_web::test]
async fn malformed_headers_are_400_naming_the_header() {
    let w = world(100);
    let (status, body) = call(&w, push("chan", None, "res", "bogus")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["header"], "X-Goog-Resource-State");
    let missing = test::TestRequest::post()
        .uri("/webhooks/calendar")
        .insert_header(("X-Goog-Channel-ID", "c"));
    let (status, body) = call(&w, missing).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_header"))
    );
}

#[actix_web::test]
async fn a_signed_notification_for_an_unknown_channel_is_acknowledged_and_stopped() {
    let mut w = world(100);
    let stranger = ChannelId::new("old-channel").unwrap();
    let token = w.secret.channel_token(&stranger);
    let (status, _) = call(&w, push("old-channel", Some(&token), "res-old", "exists")).await;
    assert_eq!(status, 200);
    let (calendar, channel, resource) = w.stops.try_recv().unwrap();
    assert_eq!(
        (calendar.as_str(), channel.as_str(), resource.as_str()),
        ("team@example.com", "old-channel", "res-old"),
        "stopped as the principal of the calendar its resource URI names"
    );
}

#[actix_web::test]
async fn drive_notifications_are_recorded_and_handed_to_the_sink() {
    let w = world(100);
    let channel = ChannelId::new("drive-1").unwrap();
    let request = |token: &str| {
        test::TestRequest::post()
            .uri("/webhooks/drive")
            .insert_header(("X-Goog-Channel-ID", "drive-1"))
            .insert_header(("X-Goog-Channel-Token", token.to_owned()))
            .insert_header(("X-Goog-Message-Number", "3"))
            .insert_header(("X-Goog-Resource-ID", "file-res"))
            .insert_header((
                "X-Goog-Resource-URI",
                "https://www.googleapis.com/drive/v3/files/abc",
            ))
            .insert_header(("X-Goog-Resource-State", "update"))
            .insert_header(("X-Goog-Changed", "content,properties"))
    };
    assert_eq!(call(&w, request("nope")).await.0, 403);
    assert_eq!(w.drive_calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        call(&w, request(&w.secret.channel_token(&channel))).await.0,
        200
    );
    assert_eq!(w.drive_calls.load(Ordering::SeqCst), 1);
    let recorded = w.store.recent_drive_notifications(5).await.unwrap();
    assert_eq!(
        recorded[0].0.changed,
        vec!["content".to_owned(), "properties".to_owned()]
    );
}

#[actix_web::test]
async fn a_flooding_source_is_throttled() {
    let w = world(2);
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(call(&w, push("chan", None, "res", "exists")).await.0);
        }
        out
    };
    assert_eq!(
        statuses,
        vec![403, 403, 503],
        "throttled with a status Google retries"
    );
}

#[actix_web::test]
async fn a_forged_forwarded_for_does_not_escape_the_throttle() {
    let w = world(2);
    let peer: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let forged = format!("10.0.0.{i}, {}", "x".repeat(4096));
        let request = push("chan", None, "res", "exists")
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", forged.as_str()))
            .insert_header(("Forwarded", format!("for={i}").as_str()));
        statuses.push(call(&w, request).await.0);
    }
    assert_eq!(
        statuses,
        vec![403, 403, 503],
        "one peer is one source, whatever it claims"
    );
}

#[actix_web::test]
async fn oversized_bodies_are_refused() {
    let w = world(100);
    let (status, _) = call(
        &w,
        push("chan", None, "res", "exists").set_payload(vec![b'x'; 32 * 1024]),
    )
    .await;
    assert_eq!(status, 413);
}

#[actix_web::test]
async fn the_channel_api_needs_a_token_and_says_what_is_wrong() {
    let w = world(100);
    let (status, body) = call(&w, test::TestRequest::get().uri("/calendar/channels")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let wrong = test::TestRequest::get()
        .uri("/calendar/channels")
        .insert_header(("Authorization", "Bearer wrong-token-0123456789"));
    assert_eq!(call(&w, wrong).await.0, 401);

    let (channel, _) = watched(&w).await;
    let (status, body) = call(
        &w,
        authorized(test::TestRequest::get().uri("/calendar/channels?status=active")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["id"], channel.as_str());
    assert_eq!(body["items"][0]["status"], "active");
    let (status, body) = call(
        &w,
        authorized(test::TestRequest::get().uri("/calendar/channels?status=sleeping")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("status"))
    );

    let (status, body) = call(
        &w,
        authorized(test::TestRequest::delete().uri(&format!("/calendar/channels/{channel}"))),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("stopped")));
    assert!(
        w.google.active_channels().is_empty(),
        "stopped at Google too"
    );
    assert!(
        w.store
            .list_channels(Some(calsync_domain::channel::ChannelStatus::Active))
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = call(
        &w,
        authorized(test::TestRequest::delete().uri("/calendar/channels/unknown")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let bad = authorized(test::TestRequest::post().uri("/calendar/channels"))
        .set_json(json!({"calendarId": "has space"}));
    let (status, body) = call(&w, bad).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("calendarId"))
    );
    let garbage = authorized(test::TestRequest::post().uri("/calendar/channels"))
        .insert_header(("Content-Type", "application/json"))
        .set_payload("{not json");
    let (status, body) = call(&w, garbage).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("body"))
    );
}

#[actix_web::test]
async fn google_failures_while_watching_are_mapped_not_500() {
    let w = world(100);
    w.google.fail_next(
        Some("watch"),
        calsync_domain::Error::provider(calsync_domain::ProviderErrorKind::Transient, "503"),
    );
    let (status, body) = call(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/channels")).set_json(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("google_unavailable"))
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn requests_and_rejections_are_logged_without_tokens() {
    let captured = Captured::default();
    let (logger, guard) = calsync_resilience::json_logger(
        captured.clone(),
        &calsync_resilience::LogConfig::default(),
    );
    let w = world_logging(100, logger);
    let (status, _) = call(&w, push("chan-x", Some("a-forged-token"), "res", "exists")).await;
    assert_eq!(status, 403);
    drop(w);
    drop(guard);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let security = records
        .iter()
        .find(|r| r["security_event"] == true)
        .expect("a security record");
    assert_eq!(security["channel_id"], "chan-x");
    assert_eq!(security["status"], "forbidden");
    let request = records
        .iter()
        .find(|r| r["action"] == "http_request")
        .expect("a request record");
    assert_eq!(
        (request["status"].as_u64(), request["route"].as_str()),
        (Some(403), Some("/webhooks/calendar"))
    );
    assert!(request["duration_ms"].is_u64());
    assert!(!text.contains("a-forged-token"), "tokens are never logged");
}

#[actix_web::test]
async fn invented_methods_do_not_become_metric_labels() {
    let w = world(100);
    for i in 0..40 {
        let method = actix_web::http::Method::from_bytes(
            format!("INVENTED{i}{}", "M".repeat(200)).as_bytes(),
        )
        .unwrap();
        call(
            &w,
            test::TestRequest::default()
                .method(method)
                .uri("/health/live"),
        )
        .await;
    }
    let rendered = w.state.metrics.render();
    assert!(!rendered.contains("INVENTED"), "{rendered}");
    assert!(rendered.contains(r#"method="other""#), "{rendered}");
    assert!(rendered.len() < 20_000, "{} bytes", rendered.len());
}

/// The service graph here has no timer (`ServicesConfig::new`): the routes
/// bring their own, so `?wait=true` still waits for Google's verdict, and
/// the push that lands the write answers it.
#[actix_web::test]
async fn a_write_waiting_for_its_verdict_is_answered_when_the_worker_pushes_it() {
    let w = world(100);
    let events = w.state.events.clone();
    let worker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        events.drain_outbox("worker", 10).await.unwrap()
    });
    let (status, body) = call(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/events?wait=true")).set_json(json!({
            "entityType": "deal", "entityId": "1", "summary": "Kick-off",
            "start": {"dateTime": "2030-01-15T10:00:00+01:00"},
            "end": {"dateTime": "2030-01-15T11:00:00+01:00"},
        })),
    )
    .await;
    assert_eq!(worker.await.unwrap().pushed, 1);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pushState"], "synced", "{body}");
    assert_eq!(
        w.google
            .events(&CalendarId::new("team@example.com").unwrap())
            .len(),
        1
    );
}
