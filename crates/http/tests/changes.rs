//! The change feed and webhook subscription routes, through actix's test
//! service against the in-memory ports: what they answer (checked against
//! the served OpenAPI document), the 400/404/410/503 paths, and that a
//! webhook delivery's body is exactly an element of `GET /calendar/changes`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test, web};
use calsync_domain::feed::signature::SigningSecret;
use calsync_domain::feed::subscription::{OutboundRequest, OutboundResponse, SealedSecret};
use calsync_domain::feed::{ChangeQuery, Cursor};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{ChangeFeedStore, ChangeRenderer, Clock, SecretKeeper, WebhookSender};
use calsync_domain::services::{Services, ServicesConfig, WebhookAdapters};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_http::{ApiTokens, AppState, ChangeJson, configure};
use serde_json::{Value, json};

const TOKEN: &str = "changes-test-token-0123456789";

/// Accepts `https://` URLs (no DNS here), records what it is asked to send,
/// and answers `status`.
struct FakeSender {
    sent: Mutex<Vec<OutboundRequest>>,
    status: u16,
}

#[async_trait::async_trait]
impl WebhookSender for FakeSender {
    async fn check_url(&self, url: &str) -> calsync_domain::Result<()> {
        if url.starts_with("https://") {
            Ok(())
        } else {
            Err(calsync_domain::Error::invalid("url", "must use https"))
        }
    }

    async fn send(
        &self,
        request: &OutboundRequest,
        _: Duration,
    ) -> calsync_domain::Result<OutboundResponse> {
        self.sent.lock().unwrap().push(request.clone());
        Ok(OutboundResponse {
            status: self.status,
        })
    }
}

/// Seals nothing (the tests look at the routes, not at sealing).
struct PlainKeeper;

impl SecretKeeper for PlainKeeper {
    fn new_signing_secret(&self) -> calsync_domain::Result<SigningSecret> {
        SigningSecret::from_bytes(uuid::Uuid::new_v4().as_bytes().repeat(2))
    }

    // "Seals" by hex: the test needs opening, not secrecy.
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
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    sender: Arc<FakeSender>,
    state: web::Data<AppState>,
}

fn world(webhooks: bool) -> World {
    let clock = ManualClock::fixed();
    world_on(webhooks, clock.clone(), clock)
}

