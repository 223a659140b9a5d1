//! The OpenAPI document as served (`GET /openapi.json`) checked on its own
//! terms (3.1, unique operation ids, resolvable `$ref`s, valid schemas,
//! examples that match them) and against the routes it describes (what it
//! says is accepted is accepted; what the routes answer is documented), plus
//! the 405s, the health report's two shapes and the bundled API page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::{App, test, web};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::SyncStateStore;
use calsync_domain::services::{Services, ServicesConfig};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_http::{ApiTokens, AppState, ROUTES, configure};
use calsync_resilience::{RateLimitConfig, RateLimiter};
use serde_json::{Value, json};

const TOKEN: &str = "openapi-test-token-0123456789";
const CALENDAR: &str = "team@example.com";

struct World {
    store: Arc<MemoryStore>,
    google: Arc<FakeCalendar>,
    state: web::Data<AppState>,
}

fn world() -> World {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let secret = WebhookSecret::new("webhook-secret-0123456789").unwrap();
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock,
        ServicesConfig::new(secret, "https://calsync.example.com/webhooks/calendar"),
    );
    let state = web::Data::new(
        AppState::builder(&services)
            .write_wait(Duration::from_secs(2))
            .api_tokens(ApiTokens::parse(TOKEN).unwrap())
            .default_calendar(Some(CalendarId::new(CALENDAR).unwrap()))
            .webhook_limiter(
                RateLimiter::new(RateLimitConfig {
                    project_per_minute: 100_000,
                    per_key_per_minute: 100_000,
                    project_burst: 1000,
                    per_key_burst: 1000,
                })
                .unwrap(),
            )
            .build(),
    );
    World {
        store,
        google,
        state,
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
    raw: Vec<u8>,
}

async fn send(w: &World, request: test::TestRequest) -> Answer {
    let app = test::init_service(App::new().configure(configure(w.state.clone()))).await;
    let response: ServiceResponse = app.call(request.to_request()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let raw = test::read_body(response).await.to_vec();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
    }
}

fn authorized(request: test::TestRequest) -> test::TestRequest {
    request.insert_header(("Authorization", format!("Bearer {TOKEN}")))
}

async fn document(w: &World) -> Value {
    let answer = send(w, test::TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(answer.status, 200);
    answer.body
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                found.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    found
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let found = &doc["paths"][path][method.to_lowercase()];
    assert!(found.is_object(), "{method} {path} is not documented");
    found
}

/// Every object schema outside a composition refuses unknown properties:
/// answers are checked against the document this strictly, so a field the
/// server sends but the document does not name fails.
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

/// A validator for `schema` (which may `$ref` the document's components),
/// formats asserted.
fn validator(doc: &Value, schema: &Value, strictly: bool) -> jsonschema::Validator {
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
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|error| panic!("{schema} does not compile: {error}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// `value`, or what its `$ref` points to.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(&Value::Null),
        None => value,
    }
}

/// The documented answer for this status, checked strictly against the body.
fn assert_documented(doc: &Value, method: &str, path: &str, answer: &Answer) {
    let documented = deref(
        doc,
        &operation(doc, method, path)["responses"][answer.status.to_string()],
    );
    assert!(
        documented.is_object(),
        "{method} {path} answered {} but does not document it: {}",
        answer.status,
        answer.body
    );
    if let Some(schema) = documented["content"]["application/json"].get("schema") {
        let problems = errors(&validator(doc, schema, true), &answer.body);
        assert!(
            problems.is_empty(),
            "{method} {path} {}: {} does not match the document: {problems:?}",
            answer.status,
            answer.body
        );
    }
}

fn new_event(summary: &str) -> Value {
    json!({
        "entityType": "deal", "entityId": "1", "summary": summary,
        "start": {"dateTime": "2030-01-15T10:00:00+01:00"},
        "end": {"dateTime": "2030-01-15T11:00:00+01:00"},
    })
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_with_unique_descriptive_operation_ids() {
    let doc = document(&world()).await;
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut seen = HashMap::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        // Descriptive: a verb and a noun in camelCase, not a bare handler name.
        assert!(
            id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && id.chars().any(|c| c.is_ascii_uppercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?} is not descriptive"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id:?} names both {other} and {method} {path}");
        }
    }
}

#[actix_web::test]
async fn every_ref_resolves() {
    let doc = document(&world()).await;
    fn walk(doc: &Value, value: &Value, at: &str, refs: &mut usize) {
        match value {
            Value::Object(map) => {
                if let Some(target) = map.get("$ref") {
                    let target = target.as_str().unwrap();
                    let pointer = target
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("{at}: non-local $ref {target}"));
                    assert!(
                        doc.pointer(pointer).is_some(),
                        "{at}: $ref {target} resolves to nothing"
                    );
                    *refs += 1;
                }
                for (key, child) in map {
                    walk(doc, child, &format!("{at}/{key}"), refs);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(doc, child, &format!("{at}/{i}"), refs);
                }
            }
            _ => {}
        }
    }
    let mut refs = 0;
    walk(&doc, &doc, "#", &mut refs);
    assert!(refs > 20, "only {refs} refs: the walk is not reaching them");
}

