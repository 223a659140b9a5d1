//! The operator console, through actix's test service against the in-memory
//! ports: login and sessions, CSRF and origin checks, each page with seeded
//! data (its DOM contract), the actions, and that no page shows an email
//! address other than a calendar id, or a secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use calsync_domain::calendar::Subject;
use calsync_domain::feed::signature::SigningSecret;
use calsync_domain::feed::subscription::{OutboundRequest, OutboundResponse, SealedSecret};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{SecretKeeper, WebhookSender};
use calsync_domain::services::{
    ActingAs, NewWebhook, Services, ServicesConfig, WebhookAdapters, WebhookPatch,
};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_http::{ApiTokens, AppState, ChangeJson, TrustedProxies, configure};
use calsync_resilience::metrics::OutboxOutcome;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN: &str = "console-test-token-0123456789";
const OTHER_TOKEN: &str = "console-other-token-0123456789";
const CALENDAR: &str = "team@example.com";
/// Addresses that must never appear unmasked on a page.
const SUBJECT: &str = "owner.principal@example.com";
const ATTENDEE: &str = "alice.attendee@example.org";
const ORGANIZER_IN_ERROR: &str = "carol.secret@example.net";
const URL_OWNER: &str = "erin.hooks@example.org";

/// Accepts `https://` URLs and answers `status` (changeable).
struct FakeSender {
    status: AtomicU16,
}

#[async_trait::async_trait]
impl WebhookSender for FakeSender {
    async fn check_url(&self, url: &str) -> calsync_domain::Result<()> {
        if url.starts_with("https://") {
            Ok(())
        } else {
            Err(DomainError::invalid("url", "must use https"))
        }
    }

    async fn send(
        &self,
        _: &OutboundRequest,
        _: Duration,
    ) -> calsync_domain::Result<OutboundResponse> {
        Ok(OutboundResponse {
            status: self.status.load(Ordering::SeqCst),
        })
    }
}

/// "Seals" by hex: the tests need opening, not secrecy.
struct PlainKeeper;

impl SecretKeeper for PlainKeeper {
    fn new_signing_secret(&self) -> calsync_domain::Result<SigningSecret> {
        SigningSecret::from_bytes(uuid::Uuid::new_v4().as_bytes().repeat(2))
    }

    fn seal_bytes(&self, plain: &[u8]) -> calsync_domain::Result<SealedSecret> {
        Ok(SealedSecret(
            plain.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ))
    }

    fn open_bytes(&self, sealed: &SealedSecret) -> calsync_domain::Result<Vec<u8>> {
        Ok((0..sealed.0.len())
            .step_by(2)
            .filter_map(|i| sealed.0.get(i..i + 2))
            .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
            .collect())
    }
}

struct World {
    clock: Arc<ManualClock>,
    google: Arc<FakeCalendar>,
    services: Services,
    sender: Arc<FakeSender>,
    state: web::Data<AppState>,
}

fn world_with(tokens: &str, webhooks: bool) -> World {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let sender = Arc::new(FakeSender {
        status: AtomicU16::new(204),
    });
    let mut services = Services::new(
        store,
        google.clone(),
        clock.clone(),
        ServicesConfig::new(
            WebhookSecret::new("webhook-secret-0123456789").unwrap(),
            "https://calsync.example.com/webhooks/calendar",
        ),
    );
    if webhooks {
        services = services.with_webhooks(WebhookAdapters {
            sender: sender.clone(),
            keeper: Arc::new(PlainKeeper),
            renderer: Arc::new(ChangeJson),
        });
    }
    let state = web::Data::new(
        AppState::builder(&services)
            .api_tokens(ApiTokens::parse(tokens).unwrap())
            .default_calendar(Some(CalendarId::new(CALENDAR).unwrap()))
            .trusted_proxies(TrustedProxies::parse("10.0.0.1").unwrap())
            .write_wait(Duration::from_millis(200))
            .build(),
    );
    World {
        clock,
        google,
        services,
        sender,
        state,
    }
}

fn world() -> World {
    world_with(&format!("{TOKEN},{OTHER_TOKEN}"), true)
}