/// A world whose services read `services_clock` (a real one times long
/// polls); `clock` is the manual clock tests move.
fn world_on(webhooks: bool, clock: Arc<ManualClock>, services_clock: Arc<dyn Clock>) -> World {
    let store = MemoryStore::new();
    let google = FakeCalendar::new(services_clock.clone());
    let secret = WebhookSecret::new("webhook-secret-0123456789").unwrap();
    let sender = Arc::new(FakeSender {
        sent: Mutex::new(Vec::new()),
        status: 204,
    });
    let mut services = Services::new(
        store.clone(),
        google,
        services_clock,
        ServicesConfig::new(secret, "https://calsync.example.com/webhooks/calendar"),
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
            .api_tokens(ApiTokens::parse(TOKEN).unwrap())
            .default_calendar(Some(CalendarId::new("team@example.com").unwrap()))
            .build(),
    );
    World {
        store,
        clock,
        sender,
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

fn authorized(request: test::TestRequest) -> test::TestRequest {
    request.insert_header(("Authorization", format!("Bearer {TOKEN}")))
}

async fn get(w: &World, uri: &str) -> (u16, Value) {
    call(w, authorized(test::TestRequest::get().uri(uri))).await
}

async fn create_event(w: &World, summary: &str) -> Value {
    let (status, event) = call(
        w,
        authorized(test::TestRequest::post().uri("/calendar/events")).set_json(json!({
            "entityType": "deal", "entityId": "42", "summary": summary,
            "start": {"dateTime": "2030-01-15T10:00:00Z"},
            "end": {"dateTime": "2030-01-15T11:00:00Z"},
        })),
    )
    .await;
    assert_eq!(status, 202, "{event}");
    event
}

/// Every object schema outside a composition refuses unknown properties.
fn strict(schema: &Value) -> Value {
    fn walk(value: &mut Value, in_composition: bool) {
        match value {
            Value::Object(map) => {
                if !in_composition
                    && map.contains_key("properties")
                    && !map.contains_key("additionalProperties")
                {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                for (key, child) in map.iter_mut() {
                    let composing = matches!(key.as_str(), "allOf" | "oneOf" | "anyOf");
                    walk(child, composing || (in_composition && key != "properties"));
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, in_composition)),
            _ => {}
        }
    }
    let mut copy = schema.clone();
    walk(&mut copy, false);
    copy
}

fn valid(doc: &Value, schema: &Value, instance: &Value, strictly: bool) -> Vec<String> {
    let (components, schema) = if strictly {
        (strict(&doc["components"]), strict(schema))
    } else {
        (doc["components"].clone(), schema.clone())
    };
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": components,
        "allOf": [schema],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The documented answer for this status, checked strictly against the body.
fn assert_documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let mut documented =
        &doc["paths"][path][method.to_lowercase()]["responses"][status.to_string()];
    if let Some(pointer) = documented["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
    {
        documented = doc.pointer(pointer).unwrap();
    }
    assert!(
        documented.is_object(),
        "{method} {path} answered {status} but does not document it: {body}"
    );
    if let Some(schema) = documented["content"]["application/json"].get("schema") {
        let problems = valid(doc, schema, body, true);
        assert!(
            problems.is_empty(),
            "{method} {path} {status}: {body} does not match the document: {problems:?}"
        );
    }
}

async fn document(w: &World) -> Value {
    let (status, doc) = call(w, test::TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, 200);
    doc
}

fn query_parameter<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} does not document {name}"))
}

#[actix_web::test]
async fn a_write_is_in_the_feed_as_the_event_route_shows_it() {
    let w = world(true);
    let doc = document(&w).await;
    let (status, empty) = get(&w, "/calendar/changes").await;
    assert_eq!(
        (status, &empty["items"], &empty["nextCursor"]),
        (200, &json!([]), &json!("c0"))
    );
    let event = create_event(&w, "Kick-off").await;
    let (status, page) = get(&w, "/calendar/changes").await;
    assert_eq!(status, 200, "{page}");
    assert_documented(&doc, "GET", "/calendar/changes", status, &page);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    let change = &items[0];
    assert_eq!(change["type"], "event.created");
    assert_eq!(change["origin"], "api");
    assert_eq!(change["eventId"], event["id"]);
    assert_eq!(change["entityType"], "deal");
    assert_eq!(change["entityId"], "42");
    assert_eq!(change["changedFields"], json!([]));
    assert!(change.get("error").is_none() && change.get("respondents").is_none());
    assert_eq!(page["nextCursor"], change["cursor"]);
    // `event` is what GET /calendar/events/{id} answers.
    let (_, shown) = get(
        &w,
        &format!("/calendar/events/{}", event["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(change["event"], shown);
    let (status, latest) = get(&w, "/calendar/changes/latest").await;
    assert_eq!((status, &latest["cursor"]), (200, &change["cursor"]));
    assert_documented(&doc, "GET", "/calendar/changes/latest", status, &latest);
    // Read on: nothing new, and the cursor stays.
    let after = change["cursor"].as_str().unwrap();
    let (_, next) = get(&w, &format!("/calendar/changes?after={after}&waitSecs=0")).await;
    assert_eq!(
        (&next["items"], &next["nextCursor"]),
        (&json!([]), &change["cursor"])
    );
    // The renderer that makes the webhook bodies renders the same element.
    let batch = w
        .store
        .read_changes(&ChangeQuery {
            limit: 10,
            ..ChangeQuery::default()
        })
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&ChangeJson.render(&batch.items[0]).unwrap()).unwrap();
    assert_eq!(&body, change);
}

#[actix_web::test]
async fn filters_pass_changes_over_and_still_move_the_cursor() {
    let w = world(true);
    create_event(&w, "One").await;
    create_event(&w, "Two").await;
    let (_, page) = get(
        &w,
        "/calendar/changes?types=event.cancelled,attendee.responded",
    )
    .await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["nextCursor"], "c2");
    let (_, page) = get(&w, "/calendar/changes?limit=1&entityType=deal&entityId=42").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["nextCursor"], "c1");
    let (_, page) = get(&w, "/calendar/changes?calendarId=other@example.com").await;
    assert_eq!(
        (&page["items"], &page["nextCursor"]),
        (&json!([]), &json!("c2"))
    );
    let (_, page) = get(&w, "/calendar/changes?entityId=41").await;
    assert_eq!(page["items"], json!([]));
}

#[actix_web::test]
async fn malformed_reads_are_400s_naming_the_parameter() {
    let w = world(false);
    let doc = document(&w).await;
    for (query, field) in [
        ("after=12", "after"),
        ("after=cZZ", "after"),
        ("after=c3w5e11264sgsg", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("waitSecs=31", "waitSecs"),
        ("types=event.moved", "types"),
        ("types=event.created,%20drive.changed", "types"),
        ("entityType=deal%20type", "entityType"),
        ("calendarId=a%20b", "calendarId"),
        ("colour=red", "query"),
    ] {
        let (status, body) = get(&w, &format!("/calendar/changes?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert_documented(&doc, "GET", "/calendar/changes", status, &body);
    }
    let (status, _) = call(&w, test::TestRequest::get().uri("/calendar/changes")).await;
    assert_eq!(status, 401);
    let (status, _) = call(&w, test::TestRequest::get().uri("/calendar/changes/latest")).await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn the_document_and_the_server_agree_on_cursors_and_types() {
    let w = world(false);
    let doc = document(&w).await;
    let after = &query_parameter(&doc, "/calendar/changes", "after")["schema"];
    let types = &query_parameter(&doc, "/calendar/changes", "types")["schema"];
    let max = Cursor::from_seq(u64::MAX).encode();
    for (name, schema, value) in [
        ("after", after, "c0".to_owned()),
        ("after", after, "c000000000000z".to_owned()),
        ("after", after, max.clone()),
        ("after", after, format!("{}0", max)),
        ("after", after, "c3w5e11264sgsg".to_owned()),
        ("after", after, "c3w5e11264sgse".to_owned()),
        ("after", after, "c0000000000000".to_owned()),
        ("after", after, "C1".to_owned()),
        ("after", after, "c".to_owned()),
        ("types", types, String::new()),
        ("types", types, "drive.changed".to_owned()),
        ("types", types, "event.created,event.created".to_owned()),
        ("types", types, "event.created,".to_owned()),
        ("types", types, "webhook.test".to_owned()),
    ] {
        let documented = valid(&doc, schema, &json!(value), false).is_empty();
        let encoded: String = value
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'.' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (status, body) = get(&w, &format!("/calendar/changes?{name}={encoded}")).await;
        assert_eq!(
            status == 200,
            documented,
            "{name}={value:?}: the document says {documented}, the server {status} {body}"
        );
    }
}

#[actix_web::test]
async fn a_purged_cursor_is_410_cursor_expired_and_latest_resynchronises() {
    let w = world(false);
    let doc = document(&w).await;
    create_event(&w, "Old").await;
    create_event(&w, "Older").await;
    w.clock.advance(Duration::from_secs(8 * 86_400));
    let purged = w.store.purge_changes(w.clock.now(), 100).await.unwrap();
    assert_eq!(purged, 2);
    let (status, body) = get(&w, "/calendar/changes?after=c1").await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "cursor_expired");
    assert_documented(&doc, "GET", "/calendar/changes", status, &body);
    // Without `after`: from the oldest kept, never expired.
    let (status, page) = get(&w, "/calendar/changes").await;
    assert_eq!((status, &page["items"]), (200, &json!([])));
    let (_, latest) = get(&w, "/calendar/changes/latest").await;
    assert_eq!(latest["cursor"], "c2");
    let (status, _) = get(&w, "/calendar/changes?after=c2").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn webhook_routes_without_delivery_are_503_webhooks_not_configured() {
    let w = world(false);
    let doc = document(&w).await;
    let id = "wh_0123456789abcdef0123456789abcdef";
    for (method, template, request) in [
        (
            "POST",
            "/calendar/webhooks",
            test::TestRequest::post()
                .uri("/calendar/webhooks")
                .set_json(json!({"url": "https://app.example.com/h"})),
        ),
        (
            "GET",
            "/calendar/webhooks",
            test::TestRequest::get().uri("/calendar/webhooks"),
        ),
        (
            "GET",
            "/calendar/webhooks/{id}",
            test::TestRequest::get().uri(&format!("/calendar/webhooks/{id}")),
        ),
        (
            "PATCH",
            "/calendar/webhooks/{id}",
            test::TestRequest::patch()
                .uri(&format!("/calendar/webhooks/{id}"))
                .set_json(json!({"enabled": false})),
        ),
        (
            "DELETE",
            "/calendar/webhooks/{id}",
            test::TestRequest::delete().uri(&format!("/calendar/webhooks/{id}")),
        ),
        (
            "POST",
            "/calendar/webhooks/{id}/rotate-secret",
            test::TestRequest::post().uri(&format!("/calendar/webhooks/{id}/rotate-secret")),
        ),
        (
            "POST",
            "/calendar/webhooks/{id}/test",
            test::TestRequest::post().uri(&format!("/calendar/webhooks/{id}/test")),
        ),
        (
            "GET",
            "/calendar/webhooks/{id}/attempts",
            test::TestRequest::get().uri(&format!("/calendar/webhooks/{id}/attempts")),
        ),
    ] {
        let (status, body) = call(&w, authorized(request)).await;
        assert_eq!(status, 503, "{method} {template}: {body}");
        assert_eq!(body["error"]["code"], "webhooks_not_configured");
        assert_documented(&doc, method, template, status, &body);
    }
    // The feed itself needs no delivery.
    let (status, _) = get(&w, "/calendar/changes").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_subscription_is_made_shown_without_its_secret_changed_tested_and_deleted() {
    let w = world(true);
    let doc = document(&w).await;
    create_event(&w, "Before").await;
    let (status, created) = call(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/webhooks")).set_json(json!({
            "url": "https://app.example.com/hooks", "types": ["event.cancelled", "event.cancelled"],
            "entityType": "deal", "description": "CRM",
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_documented(&doc, "POST", "/calendar/webhooks", status, &created);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{secret}"
    );
    assert_eq!(created["types"], json!(["event.cancelled"]));
    // It starts at the newest change: what came before is not sent.
    assert_eq!(created["cursor"], "c1");
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/calendar/webhooks/{id}");

    let (status, shown) = get(&w, &path).await;
    assert_eq!(status, 200);
    assert_documented(&doc, "GET", "/calendar/webhooks/{id}", status, &shown);
    assert!(shown.get("secret").is_none(), "{shown}");
    let (status, listed) = get(&w, "/calendar/webhooks").await;
    assert_documented(&doc, "GET", "/calendar/webhooks", status, &listed);
    assert_eq!(listed["items"], json!([shown]));
    assert!(!listed.to_string().contains(&secret));

    let patch = |body: Value| authorized(test::TestRequest::patch().uri(&path)).set_json(body);
    let (status, changed) = call(
        &w,
        patch(json!({"description": null, "types": null, "enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_documented(&doc, "PATCH", "/calendar/webhooks/{id}", status, &changed);
    assert!(changed.get("description").is_none());
    assert_eq!(changed["types"], json!([]));
    assert_eq!(changed["enabled"], false);
    assert!(changed["disabledReason"].is_string());
    for (body, field) in [
        (json!({"colour": "red"}), "colour"),
        (json!({}), "body"),
        (json!({"url": null, "enabled": null}), "body"),
        (json!({"types": ["event.moved"]}), "types[0]"),
        (json!({"url": "ftp://x"}), "url"),
        (json!({"url": "http://app.example.com/h"}), "url"),
        (json!({"entityType": "a b"}), "entityType"),
        (json!({"enabled": "yes"}), "enabled"),
    ] {
        let (status, answer) = call(&w, patch(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
        assert_documented(&doc, "PATCH", "/calendar/webhooks/{id}", status, &answer);
    }

    let (status, rotated) = call(
        &w,
        authorized(test::TestRequest::post().uri(&format!("{path}/rotate-secret"))),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_documented(
        &doc,
        "POST",
        "/calendar/webhooks/{id}/rotate-secret",
        status,
        &rotated,
    );
    assert_ne!(rotated["secret"].as_str().unwrap(), secret);
    assert!(rotated["previousSecretExpiresAt"].is_string());

    let (status, attempt) = call(
        &w,
        authorized(test::TestRequest::post().uri(&format!("{path}/test"))),
    )
    .await;
    assert_eq!(status, 200, "{attempt}");
    assert_documented(
        &doc,
        "POST",
        "/calendar/webhooks/{id}/test",
        status,
        &attempt,
    );
    assert_eq!(
        (&attempt["outcome"], &attempt["status"]),
        (&json!("delivered"), &json!(204))
    );
    {
        let sent = w.sender.sent.lock().unwrap();
        let request = sent.last().unwrap();
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        // Signed with both live secrets, each verifying on its own.
        let signature = header("webhook-signature");
        assert_eq!(signature.split(' ').count(), 2, "{signature}");
        for key in [&secret, rotated["secret"].as_str().unwrap()] {
            calsync_domain::feed::signature::verify(
                key,
                &header("webhook-id"),
                &header("webhook-timestamp"),
                &signature,
                &request.body,
                header("webhook-timestamp").parse().unwrap(),
                300,
            )
            .unwrap();
        }
    }
    let (status, attempts) = get(&w, &format!("{path}/attempts?limit=5")).await;
    assert_eq!(status, 200);
    assert_documented(
        &doc,
        "GET",
        "/calendar/webhooks/{id}/attempts",
        status,
        &attempts,
    );
    assert_eq!(attempts["items"][0]["type"], "webhook.test");
    assert!(attempts["items"][0].get("cursor").is_none());
    for bad in ["limit=0", "limit=101", "x=1"] {
        let (status, _) = get(&w, &format!("{path}/attempts?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }

    let (status, _) = call(&w, authorized(test::TestRequest::delete().uri(&path))).await;
    assert_eq!(status, 204);
    for uri in [
        path.clone(),
        format!("{path}/attempts"),
        "/calendar/webhooks/wh_nothex".to_owned(),
        "/calendar/webhooks/00000000-0000-0000-0000-000000000000".to_owned(),
    ] {
        let (status, body) = get(&w, &uri).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{uri}"
        );
    }
    let (status, _) = call(&w, authorized(test::TestRequest::delete().uri(&path))).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn a_subscription_body_is_checked_field_by_field() {
    let w = world(true);
    let doc = document(&w).await;
    let schema = doc["paths"]["/calendar/webhooks"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]
        .clone();
    for (body, field) in [
        (json!({}), Some("body")),
        (
            json!({"url": "https://a.example/h", "secret": "x"}),
            Some("secret"),
        ),
        (json!({"url": " https://a.example/h"}), Some("url")),
        (json!({"url": "https://a.example/a b"}), Some("url")),
        (
            json!({"url": "https://a.example/h", "types": ["webhook.test"]}),
            Some("types[0]"),
        ),
        (
            json!({"url": "https://a.example/h", "types": "event.created"}),
            Some("types"),
        ),
        (
            json!({"url": "https://a.example/h", "calendarId": ""}),
            Some("calendarId"),
        ),
        (
            json!({"url": "https://a.example/h", "description": "a\u{1}b"}),
            Some("description"),
        ),
        (
            json!({"url": "https://a.example/h", "description": "x".repeat(513)}),
            Some("description"),
        ),
        (
            json!({"url": "https://a.example/h", "entityType": "x".repeat(65)}),
            Some("entityType"),
        ),
        (
            json!({"url": "https://a.example/h", "types": [], "entityType": null, "description": ""}),
            None,
        ),
    ] {
        let (status, answer) = call(
            &w,
            authorized(test::TestRequest::post().uri("/calendar/webhooks")).set_json(&body),
        )
        .await;
        let documented = valid(&doc, &schema, &body, false).is_empty();
        match field {
            Some(field) => {
                assert_eq!(status, 400, "{body}: {answer}");
                assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
                // Only the URL's reachability is beyond the document.
                assert!(
                    !documented || field == "url",
                    "{body}: the document accepts it"
                );
            }
            None => {
                assert_eq!(status, 201, "{body}: {answer}");
                assert!(documented, "{body}: the document refuses it");
            }
        }
        assert_documented(&doc, "POST", "/calendar/webhooks", status, &answer);
    }
    let (status, answer) = call(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/webhooks")),
    )
    .await;
    assert_eq!((status, &answer["error"]["field"]), (400, &json!("body")));
}

#[actix_web::test]
async fn a_long_poll_answers_when_a_change_commits() {
    let w = world_on(
        false,
        ManualClock::fixed(),
        Arc::new(calsync_domain::ports::SystemClock),
    );
    let started = std::time::Instant::now();
    // Nothing comes: empty at the deadline.
    let (status, page) = get(&w, "/calendar/changes?after=c0&waitSecs=1").await;
    assert_eq!((status, &page["items"]), (200, &json!([])));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A change during the wait ends it at once.
    let started = std::time::Instant::now();
    let poll = get(&w, "/calendar/changes?after=c0&waitSecs=30");
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        create_event(&w, "Late").await
    };
    let ((status, page), _) = tokio::join!(poll, write);
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["type"], "event.created", "{page}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
