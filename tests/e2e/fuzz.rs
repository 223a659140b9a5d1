//! The HTTP fuzz battery: seeded property-based requests to every operation
//! in the server's own OpenAPI document, against the real server (as
//! `calsync serve` builds it: SQLite, and Postgres when reachable; the
//! built-in emulator). Requests are mostly well-formed with one thing wrong
//! (a body field, a query value, a path id, a header, the method, the token)
//! plus raw garbage and boundary sizes. Every answer must be:
//! - a documented status for its operation (405 with the path's `Allow` for
//!   a wrong method, 404 `no_route` for an unknown path), never a 5xx other
//!   than a documented 503, and never a dropped connection (a panic);
//! - for JSON answers, a body matching the documented schema, checked
//!   strictly (a field the document does not name fails);
//! - for every error, JSON of the error shape;
//! - both directions of the document's contract ([`conformance`]): a
//!   request the document calls valid (its schemas, formats, patterns,
//!   enums and the dependencies it states) is never refused for its form,
//!   only for the state it meets (404, 409, 412, ...); one that breaks a
//!   documented rule is refused with a 4xx. Generated requests break one
//!   constraint at a time on purpose ([`Mutation::Break`]).
//!
//! `CALSYNC_FUZZ_SEED` replays a run (the seed is printed first and in any
//! failure); `CALSYNC_FUZZ_REQUESTS` sets the number of requests (default
//! 10,000 on SQLite, half that on Postgres).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use calsync_domain::ids::ChannelId;
use calsync_domain::webhook::WebhookSecret;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{SECRET, TOKEN, drop_schema, postgres_schema, server};

mod conformance;

use conformance::{Conformance, broken_values, schema_at};

/// Requests per proptest case, sent over this many connections at once.
const BATCH: usize = 50;
const LANES: usize = 6;
/// The largest body any route takes (`calsync_http::MAX_EVENT_BODY_BYTES`).
const BODY_LIMIT: usize = calsync_http::MAX_EVENT_BODY_BYTES;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
/// A header as sent: its name and raw value.
type Header = (String, Vec<u8>);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// What a request is, as far as the routes go.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    /// A documented operation: `method` and `template` as in the document.
    Operation { method: String, template: String },
    /// A known path with a method it does not serve.
    WrongMethod { template: String },
    /// A path no route serves (under calsync's prefixes).
    NoRoute,
}

#[derive(Clone)]
struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    target: Target,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(400).collect();
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value)))
            .collect();
        write!(
            f,
            "{} {}{}{} {headers:?} body({} bytes)={body:?} [{:?}]",
            self.method,
            self.path,
            if self.query.is_empty() { "" } else { "?" },
            self.query,
            self.body.len(),
            self.target
        )
    }
}

/// Placeholders resolved when a request is sent: the nth event (or etag)
/// the server has answered with so far, so ids stay real as the run goes.
const LIVE_EVENT: &str = "@event:";
const LIVE_ETAG: &str = "@etag:";
const LIVE_PAGE: &str = "@page:";
const LIVE_WEBHOOK: &str = "@webhook:";
const LIVE_KEPT: usize = 300;

/// What answers showed: event ids, etags, page tokens, webhook ids.
type Live = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// Ids that exist in the server, so requests reach past the lookups.
#[derive(Default)]
struct Pool {
    events: Vec<String>,
    etags: Vec<String>,
    /// `(channel id, resource id, token)`.
    channels: Vec<(String, String, String)>,
    /// Webhook subscription ids.
    webhooks: Vec<String>,
}

struct Operation {
    method: String,
    template: String,
    spec: Value,
    /// Relative weight: writes that make Google calls are asked less often.
    weight: u32,
}

struct Battery {
    base: String,
    client: HttpClient,
    doc: Arc<Value>,
    /// `template -> methods served`, from the document.
    allowed: HashMap<String, BTreeSet<String>>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    sent: AtomicUsize,
    statuses: Mutex<BTreeMap<String, usize>>,
    /// Requests by what the document says of them: valid, invalid, unsaid.
    judged: Mutex<[usize; 3]>,
    /// Event ids, etags, page tokens and webhook subscription ids seen in
    /// answers (see [`LIVE_EVENT`]).
    live: Mutex<Live>,
}

