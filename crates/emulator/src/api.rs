//! HTTP routes: the Calendar API, the token endpoint and the admin API.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::access::AccessRole;
use crate::error::ApiError;
use crate::event_types;
use crate::listing::{InstancesParams, ListParams};
use crate::quota::Principal;
use crate::state::WriteOptions;
use crate::{Change, Emulator, FaultPlan, Inner, lock, oauth};

type Data = web::Data<Inner>;
type Reply = Result<HttpResponse, ApiError>;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/token", web::post().to(token))
        .service(
            web::scope("/calendar/v3")
                .route("/calendars/{calendar}", web::get().to(calendar_get))
                .route("/calendars/{calendar}/events/watch", web::post().to(watch))
                .route("/calendars/{calendar}/events", web::get().to(list))
                .route("/calendars/{calendar}/events", web::post().to(insert))
                .route(
                    "/calendars/{calendar}/events/{event}/instances",
                    web::get().to(instances),
                )
                .route("/calendars/{calendar}/events/{event}", web::get().to(get))
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::patch().to(patch),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::put().to(update),
                )
                .route(
                    "/calendars/{calendar}/events/{event}",
                    web::delete().to(delete),
                )
                .route("/channels/stop", web::post().to(stop)),
        )
        .service(
            web::scope("/emulator")
                .route("/calendars/{calendar}/seed", web::post().to(admin_seed))
                .route(
                    "/calendars/{calendar}/changes",
                    web::post().to(admin_changes),
                )
                .route("/calendars/{calendar}/events", web::get().to(admin_events))
                .route("/calendars/{calendar}/access", web::post().to(admin_access))
                .route("/calendars/{calendar}/roles", web::put().to(admin_set_role))
                .route("/deleted-events", web::put().to(admin_set_purge))
                .route("/pages", web::put().to(admin_set_pages))
                .route("/faults", web::put().to(admin_set_faults))
                .route("/quotas", web::put().to(admin_set_quotas))
                .route("/faults", web::delete().to(admin_clear_faults))
                .route("/sync-tokens/invalidate", web::post().to(admin_invalidate))
                .route("/stats", web::get().to(admin_stats)),
        );
}

fn emulator(data: &Data) -> Emulator {
    Emulator {
        inner: data.clone().into_inner(),
    }
}

fn record_send_updates(data: &Data, request: &HttpRequest, op: &str) {
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string());
    if let Some(value) = query.ok().and_then(|q| q.get("sendUpdates").cloned()) {
        lock(&data.send_updates).insert(op.to_owned(), value);
    }
}

/// How a call that passed [`enter`] is to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// Carry the call out and answer it.
    Answer,
    /// Close the connection at once; nothing is done.
    Drop,
    /// Carry the write out, then close the connection instead of answering.
    ApplyThenDrop,
}

/// A call admitted by [`enter`]: how to answer it, who makes it, and
/// with what access role on the calendar it names (`owner` without one).
struct Call {
    entry: Entry,
    principal: Principal,
    role: AccessRole,
}

impl Call {
    fn run(&self, call: impl FnOnce() -> Reply) -> Reply {
        match self.entry {
            Entry::Answer => call(),
            Entry::Drop => Ok(dropped_connection()),
            Entry::ApplyThenDrop => {
                // The answer is lost whatever it was, a refusal included:
                // the client cannot tell what happened, which is the point.
                let _lost = call();
                Ok(dropped_connection())
            }
        }
    }

    /// Refuses a write whose body invites attendees when the principal is
    /// a service account acting as itself and the emulator is configured
    /// to refuse it, as Google does without domain-wide delegation.
    fn check_attendees(&self, data: &Data, body: &Map<String, Value>) -> Result<(), ApiError> {
        let invites = body
            .get("attendees")
            .and_then(Value::as_array)
            .is_some_and(|attendees| !attendees.is_empty());
        if invites && self.principal.service_account && data.config.forbid_service_account_attendees
        {
            Err(ApiError::forbidden_for_service_accounts())
        } else {
            Ok(())
        }
    }

