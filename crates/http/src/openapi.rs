//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the
//! handlers' annotations and the request and response types; and `/docs`,
//! a browsable page for it (Swagger UI, bundled in the binary: no CDN).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use calsync_domain::Error as DomainError;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{
    AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::request::rules;
use crate::{
    HttpError, calendars, changes, channels, error, events, failed_writes, freebusy, grants,
    health, subscriptions, sync, webhooks,
};

pub(crate) mod responses;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "calsync",
        description = "A local, queryable mirror of Google Calendar events linked to business entities, with writes pushed to Google through a durable outbox.\n\nEvery error answer is JSON: `{\"error\": {\"code\", \"message\", \"field\"?, \"header\"?}}`. A known path asked with a method it does not serve answers 405 with an `Allow` header; an unknown path under calsync's prefixes answers 404 (`no_route`)."
    ),
    paths(
        events::create, events::list, events::get, events::patch, events::delete,
        failed_writes::list, failed_writes::retry, failed_writes::discard,
        sync::request_sync,
        calendars::add, calendars::list, calendars::get, calendars::change, calendars::remove,
        channels::create, channels::list, channels::stop,
        changes::list, changes::latest,
        freebusy::free_busy, freebusy::availability,
        grants::start, grants::callback, grants::list, grants::get, grants::calendars, grants::delete,
        subscriptions::create, subscriptions::list, subscriptions::get, subscriptions::update,
        subscriptions::delete, subscriptions::rotate_secret, subscriptions::test, subscriptions::attempts,
        subscriptions::replay,
        webhooks::calendar, webhooks::drive,
        health::calendar, health::live, health::ready, health::metrics,
        spec, docs, docs_file,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, error::WriteErrorBody)),
    modifiers(&BearerAuth, &Corrections),
    tags(
        (name = "events", description = "Events for business entities"),
        (name = "sync", description = "Sync requests"),
        (name = "calendars", description = "Managed calendars and the principal each is accessed as"),
        (name = "channels", description = "Google push channels (`POST /calendar/channels` also makes the calendar managed, as the deployment's default principal)"),
        (name = "changes", description = "The change feed: every change to the mirror, in cursor order, replayable within its retention (docs/CHANGE-FEED.md)"),
        (name = "scheduling", description = "Free/busy and availability answered from the mirror, recurrence-aware, without Google quota (docs/FREEBUSY.md)"),
        (name = "grants", description = "Users' own Google accounts connected through OAuth 2.0 with PKCE; refresh tokens sealed at rest (docs/GRANTS.md)"),
        (name = "subscriptions", description = "Webhook subscriptions: the change feed delivered to the application, at least once and in cursor order, signed to the Standard Webhooks specification"),
        (name = "webhooks", description = "Google's push notifications (authenticated by channel token)"),
        (name = "health", description = "Health, probes and metrics"),
        (name = "docs", description = "This document and its browsable page"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// What the annotations cannot say: bodies that may be left empty, header
/// parameters that are never `null`, the rules across a body's fields
/// ("exactly one of `dateTime` and `date`", "a patch changes something",
/// "a timed series names its zones"), patterns built from code (the
/// push headers, `pageToken`), and the middleware's answers on every route.
struct Corrections;

/// Operations whose body may be empty (meaning "defaults"); a `null` body
/// is refused, so the schema stays the object.
const OPTIONAL_BODIES: [&str; 2] = ["createChannel", "requestSync"];

impl Modify for Corrections {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                not_null_parameters(operation);
                let id = operation.operation_id.clone().unwrap_or_default();
                if id == "listEvents" {
                    page_token(operation);
                }
                if id == "listChanges" {
                    set_pattern(operation, "after", rules::cursor_pattern());
                    set_pattern(operation, "types", rules::change_types_pattern());
                }
                if OPTIONAL_BODIES.contains(&id.as_str())
                    && let Some(body) = operation.request_body.as_mut()
                {
                    optional(body);
                }
            }
        }
        if let Some(item) = openapi.paths.paths.get_mut("/webhooks/calendar")
            && let Some(operation) = item.post.as_mut()
        {
            webhook(operation, &["sync", "exists", "not_exists"], false);
        }
        if let Some(item) = openapi.paths.paths.get_mut("/webhooks/drive")
            && let Some(operation) = item.post.as_mut()
        {
            webhook(
                operation,
                &[
                    "sync", "add", "remove", "update", "trash", "untrash", "change",
                ],
                true,
            );
        }
        if let Some(components) = openapi.components.as_mut() {
            for body in ["CreateWebhook", "PatchWebhook"] {
                property_pattern(components, body, "url", rules::WEBHOOK_URL);
            }
            one_time_form(components);
            body_rules(components);
        }
        transport_answers(openapi);
    }
}