/// Every `(schema, example)` pair in the document: schema objects carrying
/// `example`/`examples`, and parameters and media types with examples.
fn examples(value: &Value, at: &str, found: &mut Vec<(String, Value, Value)>) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                examples(item, &format!("{at}/{i}"), found);
            }
        }
        return;
    };
    let is_schema = [
        "type",
        "allOf",
        "oneOf",
        "anyOf",
        "$ref",
        "properties",
        "enum",
    ]
    .iter()
    .any(|k| map.contains_key(*k));
    // A parameter or a media type: its examples are for its `schema`.
    let (schema, own) = if map.contains_key("schema") && !is_schema {
        (map["schema"].clone(), true)
    } else {
        (value.clone(), is_schema)
    };
    if own {
        if let Some(example) = map.get("example") {
            found.push((format!("{at}/example"), schema.clone(), example.clone()));
        }
        match map.get("examples") {
            Some(Value::Array(list)) if is_schema => {
                for (i, example) in list.iter().enumerate() {
                    found.push((
                        format!("{at}/examples/{i}"),
                        schema.clone(),
                        example.clone(),
                    ));
                }
            }
            Some(Value::Object(named)) if !is_schema => {
                for (name, example) in named {
                    if let Some(value) = example.get("value") {
                        found.push((
                            format!("{at}/examples/{name}"),
                            schema.clone(),
                            value.clone(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for (key, child) in map {
        // Example values are data, not document structure.
        if key != "example" && key != "examples" {
            examples(child, &format!("{at}/{key}"), found);
        }
    }
}

#[actix_web::test]
async fn every_schema_is_valid_and_every_example_matches_its_schema() {
    let doc = document(&world()).await;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut alone = schema.clone();
        alone["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        // Refs point into the document; the meta-schema check needs none resolved.
        if let Err(error) = jsonschema::meta::validate(&alone) {
            panic!("components/schemas/{name} is not a valid JSON Schema: {error}");
        }
    }
    let mut found = Vec::new();
    examples(&doc, "#", &mut found);
    assert!(
        found.iter().any(|(at, ..)| at.contains("CreateEventBody")),
        "the create body's example is checked: {:?}",
        found.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (at, schema, example) in &found {
        let problems = errors(&validator(&doc, schema, false), example);
        assert!(
            problems.is_empty(),
            "{at}: {example} does not match its schema {schema}: {problems:?}"
        );
    }
}

#[actix_web::test]
async fn every_operation_is_documented_completely() {
    let doc = document(&world()).await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (method, path, operation) in operations(&doc) {
        let name = format!("{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = deref(&doc, response);
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty(),
                "{name} {status} has no description"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/json"]["schema"].is_object(),
                    "{name} {status}: errors are JSON"
                );
            }
        }
        let mut params = BTreeSet::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let key = (
                parameter["in"].as_str().unwrap().to_owned(),
                parameter["name"].as_str().unwrap().to_ascii_lowercase(),
            );
            assert!(params.insert(key.clone()), "{name}: {key:?} twice");
            if key.0 == "header" {
                let types = &parameter["schema"]["type"];
                assert!(
                    !types.as_array().is_some_and(|t| t.contains(&json!("null"))),
                    "{name}: header {} cannot be null",
                    key.1
                );
            }
            if key.0 == "path" {
                assert_eq!(
                    parameter["required"], true,
                    "{name}: path params are required"
                );
            }
        }
        for template in path.split('/').filter(|s| s.starts_with('{')) {
            let param = template.trim_matches(|c| c == '{' || c == '}');
            assert!(
                params.contains(&("path".to_owned(), param.to_ascii_lowercase())),
                "{name}: {{{param}}} is not declared"
            );
        }
        let mut bearer = false;
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains_key(scheme),
                    "{name}: unknown scheme {scheme}"
                );
                bearer |= scheme == "bearer";
            }
        }
        if bearer {
            assert!(
                responses.contains_key("401"),
                "{name} takes a token: 401 is documented"
            );
        }
        if operation.get("requestBody").is_some() {
            assert!(
                responses.contains_key("413"),
                "{name} reads a body: 413 is documented"
            );
        }
    }
}

#[actix_web::test]
async fn the_document_states_the_limits_the_server_checks() {
    let doc = document(&world()).await;
    let param = |method: &str, path: &str, name: &str| -> Value {
        operation(&doc, method, path)["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .unwrap_or_else(|| panic!("{method} {path} does not document {name}"))
            .clone()
    };
    for webhook in ["/webhooks/calendar", "/webhooks/drive"] {
        let uri = param("POST", webhook, "X-Goog-Resource-URI");
        assert_eq!(
            (uri["in"].as_str(), &uri["required"]),
            (Some("header"), &json!(true))
        );
    }
    let limit = param("GET", "/calendar/events", "limit");
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&json!(1), &json!(500))
    );
    assert_eq!(
        param("GET", "/calendar/events", "calendarId")["schema"]["minLength"],
        1
    );
    for body in ["CreateEventBody", "CreateChannel", "SyncRequestBody"] {
        assert_eq!(
            doc["components"]["schemas"][body]["properties"]["calendarId"]["minLength"], 1,
            "{body}.calendarId"
        );
    }
    for method in ["PATCH", "DELETE"] {
        let if_match = param(method, "/calendar/events/{id}", "If-Match");
        assert!(
            if_match["schema"]["maxLength"].is_u64(),
            "{method}: {if_match}"
        );
        assert!(
            if_match["schema"]["pattern"].is_string(),
            "{method}: {if_match}"
        );
    }
    let push_state = &doc["components"]["schemas"]["PushStateDoc"]["enum"];
    assert_eq!(
        push_state,
        &json!(["pending", "synced", "failed", "conflict"])
    );
    let resource = &doc["components"]["schemas"]["EventResource"]["properties"]["pushState"];
    assert_eq!(resource["$ref"], "#/components/schemas/PushStateDoc");
    // The issue's list: statuses these operations answer.
    for (method, path, statuses) in [
        ("GET", "/calendar/channels", &["400", "503"][..]),
        ("DELETE", "/calendar/channels/{id}", &["400"]),
        ("DELETE", "/calendar/events/{id}", &["400"]),
        ("PATCH", "/calendar/events/{id}", &["409", "412", "502"]),
        ("GET", "/health/calendar", &["401"]),
    ] {
        for status in statuses {
            assert!(
                operation(&doc, method, path)["responses"][*status].is_object(),
                "{method} {path} does not document {status}"
            );
        }
    }
}

/// The example a client derives from a schema: its own `example`, else one
/// built from its properties' examples (as the API page does).
fn example_of(doc: &Value, schema: &Value) -> Value {
    let schema = deref(doc, schema);
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    let mut built = serde_json::Map::new();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        if let Value::Object(fields) = example_of(doc, part) {
            built.extend(fields);
        }
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let example = example_of(doc, property);
        if !example.is_null() {
            built.insert(name.clone(), example);
        }
    }
    if built.is_empty() {
        Value::Null
    } else {
        Value::Object(built)
    }
}