    /// Records the principal as the calendar's latest writer.
    fn wrote(&self, data: &Data, calendar: &str) {
        lock(&data.usage)
            .last_writer
            .insert(calendar.to_owned(), self.principal.name.clone());
    }
}

/// The operations `applyThenDrop` applies before dropping the answer.
const WRITES: [&str; 4] = ["insert", "patch", "update", "delete"];

/// What every API call goes through: counting, latency, auth, quotas,
/// faults, and access to the calendar it names.
async fn enter(
    data: &Data,
    request: &HttpRequest,
    op: &str,
    calendar: Option<&str>,
) -> Result<Call, ApiError> {
    *lock(&data.calls).entry(op.to_owned()).or_default() += 1;
    record_send_updates(data, request, op);
    let (fault, latency) = {
        let mut plan = lock(&data.faults);
        (plan.next(op), plan.latency_ms)
    };
    if latency > 0 {
        lock(&data.fault_stats).latency_applied += 1;
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let principal = authorize(data, request)?;
    // As with authentication, a fault taken by a call refused here never fired.
    lock(&data.usage).admit(&principal.name, op, calendar, std::time::Instant::now())?;
    let entry = match fault {
        None => Entry::Answer,
        Some(fault) => {
            let (entry, kind) = if fault.apply_then_drop && WRITES.contains(&op) {
                (Ok(Entry::ApplyThenDrop), "applyThenDrop".to_owned())
            } else if fault.drop || fault.apply_then_drop {
                (Ok(Entry::Drop), "drop".to_owned())
            } else {
                (Err(fault.to_error()), fault.kind())
            };
            *lock(&data.fault_stats).fired.entry(kind).or_default() += 1;
            entry?
        }
    };
    let mut role = AccessRole::Owner;
    if let Some(calendar) = calendar {
        let mut calendars = lock(&data.calendars);
        role = calendars.roles.of(calendar, &principal.name);
        let refusal = calendars.reachable(calendar).and_then(|()| {
            if WRITES.contains(&op) && !role.can_write() {
                Err(ApiError::required_access_level())
            } else {
                Ok(())
            }
        });
        if let Err(error) = refusal {
            return match entry {
                Entry::Answer => Err(error),
                // A refused write whose answer is lost is just a lost answer.
                Entry::Drop | Entry::ApplyThenDrop => Ok(Call {
                    entry: Entry::Drop,
                    principal,
                    role,
                }),
            };
        }
        let now = chrono::Utc::now();
        // Deleted events past the purge age are gone before the call looks.
        calendars.purge(calendar, now);
        // Conferences requested by earlier calls are ready by now.
        let settled = calendars.settle_conferences(calendar, now);
        drop(calendars);
        data.notify(settled);
    }
    Ok(Call {
        entry,
        principal,
        role,
    })
}

/// A response whose body fails at once: the server aborts the connection,
/// so the client sees it closed without an answer.
fn dropped_connection() -> HttpResponse {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped",
        ))
    });
    HttpResponse::Ok().streaming(failing)
}

/// The principal of a call with a valid bearer token: the one recorded
/// when the token was issued, or with open auth the token itself.
fn authorize(data: &Data, request: &HttpRequest) -> Result<Principal, ApiError> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|token| !token.is_empty());
    let principal = bearer.and_then(|token| {
        let issued = lock(&data.tokens).get(token).cloned();
        match &data.config.auth {
            crate::EmulatorAuth::Open => Some(issued.unwrap_or_else(|| Principal {
                name: token.to_owned(),
                service_account: false,
            })),
            crate::EmulatorAuth::ServiceAccount { .. } => issued,
        }
    });
    principal.ok_or_else(|| ApiError::new(401, "authError", "Invalid Credentials"))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    assertion: Option<String>,
}