/// An optional header or query parameter is absent or a string, never
/// JSON `null` (which `Option<String>` in a tuple parameter documents).
fn not_null_parameters(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
            && let SchemaType::Array(types) = &object.schema_type
        {
            let mut kept: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            object.schema_type = match kept.len() {
                1 => SchemaType::Type(kept.remove(0)),
                _ => SchemaType::Array(kept),
            };
        }
    }
}

fn optional(body: &mut RequestBody) {
    body.required = Some(Required::False);
}

fn string_schema(pattern: Option<&str>, max_length: Option<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern)
        .min_length(Some(1))
        .max_length(max_length)
}

fn header(name: &str, required: bool, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The push-notification headers as `calsync_domain::webhook` parses them
/// (after `webhooks::push_headers`): generated patterns, so declared here
/// rather than in the annotations.
fn webhook(operation: &mut Operation, states: &[&str], drive: bool) {
    let text = |max: usize| string_schema(Some(rules::HEADER_TEXT), Some(max));
    let mut documented = vec![
        header(
            "X-Goog-Channel-ID",
            true,
            "The channel's id",
            string_schema(Some("^[A-Za-z0-9_+/=-]{1,64}$"), Some(64)),
        ),
        header(
            "X-Goog-Channel-Token",
            true,
            "The token registered with the channel; missing or wrong is a 403",
            text(256),
        ),
        header(
            "X-Goog-Resource-ID",
            true,
            "Google's id of the watched resource",
            text(256),
        ),
        header(
            "X-Goog-Resource-URI",
            true,
            "The watched resource's API URL (http or https)",
            string_schema(Some(r"^https?://[\x21-\x7E]*$"), Some(2048)),
        ),
        header(
            "X-Goog-Resource-State",
            true,
            "What happened to the resource",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(states.iter().copied())),
        ),
        header(
            "X-Goog-Message-Number",
            true,
            "A positive 64-bit integer, increasing per channel (with gaps)",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(u64::MAX)),
        ),
        header(
            "X-Goog-Channel-Expiration",
            false,
            "The channel's expiry, as Google writes it: an HTTP date (IMF-fixdate, `Tue, 19 Nov 2013 01:13:52 GMT`), a real date in the years 0001 to 9999. The day name is not checked against the date",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(rules::http_date_pattern())),
        ),
    ];
    if drive {
        documented.push(header(
            "X-Goog-Changed",
            false,
            "What changed (`content`, `properties`, `parents`, ...): at most 16 comma-separated values of at most 64 characters",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(rules::CHANGED)),
        ));
    }
    operation.parameters = Some(documented);
}