/// Every documented channel status filters; an undocumented one is refused.
#[actix_web::test]
async fn the_documented_channel_statuses_are_the_accepted_ones() {
    let w = world();
    let doc = document(&w).await;
    let status_schema = &operation(&doc, "GET", "/calendar/channels")["parameters"][0]["schema"];
    let status_values = validator(&doc, status_schema, false);
    for candidate in [
        "pending", "active", "stopped", "expired", "lapsed", "ACTIVE",
    ] {
        let answer = send(
            &w,
            authorized(
                test::TestRequest::get().uri(&format!("/calendar/channels?status={candidate}")),
            ),
        )
        .await;
        assert_eq!(
            answer.status == 200,
            status_values.is_valid(&json!(candidate)),
            "status={candidate}: server {} vs document",
            answer.status
        );
        assert_documented(&doc, "GET", "/calendar/channels", &answer);
    }
}

/// The document's examples, as a client (or the API page) builds them, are
/// accepted; a time in both forms is refused by both.
#[actix_web::test]
async fn the_documents_own_examples_are_accepted() {
    let w = world();
    let doc = document(&w).await;
    let create = operation(&doc, "POST", "/calendar/events");
    let body_schema = create["requestBody"]["content"]["application/json"]["schema"].clone();
    let example = example_of(&doc, &body_schema);
    let answer = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/events")).set_json(&example),
    )
    .await;
    assert_eq!(answer.status, 202, "{example} -> {}", answer.body);
    assert_documented(&doc, "POST", "/calendar/events", &answer);
    // So are start and end written as EventTimeBody's example.
    let time = example_of(&doc, &json!({"$ref": "#/components/schemas/EventTimeBody"}));
    let body = json!({"entityType": "deal", "entityId": "2", "start": time, "end": time});
    assert!(validator(&doc, &body_schema, false).is_valid(&body));
    let answer = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/events")).set_json(&body),
    )
    .await;
    assert_eq!(answer.status, 202, "{body} -> {}", answer.body);
    // A time with both forms is refused by both.
    let both = json!({"entityType": "deal", "entityId": "3",
        "start": {"dateTime": "2030-01-15T10:00:00Z", "date": "2030-01-15"}, "end": time});
    assert!(!validator(&doc, &body_schema, false).is_valid(&both));
    let answer = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/events")).set_json(&both),
    )
    .await;
    assert_eq!(answer.status, 400);
}

/// Bodies that may be left empty: empty is accepted, and `null` is accepted
/// exactly when the document allows it.
#[actix_web::test]
async fn optional_bodies_are_documented_as_the_server_reads_them() {
    let w = world();
    let doc = document(&w).await;
    for (path, done) in [("/calendar/sync", 202), ("/calendar/channels", 201)] {
        let operation = operation(&doc, "POST", path);
        assert_ne!(operation["requestBody"]["required"], true, "{path}");
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let answer = send(&w, authorized(test::TestRequest::post().uri(path))).await;
        assert_eq!(answer.status, done, "{path} empty -> {}", answer.body);
        let answer = send(
            &w,
            authorized(test::TestRequest::post().uri(path))
                .insert_header(("Content-Type", "application/json"))
                .set_payload("null"),
        )
        .await;
        assert_eq!(
            answer.status == done,
            validator(&doc, schema, false).is_valid(&Value::Null),
            "{path}: a null body is answered {} {}",
            answer.status,
            answer.body
        );
        assert_documented(&doc, "POST", path, &answer);
    }
}