/// OAuth endpoints answer errors in OAuth's shape (RFC 6749 section 5.2),
/// not the Calendar API's.
async fn token(data: Data, request: HttpRequest, form: web::Form<TokenForm>) -> HttpResponse {
    *lock(&data.calls).entry("token".into()).or_default() += 1;
    match issue_token(&data, &request, &form) {
        Ok(response) => response,
        Err(error) => HttpResponse::build(actix_web::ResponseError::status_code(&error))
            .json(json!({"error": error.reason, "error_description": error.message})),
    }
}

fn issue_token(data: &Data, request: &HttpRequest, form: &TokenForm) -> Reply {
    if form.grant_type != oauth::JWT_BEARER {
        return Err(ApiError::new(
            400,
            "unsupported_grant_type",
            "Invalid grant_type",
        ));
    }
    let assertion = form.assertion.as_deref().unwrap_or_default();
    let token: String = format!("emu-{}", uuid::Uuid::new_v4().simple());
    let principal = if let Some(key) = &data.verifying_key {
        let info = request.connection_info();
        let audience = format!("{}://{}/token", info.scheme(), info.host());
        oauth::verify_assertion(assertion, key, &audience, chrono::Utc::now().timestamp())?
            .principal()
    } else if assertion.is_empty() {
        return Err(ApiError::new(400, "invalid_grant", "missing assertion"));
    } else {
        // Open auth verifies nothing, but a readable assertion still names
        // its principal; an unreadable one makes the token its own.
        oauth::peek_claims(assertion).map_or_else(
            || Principal {
                name: token.clone(),
                service_account: false,
            },
            |claims| claims.principal(),
        )
    };
    lock(&data.tokens).insert(token.clone(), principal);
    Ok(HttpResponse::Ok()
        .json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})))
}

fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(
            "parseError",
            "This API does not support parsing form-encoded input.",
        )),
    }
}

fn refused_with_sync_token(query: &HashMap<String, String>) -> Vec<&'static str> {
    [
        "iCalUID",
        "orderBy",
        "privateExtendedProperty",
        "q",
        "sharedExtendedProperty",
        "timeMin",
        "timeMax",
        "updatedMin",
    ]
    .into_iter()
    .filter(|name| query.contains_key(*name))
    .collect()
}