/// Answers the request-context middleware gives on any route, before the
/// handler: shared components, referenced wherever the operation does not
/// document that status itself.
fn transport_answers(openapi: &mut utoipa::openapi::OpenApi) {
    let answers = [
        (
            "400",
            "UnreadableBody",
            "The request body could not be read (a malformed transfer)".to_owned(),
        ),
        (
            "408",
            "BodyTimeout",
            format!(
                "The request body did not arrive within {} s (`request_timeout`)",
                crate::context::BODY_READ_TIMEOUT.as_secs()
            ),
        ),
        (
            "413",
            "BodyTooLarge",
            format!(
                "The request body exceeds {} KiB, or the route's own smaller limit (`payload_too_large`)",
                crate::MAX_EVENT_BODY_BYTES / 1024
            ),
        ),
    ];
    let components = openapi.components.get_or_insert_with(Default::default);
    for (_, name, description) in &answers {
        components.responses.insert(
            (*name).to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
    }
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for (status, name, _) in &answers {
                operation
                    .responses
                    .responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| {
                        RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                    });
            }
        }
    }
}

/// `pageToken`'s shape, as `events::page_token` and `listed_page_token`
/// write it.
fn page_token(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == "pageToken"
            && let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        {
            object.pattern = Some(rules::page_token_pattern());
        }
    }
}

/// Sets the pattern of the query or header parameter `name` (patterns
/// built from code: a cursor's range, the change type names).
fn set_pattern(operation: &mut Operation, name: &str, pattern: String) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.name == name
            && let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
        {
            object.pattern = Some(pattern.clone());
        }
    }
}

/// Sets the pattern of `schema`'s string property `property`.
fn property_pattern(components: &mut Components, schema: &str, property: &str, pattern: &str) {
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
        && let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property)
    {
        field.pattern = Some(pattern.to_owned());
    }
}

/// A calendar id as every body documents it: 1 to 1024 characters, no
/// whitespace or control characters.
const CALENDAR_ID_PATTERN: &str =
    r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$";

/// Adds JSON Schema keywords utoipa's `Object` has no field for (`anyOf`
/// beside `properties`, `if`/`then`); they serialize beside the others.
fn add_keywords(components: &mut Components, schema: &str, keywords: serde_json::Value) {
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        return;
    };
    let extensions = object.extensions.get_or_insert_with(Default::default);
    if let serde_json::Value::Object(keywords) = keywords {
        extensions.extend(keywords);
    }
}

/// The body rules across fields that JSON Schema can state: a patch names
/// something to change (`decode_patch_body`, `subscriptions::update`); a start and an end given
/// together are of one kind, both `dateTime` or both `date`
/// (`calsync_domain::event::check_span`; the order of the two only prose
/// can say); and a timed recurring series names its start's and end's
/// zones (`calsync_domain::event::check_series_zones`).
fn body_rules(components: &mut Components) {
    use serde_json::json;
    let present = |field: &str, kind: &str| json!({"required": [field], "properties": {field: {"type": kind}}});
    let pair = |form: &str| {
        let time = json!({"required": [form], "properties": {form: {"type": "string"}}});
        json!({"properties": {"start": time, "end": time}})
    };
    let one_kind = json!({"anyOf": [pair("dateTime"), pair("date")]});
    let zoned = json!({"anyOf": [
        {"required": ["date"], "properties": {"date": {"type": "string"}}},
        {"required": ["timeZone"], "properties": {"timeZone": {"type": "string"}}},
    ]});
    let recurring = json!({"required": ["recurrence"], "properties": {"recurrence": {"type": "array", "minItems": 1}}});
    add_keywords(
        components,
        "CreateEventBody",
        json!({
            "anyOf": one_kind["anyOf"],
            "if": recurring,
            "then": {"properties": {"start": zoned, "end": zoned}},
        }),
    );
    // A subscription's patch names something to change (`null` counts
    // where it clears: `subscriptions::update`).
    add_keywords(
        components,
        "PatchWebhook",
        json!({"anyOf": [
            {"required": ["types"]},
            {"required": ["entityType"]},
            {"required": ["calendarId"]},
            {"required": ["description"]},
            present("url", "string"),
            present("enabled", "boolean"),
        ]}),
    );
    // An availability group's ids are calendar ids; `required` is "all"
    // or a count (`freebusy::availability`).
    add_keywords(
        components,
        "ParticipantBody",
        json!({"allOf": [{"properties": {
            "calendarIds": {"items": {"type": "string", "minLength": 1, "maxLength": 1024,
                "pattern": CALENDAR_ID_PATTERN}},
            "required": {"anyOf": [
                {"type": "null"},
                {"type": "string", "enum": ["all"]},
                {"type": "integer", "minimum": 1, "maximum": 50},
            ]},
        }}]}),
    );
    let zoned_or_absent = json!({"anyOf": [{"type": "null"}, zoned]});
    let both = json!({"required": ["start", "end"],
        "properties": {"start": {"type": "object"}, "end": {"type": "object"}}});
    add_keywords(
        components,
        "PatchEventBody",
        json!({
            "anyOf": [
                {"required": ["summary"]},
                {"required": ["description"]},
                {"required": ["location"]},
                present("start", "object"),
                present("end", "object"),
                present("attendees", "array"),
                present("status", "string"),
                present("recurrence", "array"),
            ],
            "allOf": [
                {"if": recurring, "then": {"properties": {"start": zoned_or_absent, "end": zoned_or_absent}}},
                {"if": both, "then": one_kind},
            ],
        }),
    );
}