/// Drives the outbox as the worker would, so `?wait=true` gets a verdict.
fn run_outbox(w: &World) -> tokio::task::JoinHandle<()> {
    let state = w.state.clone();
    tokio::spawn(async move {
        loop {
            let _ = state.events.drain_outbox("test", 10).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

#[actix_web::test]
async fn the_statuses_the_routes_answer_are_documented_with_their_bodies() {
    let w = world();
    let doc = document(&w).await;
    let outbox = run_outbox(&w);
    let create = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/events?wait=true"))
            .set_json(new_event("First")),
    )
    .await;
    assert_eq!(create.status, 201, "{}", create.body);
    assert_documented(&doc, "POST", "/calendar/events", &create);
    let id = create.body["id"].as_str().unwrap().to_owned();
    let event = format!("/calendar/events/{id}");
    let cases: Vec<(&str, &str, test::TestRequest, u16)> = vec![
        (
            "GET",
            "/calendar/events/{id}",
            test::TestRequest::get().uri(&event),
            200,
        ),
        (
            "GET",
            "/calendar/events/{id}",
            test::TestRequest::get().uri("/calendar/events/%FF"),
            404,
        ),
        (
            "GET",
            "/calendar/events",
            test::TestRequest::get().uri("/calendar/events?limit=501"),
            400,
        ),
        (
            "GET",
            "/calendar/channels",
            test::TestRequest::get().uri("/calendar/channels?colour=red"),
            400,
        ),
        (
            "DELETE",
            "/calendar/channels/{id}",
            test::TestRequest::delete().uri("/calendar/channels/not%20a%20channel"),
            400,
        ),
        (
            "DELETE",
            "/calendar/events/{id}",
            test::TestRequest::delete().uri(&format!("{event}?force=1")),
            400,
        ),
        (
            "PATCH",
            "/calendar/events/{id}",
            test::TestRequest::patch()
                .uri(&event)
                .insert_header(("If-Match", "\"stale\""))
                .set_json(json!({"summary": "x"})),
            412,
        ),
    ];
    for (method, template, request, status) in cases {
        let answer = send(&w, authorized(request)).await;
        assert_eq!(
            answer.status, status,
            "{method} {template}: {}",
            answer.body
        );
        assert_documented(&doc, method, template, &answer);
    }
    // Google refuses the change for good: 502 with the event.
    w.google.fail_next(
        Some("patch"),
        DomainError::provider(ProviderErrorKind::Permanent, "invalid"),
    );
    let refused = send(
        &w,
        authorized(test::TestRequest::patch().uri(&format!("{event}?wait=true")))
            .set_json(json!({"summary": "Refused"})),
    )
    .await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_documented(&doc, "PATCH", "/calendar/events/{id}", &refused);
    // A cancelled event cannot be changed: 409.
    let deleted = send(
        &w,
        authorized(test::TestRequest::delete().uri(&format!("{event}?wait=true"))),
    )
    .await;
    assert_documented(&doc, "DELETE", "/calendar/events/{id}", &deleted);
    let conflict = send(
        &w,
        authorized(test::TestRequest::patch().uri(&event)).set_json(json!({"summary": "Late"})),
    )
    .await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_documented(&doc, "PATCH", "/calendar/events/{id}", &conflict);
    outbox.abort();
}

#[actix_web::test]
async fn a_wrong_method_on_a_known_path_is_405_naming_the_methods_it_serves() {
    let w = world();
    let mut served: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for (method, path) in ROUTES {
        served
            .entry(path)
            .or_default()
            .insert(method.to_ascii_uppercase());
    }
    for (path, methods) in &served {
        let concrete = path
            .replace("{id}", "00000000-0000-0000-0000-000000000000")
            .replace("{file}", "x");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
            if methods.contains(method) {
                continue;
            }
            let request = test::TestRequest::default()
                .method(method.parse().unwrap())
                .uri(&concrete);
            let answer = send(&w, authorized(request)).await;
            assert_eq!(answer.status, 405, "{method} {path}: {}", answer.body);
            let allow: BTreeSet<String> = answer
                .headers
                .get("allow")
                .unwrap()
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(&allow, methods, "{method} {path}");
            if method != "HEAD" {
                assert_eq!(
                    answer.body["error"]["code"], "method_not_allowed",
                    "{method} {path}"
                );
                assert!(answer.body["error"]["message"].is_string());
            }
        }
    }
    for path in [
        "/calendar/nowhere",
        "/calendar/events/1/2",
        "/health/nowhere",
        "/docs/a/b",
    ] {
        let answer = send(&w, authorized(test::TestRequest::get().uri(path))).await;
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (404, Some("no_route")),
            "{path}"
        );
    }
}

/// A calendar Google refused, with an error naming its owner.
async fn refused_calendar(w: &World) {
    let calendar = CalendarId::new("ceo@example.com").unwrap();
    w.store
        .mark_reconnect_required(
            &calendar,
            "invalid_grant: token for ceo@example.com revoked",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
}

#[actix_web::test]
async fn anonymous_health_shows_only_the_status_and_the_issue_codes() {
    let w = world();
    refused_calendar(&w).await;
    let doc = document(&w).await;
    let answer = send(&w, test::TestRequest::get().uri("/health/calendar")).await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8_lossy(&answer.raw);
    assert!(!text.contains("example.com"), "names a calendar: {text}");
    assert!(!text.contains("invalid_grant"), "quotes Google: {text}");
    let keys: BTreeSet<&str> = answer
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["issues", "status"]), "{text}");
    assert_eq!(answer.body["status"], "degraded");
    for issue in answer.body["issues"].as_array().unwrap() {
        assert_eq!(
            issue.as_object().unwrap().len(),
            1,
            "only the code: {issue}"
        );
        assert!(issue["code"].is_string());
    }
    assert!(
        answer.body["issues"]
            .as_array()
            .unwrap()
            .contains(&json!({"code": "reconnect_required"}))
    );
    assert_documented(&doc, "GET", "/health/calendar", &answer);
}