/// The values of a repeated query parameter (`eventTypes=a&eventTypes=b`).
fn repeated(request: &HttpRequest, name: &str) -> Vec<String> {
    web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(|q| {
            q.into_inner()
                .into_iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

fn max_results(query: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    match query.get("maxResults") {
        None => Ok(None),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("invalid", "Invalid value for maxResults")),
    }
}

/// `timeMin`/`timeMax`: "an RFC3339 timestamp with mandatory time zone
/// offset" (events.list reference).
fn time_param(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    query
        .get(name)
        .map(|value| {
            chrono::DateTime::parse_from_rfc3339(value)
                .map(|at| at.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::bad_request("invalid", format!("Invalid value for {name}")))
        })
        .transpose()
}

fn bool_param(query: &HashMap<String, String>, name: &str) -> Option<bool> {
    query.get(name).map(|v| v == "true")
}

async fn list(
    data: Data,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let call = enter(&data, &request, "list", Some(&path)).await?;
    call.run(|| {
        let params = ListParams {
            sync_token: query.get("syncToken").cloned(),
            page_token: query.get("pageToken").cloned(),
            max_results: max_results(&query)?,
            show_deleted: bool_param(&query, "showDeleted"),
            single_events: bool_param(&query, "singleEvents").unwrap_or(false),
            order_by: query.get("orderBy").cloned(),
            time_min: time_param(&query, "timeMin")?,
            time_max: time_param(&query, "timeMax")?,
            event_types: event_types::filter(repeated(&request, "eventTypes"))?,
            refused_with_sync_token: refused_with_sync_token(&query),
        };
        let mut body = lock(&data.calendars).list(&path, &params)?;
        // events.list `accessRole`: "The user's access role for this calendar."
        body["accessRole"] = json!(call.role.as_str());
        Ok(HttpResponse::Ok().json(body))
    })
}

/// `events.instances`.
async fn instances(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let call = enter(&data, &request, "instances", Some(&path.0)).await?;
    call.run(|| {
        let original_start = match query.get("originalStart") {
            None => None,
            Some(value) => Some(
                crate::recurrence::parse_when(&json!({"dateTime": value}), "originalStart")
                    .or_else(|_| {
                        crate::recurrence::parse_when(&json!({"date": value}), "originalStart")
                    })?
                    .instant(),
            ),
        };
        let params = InstancesParams {
            page_token: query.get("pageToken").cloned(),
            max_results: max_results(&query)?,
            show_deleted: bool_param(&query, "showDeleted").unwrap_or(false),
            time_min: time_param(&query, "timeMin")?,
            time_max: time_param(&query, "timeMax")?,
            original_start,
        };
        let mut body = lock(&data.calendars).instances(&path.0, &path.1, &params)?;
        body["accessRole"] = json!(call.role.as_str());
        Ok(HttpResponse::Ok().json(body))
    })
}

async fn get(data: Data, request: HttpRequest, path: web::Path<(String, String)>) -> Reply {
    let call = enter(&data, &request, "get", Some(&path.0)).await?;
    call.run(|| {
        let body = lock(&data.calendars).get(&path.0, &path.1)?;
        Ok(HttpResponse::Ok().json(body))
    })
}

/// `calendars.get`.
async fn calendar_get(data: Data, request: HttpRequest, path: web::Path<String>) -> Reply {
    let call = enter(&data, &request, "calendars.get", Some(&path)).await?;
    call.run(|| {
        let body = lock(&data.calendars).calendar(&path)?;
        Ok(HttpResponse::Ok().json(body))
    })
}

/// The options of an API write: `conferenceDataVersion` is 0 (the
/// default) or 1 (events.insert reference: "valid values are integers
/// from 0 to 1, inclusive").
fn write_options(request: &HttpRequest) -> Result<WriteOptions, ApiError> {
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let conference_data_version = match query.get("conferenceDataVersion").map(String::as_str) {
        None | Some("0") => 0,
        Some("1") => 1,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid",
                "Invalid value for conferenceDataVersion",
            ));
        }
    };
    Ok(WriteOptions {
        conference_data_version,
        admin: false,
    })
}

async fn insert(data: Data, request: HttpRequest, path: web::Path<String>, body: Bytes) -> Reply {
    let call = enter(&data, &request, "insert", Some(&path)).await?;
    call.run(|| {
        let body = object(&body)?;
        call.check_attendees(&data, &body)?;
        let (event, notifications) = lock(&data.calendars).insert(
            &path,
            body,
            chrono::Utc::now(),
            write_options(&request)?,
        )?;
        call.wrote(&data, &path);
        data.notify(notifications);
        Ok(HttpResponse::Ok().json(event))
    })
}