/// `EventTimeBody` holds exactly one of `dateTime` and `date` (as strings;
/// `null` counts as absent), which a derived schema cannot say.
fn one_time_form(components: &mut Components) {
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get("EventTimeBody") else {
        return;
    };
    let mut object = object.clone();
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .title(Some("timed"))
                .property("dateTime", ObjectBuilder::new().schema_type(Type::String))
                .required("dateTime"),
        )
        .item(
            ObjectBuilder::new()
                .title(Some("all-day"))
                .property("date", ObjectBuilder::new().schema_type(Type::String))
                .required("date"),
        );
    // The description and example describe the whole: they move up.
    let description = object.description.take();
    let example = object.example.take();
    #[allow(deprecated)] // `example` is what the annotations set too
    let wrapped = AllOfBuilder::new()
        .description(description)
        .example(example)
        .item(object)
        .item(one_of)
        .build();
    components
        .schemas
        .insert("EventTimeBody".into(), RefOr::T(Schema::AllOf(wrapped)));
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "docs", operation_id = "getOpenApiDocument",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

fn ui_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"]))
}

fn ui_file(file: &str) -> Result<(String, Vec<u8>), HttpError> {
    // `serve` fails only if the bundle's initializer is not UTF-8 or the
    // config does not serialize: neither is the caller's doing, and neither
    // is worth a 500; the page is simply not available.
    match utoipa_swagger_ui::serve(file, ui_config()) {
        Ok(Some(found)) => Ok((found.content_type, found.bytes.into_owned())),
        Ok(None) | Err(_) => Err(DomainError::NotFound { what: "file" }.into()),
    }
}

/// A browsable page for this document (Swagger UI).
#[utoipa::path(
    get, path = "/docs", tag = "docs", operation_id = "getApiDocsPage",
    responses((status = 200, description = "The HTML page", content_type = "text/html", body = String))
)]
pub async fn docs() -> Result<HttpResponse, HttpError> {
    let (content_type, page) = ui_file("index.html")?;
    // The bundle's links are relative (`./swagger-ui.css`); the page is
    // served at `/docs` (no trailing slash), so they resolve under `/docs/`.
    let page =
        String::from_utf8_lossy(&page).replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1);
    Ok(HttpResponse::Ok().content_type(content_type).body(page))
}

/// The page's scripts, styles and icons.
#[utoipa::path(
    get, path = "/docs/{file}", tag = "docs", operation_id = "getApiDocsAsset",
    params(("file" = String, Path, description = "e.g. swagger-ui-bundle.js")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such file", body = crate::error::ErrorBody),
    )
)]
pub async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, HttpError> {
    let (content_type, bytes) = ui_file(&file)?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(bytes))
}