#[actix_web::test]
async fn the_full_health_report_needs_a_valid_token() {
    let w = world();
    refused_calendar(&w).await;
    let doc = document(&w).await;
    let full = send(
        &w,
        authorized(test::TestRequest::get().uri("/health/calendar")),
    )
    .await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body["calendars"][0]["calendarId"], "ceo@example.com");
    assert!(full.body["issues"][0]["message"].is_string());
    assert_documented(&doc, "GET", "/health/calendar", &full);
    for wrong in [
        "Bearer not-the-token-0123456789",
        "Basic Zm9vOmJhcg==",
        "Bearer",
    ] {
        let answer = send(
            &w,
            test::TestRequest::get()
                .uri("/health/calendar")
                .insert_header(("Authorization", wrong)),
        )
        .await;
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{wrong}"
        );
        assert!(!String::from_utf8_lossy(&answer.raw).contains("example.com"));
    }
    // The probes stay open.
    for probe in ["/health/live", "/health/ready"] {
        let answer = send(&w, test::TestRequest::get().uri(probe)).await;
        assert_eq!(answer.status, 200, "{probe}");
        assert_documented(&doc, "GET", probe, &answer);
    }
}

#[actix_web::test]
async fn the_api_page_is_served_from_the_binary() {
    let w = world();
    let page = send(&w, test::TestRequest::get().uri("/docs")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.raw).unwrap();
    assert!(
        html.contains("swagger-ui") && html.contains("<base href=\"/docs/\">"),
        "{html}"
    );
    // Bundled, not fetched: no script or style from elsewhere.
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(!line.contains("//"), "external asset: {line}");
    }
    for (file, kind) in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "css"),
        ("swagger-initializer.js", "javascript"),
    ] {
        let asset = send(&w, test::TestRequest::get().uri(&format!("/docs/{file}"))).await;
        assert_eq!(asset.status, 200, "{file}");
        assert!(
            asset
                .headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .contains(kind),
            "{file}"
        );
        assert!(asset.raw.len() > 100, "{file}");
        if file == "swagger-initializer.js" {
            let script = String::from_utf8(asset.raw).unwrap();
            assert!(script.contains("\"/openapi.json\""), "{script}");
        }
    }
    let missing = send(&w, test::TestRequest::get().uri("/docs/nope.js")).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// The document's verdict on a parameter as sent (`None`: left out),
/// typed as its schema says (a header or query value is text on the wire).
fn param_accepts(doc: &Value, method: &str, path: &str, name: &str, sent: Option<&str>) -> bool {
    let parameter = operation(doc, method, path)["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .unwrap_or_else(|| panic!("{method} {path} does not document {name}"));
    let Some(text) = sent else {
        return parameter["required"] != true;
    };
    let schema = deref(doc, &parameter["schema"]);
    let typed = match schema["type"].as_str() {
        Some("integer") => text
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| text.parse::<i64>().map(Value::from))
            .unwrap_or_else(|_| json!(text)),
        Some("boolean") => text
            .parse::<bool>()
            .map_or_else(|_| json!(text), Value::Bool),
        _ => json!(text),
    };
    validator(doc, &parameter["schema"], false).is_valid(&typed)
}

fn body_accepts(doc: &Value, method: &str, path: &str, body: &Value) -> bool {
    let schema =
        &operation(doc, method, path)["requestBody"]["content"]["application/json"]["schema"];
    validator(doc, schema, false).is_valid(body)
}

/// The server's verdict: a 2xx accepts, a 400, 404 or 422 refuses.
fn server_accepts(answer: &Answer, case: &str) -> bool {
    match answer.status {
        200..=299 => true,
        400 | 404 | 422 => false,
        other => panic!("{case}: answered {other} {}", answer.body),
    }
}

fn agree(case: &str, document: bool, answer: &Answer) {
    let body: String = answer.body.to_string().chars().take(300).collect();
    assert_eq!(
        server_accepts(answer, case),
        document,
        "{case}: the document {} it, the server answered {} {body}",
        if document { "accepts" } else { "refuses" },
        answer.status,
    );
}