fn if_match(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn modify(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
    replace: bool,
) -> Reply {
    let op = if replace { "update" } else { "patch" };
    let call = enter(&data, &request, op, Some(&path.0)).await?;
    call.run(|| {
        let changes = object(&body)?;
        call.check_attendees(&data, &changes)?;
        let (event, notifications) = lock(&data.calendars).modify(
            &path.0,
            &path.1,
            changes,
            replace,
            if_match(&request).as_deref(),
            chrono::Utc::now(),
            write_options(&request)?,
        )?;
        call.wrote(&data, &path.0);
        data.notify(notifications);
        Ok(HttpResponse::Ok().json(event))
    })
}

async fn patch(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Reply {
    modify(data, request, path, body, false).await
}

async fn update(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Reply {
    modify(data, request, path, body, true).await
}

async fn delete(data: Data, request: HttpRequest, path: web::Path<(String, String)>) -> Reply {
    let call = enter(&data, &request, "delete", Some(&path.0)).await?;
    call.run(|| {
        let notifications = lock(&data.calendars).delete(
            &path.0,
            &path.1,
            if_match(&request).as_deref(),
            chrono::Utc::now(),
            WriteOptions::default(),
        )?;
        call.wrote(&data, &path.0);
        data.notify(notifications);
        Ok(HttpResponse::NoContent().finish())
    })
}

async fn watch(data: Data, request: HttpRequest, path: web::Path<String>, body: Bytes) -> Reply {
    let call = enter(&data, &request, "watch", Some(&path)).await?;
    call.run(|| {
        let request_body: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
        let types = event_types::filter(repeated(&request, "eventTypes"))?;
        let (channel, sync) = lock(&data.calendars).watch(
            &path,
            &call.principal.name,
            &request_body,
            chrono::Utc::now(),
            data.config.max_channel_ttl,
            types,
        )?;
        // The `sync` message may reach the receiver before this answer does, as with Google.
        data.notify(vec![sync]);
        Ok(HttpResponse::Ok().json(channel))
    })
}

async fn stop(data: Data, request: HttpRequest, body: Bytes) -> Reply {
    // channels.stop names no calendar: a revoked calendar's channel can still be stopped.
    let call = enter(&data, &request, "stop", None).await?;
    call.run(|| {
        let request_body: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
        lock(&data.calendars).stop(&call.principal.name, &request_body)?;
        Ok(HttpResponse::NoContent().finish())
    })
}

#[derive(Deserialize)]
struct SeedRequest {
    count: usize,
}

async fn admin_seed(data: Data, path: web::Path<String>, body: web::Json<SeedRequest>) -> Reply {
    let created = emulator(&data).seed(&path, body.count)?;
    Ok(HttpResponse::Ok().json(json!({"created": created})))
}

/// Makes `count` random changes: mostly edits, some deletions and inserts.
/// The live ids are listed once and kept up to date, so `count` changes
/// cost O(n + count), not a listing of the calendar per change.
async fn admin_changes(data: Data, path: web::Path<String>, body: web::Json<SeedRequest>) -> Reply {
    let emulator = emulator(&data);
    let mut live: Vec<String> = emulator
        .events(&path)
        .iter()
        .filter(|e| e.get("status").and_then(Value::as_str) != Some("cancelled"))
        .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut changed = Vec::with_capacity(body.count);
    for _ in 0..body.count {
        let roll: u32 = rand::rng().random_range(0..10);
        let change = if live.is_empty() || roll >= 8 {
            let start =
                chrono::Utc::now() + chrono::Duration::hours(rand::rng().random_range(1..500));
            let Value::Object(body) = json!({
                "summary": "Added in the emulator",
                "start": {"dateTime": start.to_rfc3339()},
                "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
            }) else {
                continue;
            };
            Change::Insert(body)
        } else {
            let at = rand::rng().random_range(0..live.len());
            if roll >= 6 {
                Change::Delete {
                    id: live.swap_remove(at),
                }
            } else {
                let mut fields = Map::new();
                fields.insert(
                    "summary".into(),
                    json!(format!("Edited {}", uuid::Uuid::new_v4().simple())),
                );
                Change::Patch {
                    id: live[at].clone(),
                    fields,
                }
            }
        };
        let inserted = matches!(change, Change::Insert(_));
        let event = emulator.change(&path, change)?;
        if inserted && let Some(id) = event.get("id").and_then(Value::as_str) {
            live.push(id.to_owned());
        }
        changed.push(event);
    }
    Ok(HttpResponse::Ok().json(json!({"changed": changed})))
}

async fn admin_events(data: Data, path: web::Path<String>) -> Reply {
    Ok(HttpResponse::Ok().json(json!({"items": emulator(&data).events(&path)})))
}

#[derive(Deserialize)]
struct AccessRequest {
    revoked: bool,
}

async fn admin_access(
    data: Data,
    path: web::Path<String>,
    body: web::Json<AccessRequest>,
) -> Reply {
    emulator(&data).set_calendar_revoked(&path, body.revoked);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct RoleRequest {
    principal: String,
    role: AccessRole,
}

/// `PUT /emulator/calendars/{id}/roles {"principal": "ada@example.com",
/// "role": "reader"}`: the principal's access role on the calendar
/// (`freeBusyReader`, `reader`, `writer`, `owner`); principal `*` sets it
/// for every principal without a role of its own.
async fn admin_set_role(
    data: Data,
    path: web::Path<String>,
    body: web::Json<RoleRequest>,
) -> Reply {
    emulator(&data).set_access_role(&path, &body.principal, body.role);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PurgeRequest {
    #[serde(default)]
    purge_after_ms: Option<u64>,
}

/// `PUT /emulator/deleted-events {"purgeAfterMs": 60000}`: deleted events
/// are purged that long after their deletion; absent or null, never.
async fn admin_set_purge(data: Data, body: web::Json<PurgeRequest>) -> Reply {
    emulator(&data).set_deleted_event_purge_after(body.purge_after_ms.map(Duration::from_millis));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PagesRequest {
    #[serde(default)]
    ragged_seed: Option<u64>,
}

/// `PUT /emulator/pages {"raggedSeed": 42}`: ragged paging with that seed
/// (short and empty pages while more remain); absent or null, full pages.
async fn admin_set_pages(data: Data, body: web::Json<PagesRequest>) -> Reply {
    emulator(&data).set_ragged_pages(body.ragged_seed);
    Ok(HttpResponse::NoContent().finish())
}

async fn admin_set_faults(data: Data, plan: web::Json<FaultPlan>) -> Reply {
    emulator(&data).set_faults(plan.into_inner());
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuotasRequest {
    #[serde(default)]
    per_principal_per_minute: Option<u32>,
    #[serde(default)]
    per_project_per_minute: Option<u32>,
}

/// `PUT /emulator/quotas {"perPrincipalPerMinute": 600, "perProjectPerMinute": 10000}`;
/// an absent or null limit is unlimited.
async fn admin_set_quotas(data: Data, body: web::Json<QuotasRequest>) -> Reply {
    emulator(&data).set_quotas(body.per_principal_per_minute, body.per_project_per_minute);
    Ok(HttpResponse::NoContent().finish())
}

async fn admin_clear_faults(data: Data) -> Reply {
    emulator(&data).set_faults(FaultPlan::default());
    Ok(HttpResponse::NoContent().finish())
}

async fn admin_invalidate(data: Data) -> Reply {
    emulator(&data).invalidate_sync_tokens();
    Ok(HttpResponse::NoContent().finish())
}

async fn admin_stats(data: Data) -> Reply {
    let (delivered, failed) = emulator(&data).deliveries();
    let calls = lock(&data.calls).clone();
    let (calls_by_principal, quota_refusals) = {
        let usage = lock(&data.usage);
        (usage.calls.clone(), usage.refusals)
    };
    let (channels, conferences) = {
        let calendars = lock(&data.calendars);
        (
            calendars.channels.len(),
            calendars.conferences.created_total(),
        )
    };
    let (fired, latency_applied, invalidations) = {
        let stats = lock(&data.fault_stats);
        (
            stats.fired.clone(),
            stats.latency_applied,
            stats.sync_token_invalidations,
        )
    };
    Ok(HttpResponse::Ok().json(json!({
        "calls": calls,
        "channels": channels,
        "notificationsDelivered": delivered,
        "notificationsFailed": failed,
        "faultsFired": fired,
        "latencyApplied": latency_applied,
        "syncTokenInvalidations": invalidations,
        "conferencesCreated": conferences,
        "callsByPrincipal": calls_by_principal,
        "quotaRefusals": quota_refusals,
    })))
}