struct Answer {
    status: u16,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(state: &web::Data<AppState>, request: test::TestRequest) -> Answer {
    let app = test::init_service(App::new().configure(configure(state.clone()))).await;
    let response: ServiceResponse = app.call(request.to_request()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

fn form_post(uri: &str, fields: &[(&str, &str)]) -> test::TestRequest {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Host", "localhost:8080"))
        .set_payload(body)
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Logs in with `token`: the session cookie's value.
async fn login(state: &web::Data<AppState>, token: &str) -> String {
    let answer = send(state, form_post("/console/login", &[("token", token)])).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let set = answer.header("set-cookie").unwrap();
    set.split(';')
        .next()
        .unwrap()
        .strip_prefix("calsync_console=")
        .unwrap()
        .to_owned()
}

fn with_cookie(request: test::TestRequest, cookie: &str) -> test::TestRequest {
    request.insert_header(("Cookie", format!("calsync_console={cookie}")))
}

async fn page(state: &web::Data<AppState>, uri: &str, cookie: &str) -> Answer {
    send(
        state,
        with_cookie(test::TestRequest::get().uri(uri), cookie),
    )
    .await
}

/// The CSRF token the page's forms carry.
fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..start + 64].to_owned()
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cookie signed as the server signs them, for `token`, expiring at `expiry`.
fn signed_cookie(token: &str, expiry: i64) -> String {
    let key = hmac(token.as_bytes(), b"calsync console session v1");
    let nonce = "0123456789abcdef0123456789abcdef";
    let mac = hmac(&key, format!("{expiry}.{nonce}").as_bytes());
    format!("{expiry}.{nonce}.{}", hex(&mac))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

const PAGES: [&str; 4] = [
    "/console",
    "/console/calendars",
    "/console/failed-writes",
    "/console/webhooks",
];

#[actix_web::test]
async fn the_login_form_posts_the_token_to_login() {
    let w = world();
    let answer = send(&w.state, test::TestRequest::get().uri("/console/login")).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .contains(r#"<form id="login" method="post" action="/console/login">"#),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(r#"name="token" type="password""#));
    assert!(answer.body.contains(r#"<button type="submit""#));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert!(answer.header("content-security-policy").is_some());
    let css = send(
        &w.state,
        test::TestRequest::get().uri("/console/console.css"),
    )
    .await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
}

#[actix_web::test]
async fn a_wrong_token_is_refused_without_a_cookie() {
    let w = world();
    for token in ["wrong-token-0123456789", "", TOKEN.trim_end_matches('9')] {
        let answer = send(&w.state, form_post("/console/login", &[("token", token)])).await;
        assert_eq!(answer.status, 401, "{token:?}");
        assert!(answer.header("set-cookie").is_none(), "{token:?}");
        assert!(
            answer.body.contains(r#"<form id="login""#),
            "the form again"
        );
        assert!(answer.body.contains(r#"data-flash="error""#));
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "an HTML page, not the API's JSON"
        );
    }
    // No body at all.
    let bare = send(
        &w.state,
        test::TestRequest::post()
            .uri("/console/login")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded")),
    )
    .await;
    assert_eq!(bare.status, 401);
    assert!(bare.header("set-cookie").is_none());
}

#[actix_web::test]
async fn a_right_token_gets_a_strict_http_only_session_cookie() {
    let w = world();
    let answer = send(&w.state, form_post("/console/login", &[("token", TOKEN)])).await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), Some("/console"));
    let cookie = answer.header("set-cookie").unwrap();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http (a dev server): {cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the token is not the cookie");

    // Behind a trusted proxy that terminated TLS: Secure.
    let proxied = send(
        &w.state,
        form_post("/console/login", &[("token", TOKEN)])
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .insert_header(("X-Forwarded-Proto", "https")),
    )
    .await;
    assert!(
        proxied.header("set-cookie").unwrap().ends_with("; Secure"),
        "{:?}",
        proxied.header("set-cookie")
    );
    // Anyone else's X-Forwarded-Proto is not believed.
    let claimed = send(
        &w.state,
        form_post("/console/login", &[("token", TOKEN)])
            .peer_addr("203.0.113.9:5000".parse().unwrap())
            .insert_header(("X-Forwarded-Proto", "https")),
    )
    .await;
    assert!(!claimed.header("set-cookie").unwrap().contains("Secure"));

    // The cookie opens the pages.
    let value = login(&w.state, TOKEN).await;
    let overview = page(&w.state, "/console", &value).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    // Each configured token logs in.
    let other = login(&w.state, OTHER_TOKEN).await;
    assert_eq!(page(&w.state, "/console", &other).await.status, 200);
}

#[actix_web::test]
async fn pages_without_a_valid_session_redirect_to_the_login() {
    let w = world();
    let now = unix_now();
    let good = signed_cookie(TOKEN, now + 3600);
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("none", None),
        ("garbage", Some("garbage".to_owned())),
        ("expired", Some(signed_cookie(TOKEN, now - 1))),
        ("tampered", Some(tampered)),
        (
            "extended expiry",
            Some(good.replacen(&(now + 3600).to_string(), &(now + 7200).to_string(), 1)),
        ),
        (
            "signed by an unknown token",
            Some(signed_cookie("not-a-configured-token-0123", now + 3600)),
        ),
        (
            "signed with the token, not its session key",
            Some({
                let nonce = "0123456789abcdef0123456789abcdef";
                let expiry = now + 3600;
                let mac = hmac(TOKEN.as_bytes(), format!("{expiry}.{nonce}").as_bytes());
                format!("{expiry}.{nonce}.{}", hex(&mac))
            }),
        ),
    ];
    for uri in PAGES {
        for (case, cookie) in &cases {
            let mut request = test::TestRequest::get().uri(uri);
            if let Some(cookie) = cookie {
                request = with_cookie(request, cookie);
            }
            let answer = send(&w.state, request).await;
            assert_eq!(answer.status, 303, "{uri} with {case}");
            assert_eq!(
                answer.header("location"),
                Some("/console/login"),
                "{uri} with {case}"
            );
        }
        // The well-formed cookie, as the server makes them, is accepted.
        assert_eq!(page(&w.state, uri, &good).await.status, 200, "{uri}");
    }

    // A token removed from the configuration ends its sessions.
    let cookie = login(&w.state, OTHER_TOKEN).await;
    let reconfigured = world_with(TOKEN, true);
    assert_eq!(
        page(&reconfigured.state, "/console", &cookie).await.status,
        303
    );
    // Another server with the same token accepts it: no shared store needed.
    let replica = world_with(&format!("{OTHER_TOKEN},{TOKEN}"), false);
    assert_eq!(page(&replica.state, "/console", &cookie).await.status, 200);
}

#[actix_web::test]
async fn an_action_needs_the_sessions_csrf_token() {
    let w = world();
    w.state
        .calendars
        .add(&CalendarId::new(CALENDAR).unwrap(), ActingAs::Default)
        .await
        .unwrap();
    let cookie = login(&w.state, TOKEN).await;
    let other = login(&w.state, OTHER_TOKEN).await;
    let csrf = csrf_of(&page(&w.state, "/console/calendars", &cookie).await.body);
    let other_csrf = csrf_of(&page(&w.state, "/console/calendars", &other).await.body);
    assert_ne!(csrf, other_csrf);
    for (case, fields) in [
        ("no csrf", vec![("calendar", CALENDAR)]),
        ("empty csrf", vec![("calendar", CALENDAR), ("csrf", "")]),
        (
            "wrong csrf",
            vec![("calendar", CALENDAR), ("csrf", &"0".repeat(64))],
        ),
        (
            "another session's csrf",
            vec![("calendar", CALENDAR), ("csrf", &other_csrf)],
        ),
    ] {
        let answer = send(
            &w.state,
            with_cookie(form_post("/console/calendars/stop", &fields), &cookie),
        )
        .await;
        assert_eq!(answer.status, 403, "{case}");
        assert!(answer.body.contains(r#"data-flash="error""#), "{case}");
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Without a session, even with a token from a page: refused, not redirected.
    let answer = send(
        &w.state,
        form_post(
            "/console/calendars/stop",
            &[("calendar", CALENDAR), ("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(answer.status, 403);
    // Nothing was done.
    assert_eq!(w.state.calendars.list().await.unwrap().len(), 1);

    let answer = send(
        &w.state,
        with_cookie(
            form_post(
                "/console/calendars/stop",
                &[("calendar", CALENDAR), ("csrf", &csrf)],
            ),
            &cookie,
        ),
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.header("location"),
        Some("/console/calendars?done=stopped")
    );
    assert!(w.state.calendars.list().await.unwrap().is_empty());
}

#[actix_web::test]
async fn a_cross_site_post_is_refused_even_with_session_and_csrf() {
    let w = world();
    w.state
        .calendars
        .add(&CalendarId::new(CALENDAR).unwrap(), ActingAs::Default)
        .await
        .unwrap();
    let cookie = login(&w.state, TOKEN).await;
    let csrf = csrf_of(&page(&w.state, "/console/calendars", &cookie).await.body);
    let fields = [("calendar", CALENDAR), ("csrf", csrf.as_str())];
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Origin", "http://localhost:9999"),
        ("Origin", "https://localhost:8080.evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let answer = send(
            &w.state,
            with_cookie(form_post("/console/calendars/stop", &fields), &cookie)
                .insert_header((header, value)),
        )
        .await;
        assert_eq!(answer.status, 403, "{header}: {value}");
    }
    assert_eq!(w.state.calendars.list().await.unwrap().len(), 1);
    // The login too, even with the right token.
    let answer = send(
        &w.state,
        form_post("/console/login", &[("token", TOKEN)])
            .insert_header(("Origin", "https://evil.example")),
    )
    .await;
    assert_eq!(answer.status, 403);
    assert!(answer.header("set-cookie").is_none());
    // Its own origin passes.
    let answer = send(
        &w.state,
        with_cookie(form_post("/console/calendars/sync", &fields), &cookie)
            .insert_header(("Origin", "http://localhost:8080"))
            .insert_header(("Sec-Fetch-Site", "same-origin")),
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.header("location"),
        Some("/console/calendars?done=synced")
    );
}

/// A managed calendar (synced once, with a principal), an event with an
/// attendee, a write Google refused with an address in its error, a webhook
/// subscription (with an address in its URL) that failed and was disabled,
/// and some activity.
async fn seed(w: &World) -> (String, String) {
    let calendar = CalendarId::new(CALENDAR).unwrap();
    let webhooks = w.state.webhooks.as_ref().unwrap();
    let (subscription, secret) = webhooks
        .create(NewWebhook {
            url: format!("https://hooks.example.com/in?owner={URL_OWNER}"),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    w.state
        .calendars
        .add(&calendar, ActingAs::Subject(Subject::new(SUBJECT).unwrap()))
        .await
        .unwrap();
    w.services.sync.sync_next_dirty("test").await.unwrap();
    let (status, created) = api(
        w,
        test::TestRequest::post().uri("/calendar/events"),
        json!({
            "entityType": "deal", "entityId": "1",
            "summary": "Planning",
            "start": {"dateTime": "2030-01-15T10:00:00Z"},
            "end": {"dateTime": "2030-01-15T11:00:00Z"},
            "attendees": [{"email": ATTENDEE}],
        }),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    w.state.events.drain_outbox("test", 10).await.unwrap();
    w.google.fail_next(
        Some("insert"),
        DomainError::provider(
            ProviderErrorKind::Permanent,
            format!("Invalid organizer {ORGANIZER_IN_ERROR} for calendar {CALENDAR}"),
        ),
    );
    let (status, refused) = api(
        w,
        test::TestRequest::post().uri("/calendar/events"),
        json!({
            "entityType": "deal", "entityId": "2",
            "summary": format!("Review with {ATTENDEE}"),
            "start": {"dateTime": "2030-01-16T10:00:00Z"},
            "end": {"dateTime": "2030-01-16T11:00:00Z"},
            "attendees": [{"email": ATTENDEE}],
        }),
    )
    .await;
    assert_eq!(status, 202, "{refused}");
    let report = w.state.events.drain_outbox("test", 10).await.unwrap();
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    // The feed's changes fail to reach the receiver, then it is disabled.
    w.sender.status.store(500, Ordering::SeqCst);
    let delivered = webhooks.deliver_due("test", 10).await.unwrap();
    assert!(delivered.failed > 0, "{delivered:?}");
    webhooks
        .update(
            &subscription.id,
            WebhookPatch {
                enabled: Some(false),
                ..WebhookPatch::default()
            },
        )
        .await
        .unwrap();
    w.state
        .metrics
        .count_outbox_pushes(OutboxOutcome::DeadLettered, 1);
    w.state
        .metrics
        .count_sync(calsync_resilience::metrics::SyncMode::Full, "success");
    (refused["id"].as_str().unwrap().to_owned(), secret.expose())
}

async fn api(w: &World, request: test::TestRequest, body: Value) -> (u16, Value) {
    let answer = send(
        &w.state,
        request
            .insert_header(("Authorization", format!("Bearer {TOKEN}")))
            .set_json(body),
    )
    .await;
    (
        answer.status,
        serde_json::from_str(&answer.body).unwrap_or(Value::Null),
    )
}

/// The text of the element carrying `attribute` (an attribute and its
/// value, as rendered), up to the next tag.
fn text_of<'a>(html: &'a str, attribute: &str) -> &'a str {
    let at = html
        .find(attribute)
        .unwrap_or_else(|| panic!("no {attribute} in\n{html}"));
    let open_end = at + html[at..].find('>').unwrap() + 1;
    let close = open_end + html[open_end..].find('<').unwrap();
    &html[open_end..close]
}

#[actix_web::test]
async fn every_page_renders_the_seeded_state_and_no_address_but_calendar_ids() {
    let w = world();
    let (failed_event, secret) = seed(&w).await;
    w.clock.advance(Duration::from_secs(90));
    let cookie = login(&w.state, TOKEN).await;

    let overview = page(&w.state, "/console", &cookie).await;
    assert_eq!(overview.status, 200);
    let html = &overview.body;
    for (figure, value) in [
        ("status", "degraded"),
        ("calendars", "1"),
        ("active-events", "2"),
        ("outbox-pending", "0"),
        ("outbox-quota-waiting", "0"),
        ("outbox-dead-letters", "1"),
        ("sync-lag-secs", "90"),
        ("webhooks-failing", "1"),
    ] {
        assert_eq!(
            text_of(html, &format!(r#"data-figure="{figure}""#)),
            value,
            "{figure}"
        );
    }
    for chart in ["syncs", "pushes", "deliveries"] {
        assert!(
            html.contains(&format!(r#"<svg data-chart="{chart}""#)),
            "{chart}"
        );
    }
    assert_eq!(text_of(html, r#"data-total="dead_lettered""#), "1");
    assert_eq!(text_of(html, r#"data-total="success""#), "1");
    assert_eq!(text_of(html, r#"data-total="delivered""#), "0");
    assert!(html.contains("replica"), "says the charts are per replica");
    for nav in ["overview", "calendars", "failed-writes", "webhooks"] {
        assert!(html.contains(&format!(r#"data-nav="{nav}""#)), "{nav}");
    }

    let calendars = page(&w.state, "/console/calendars", &cookie).await;
    assert_eq!(calendars.status, 200);
    let html = &calendars.body;
    assert!(html.contains(&format!(r#"<tr data-calendar-id="{CALENDAR}">"#)));
    for action in ["sync", "resync", "stop"] {
        assert!(
            html.contains(&format!(r#"data-action="{action}""#)),
            "{action}"
        );
    }
    assert!(html.contains("o***@example.com"), "the principal, masked");

    let failed = page(&w.state, "/console/failed-writes", &cookie).await;
    assert_eq!(failed.status, 200);
    let html = &failed.body;
    assert!(
        html.contains(&format!(r#"<tr data-event-id="{failed_event}">"#)),
        "{html}"
    );
    for action in ["retry", "discard"] {
        assert!(
            html.contains(&format!(r#"data-action="{action}""#)),
            "{action}"
        );
    }
    let error = text_of(html, r#"data-field="error""#);
    assert!(error.contains("c***@example.net"), "{error}");
    assert!(error.contains(CALENDAR), "calendar ids stay: {error}");
    assert!(html.contains("insert"), "the request that failed");

    let webhooks = page(&w.state, "/console/webhooks", &cookie).await;
    assert_eq!(webhooks.status, 200);
    let html = &webhooks.body;
    assert!(
        html.contains(r#"<section class="webhook" data-webhook-id="wh_"#),
        "{html}"
    );
    assert_eq!(text_of(html, r#"data-field="enabled""#), "false");
    assert!(html.contains(r#"data-action="enable""#));
    assert!(html.contains(r#"<tr data-cursor="c"#), "{html}");
    assert!(html.contains(r#"data-action="replay""#));
    assert!(
        html.contains("e***@example.org"),
        "the URL's address, masked"
    );

    for answer in [&overview, &calendars, &failed, &webhooks] {
        for address in [SUBJECT, ATTENDEE, ORGANIZER_IN_ERROR, URL_OWNER] {
            assert!(!answer.body.contains(address), "{address} shown");
            assert!(
                !answer.body.contains(&address.replace('@', "%40")),
                "{address} shown encoded"
            );
        }
        for secret in [secret.as_str(), TOKEN, OTHER_TOKEN] {
            assert!(!answer.body.contains(secret), "a secret shown");
        }
        assert!(!answer.body.contains(&cookie), "the session cookie shown");
    }
}

#[actix_web::test]
async fn the_actions_act_and_say_so() {
    let w = world();
    let (failed_event, _) = seed(&w).await;
    let cookie = login(&w.state, TOKEN).await;
    let csrf = csrf_of(&page(&w.state, "/console/failed-writes", &cookie).await.body);
    let post = |uri: &'static str, fields: Vec<(&'static str, String)>| {
        let mut all: Vec<(&str, String)> = fields;
        all.push(("csrf", csrf.clone()));
        let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with_cookie(form_post(uri, &borrowed), &cookie)
    };

    // Retry: requeued, and the outbox pushes it.
    let answer = send(
        &w.state,
        post(
            "/console/failed-writes/retry",
            vec![("event", failed_event.clone())],
        ),
    )
    .await;
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, Some("/console/failed-writes?done=retried"))
    );
    let after = page(&w.state, "/console/failed-writes?done=retried", &cookie).await;
    assert!(after.body.contains(r#"<p class="flash" data-flash="ok">"#));
    assert!(
        !after
            .body
            .contains(&format!(r#"data-event-id="{failed_event}""#))
    );
    let report = w.state.events.drain_outbox("test", 10).await.unwrap();
    assert_eq!(report.pushed, 1, "{report:?}");

    // Retrying it again: a service error, shown as a flash, not a 500.
    let answer = send(
        &w.state,
        post(
            "/console/failed-writes/retry",
            vec![("event", failed_event.clone())],
        ),
    )
    .await;
    assert_eq!(answer.status, 303);
    let location = answer.header("location").unwrap().to_owned();
    assert!(
        location.starts_with("/console/failed-writes?error="),
        "{location}"
    );
    let shown = page(&w.state, &location, &cookie).await;
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains(r#"data-flash="error""#));
    // Nonsense ids are errors too.
    for action in [
        "/console/failed-writes/retry",
        "/console/failed-writes/discard",
    ] {
        let answer = send(&w.state, post(action, vec![("event", "nope".into())])).await;
        assert_eq!(answer.status, 303, "{action}");
        assert!(answer.header("location").unwrap().contains("?error="));
    }

    // Re-enable the webhook, then replay a delivery.
    let webhooks = w.state.webhooks.as_ref().unwrap();
    let subscription = webhooks.list().await.unwrap().remove(0);
    let id = subscription.id.to_string();
    let answer = send(
        &w.state,
        post("/console/webhooks/enable", vec![("webhook", id.clone())]),
    )
    .await;
    assert_eq!(
        answer.header("location"),
        Some("/console/webhooks?done=enabled")
    );
    assert!(webhooks.get(&subscription.id).await.unwrap().enabled);
    let cursor = webhooks.attempts(&subscription.id, 20).await.unwrap()[0]
        .cursor
        .unwrap()
        .encode();
    w.sender.status.store(200, Ordering::SeqCst);
    let answer = send(
        &w.state,
        post(
            "/console/webhooks/replay",
            vec![("webhook", id.clone()), ("cursor", cursor)],
        ),
    )
    .await;
    assert_eq!(
        answer.header("location"),
        Some("/console/webhooks?done=replayed")
    );
    let html = page(&w.state, "/console/webhooks", &cookie).await.body;
    assert_eq!(text_of(&html, r#"data-field="enabled""#), "true");

    // Sync now and full resync queue syncs; stop managing removes it.
    for (action, done) in [
        ("sync", "synced"),
        ("resync", "resynced"),
        ("stop", "stopped"),
    ] {
        let uri: &'static str = match action {
            "sync" => "/console/calendars/sync",
            "resync" => "/console/calendars/resync",
            _ => "/console/calendars/stop",
        };
        let answer = send(&w.state, post(uri, vec![("calendar", CALENDAR.into())])).await;
        assert_eq!(
            answer.header("location"),
            Some(format!("/console/calendars?done={done}").as_str()),
            "{action}"
        );
    }
    assert!(w.state.calendars.list().await.unwrap().is_empty());
}

#[actix_web::test]
async fn discard_takes_googles_version() {
    let w = world();
    let (failed_event, _) = seed(&w).await;
    let cookie = login(&w.state, TOKEN).await;
    let csrf = csrf_of(&page(&w.state, "/console/failed-writes", &cookie).await.body);
    let answer = send(
        &w.state,
        with_cookie(
            form_post(
                "/console/failed-writes/discard",
                &[("event", &failed_event), ("csrf", &csrf)],
            ),
            &cookie,
        ),
    )
    .await;
    assert_eq!(
        answer.header("location"),
        Some("/console/failed-writes?done=discarded")
    );
    let html = page(&w.state, "/console/failed-writes", &cookie).await.body;
    assert!(!html.contains(&format!(r#"data-event-id="{failed_event}""#)));
    assert!(html.contains("No failed writes."));
}

#[actix_web::test]
async fn flash_messages_from_the_query_are_escaped_masked_and_bounded() {
    let w = world_with(TOKEN, false);
    let cookie = login(&w.state, TOKEN).await;
    let html = page(
        &w.state,
        "/console/calendars?error=%3Cscript%3Ebob%40example.org&done=pwned",
        &cookie,
    )
    .await
    .body;
    assert!(
        html.contains(r#"<p class="flash" data-flash="error">&lt;script&gt;b***@example.org</p>"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"data-flash="ok""#),
        "unknown outcomes are not claimed"
    );
    let webhooks = page(&w.state, "/console/webhooks", &cookie).await;
    assert_eq!(webhooks.status, 200);
    assert!(webhooks.body.contains("not configured"));
    assert!(!webhooks.body.contains("data-webhook-id"));
    let overview = page(&w.state, "/console", &cookie).await.body;
    assert_eq!(text_of(&overview, r#"data-figure="sync-lag-secs""#), "-");
    assert_eq!(text_of(&overview, r#"data-figure="webhooks-failing""#), "0");
}

#[actix_web::test]
async fn logging_out_clears_the_cookie() {
    let w = world();
    let cookie = login(&w.state, TOKEN).await;
    let csrf = csrf_of(&page(&w.state, "/console", &cookie).await.body);
    let refused = send(
        &w.state,
        with_cookie(form_post("/console/logout", &[("csrf", "bad")]), &cookie),
    )
    .await;
    assert_eq!(refused.status, 403);
    let answer = send(
        &w.state,
        with_cookie(form_post("/console/logout", &[("csrf", &csrf)]), &cookie),
    )
    .await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), Some("/console/login"));
    let set = answer.header("set-cookie").unwrap();
    assert!(
        set.starts_with("calsync_console=;") && set.contains("Max-Age=0"),
        "{set}"
    );
}

#[actix_web::test]
async fn the_console_is_not_in_the_api_routes() {
    assert!(
        calsync_http::ROUTES
            .iter()
            .all(|(_, path)| !path.starts_with("/console"))
    );
    let w = world();
    // Unknown console paths answer the API's JSON 404, like any other.
    let answer = send(&w.state, test::TestRequest::get().uri("/console/nope")).await;
    assert_eq!(answer.status, 404);
}