impl Battery {
    /// A validator for `schema` (which may `$ref` the document's
    /// components), cached under `key`: answers are checked `strictly` (no
    /// field the document does not name), requests by the letter.
    fn compiled(
        &self,
        key: &str,
        schema: &Value,
        strictly: bool,
    ) -> Result<Arc<jsonschema::Validator>, String> {
        let key = format!("{key} {strictly}");
        if let Some(found) = self.validators.lock().unwrap().get(&key) {
            return Ok(found.clone());
        }
        let (components, schema) = if strictly {
            (strict(&self.doc["components"]), strict(schema))
        } else {
            (self.doc["components"].clone(), schema.clone())
        };
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": components,
            "allOf": [schema],
        });
        let built = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map(Arc::new)
            .map_err(|error| {
                format!("the document's schema for {key} does not compile: {error}")
            })?;
        self.validators.lock().unwrap().insert(key, built.clone());
        Ok(built)
    }

    fn deref<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.doc.pointer(pointer).unwrap_or(&Value::Null),
            None => value,
        }
    }

    async fn send(&self, request: &Request) -> Result<(u16, hyper::HeaderMap, Vec<u8>), String> {
        let uri = if request.query.is_empty() {
            format!("{}{}", self.base, request.path)
        } else {
            format!("{}{}?{}", self.base, request.path, request.query)
        };
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(&uri);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let built = builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| format!("the battery built a bad request: {e}"))?;
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(built))
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?
            .map_err(|e| format!("the connection failed (a panic?): {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the body broke off (a panic?): {e}"))?
            .to_bytes()
            .to_vec();
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok((status, headers, body))
    }

    /// Checks one answer; `Err` says what is wrong.
    fn check(
        &self,
        request: &Request,
        status: u16,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let head = request.method == "HEAD";
        let too_large = request.body.len() > BODY_LIMIT;
        if status >= 400 && !head {
            let json = json.as_ref().ok_or("an error answer that is not JSON")?;
            let error = &json["error"];
            if !(error["code"].is_string() && error["message"].is_string()) {
                return Err("an error answer without error.code and error.message".into());
            }
        }
        match &request.target {
            Target::NoRoute => match status {
                404 if head => Ok(()),
                404 if json
                    .as_ref()
                    .is_some_and(|j| j["error"]["code"] == "no_route") =>
                {
                    Ok(())
                }
                413 if too_large => Ok(()),
                _ => Err("an unknown path is not 404 no_route".into()),
            },
            Target::WrongMethod { template } => match status {
                413 if too_large => Ok(()),
                405 => {
                    let allow: BTreeSet<String> = headers
                        .get("allow")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .split(',')
                        .map(|m| m.trim().to_owned())
                        .filter(|m| !m.is_empty())
                        .collect();
                    if Some(&allow) != self.allowed.get(template) {
                        return Err(format!("Allow lists {allow:?}"));
                    }
                    if !head
                        && json.as_ref().map(|j| &j["error"]["code"])
                            != Some(&json!("method_not_allowed"))
                    {
                        return Err("405 without code method_not_allowed".into());
                    }
                    Ok(())
                }
                _ => Err("a wrong method is not 405".into()),
            },
            Target::Operation { method, template } => {
                let spec = &self.doc["paths"][template][method.to_lowercase()];
                let documented = self.deref(&spec["responses"][status.to_string()]);
                if !documented.is_object() {
                    return Err(format!(
                        "{status} is not documented for {method} {template}"
                    ));
                }
                if status >= 500 && status != 503 {
                    return Err(format!("a {status}"));
                }
                // The battery's database never goes down: a storage failure
                // means the input broke a query.
                if status == 503
                    && json.as_ref().map(|j| &j["error"]["code"]) == Some(&json!("unavailable"))
                {
                    return Err("a storage failure (503 unavailable) for a client's input".into());
                }
                let content = documented["content"].as_object();
                let Some((kind, media)) = content.and_then(|c| c.iter().next()) else {
                    return Ok(());
                };
                let got = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let expected = kind.split(';').next().unwrap_or_default();
                // Assets are typed by file: only JSON and text kinds are pinned.
                if !head && kind != "application/octet-stream" && !got.starts_with(expected) {
                    return Err(format!("content-type {got:?}, documented {kind:?}"));
                }
                if kind == "application/json" && !head {
                    let json = json
                        .as_ref()
                        .ok_or("documented JSON, answered something else")?;
                    let key = format!("{method} {template} {status}");
                    let validator = self.compiled(&key, &media["schema"], true)?;
                    let problems: Vec<String> = validator
                        .iter_errors(json)
                        .take(5)
                        .map(|e| format!("{e} at {}", e.instance_path()))
                        .collect();
                    if !problems.is_empty() {
                        return Err(format!(
                            "the body does not match the document: {problems:?}"
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// `request` with its placeholders replaced by live ids.
    fn render(&self, request: &Request) -> Request {
        let live = self.live.lock().unwrap();
        let pick = |list: &Vec<String>, n: &str| -> Option<String> {
            let n: usize = n.parse().ok()?;
            (!list.is_empty()).then(|| list[n % list.len()].clone())
        };
        let mut rendered = request.clone();
        rendered.path = request
            .path
            .split('/')
            .map(|segment| {
                if let Some(n) = segment.strip_prefix(LIVE_EVENT) {
                    pick(&live.0, n).unwrap_or_default()
                } else if let Some(n) = segment.strip_prefix(LIVE_WEBHOOK) {
                    // None left: one that never existed.
                    pick(&live.3, n).unwrap_or_else(|| format!("wh_{}", "0".repeat(32)))
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        rendered.query = request
            .query
            .split('&')
            .filter_map(|pair| match pair.split_once(LIVE_PAGE) {
                // No page seen yet: no token sent.
                Some((key, n)) => {
                    pick(&live.2, n).map(|t| format!("{key}{}", encode(t.as_bytes())))
                }
                None => Some(pair.to_owned()),
            })
            .collect::<Vec<_>>()
            .join("&");
        for (_, value) in &mut rendered.headers {
            if let Some(n) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.strip_prefix(LIVE_ETAG))
                && let Some(etag) = pick(&live.1, n)
            {
                *value = etag.into_bytes();
            }
        }
        rendered
    }

    /// Remembers the events an answer shows, for later requests.
    fn harvest(&self, body: &[u8]) {
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let mut live = self.live.lock().unwrap();
        if let Some(token) = json["nextPageToken"].as_str() {
            live.2.push(token.to_owned());
        }
        for event in [&json, &json["event"]] {
            if let (Some(id), true) = (event["id"].as_str(), event["googleEventId"].is_string()) {
                live.0.push(id.to_owned());
                if let Some(etag) = event["etag"].as_str() {
                    live.1.push(etag.to_owned());
                }
            }
        }
        let listed = json["items"].as_array().into_iter().flatten();
        for subscription in std::iter::once(&json).chain(listed) {
            if let Some(id) = subscription["id"]
                .as_str()
                .filter(|id| id.starts_with("wh_"))
            {
                live.3.push(id.to_owned());
            }
        }
        let (events, etags, pages, webhooks) = &mut *live;
        for list in [events, etags, pages, webhooks] {
            if list.len() > LIVE_KEPT {
                let excess = list.len() - LIVE_KEPT;
                list.drain(..excess);
            }
        }
    }

    async fn run(&self, request: &Request) -> Result<(), String> {
        let request = &self.render(request);
        let conformance = self.conformance(request)?;
        self.judged.lock().unwrap()[match conformance {
            Conformance::Valid => 0,
            Conformance::Invalid(_) => 1,
            Conformance::Unsaid => 2,
        }] += 1;
        let (status, headers, body) = self.send(request).await?;
        if status < 300 || status == 409 || status == 412 || status == 502 {
            self.harvest(&body);
        }
        let said = match conformance {
            Conformance::Valid => "valid",
            Conformance::Invalid(_) => "invalid",
            Conformance::Unsaid => "unsaid",
        };
        let key = match &request.target {
            Target::Operation { method, template } => {
                format!("{method} {template} {status} {said}")
            }
            Target::WrongMethod { .. } => format!("wrong method {status}"),
            Target::NoRoute => format!("no route {status}"),
        };
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default() += 1;
        if std::env::var("CALSYNC_FUZZ_TRACE").is_ok_and(|k| key.starts_with(&k)) {
            eprintln!(
                "DEBUG {request:?} [{conformance:?}] -> {}",
                String::from_utf8_lossy(&body)
            );
        }
        self.check(request, status, &headers, &body)
            .and_then(|()| self.check_conformance(request, &conformance, status, &body))
            .map_err(|reason| {
                let text: String = String::from_utf8_lossy(&body).chars().take(600).collect();
                format!("{reason}\n  request: {request:?}\n  answer: {status} {text}")
            })
    }
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
                    let composing = matches!(
                        key.as_str(),
                        "allOf" | "oneOf" | "anyOf" | "not" | "if" | "then" | "else"
                    );
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

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(&Value::Null),
        None => schema,
    }
}

fn instant() -> BoxedStrategy<String> {
    let now = chrono::Utc::now().timestamp();
    prop_oneof![
        8 => (-400i64 * 86_400..400 * 86_400, select(vec!["Z", "+01:00", "-07:30", "+00:00"]))
            .prop_map(move |(offset, zone)| {
                let at = chrono::DateTime::from_timestamp(now + offset, 0).unwrap_or_default();
                let text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
                format!("{text}{zone}")
            }),
        1 => select(vec![
            "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2030-02-30T10:00:00Z",
            "2030-01-15T10:00:00", "2030-01-15 10:00:00Z", "2030-01-15T24:00:00Z",
            "+275760-09-13T00:00:00Z", "tomorrow", "",
            "2030-01-15T10:00:00.123456789+14:00", "2030-01-15t10:00:00z",
            "2030-01-15T10:00:60Z", "2016-12-31T23:59:60Z",
        ]).prop_map(str::to_owned),
    ]
    .boxed()
}

fn date() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (2020i32..2040, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => select(vec!["2030-02-30", "0000-01-01", "99999-01-01", "2030-1-5", "", "2030-01-15T00:00:00Z"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A string for a schema: formats and patterns honoured, length bounded.
fn string(schema: &Value, name: &str) -> BoxedStrategy<Value> {
    let max = schema["maxLength"].as_u64().map(|m| m as usize);
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    let base: BoxedStrategy<String> = match (schema["format"].as_str(), schema["pattern"].as_str())
    {
        (Some("date-time"), _) => instant(),
        (Some("date"), _) => date(),
        _ if name == "calendarId" => prop_oneof![
            6 => Just("primary".to_owned()),
            1 => "[a-z0-9._%+-]{1,20}@[a-z0-9.-]{1,12}".prop_map(|s| s),
            1 => Just("x".repeat(1025)),
        ]
        .boxed(),
        _ if name == "timeZone" => prop_oneof![
            6 => select(vec!["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata", "Pacific/Chatham"])
                .prop_map(str::to_owned),
            1 => "[A-Za-z_]{1,12}/[A-Za-z_]{1,12}".prop_map(|s| s),
        ]
        .boxed(),
        // Lines that parse, mostly: the document states a line's kind, and
        // its grammar only in prose.
        _ if name == "recurrence" => prop_oneof![
            6 => select(vec![
                "RRULE:FREQ=DAILY;COUNT=3",
                "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20310101T000000Z",
                "rrule:freq=monthly;count=2",
                "EXDATE:20300116T100000Z",
                "RDATE;VALUE=DATE:20300301",
                "EXRULE:FREQ=WEEKLY;COUNT=1",
            ])
            .prop_map(str::to_owned),
            1 => "(RRULE|EXDATE|RDATE):[A-Z0-9=;,]{0,20}".prop_map(|s| s),
        ]
        .boxed(),
        // Webhook receivers: loopback's closed port 9 (refused at once) and
        // IP literals, so neither a subscription's check nor a delivery
        // waits on DNS or a connection; internal addresses are refused
        // (400 naming `url`).
        _ if name == "url" => prop_oneof![
            6 => select(vec![
                "http://127.0.0.1:9/hooks",
                "https://127.0.0.1:9/hooks?deal=42",
                "http://[::1]:9/h",
                "HTTPS://127.0.0.1:9/",
            ])
            .prop_map(str::to_owned),
            2 => select(vec![
                "https://10.0.0.1/h",
                "https://192.168.1.1/h",
                "https://169.254.169.254/latest/meta-data",
                "http://10.0.0.1/h",
                "https://[fd00::1]/h",
            ])
            .prop_map(str::to_owned),
            1 => select(vec![
                "https://x:y@127.0.0.1:9/",
                "https://127.0.0.1:99999/",
                "ftp://127.0.0.1:9/",
                "https://",
            ])
            .prop_map(str::to_owned),
        ]
        .boxed(),
        _ if name == "email" || name == "subject" => prop_oneof![
            6 => "[a-z0-9._%+-]{1,12}@[a-z0-9-]{1,10}\\.[a-z]{2,3}".prop_map(|s| s),
            1 => "[^@]{0,8}@?[^@]{0,8}".prop_map(|s| s),
        ]
        .boxed(),
        (_, Some(pattern)) => match proptest::string::string_regex(pattern) {
            Ok(strategy) => strategy.boxed(),
            Err(_) => Just("x".to_owned()).boxed(),
        },
        _ => prop_oneof![
            6 => "[ -~]{0,24}".prop_map(|s| s),
            1 => "\\PC{0,12}".prop_map(|s| s),
        ]
        .boxed(),
    };
    base.prop_map(move |mut text| {
        if let Some(max) = max
            && text.chars().count() > max
        {
            text = text.chars().take(max).collect();
        }
        while text.chars().count() < min {
            text.push('x');
        }
        Value::String(text)
    })
    .boxed()
}

/// A value for `schema`, valid as far as the schema says (cross-field rules
/// are up to the caller).
fn value(doc: &Arc<Value>, schema: &Value, name: &str, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema).clone();
    if depth > 6 {
        return Just(Value::Null).boxed();
    }
    if let Some(options) = schema["enum"].as_array() {
        return select(options.clone()).boxed();
    }
    if schema.get("properties").is_some() {
        // Rules across its fields (`anyOf`, `if`/`then`) are left to the
        // caller: the request is judged against them when sent.
        return object_value(doc, &schema, depth, &[], &[]);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // `EventTimeBody`: an object plus a oneOf of required groups.
        let object = parts
            .iter()
            .find(|p| p.get("properties").is_some())
            .cloned();
        let groups: Vec<Vec<String>> = parts
            .iter()
            .filter_map(|p| p["oneOf"].as_array())
            .flatten()
            .map(|g| {
                g["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .collect();
        let Some(object) = object else {
            return Just(json!({})).boxed();
        };
        let all: Vec<String> = groups.iter().flatten().cloned().collect();
        let doc = doc.clone();
        let choices = (0..groups.len().max(1)).collect::<Vec<_>>();
        return select(choices)
            .prop_flat_map(move |i| {
                let present = groups.get(i).cloned().unwrap_or_default();
                let absent: Vec<String> = all
                    .iter()
                    .filter(|k| !present.contains(k))
                    .cloned()
                    .collect();
                object_value(&doc, &object, depth, &present, &absent)
            })
            .boxed();
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let strategies: Vec<BoxedStrategy<Value>> = options
            .iter()
            .map(|o| value(doc, o, name, depth + 1))
            .collect();
        return proptest::strategy::Union::new(strategies).boxed();
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ if schema.get("properties").is_some() => vec!["object".into()],
        _ => vec!["string".into()],
    };
    let nullable = types.iter().any(|t| t == "null");
    let main = types
        .iter()
        .find(|t| *t != "null")
        .cloned()
        .unwrap_or_else(|| "null".into());
    let strategy: BoxedStrategy<Value> = match main.as_str() {
        "string" => string(&schema, name),
        "integer" => {
            let min = schema["minimum"].as_i64().unwrap_or(0);
            let max = schema["maximum"].as_i64().unwrap_or(1000);
            (min..=max).prop_map(|n| json!(n)).boxed()
        }
        "number" => (-1000.0f64..1000.0).prop_map(|n| json!(n)).boxed(),
        "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        "array" => {
            let items = value(doc, &schema["items"], name, depth + 1);
            let max = schema["maxItems"].as_u64().unwrap_or(3).min(3) as usize;
            prop::collection::vec(items, 0..=max)
                .prop_map(Value::Array)
                .boxed()
        }
        "object" => object_value(doc, &schema, depth, &[], &[]),
        _ => Just(Value::Null).boxed(),
    };
    if nullable {
        prop_oneof![9 => strategy, 1 => Just(Value::Null)].boxed()
    } else {
        strategy
    }
}

fn object_value(
    doc: &Arc<Value>,
    schema: &Value,
    depth: u32,
    present: &[String],
    absent: &[String],
) -> BoxedStrategy<Value> {
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .chain(present.iter().cloned())
        .collect();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (key, property) in schema["properties"].as_object().into_iter().flatten() {
        if absent.contains(key) {
            continue;
        }
        let key = key.clone();
        let mut property = resolve(doc, property).clone();
        if present.contains(&key) {
            // A forced member must be a real value, not `null`.
            if let Some(types) = property["type"].as_array() {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                property["type"] = kept.first().cloned().unwrap_or(json!("string"));
            }
        }
        let strategy = value(doc, &property, &key, depth + 1);
        let field = if required.contains(&key) {
            strategy.prop_map(move |v| Some((key.clone(), v))).boxed()
        } else {
            prop_oneof![
                1 => Just(None),
                1 => strategy.prop_map(move |v| Some((key.clone(), v))),
            ]
            .boxed()
        };
        fields.push(field);
    }
    fields
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
        .boxed()
}

/// Values that break a field's type or bounds.
fn wrong_value() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!([1, "two", null])),
        Just(json!({})),
        Just(json!({"nested": {"deeper": [{}]}})),
        Just(json!("")),
        Just(json!(" ")),
        Just(json!("\u{0}\u{1f}\u{7f}")),
        Just(json!("\u{202e}\u{feff}\u{1F600}")),
        Just(json!("x".repeat(1025))),
        Just(json!("y".repeat(8193))),
        "\\PC{0,40}".prop_map(Value::String),
    ]
    .boxed()
}

/// Every JSON pointer inside `value`, itself included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Replace(Value),
    /// One of the constraints the document gives the value there, broken
    /// (see [`broken_values`]).
    Break(Index),
    Remove,
    AddUnknown,
    Attendees(usize),
    Nest(usize),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        6 => any::<Index>().prop_map(Mutation::Break),
        6 => wrong_value().prop_map(Mutation::Replace),
        3 => Just(Mutation::Remove),
        2 => Just(Mutation::AddUnknown),
        1 => select(vec![0usize, 500, 501]).prop_map(Mutation::Attendees),
        1 => select(vec![64usize, 200]).prop_map(Mutation::Nest),
    ]
    .boxed()
}

/// `body` with `mutation` applied at the place `at` picks; `schema` is
/// the body's, in `doc`.
fn mutate(doc: &Value, schema: &Value, mut body: Value, at: Index, mutation: &Mutation) -> Value {
    let mut all = Vec::new();
    pointers(&body, String::new(), &mut all);
    let target = at.get(&all).clone();
    let (parent, last) = match target.rsplit_once('/') {
        Some((parent, last)) => (
            parent.to_owned(),
            last.replace("~1", "/").replace("~0", "~"),
        ),
        None => (String::new(), String::new()),
    };
    match mutation {
        Mutation::Replace(with) => match body.pointer_mut(&target) {
            Some(slot) => *slot = with.clone(),
            None => body = with.clone(),
        },
        Mutation::Break(which) => {
            let path: Vec<String> = target
                .split('/')
                .skip(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect();
            let candidates = schema_at(doc, schema, &path)
                .map(|found| broken_values(doc, &found))
                .unwrap_or_default();
            if !candidates.is_empty()
                && let Some(slot) = body.pointer_mut(&target)
            {
                *slot = which.get(&candidates).clone();
            }
        }
        Mutation::Remove => match body.pointer_mut(&parent) {
            Some(Value::Object(map)) => {
                map.remove(&last);
            }
            Some(Value::Array(items)) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        },
        Mutation::AddUnknown => {
            if let Some(Value::Object(map)) = body.pointer_mut(&target) {
                map.insert("colour".into(), json!("red"));
            } else if let Value::Object(map) = &mut body {
                map.insert("colour".into(), json!("red"));
            }
        }
        Mutation::Attendees(n) => {
            if let Value::Object(map) = &mut body {
                let list: Vec<Value> = (0..*n)
                    .map(|i| json!({"email": format!("guest{i}@example.com")}))
                    .collect();
                map.insert("attendees".into(), Value::Array(list));
            }
        }
        Mutation::Nest(levels) => {
            let mut nested = json!(1);
            for _ in 0..*levels {
                nested = json!([nested]);
            }
            if let Some(slot) = body.pointer_mut(&target) {
                *slot = nested;
            }
        }
    }
    body
}

/// Makes a generated event body's times coherent (same form, end after
/// start; for a patch, no lone end) most of the time, so writes get past
/// validation and reach the store and Google.
fn coherent_times(mut body: Value, fix: bool) -> Value {
    if !fix {
        return body;
    }
    // A timed series names its zones (the document's if/then).
    if body["recurrence"].as_array().is_some_and(|r| !r.is_empty())
        && body["start"]["dateTime"].is_string()
        && !body["start"]["timeZone"].is_string()
    {
        body["start"]["timeZone"] = json!("Europe/Berlin");
    }
    let start = body["start"].clone();
    if start.is_null()
        && let Value::Object(map) = &mut body
    {
        map.remove("end");
    }
    if let Some(at) = start["dateTime"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    {
        let mut end = start.clone();
        end["dateTime"] = json!((at + chrono::Duration::hours(1)).to_rfc3339());
        body["end"] = end;
    } else if let Some(day) = start["date"]
        .as_str()
        .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    {
        body["end"] = json!({"date": (day + chrono::Duration::days(1)).to_string()});
    }
    body
}

fn garbage_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => select(vec![
            "", " ", "null", "[]", "{}", "0", "\"x\"", "{", "{\"a\":", "[[[[", "{\"summary\":\"\\ud800\"}",
            "\u{feff}{}", "{\"entityType\":\"deal\"}{}", "1e999999", "{\"a\":1,\"a\":2}", "\u{0}",
            "{\"start\":{\"dateTime\":\"2030-01-15T10:00:00Z\",\"dateTime\":\"x\"}}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..64),
        1 => select(vec![64usize, 129, 4096]).prop_map(|n| {
            let mut text = "[".repeat(n);
            text.push_str(&"]".repeat(n));
            text.into_bytes()
        }),
    ]
    .boxed()
}

fn oversize() -> BoxedStrategy<Vec<u8>> {
    Just(format!("{{\"summary\":\"{}\"}}", "x".repeat(BODY_LIMIT + 1024)).into_bytes()).boxed()
}

/// A path id for `template`.
fn path_id(template: &str, pool: &Arc<Pool>) -> BoxedStrategy<String> {
    let garbage = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 1..40).prop_map(|b| encode(&b)),
        2 => "[a-zA-Z0-9_+=-]{1,70}".prop_map(|s| s),
        1 => Just("%2F..%2Fetc".to_owned()),
        1 => Just("x".repeat(3000)),
        1 => Just("00000000-0000-0000-0000-000000000000".to_owned()),
        1 => Just("{00000000-0000-0000-0000-000000000000}".to_owned()),
        1 => Just("urn:uuid:00000000-0000-0000-0000-000000000000".to_owned()),
    ];
    if template.starts_with("/calendar/events/") && !pool.events.is_empty() {
        prop_oneof![
            // Resolved when sent, among the events that exist by then.
            5 => any::<u16>().prop_map(|n| format!("{LIVE_EVENT}{n}")),
            2 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
            3 => garbage,
        ]
        .boxed()
    } else if template.starts_with("/calendar/calendars/") {
        // `primary` is managed (the server's default calendar); removing
        // it stops every channel it has at Google, so it is aimed at rarely.
        prop_oneof![
            1 => Just("primary".to_owned()),
            4 => "[a-z0-9._%+-]{1,20}@[a-z0-9.-]{1,12}".prop_map(|s| encode(s.as_bytes())),
            5 => garbage,
        ]
        .boxed()
    } else if template.starts_with("/calendar/webhooks/") {
        prop_oneof![
            // Resolved when sent, among the subscriptions seen by then.
            5 => any::<u16>().prop_map(|n| format!("{LIVE_WEBHOOK}{n}")),
            1 => any::<u128>().prop_map(|n| format!("wh_{n:032x}")),
            3 => garbage,
        ]
        .boxed()
    } else if template.starts_with("/calendar/channels/") && !pool.channels.is_empty() {
        let ids: Vec<String> = pool.channels.iter().map(|c| c.0.clone()).collect();
        prop_oneof![5 => select(ids), 5 => garbage].boxed()
    } else if template.starts_with("/docs/") {
        prop_oneof![
            5 => select(vec!["index.html", "swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js", "favicon-16x16.png", "index.css"])
                .prop_map(str::to_owned),
            5 => garbage,
        ]
        .boxed()
    } else {
        garbage.boxed()
    }
}

fn query_value(doc: &Arc<Value>, name: &str, schema: &Value) -> BoxedStrategy<String> {
    let valid = value(doc, schema, name, 0).prop_map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    });
    let special: BoxedStrategy<String> = match name {
        "limit" => select(vec![
            "0",
            "1",
            "500",
            "501",
            "-1",
            "4294967296",
            "1.5",
            "",
            "abc",
        ])
        .prop_map(str::to_owned)
        .boxed(),
        "wait" => select(vec!["true", "false", "1", "yes", ""])
            .prop_map(str::to_owned)
            .boxed(),
        "pageToken" => prop_oneof![
            6 => any::<u16>().prop_map(|n| format!("{LIVE_PAGE}{n}")),
            1 => (any::<i64>(), any::<u128>())
                .prop_map(|(m, id)| format!("{m}.{}", uuid::Uuid::from_u128(id))),
            1 => (
                select(vec![
                    i64::MIN,
                    i64::MAX,
                    0,
                    -1,
                    8_210_298_326_400_000_000,
                    -8_334_601_228_800_000_000,
                    253_402_300_799_999_999,
                    -62_135_596_800_000_000,
                ]),
                any::<u128>()
            )
                .prop_map(|(m, id)| format!("{m}.{}", uuid::Uuid::from_u128(id))),
            1 => select(vec![
                "",
                ".",
                "1.",
                ".x",
                "+1.00000000-0000-0000-0000-000000000000",
                "garbage"
            ])
            .prop_map(str::to_owned),
        ]
        .boxed(),
        _ => "\\PC{0,16}".prop_map(|s| s).boxed(),
    };
    let broken: Vec<String> = broken_values(doc, schema)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    if name == "waitSecs" {
        // A valid long poll here is 0 s, so the battery never waits for a
        // change (the feed's own tests time long polls); broken ones are
        // refused at once.
        return prop_oneof![8 => Just("0".to_owned()), 2 => select(broken)].boxed();
    }
    if broken.is_empty() {
        return prop_oneof![8 => valid, 2 => special].boxed();
    }
    prop_oneof![8 => valid, 2 => special, 2 => select(broken)].boxed()
}

fn query(doc: &Arc<Value>, spec: &Value) -> BoxedStrategy<String> {
    let mut parts: Vec<BoxedStrategy<Option<String>>> = Vec::new();
    let mut pair: Vec<BoxedStrategy<String>> = Vec::new();
    for parameter in spec["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "query" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        let strategy = query_value(doc, &name, &parameter["schema"]);
        let rendered = strategy
            .prop_map(move |v| {
                // Placeholders stay readable for `render`; values are encoded.
                let v = if v.starts_with(LIVE_PAGE) {
                    v
                } else {
                    encode(v.as_bytes())
                };
                format!("{}={v}", encode(name.as_bytes()))
            })
            .boxed();
        if matches!(parameter["name"].as_str(), Some("entityType" | "entityId")) {
            pair.push(rendered);
            continue;
        }
        parts.push(prop_oneof![2 => Just(None), 1 => rendered.prop_map(Some)].boxed());
    }
    // Parameters that only make sense together are mostly sent together.
    if pair.len() == 2 {
        let second = pair.pop();
        let first = pair.pop();
        if let (Some(first), Some(second)) = (first, second) {
            parts.push(
                (first, second, select(vec![0u8, 0, 0, 1, 1, 2]))
                    .prop_map(|(a, b, how)| match how {
                        0 => None,
                        1 => Some(format!("{a}&{b}")),
                        _ => Some(a),
                    })
                    .boxed(),
            );
        }
    }
    let extra = prop_oneof![
        30 => Just(None),
        2 => Just(Some("zzz=1".to_owned())),
        1 => select(vec!["%", "%ZZ", "a&&b", "=x", "%FF=%FF", "limit=1&limit=2", "wait=true&wait=false", "&"])
            .prop_map(|s| Some(s.to_owned())),
    ];
    (parts, extra)
        .prop_map(|(parts, extra)| {
            parts
                .into_iter()
                .flatten()
                .chain(extra)
                .collect::<Vec<_>>()
                .join("&")
        })
        .boxed()
}

fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(
            prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')],
            1..40,
        ),
        1 => Just(vec![b'x'; 300]),
    ]
    .boxed()
}

fn authorization() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        17 => Just(Some(format!("Bearer {TOKEN}").into_bytes())),
        1 => Just(None),
        1 => select(vec![
            "Bearer not-the-token-0123456789".to_owned(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("bearer {TOKEN}"),
            format!("Bearer  {TOKEN} "),
            format!("Basic {TOKEN}"),
            format!("Bearer {TOKEN}x"),
        ])
        .prop_map(|s| Some(s.into_bytes())),
        1 => header_bytes().prop_map(|b| Some([b"Bearer ".to_vec(), b].concat())),
    ]
    .boxed()
}

/// The webhook headers: a real channel's (signed) or made up, each
/// sometimes dropped or garbled.
fn webhook_headers(spec: &Value, pool: &Arc<Pool>) -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let names: Vec<String> = spec["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut channels = pool.channels.clone();
    channels.push((
        "stranger-channel".into(),
        "stranger-resource".into(),
        "0".repeat(64),
    ));
    let drive = spec["operationId"] == "receiveDriveNotification";
    let states: Vec<&'static str> = if drive {
        vec!["sync", "add", "update", "change", "trash"]
    } else {
        vec!["sync", "exists", "not_exists"]
    };
    let fates = prop::collection::vec(
        prop_oneof![
            17 => Just(None),
            1 => Just(Some(None)),
            2 => header_bytes().prop_map(|b| Some(Some(b))),
        ],
        names.len(),
    );
    (select(channels), select(states), 1u64..1_000_000, fates)
        .prop_map(move |((channel, resource, token), state, number, fates)| {
            let mut out = Vec::new();
            for (name, fate) in names.iter().zip(fates) {
                let natural: Option<String> = match name.to_ascii_lowercase().as_str() {
                    "x-goog-channel-id" => Some(channel.clone()),
                    "x-goog-channel-token" => Some(token.clone()),
                    "x-goog-resource-id" => Some(resource.clone()),
                    "x-goog-resource-uri" => Some(
                        "https://www.googleapis.com/calendar/v3/calendars/primary/events".into(),
                    ),
                    "x-goog-resource-state" => Some(state.to_owned()),
                    "x-goog-message-number" => Some(number.to_string()),
                    "x-goog-channel-expiration" => Some("Tue, 19 Nov 2030 01:13:52 GMT".to_owned()),
                    "x-goog-changed" => Some("content,properties".to_owned()),
                    _ => None,
                };
                match fate {
                    None => {
                        if let Some(v) = natural {
                            out.push((name.clone(), v.into_bytes()));
                        }
                    }
                    Some(None) => {}
                    Some(Some(garbled)) => out.push((name.clone(), garbled)),
                }
            }
            out
        })
        .boxed()
}