/// `value` with `pointer` (`/a/b`) set to `to`.
fn with(mut value: Value, pointer: &str, to: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let slot = value.pointer_mut(parent).unwrap();
    match slot {
        Value::Object(map) => {
            map.insert(key.to_owned(), to);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = to,
        _ => panic!("{pointer}"),
    }
    value
}

/// Every rule the document states for a field, header, query or path
/// value, tried on both sides: where the document accepts a value the
/// server does, and where it refuses one the server does (a 400, 404 or
/// 422). Rules only prose can state (an IANA zone the database knows, an
/// end after its start) are not here: the fuzz battery knows them.
#[actix_web::test]
async fn the_document_and_the_server_agree_on_each_rule() {
    let w = world();
    let doc = document(&w).await;
    let create =
        |body: &Value| authorized(test::TestRequest::post().uri("/calendar/events")).set_json(body);
    let zoned = json!({
        "entityType": "deal", "entityId": "1",
        "start": {"dateTime": "2030-01-15T10:00:00Z", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-01-15T11:00:00Z", "timeZone": "Europe/Berlin"},
    });
    let mut bodies: Vec<(String, Value)> = Vec::new();
    for at in [
        "2030-01-15T10:00:00Z",
        "2030-01-15t10:00:00z",
        "2030-01-15T10:00:00.123456789+14:00",
        "2030-01-15T10:00:00-00:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2030-01-15 10:00:00Z",
        "2030-01-15T10:00:60Z",
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "2030-02-30T10:00:00Z",
        "2030-01-15T10:00:00",
        "2030-01-15T10:00:00+24:00",
        "2030-01-15T10:00:00+0100",
        "2030-1-15T10:00:00Z",
    ] {
        let body = with(zoned.clone(), "/start/dateTime", json!(at));
        bodies.push((
            format!("dateTime {at}"),
            with(body, "/end/dateTime", json!(at)),
        ));
    }
    let all_day = json!({"entityType": "deal", "entityId": "1",
        "start": {"date": "2030-01-15"}, "end": {"date": "9999-12-31"}});
    for date in [
        "2030-01-15",
        "0001-01-01",
        "2028-02-29",
        "2030-02-29",
        "2030-1-15",
        "+2030-01-15",
        "0000-01-01",
        "2030-01-15T00:00:00Z",
    ] {
        bodies.push((
            format!("date {date}"),
            with(all_day.clone(), "/start/date", json!(date)),
        ));
    }
    for zone in ["Europe/Berlin", "bad zone", ""] {
        bodies.push((
            format!("all-day timeZone {zone:?}"),
            with(all_day.clone(), "/start/timeZone", json!(zone)),
        ));
    }
    let fields: [(&str, &[Value]); 14] = [
        (
            "/summary",
            &[
                json!("x".repeat(1024)),
                json!("x".repeat(1025)),
                json!("a\u{0}b"),
                json!(null),
            ],
        ),
        ("/description", &[json!("nul \u{0}"), json!("fine")]),
        (
            "/entityType",
            &[json!("deal.v2:x"), json!("deal type"), json!("")],
        ),
        (
            "/entityId",
            &[json!("a/b c"), json!("a\u{1}b"), json!("x".repeat(257))],
        ),
        (
            "/calendarId",
            &[
                json!("room@example.com"),
                json!("a b"),
                json!(""),
                json!(null),
            ],
        ),
        (
            "/colorId",
            &[
                json!("1"),
                json!("11"),
                json!("0"),
                json!("12"),
                json!("01"),
                json!(null),
            ],
        ),
        ("/visibility", &[json!("private"), json!("secret")]),
        ("/transparency", &[json!("transparent"), json!("busy")]),
        (
            "/conference",
            &[
                json!({"create": "meet"}),
                json!({"create": "zoom"}),
                json!(null),
            ],
        ),
        (
            "/reminders",
            &[
                json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 40320}]}),
                json!({"overrides": [{"method": "sms", "minutes": 10}]}),
                json!({"overrides": [{"method": "email", "minutes": 40321}]}),
            ],
        ),
        (
            "/attendees",
            &[
                json!([{"email": "ä@example.com", "displayName": "Ä", "responseStatus": "accepted"}]),
                json!([{"email": "a b@example.com"}]),
                json!([{"email": "a@b@example.com"}]),
                json!([{"email": "@example.com"}]),
                json!([{"email": "guest@example.com", "displayName": "nul \u{0}"}]),
                json!([{"email": "guest@example.com", "responseStatus": "maybe"}]),
            ],
        ),
        (
            "/recurrence",
            &[
                json!(["RRULE:FREQ=DAILY;COUNT=2"]),
                json!(["rrule:FREQ=DAILY;COUNT=2", "EXDATE:20300116T100000Z"]),
                json!(["FOO:bar"]),
                json!(["FREQ=DAILY"]),
                json!([]),
            ],
        ),
        (
            "/start/timeZone",
            &[json!("Europe/Berlin"), json!("bad zone")],
        ),
        ("/location", &[json!(null), json!("x".repeat(1025))]),
    ];
    for (pointer, values) in fields {
        for value in values {
            bodies.push((
                format!("{pointer} {value}"),
                with(zoned.clone(), pointer, value.clone()),
            ));
        }
    }
    // A timed series without its zones: the document's if/then says so.
    let zoneless = json!({"entityType": "deal", "entityId": "1",
        "start": {"dateTime": "2030-01-15T10:00:00Z"}, "end": {"dateTime": "2030-01-15T11:00:00Z"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]});
    bodies.push(("a zone-less series".into(), zoneless.clone()));
    bodies.push((
        "a timed start with an all-day end".into(),
        with(zoned.clone(), "/end", json!({"date": "2030-01-16"})),
    ));
    bodies.push((
        "an all-day series".into(),
        with(
            all_day.clone(),
            "/recurrence",
            json!(["RRULE:FREQ=DAILY;COUNT=2"]),
        ),
    ));
    for (case, body) in &bodies {
        let answer = send(&w, create(body)).await;
        agree(
            &format!("POST /calendar/events {case}"),
            body_accepts(&doc, "POST", "/calendar/events", body),
            &answer,
        );
    }

    // A patch names a change.
    let created = send(&w, create(&zoned)).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    for body in [
        json!({}),
        json!({"start": null}),
        json!({"attendees": null, "status": null}),
        json!({"summary": null}),
        json!({"status": "tentative"}),
        json!({"status": "cancelled"}),
        json!({"recurrence": ["RRULE:FREQ=DAILY;COUNT=2"], "start": {"dateTime": "2030-01-15T10:00:00Z"}}),
        json!({"recurrence": null, "start": {"dateTime": "2030-01-15T10:00:00Z"}}),
        json!({"start": {"date": "2030-01-15"}, "end": {"dateTime": "2030-01-15T11:00:00Z"}}),
        json!({"start": {"date": "2030-01-15"}, "end": {"date": "2030-01-16"}}),
    ] {
        let answer = send(
            &w,
            authorized(test::TestRequest::patch().uri(&format!("/calendar/events/{id}")))
                .set_json(&body),
        )
        .await;
        agree(
            &format!("PATCH /calendar/events/{{id}} {body}"),
            body_accepts(&doc, "PATCH", "/calendar/events/{id}", &body),
            &answer,
        );
    }

    // A malformed change is refused as such, whatever `If-Match` says
    // (RFC 9110, section 13.2.1).
    for (body, status) in [
        (json!({"summary": "nul \u{0}"}), 400),
        (json!({"location": "x".repeat(1025)}), 400),
        (json!({"recurrence": ["FREQ=DAILY"]}), 422),
        (
            json!({"attendees": [{"email": "a@example.com", "displayName": "\u{0}"}]}),
            400,
        ),
        (json!({"recurrence": vec!["RRULE:FREQ=DAILY"; 51]}), 422),
    ] {
        let answer = send(
            &w,
            authorized(test::TestRequest::patch().uri(&format!("/calendar/events/{id}")))
                .insert_header(("If-Match", "\"stale\""))
                .set_json(&body),
        )
        .await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
    }

    // Event ids: the hyphenated form only (any case).
    for path_id in [
        id.clone(),
        id.to_ascii_uppercase(),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
        id.replace('-', ""),
    ] {
        let answer = send(
            &w,
            authorized(
                test::TestRequest::get().uri(&format!("/calendar/events/{}", encode(&path_id))),
            ),
        )
        .await;
        agree(
            &format!("GET /calendar/events/{path_id}"),
            param_accepts(&doc, "GET", "/calendar/events/{id}", "id", Some(&path_id)),
            &answer,
        );
    }

    // Query values.
    let listed = send(
        &w,
        authorized(test::TestRequest::get().uri("/calendar/events?limit=1")),
    )
    .await;
    let token = listed.body["nextPageToken"].as_str().unwrap().to_owned();
    let (micros, token_id) = token.split_once('.').unwrap();
    let query: Vec<(&str, String)> = vec![
        ("eventType", "outOfOffice".into()),
        ("eventType", String::new()),
        ("eventType", "x".repeat(65)),
        ("eventType", "out-of-office".into()),
        ("include", "google".into()),
        ("include", "Google".into()),
        ("timeMin", "2030-01-15T10:00:00+01:00".into()),
        ("timeMin", "2030-01-15 10:00:00Z".into()),
        ("timeMin", "2016-12-31T23:59:60Z".into()),
        ("timeMin", "0000-12-31T23:59:59Z".into()),
        ("pageToken", token.clone()),
        ("pageToken", format!("0.{token_id}")),
        ("pageToken", format!("-62135596800000000.{token_id}")),
        ("pageToken", format!("253402300799999999.{token_id}")),
        ("pageToken", format!("253402300800000000.{token_id}")),
        ("pageToken", format!("-62135596800000001.{token_id}")),
        ("pageToken", format!("-0.{token_id}")),
        ("pageToken", format!("0{micros}.{token_id}")),
        (
            "pageToken",
            format!("{micros}.{}", token_id.to_ascii_uppercase()),
        ),
        ("pageToken", "garbage".into()),
        ("calendarId", "a b".into()),
        ("status", "cancelled".into()),
        ("status", "gone".into()),
        ("limit", "500".into()),
        ("limit", "0".into()),
    ];
    for (name, value) in &query {
        let uri = format!("/calendar/events?{name}={}", encode(value));
        let answer = send(&w, authorized(test::TestRequest::get().uri(&uri))).await;
        agree(
            &format!("GET {uri}"),
            param_accepts(&doc, "GET", "/calendar/events", name, Some(value)),
            &answer,
        );
    }

    // Subjects and calendar ids.
    let sync = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/sync")),
    )
    .await;
    assert_eq!(sync.status, 202);
    let calendar = format!("/calendar/calendars/{}", encode(CALENDAR));
    for body in [
        json!({"subject": "owner@example.com"}),
        json!({"subject": null}),
        json!({"subject": "owner"}),
        json!({"subject": "a b@example.com"}),
        json!({"subject": "0".repeat(253)}),
        json!({}),
    ] {
        let answer = send(
            &w,
            authorized(test::TestRequest::patch().uri(&calendar)).set_json(&body),
        )
        .await;
        agree(
            &format!("PATCH /calendar/calendars/{{id}} {body}"),
            body_accepts(&doc, "PATCH", "/calendar/calendars/{id}", &body),
            &answer,
        );
    }
    for calendar_id in [CALENDAR, "a b", "tab\there"] {
        let answer = send(
            &w,
            authorized(
                test::TestRequest::get()
                    .uri(&format!("/calendar/calendars/{}", encode(calendar_id))),
            ),
        )
        .await;
        agree(
            &format!("GET /calendar/calendars/{calendar_id:?}"),
            param_accepts(
                &doc,
                "GET",
                "/calendar/calendars/{id}",
                "id",
                Some(calendar_id),
            ),
            &answer,
        );
    }

    // Push headers, on a real channel.
    let channel = send(
        &w,
        authorized(test::TestRequest::post().uri("/calendar/channels")),
    )
    .await;
    assert_eq!(channel.status, 201, "{}", channel.body);
    let channel_id = channel.body["id"].as_str().unwrap().to_owned();
    let resource_id = channel.body["resourceId"].as_str().unwrap().to_owned();
    let token = WebhookSecret::new("webhook-secret-0123456789")
        .unwrap()
        .channel_token(&calsync_domain::ids::ChannelId::new(&channel_id).unwrap());
    let mut number = 0u64;
    let headers: Vec<(&str, &str, Option<Vec<u8>>)> = vec![
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Tue, 19 Nov 2030 01:13:52 GMT".to_vec()),
        ),
        // The day name is not checked: the date says it.
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Mon, 19 Nov 2030 01:13:52 GMT".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Fri, 29 Feb 2028 00:00:00 GMT".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Fri, 29 Feb 2030 00:00:00 GMT".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Tue, 19 Nov 2030 01:13:52 +0000".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"19 Nov 2030 01:13:52 GMT".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"0".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Channel-Expiration",
            Some(b"Tue, 19 Nov 2030 01:13:52 GMT\xff".to_vec()),
        ),
        ("/webhooks/calendar", "X-Goog-Channel-Expiration", None),
        (
            "/webhooks/calendar",
            "X-Goog-Message-Number",
            Some(b"18446744073709551615".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Message-Number",
            Some(b"18446744073709551616".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Message-Number",
            Some(b"0".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Resource-URI",
            Some(b"https://".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Resource-URI",
            Some(b"ftp://x".to_vec()),
        ),
        (
            "/webhooks/calendar",
            "X-Goog-Resource-ID",
            Some(b"r\xe9s".to_vec()),
        ),
        ("/webhooks/calendar", "X-Goog-Resource-ID", None),
        (
            "/webhooks/drive",
            "X-Goog-Changed",
            Some(b"content,properties".to_vec()),
        ),
        ("/webhooks/drive", "X-Goog-Changed", Some(b"".to_vec())),
        ("/webhooks/drive", "X-Goog-Changed", Some(vec![b','; 16])),
        ("/webhooks/drive", "X-Goog-Changed", Some(b"x".repeat(65))),
        (
            "/webhooks/drive",
            "X-Goog-Changed",
            Some(b"caf\xe9".to_vec()),
        ),
    ];
    for (path, name, value) in headers {
        number += 1;
        let drive = path == "/webhooks/drive";
        let mut sent: Vec<(&str, Vec<u8>)> = vec![
            ("X-Goog-Channel-ID", channel_id.clone().into_bytes()),
            ("X-Goog-Channel-Token", token.clone().into_bytes()),
            ("X-Goog-Resource-ID", resource_id.clone().into_bytes()),
            (
                "X-Goog-Resource-URI",
                format!(
                    "https://www.googleapis.com/calendar/v3/calendars/{}/events",
                    encode(CALENDAR)
                )
                .into_bytes(),
            ),
            (
                "X-Goog-Resource-State",
                if drive {
                    b"change".to_vec()
                } else {
                    b"exists".to_vec()
                },
            ),
            ("X-Goog-Message-Number", number.to_string().into_bytes()),
        ];
        sent.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = &value {
            sent.push((name, value.clone()));
        }
        let mut request = test::TestRequest::post().uri(path);
        for (n, v) in &sent {
            request = request.insert_header((
                *n,
                actix_web::http::header::HeaderValue::from_bytes(v).unwrap(),
            ));
        }
        let answer = send(&w, request).await;
        // Header values are bytes: Latin-1 text to the document.
        let text = value
            .as_ref()
            .map(|v| v.iter().map(|b| char::from(*b)).collect::<String>());
        agree(
            &format!("POST {path} {name}: {text:?}"),
            param_accepts(&doc, "POST", path, name, text.as_deref()),
            &answer,
        );
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
