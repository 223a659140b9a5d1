//! Both directions of the document's contract: a request the document calls
//! valid is not refused for its form, and one it calls invalid is refused.
//! A request is judged as the server reads it (path segments and query
//! values percent-decoded, header values without surrounding spaces), each
//! part against the schema the document gives it, plus the dependencies
//! the document states in prose ([`listing_dependencies`]).

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::{BODY_LIMIT, Battery, Request, Target, resolve};

/// What the document says of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Conformance {
    /// Every documented rule holds: the server may refuse it for the
    /// state it meets (404, 409, 412, ...) but not for its form.
    Valid,
    /// A documented rule is broken (the reason): the server must refuse it.
    Invalid(String),
    /// The document does not say: an unknown or repeated query parameter,
    /// or a JSON object with a repeated key.
    Unsaid,
}

impl Battery {
    /// What the document says of `request` (placeholders rendered).
    pub(super) fn conformance(&self, request: &Request) -> Result<Conformance, String> {
        let Target::Operation { method, template } = &request.target else {
            return Ok(Conformance::Unsaid);
        };
        let spec = &self.doc["paths"][template][method.to_lowercase()];
        let parameters: Vec<&Value> = spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let documented = |place: &str, name: &str| {
            parameters.iter().copied().find(|p| {
                p["in"] == place
                    && p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        let mut broken = Vec::new();
        for (part, segment) in template.split('/').zip(request.path.split('/')) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
                && let Some(parameter) = documented("path", name)
            {
                let value = percent_decode(segment, false);
                if !self.accepts(template, parameter, &value)? {
                    broken.push(format!("path {name} {value:?}"));
                }
            }
        }
        let mut query = BTreeMap::new();
        for pair in request.query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, true);
            let value = percent_decode(value, true);
            let Some(parameter) = documented("query", &name) else {
                return Ok(Conformance::Unsaid);
            };
            if !self.accepts(template, parameter, &value)? {
                broken.push(format!("query {name}={value:?}"));
            }
            if query.insert(name, value).is_some() {
                return Ok(Conformance::Unsaid);
            }
        }
        if spec["operationId"] == "listEvents" {
            broken.extend(listing_dependencies(&query));
        }
        for parameter in parameters.iter().filter(|p| p["in"] == "header") {
            let name = parameter["name"].as_str().unwrap_or_default();
            let sent = request
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| latin1(value.trim_ascii()));
            match sent {
                None if parameter["required"] == true => broken.push(format!("no {name}")),
                Some(value) if !self.accepts(template, parameter, &value)? => {
                    broken.push(format!("header {name}: {value:?}"));
                }
                _ => {}
            }
        }
        if request.body.len() > BODY_LIMIT {
            broken.push(format!("a body of {} bytes", request.body.len()));
        } else if let Some(media) = spec["requestBody"]["content"].get("application/json") {
            if request.body.iter().all(u8::is_ascii_whitespace) {
                if spec["requestBody"]["required"] == true {
                    broken.push("no body".into());
                }
            } else {
                match serde_json::from_slice::<Value>(&request.body) {
                    Err(_) => broken.push("a body that is not JSON".into()),
                    // serde's derive refuses a repeated field; JSON Schema
                    // sees the last value only.
                    Ok(_) if repeats_a_key(&request.body) => {
                        return Ok(Conformance::Unsaid);
                    }
                    Ok(body) => {
                        let key = format!("{method} {template} body");
                        let validator = self.compiled(&key, &media["schema"], false)?;
                        if let Some(error) = validator.iter_errors(&body).next() {
                            broken.push(format!("body: {error} at {}", error.instance_path()));
                        }
                    }
                }
            }
        }
        Ok(if broken.is_empty() {
            Conformance::Valid
        } else {
            Conformance::Invalid(broken.join("; "))
        })
    }

    /// Whether the document takes `text` for `parameter`, typed as its
    /// schema says (the wire carries text).
    fn accepts(&self, template: &str, parameter: &Value, text: &str) -> Result<bool, String> {
        let schema = &parameter["schema"];
        let typed = match resolve(&self.doc, schema)["type"].as_str() {
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
        let key = format!(
            "{template} {} {}",
            parameter["in"].as_str().unwrap_or_default(),
            parameter["name"].as_str().unwrap_or_default()
        );
        Ok(self.compiled(&key, schema, false)?.is_valid(&typed))
    }

    /// Checks the answer against what the document says of the request.
    pub(super) fn check_conformance(
        &self,
        request: &Request,
        conformance: &Conformance,
        status: u16,
        body: &[u8],
    ) -> Result<(), String> {
        match conformance {
            Conformance::Unsaid => Ok(()),
            Conformance::Invalid(reason) if !(400..500).contains(&status) => Err(format!(
                "a request the document calls invalid was answered {status} ({reason})"
            )),
            Conformance::Invalid(_) => Ok(()),
            Conformance::Valid => {
                let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let error = &json["error"];
                let code = error["code"].as_str().unwrap_or_default();
                let at = error["field"]
                    .as_str()
                    .or(error["header"].as_str())
                    .unwrap_or_default();
                let message = error["message"].as_str().unwrap_or_default();
                let for_its_form = match (status, code) {
                    (400, "invalid" | "invalid_header" | "missing_header") => {
                        !prose_allows(request, at, message)
                    }
                    (422, "unprocessable") => {
                        !(SEMANTIC.contains(&at)
                            || message.contains("invitation")
                            || message.contains("locked copy"))
                    }
                    _ => false,
                };
                if for_its_form {
                    Err(format!(
                        "a request the document calls valid was refused for its form: {status} {code} at {at:?}: {message}"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// 422 `unprocessable` fields a valid request may meet: rules about a
/// series (a line that does not parse, the zones it needs), the event's
/// type, attendees without delegation; invitations and locked copies name
/// any field but say so in the message.
const SEMANTIC: [&str; 6] = [
    "recurrence",
    "start.timeZone",
    "end.timeZone",
    "eventType",
    "attendees",
    // Availability over a calendar calsync does not manage.
    "participants",
];

/// The `GET /calendar/events` dependencies its parameters' descriptions
/// state: `entityType` with `entityId`; `singleEvents=true` with
/// `timeMax`, without `status=cancelled`; an occurrence's page token
/// (`_suffix`) with `singleEvents=true` only.
fn listing_dependencies(query: &BTreeMap<String, String>) -> Vec<String> {
    let mut broken = Vec::new();
    if query.contains_key("entityType") != query.contains_key("entityId") {
        broken.push("entityType and entityId go together".to_owned());
    }
    let single = query.get("singleEvents").is_some_and(|v| v == "true");
    if single && !query.contains_key("timeMax") {
        broken.push("singleEvents=true without timeMax".to_owned());
    }
    if single && query.get("status").is_some_and(|s| s == "cancelled") {
        broken.push("singleEvents=true with status=cancelled".to_owned());
    }
    if !single && query.get("pageToken").is_some_and(|t| t.contains('_')) {
        broken.push("an occurrence's pageToken without singleEvents=true".to_owned());
    }
    broken
}

/// Refusals a valid request may meet, each a rule the document states in
/// prose: a webhook URL calsync will not deliver to, an end that does not
/// fit its start (create: the body's; patch: the stored event's), a zone
/// name the IANA database does not know, an
/// instant whose UTC year leaves 0001 to 9999 (`0001-01-01T00:30:00+01:00`),
/// an email address over 254 bytes in fewer characters, and the window
/// rules of free/busy and availability.
fn prose_allows(request: &Request, at: &str, message: &str) -> bool {
    // A webhook URL's host must resolve, and only to addresses calsync may
    // deliver to (https; plain http to loopback in development): the state
    // of DNS and the deployment, stated in prose.
    if at == "end" || at == "url" {
        return true;
    }
    if (at.ends_with(".timeZone") || at == "timeZone") && message.contains("IANA") {
        return true;
    }
    // Free/busy and availability: a window's end after its start and at
    // most 90 days on; a group's `required` within its size; at most 50
    // calendars across the groups (their descriptions say so).
    if matches!(
        at,
        "timeMax" | "periods" | "participants" | "participants.required"
    ) {
        return true;
    }
    // The grant callback: a `state` calsync did not issue (or already
    // used), a code Google refuses, Google's own `error`; and a
    // `returnTo` host outside CALSYNC_GRANT_RETURN_HOSTS.
    if matches!(at, "state" | "code" | "error" | "returnTo") {
        return true;
    }
    if matches!(at, "timeMin" | "periods.start" | "periods.end")
        && message.contains("years 0001 to 9999")
    {
        return true;
    }
    if at.ends_with(".dateTime") && message.contains("years 0001 to 9999") {
        return true;
    }
    if message.contains("email address") {
        let pointer = format!(
            "/{}",
            at.replace('[', "/").replace("].", "/").replace('.', "/")
        );
        return serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|body| body.pointer(&pointer).and_then(Value::as_str).map(str::len))
            .is_some_and(|bytes| bytes > 254);
    }
    false
}

/// What the server reads from a percent-encoded path segment or query
/// value: `%XX` decoded (a malformed escape kept as is), invalid UTF-8
/// replaced, and in a query `+` a space.
pub fn percent_decode(text: &str, query: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if query => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Header bytes as text: each byte one character (ISO 8859-1), so any
/// byte outside visible ASCII fails the document's patterns.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|b| char::from(*b)).collect()
}

/// Whether well-formed JSON `text` repeats a key in some object (keys
/// compared decoded: `"a"` and `"\u0061"` are one key).
fn repeats_a_key(text: &[u8]) -> bool {
    fn skip_space(text: &[u8], at: &mut usize) {
        while text.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    }
    /// The string starting at `at` (a `"`), decoded; `at` moves past it.
    fn string(text: &[u8], at: &mut usize) -> String {
        let start = *at;
        *at += 1;
        while let Some(&b) = text.get(*at) {
            *at += 1;
            match b {
                b'\\' => *at += 1,
                b'"' => break,
                _ => {}
            }
        }
        serde_json::from_slice(&text[start..*at]).unwrap_or_default()
    }
    /// Walks the value at `at`; true when an object in it repeats a key.
    fn value(text: &[u8], at: &mut usize) -> bool {
        skip_space(text, at);
        match text.get(*at) {
            Some(b'{') => {
                *at += 1;
                let mut keys = HashSet::new();
                loop {
                    skip_space(text, at);
                    match text.get(*at) {
                        Some(b'"') => {
                            if !keys.insert(string(text, at)) {
                                return true;
                            }
                            skip_space(text, at);
                            *at += 1; // the colon
                            if value(text, at) {
                                return true;
                            }
                        }
                        Some(b',') => *at += 1,
                        _ => {
                            *at += 1;
                            return false;
                        }
                    }
                }
            }
            Some(b'[') => {
                *at += 1;
                loop {
                    skip_space(text, at);
                    match text.get(*at) {
                        Some(b']') | None => {
                            *at += 1;
                            return false;
                        }
                        Some(b',') => *at += 1,
                        Some(_) => {
                            if value(text, at) {
                                return true;
                            }
                        }
                    }
                }
            }
            Some(b'"') => {
                string(text, at);
                false
            }
            _ => {
                while text.get(*at).is_some_and(|b| !b",]} \t\r\n".contains(b)) {
                    *at += 1;
                }
                false
            }
        }
    }
    value(text, &mut 0)
}

/// The schema of the value at `path` (object keys and array indexes)
/// inside a value of `schema`, through `$ref`s and compositions.
pub fn schema_at(doc: &Value, schema: &Value, path: &[String]) -> Option<Value> {
    let schema = resolve(doc, schema);
    let Some((head, rest)) = path.split_first() else {
        return Some(schema.clone());
    };
    if let Some(property) = schema["properties"].get(head) {
        return schema_at(doc, property, rest);
    }
    if head.parse::<usize>().is_ok() && schema["items"].is_object() {
        return schema_at(doc, &schema["items"], rest);
    }
    ["allOf", "oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten()
        .find_map(|part| schema_at(doc, part, path))
}

/// Values that break one of `schema`'s constraints (its enum, pattern,
/// format, lengths, bounds, item count or type), to send where it applies.
pub fn broken_values(doc: &Value, schema: &Value) -> Vec<Value> {
    let schema = resolve(doc, schema);
    let mut out: Vec<Value> = ["allOf", "oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten()
        .flat_map(|part| broken_values(doc, part))
        .collect();
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        out.push(json!(format!("{}x", first.as_str().unwrap_or_default())));
        out.push(json!(first.as_str().unwrap_or_default().to_uppercase()));
    }
    if schema["pattern"].is_string() {
        for text in [
            "",
            " ",
            "a b",
            "\u{0}",
            "x\u{1}y",
            "\u{7f}",
            "\u{a0}",
            "é",
            "@",
            "a@b@c",
            "-",
            "x",
            "RRULE",
            "Tue, 19 Nov 2030 01:13:52 +0000",
            "00000000-0000-0000-0000-00000000000G",
        ] {
            out.push(json!(text));
        }
    }
    match schema["format"].as_str() {
        Some("date-time") => out.extend(
            [
                "2030-01-15 10:00:00Z",
                "2030-02-30T10:00:00Z",
                "2030-01-15T10:00:60Z",
                "0000-06-01T10:00:00Z",
                "2030-01-15T10:00:00",
                "2030-01-15T10:00:00+0100",
            ]
            .map(Value::from),
        ),
        Some("date") => {
            out.extend(["2030-1-5", "2030-02-30", "0000-01-01", "+2030-01-05"].map(Value::from))
        }
        _ => {}
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        out.push(json!("x".repeat(max as usize + 1)));
    }
    if let Some(min) = schema["minLength"].as_u64().filter(|m| *m > 0) {
        out.push(json!("x".repeat(min as usize - 1)));
    }
    if let Some(max) = schema["maximum"].as_u64() {
        // Past u64 (the push message number's bound) as text.
        out.push(
            max.checked_add(1)
                .map_or_else(|| json!("18446744073709551616"), Value::from),
        );
    }
    if let Some(min) = schema["minimum"].as_i64() {
        out.push(json!(min - 1));
    }
    if let Some(max) = schema["maxItems"].as_u64() {
        out.push(Value::Array(vec![json!("x"); max as usize + 1]));
    }
    match schema["type"].as_str() {
        Some("string") => out.push(json!(1)),
        Some("integer" | "boolean" | "array" | "object") => out.push(json!("x")),
        _ => {}
    }
    out
}

#[test]
fn repeated_keys_are_found_decoded_and_per_object() {
    for (text, repeats) in [
        (r#"{"a":1,"b":{"a":2}}"#, false),
        (r#"{"a":1,"a":2}"#, true),
        (r#"{"a":1,"\u0061":2}"#, true),
        (r#"[{"x":[1,{"y":"}","y":null}]}]"#, true),
        (r#"{"s":"a\"b","t":"\\"}"#, false),
        (r#" {"k" : [ ] , "l" : { } } "#, false),
    ] {
        assert_eq!(repeats_a_key(text.as_bytes()), repeats, "{text}");
    }
    assert_eq!(percent_decode("a%2Fb+c%ZZ%", true), "a/b c%ZZ%");
    assert_eq!(percent_decode("a+b%FF", false), "a+b\u{FFFD}");
}