fn operation_headers(spec: &Value, pool: &Arc<Pool>) -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let names: Vec<String> = spec["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    if names.iter().any(|n| n.starts_with("X-Goog")) {
        return webhook_headers(spec, pool);
    }
    let mut strategies: Vec<BoxedStrategy<Option<Header>>> = Vec::new();
    for name in names {
        let values: BoxedStrategy<Vec<u8>> = match name.as_str() {
            "If-Match" => prop_oneof![
                2 => Just(b"*".to_vec()),
                4 => any::<u16>().prop_map(|n| format!("{LIVE_ETAG}{n}").into_bytes()),
                1 => Just(b"\"1\"".to_vec()),
                3 => header_bytes(),
            ]
            .boxed(),
            "Idempotency-Key" => prop_oneof![
                3 => select(vec!["key-1", "key-2", "key-3"]).prop_map(|s| s.as_bytes().to_vec()),
                3 => "[!-~]{1,40}".prop_map(String::into_bytes),
                1 => Just(vec![b'k'; 256]),
                2 => header_bytes(),
            ]
            .boxed(),
            _ => header_bytes(),
        };
        strategies.push(
            prop_oneof![
                3 => Just(None),
                2 => values.prop_map(move |v| Some((name.clone(), v))),
            ]
            .boxed(),
        );
    }
    strategies
        .prop_map(|headers| headers.into_iter().flatten().collect())
        .boxed()
}

fn body(doc: &Arc<Value>, spec: &Value) -> BoxedStrategy<Vec<u8>> {
    let schema = spec["requestBody"]["content"]["application/json"]["schema"].clone();
    if schema.is_null() {
        return prop_oneof![
            40 => Just(Vec::new()),
            4 => garbage_body(),
            1 => oversize(),
        ]
        .boxed();
    }
    let events = resolve(doc, &schema)["properties"].get("start").is_some();
    let in_doc = doc.clone();
    let generated = (
        value(doc, &schema, "body", 0),
        prop::bool::weighted(0.7),
        prop::option::weighted(0.35, (any::<Index>(), mutation())),
    )
        .prop_map(move |(body, fix, mutation)| {
            let body = if events {
                coherent_times(body, fix)
            } else {
                body
            };
            let body = match mutation {
                Some((at, how)) => mutate(&in_doc, &schema, body, at, &how),
                None => body,
            };
            body.to_string().into_bytes()
        });
    prop_oneof![
        40 => generated,
        6 => garbage_body(),
        4 => Just(Vec::new()),
        1 => oversize(),
    ]
    .boxed()
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PURGE",
];

fn request(
    battery: &Arc<Battery>,
    operation: &Operation,
    pool: &Arc<Pool>,
) -> BoxedStrategy<Request> {
    let doc = battery.doc.clone();
    let template = operation.template.clone();
    let allowed = battery.allowed.get(&template).cloned().unwrap_or_default();
    let path = {
        let segments: Vec<String> = template.split('/').map(str::to_owned).collect();
        let ids: Vec<BoxedStrategy<String>> = segments
            .iter()
            .map(|s| {
                if s.starts_with('{') {
                    path_id(&template, pool)
                } else {
                    Just(s.clone()).boxed()
                }
            })
            .collect();
        ids.prop_map(|parts| parts.join("/"))
    };
    let method = prop_oneof![
        24 => Just(operation.method.clone()),
        1 => select(METHODS.to_vec()).prop_map(str::to_owned),
    ];
    let unknown = prop_oneof![40 => Just(None), 1 => select(vec!["/x/y/z", "/"]).prop_map(Some)];
    let content_type = prop_oneof![
        12 => Just(Some(b"application/json".to_vec())),
        1 => Just(None),
        1 => select(vec!["text/plain", "application/json; charset=latin1", "multipart/form-data; boundary=x", "*/*"])
            .prop_map(|s| Some(s.as_bytes().to_vec())),
    ];
    let request_id = prop_oneof![9 => Just(None), 1 => header_bytes().prop_map(Some)];
    (
        method,
        path,
        unknown,
        query(&doc, &operation.spec),
        authorization(),
        operation_headers(&operation.spec, pool),
        content_type,
        request_id,
        body(&doc, &operation.spec),
    )
        .prop_map(
            move |(method, path, unknown, query, auth, extra, content_type, request_id, body)| {
                let mut headers = Vec::new();
                if let Some(auth) = auth {
                    headers.push(("Authorization".to_owned(), auth));
                }
                if let Some(kind) = content_type {
                    headers.push(("Content-Type".to_owned(), kind));
                }
                if let Some(id) = request_id {
                    headers.push(("X-Request-Id".to_owned(), id));
                }
                headers.extend(extra);
                let (path, target) = match unknown {
                    Some(suffix) => (format!("{path}{suffix}"), Target::NoRoute),
                    None if allowed.contains(&method) => (
                        path,
                        Target::Operation {
                            method: method.clone(),
                            template: template.clone(),
                        },
                    ),
                    None => (
                        path,
                        Target::WrongMethod {
                            template: template.clone(),
                        },
                    ),
                };
                Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                    target,
                }
            },
        )
        .boxed()
}

fn requests(
    battery: &Arc<Battery>,
    operations: &[Operation],
    pool: &Arc<Pool>,
) -> BoxedStrategy<Vec<Request>> {
    let weighted: Vec<(u32, BoxedStrategy<Request>)> = operations
        .iter()
        .map(|op| (op.weight, request(battery, op, pool)))
        .collect();
    prop::collection::vec(proptest::strategy::Union::new_weighted(weighted), BATCH).boxed()
}

/// Events and channels to aim at, made through the API itself.
async fn seed_pool(battery: &Battery) -> Pool {
    let mut pool = Pool::default();
    let auth = (
        "Authorization".to_owned(),
        format!("Bearer {TOKEN}").into_bytes(),
    );
    let json_type = ("Content-Type".to_owned(), b"application/json".to_vec());
    let post = |path: &str, body: Value| Request {
        method: "POST".into(),
        path: path.into(),
        query: "wait=true".into(),
        headers: vec![auth.clone(), json_type.clone()],
        body: body.to_string().into_bytes(),
        target: Target::NoRoute,
    };
    for i in 0..8 {
        let start = chrono::Utc::now() + chrono::Duration::days(i + 1);
        let event = json!({
            "entityType": "deal", "entityId": format!("fuzz-{i}"), "summary": "Seed",
            "start": {"dateTime": start.to_rfc3339()},
            "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
        });
        let (status, _, body) = battery
            .send(&post("/calendar/events", event))
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 201, "seeding: {body}");
        pool.events.push(body["id"].as_str().unwrap().to_owned());
        pool.etags.push(body["etag"].as_str().unwrap().to_owned());
    }
    let mut request = post(
        "/calendar/webhooks",
        json!({"url": "http://127.0.0.1:9/seed", "description": "fuzz"}),
    );
    request.query.clear();
    let (status, _, body) = battery.send(&request).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 201, "seeding: {body}");
    pool.webhooks.push(body["id"].as_str().unwrap().to_owned());
    let secret = WebhookSecret::new(SECRET).unwrap();
    for _ in 0..2 {
        let mut request = post("/calendar/channels", json!({}));
        request.query.clear();
        let (status, _, body) = battery.send(&request).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 201, "seeding: {body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let token = secret.channel_token(&ChannelId::new(&id).unwrap());
        pool.channels
            .push((id, body["resourceId"].as_str().unwrap().to_owned(), token));
    }
    pool
}

async fn battery(database_url: Option<&str>, label: &str, total: usize) {
    let seed = env_u64("CALSYNC_FUZZ_SEED").unwrap_or_else(fresh_seed);
    eprintln!(
        "fuzz battery ({label}): seed {seed}, {total} requests; replay with CALSYNC_FUZZ_SEED={seed}"
    );
    let (running, _dir) = server(
        database_url,
        &[
            "--outbox-poll-ms",
            "50",
            "--outbox-retry-base-ms",
            "100",
            "--outbox-retry-cap-secs",
            "1",
            "--write-wait-secs",
            "2",
            "--google-rate-per-minute",
            "10000000",
            "--google-principal-rate-per-minute",
            "10000000",
            "--webhook-rate-per-minute",
            "10000000",
        ],
    )
    .await;
    let base = format!("http://{}", running.address);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(LANES * 2)
        .build_http();
    let mut battery = Battery {
        base,
        client,
        doc: Arc::new(Value::Null),
        allowed: HashMap::new(),
        validators: Mutex::new(HashMap::new()),
        sent: AtomicUsize::new(0),
        statuses: Mutex::new(BTreeMap::new()),
        judged: Mutex::new([0; 3]),
        live: Mutex::new((Vec::new(), Vec::new(), Vec::new(), Vec::new())),
    };
    let spec = Request {
        method: "GET".into(),
        path: "/openapi.json".into(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        target: Target::NoRoute,
    };
    let (status, _, body) = battery.send(&spec).await.unwrap();
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let mut operations = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, spec) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            battery
                .allowed
                .entry(template.clone())
                .or_default()
                .insert(method.clone());
            // Channel writes (adding a calendar watches it) are Google calls
            // and grow the emulator's push fan-out; assets and the document
            // are large and dull.
            let weight = match (method.as_str(), template.as_str()) {
                ("POST", "/calendar/channels" | "/calendar/calendars")
                | ("DELETE", "/calendar/channels/{id}") => 1,
                // Subscriptions are capped at 100, and each one makes the
                // delivery worker post every change (to a closed port).
                ("POST", "/calendar/webhooks") | ("DELETE", "/calendar/webhooks/{id}") => 2,
                (_, "/openapi.json" | "/docs" | "/docs/{file}" | "/metrics") => 1,
                // Deleting is quick to do and leaves nothing to patch.
                ("DELETE", "/calendar/events/{id}") => 2,
                ("PATCH" | "POST", "/calendar/events/{id}" | "/calendar/events") => 6,
                _ => 4,
            };
            operations.push(Operation {
                method,
                template: template.clone(),
                spec: spec.clone(),
                weight,
            });
        }
    }
    assert!(operations.len() >= 16, "{} operations", operations.len());
    battery.doc = Arc::new(doc);
    let pool = Arc::new(seed_pool(&battery).await);
    *battery.live.lock().unwrap() = (
        pool.events.clone(),
        pool.etags.clone(),
        Vec::new(),
        pool.webhooks.clone(),
    );
    let battery = Arc::new(battery);

    let cases = total.div_ceil(BATCH) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 40,
        ..Config::default()
    });
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let runner_battery = battery.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        // Strategies are not `Send`: they are built on the thread that runs them.
        let strategy = requests(&runner_battery, &operations, &pool);
        runner.run(&strategy, |batch| {
            let battery = runner_battery.clone();
            handle.block_on(async move {
                let batch = Arc::new(batch);
                let mut lanes = tokio::task::JoinSet::new();
                for lane in 0..LANES {
                    let (battery, batch) = (battery.clone(), batch.clone());
                    lanes.spawn(async move {
                        for request in batch.iter().skip(lane).step_by(LANES) {
                            battery.run(request).await?;
                        }
                        Ok::<(), String>(())
                    });
                }
                let mut failure = None;
                while let Some(joined) = lanes.join_next().await {
                    match joined {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => failure = failure.or(Some(reason)),
                        Err(error) => {
                            failure = failure.or(Some(format!("a lane panicked: {error}")))
                        }
                    }
                }
                match failure {
                    None => Ok(()),
                    Some(reason) => Err(TestCaseError::fail(reason)),
                }
            })
        })
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let sent = battery.sent.load(Ordering::Relaxed);
    let statuses = battery.statuses.lock().unwrap().clone();
    eprintln!(
        "fuzz battery ({label}): {sent} requests in {:.1} s ({:.0}/s); answers:",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64().max(0.001)
    );
    for (answer, count) in &statuses {
        eprintln!("  {count:>6}  {answer}");
    }
    let [valid, invalid, unsaid] = *battery.judged.lock().unwrap();
    eprintln!(
        "fuzz battery ({label}): the document calls {valid} requests valid, {invalid} invalid, {unsaid} neither"
    );
    if let Err(error) = outcome {
        panic!(
            "fuzz battery ({label}) failed with seed {seed} (replay: CALSYNC_FUZZ_SEED={seed}): {error}"
        );
    }
    // Still serving: nothing fell over along the way.
    let (status, _, _) = battery
        .send(&Request {
            method: "GET".into(),
            path: "/health/live".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            target: Target::NoRoute,
        })
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(sent >= total, "only {sent} of {total} requests were sent");
    // Both directions were tried in earnest.
    assert!(
        valid >= total / 5 && invalid >= total / 5,
        "{valid} valid and {invalid} invalid requests of {sent}: the generators drifted"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_operation_survives_the_fuzz_battery_sqlite() {
    let requests = env_u64("CALSYNC_FUZZ_REQUESTS").unwrap_or(10_000);
    battery(None, "sqlite", requests as usize).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_operation_survives_the_fuzz_battery_postgres() {
    let Some(url) = postgres_schema().await else {
        return;
    };
    let requests = env_u64("CALSYNC_FUZZ_REQUESTS").map_or(5_000, |n| n / 2);
    battery(Some(&url), "postgres", requests as usize).await;
    drop_schema(&url).await;
}
