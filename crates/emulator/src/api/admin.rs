//! The emulator's admin API (`/emulator`): seeding, changes made "in
//! Google", access, paging, faults, quotas and statistics.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Data, Reply};
use crate::access::AccessRole;
use crate::{Change, Emulator, FaultPlan, lock};

fn emulator(data: &Data) -> Emulator {
    Emulator {
        inner: data.clone().into_inner(),
    }
}

#[derive(Deserialize)]
pub(super) struct SeedRequest {
    count: usize,
}

pub(super) async fn seed(
    data: Data,
    path: web::Path<String>,
    body: web::Json<SeedRequest>,
) -> Reply {
    let created = emulator(&data).seed(&path, body.count)?;
    Ok(HttpResponse::Ok().json(json!({"created": created})))
}

/// Makes `count` random changes: mostly edits, some deletions and inserts.
/// The live ids are listed once and kept up to date, so `count` changes
/// cost O(n + count), not a listing of the calendar per change.
pub(super) async fn changes(
    data: Data,
    path: web::Path<String>,
    body: web::Json<SeedRequest>,
) -> Reply {
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

pub(super) async fn events(data: Data, path: web::Path<String>) -> Reply {
    Ok(HttpResponse::Ok().json(json!({"items": emulator(&data).events(&path)})))
}

#[derive(Deserialize)]
pub(super) struct AccessRequest {
    revoked: bool,
}

pub(super) async fn access(
    data: Data,
    path: web::Path<String>,
    body: web::Json<AccessRequest>,
) -> Reply {
    emulator(&data).set_calendar_revoked(&path, body.revoked);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub(super) struct RoleRequest {
    principal: String,
    role: AccessRole,
}

/// `PUT /emulator/calendars/{id}/roles {"principal": "ada@example.com",
/// "role": "reader"}`: the principal's access role on the calendar
/// (`freeBusyReader`, `reader`, `writer`, `owner`); principal `*` sets it
/// for every principal without a role of its own.
pub(super) async fn set_role(
    data: Data,
    path: web::Path<String>,
    body: web::Json<RoleRequest>,
) -> Reply {
    emulator(&data).set_access_role(&path, &body.principal, body.role);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PurgeRequest {
    #[serde(default)]
    purge_after_ms: Option<u64>,
}

/// `PUT /emulator/deleted-events {"purgeAfterMs": 60000}`: deleted events
/// are purged that long after their deletion; absent or null, never.
pub(super) async fn set_purge(data: Data, body: web::Json<PurgeRequest>) -> Reply {
    emulator(&data).set_deleted_event_purge_after(body.purge_after_ms.map(Duration::from_millis));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PagesRequest {
    #[serde(default)]
    ragged_seed: Option<u64>,
}

/// `PUT /emulator/pages {"raggedSeed": 42}`: ragged paging with that seed
/// (short and empty pages while more remain); absent or null, full pages.
pub(super) async fn set_pages(data: Data, body: web::Json<PagesRequest>) -> Reply {
    emulator(&data).set_ragged_pages(body.ragged_seed);
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn set_faults(data: Data, plan: web::Json<FaultPlan>) -> Reply {
    emulator(&data).set_faults(plan.into_inner());
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QuotasRequest {
    #[serde(default)]
    per_principal_per_minute: Option<u32>,
    #[serde(default)]
    per_project_per_minute: Option<u32>,
}

/// `PUT /emulator/quotas {"perPrincipalPerMinute": 600, "perProjectPerMinute": 10000}`;
/// an absent or null limit is unlimited.
pub(super) async fn set_quotas(data: Data, body: web::Json<QuotasRequest>) -> Reply {
    emulator(&data).set_quotas(body.per_principal_per_minute, body.per_project_per_minute);
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn clear_faults(data: Data) -> Reply {
    emulator(&data).set_faults(FaultPlan::default());
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn invalidate(data: Data) -> Reply {
    emulator(&data).invalidate_sync_tokens();
    Ok(HttpResponse::NoContent().finish())
}

pub(super) async fn stats(data: Data) -> Reply {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ClientRequest {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// `POST /emulator/oauth/clients {"clientId", "clientSecret",
/// "redirectUris": [...]}`: registers (or replaces) an OAuth client.
pub(super) async fn register_client(data: Data, body: web::Json<ClientRequest>) -> Reply {
    let body = body.into_inner();
    emulator(&data).register_oauth_client(crate::OAuthClient {
        client_id: body.client_id,
        client_secret: body.client_secret,
        redirect_uris: body.redirect_uris,
    });
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RevokeAccountRequest {
    #[serde(default)]
    client_id: Option<String>,
}

/// `POST /emulator/oauth/accounts/{email}/revoke {"clientId": ...}`: the
/// user removes the app's access in their Google Account (every client's
/// without `clientId`). Answers `{"revoked": <live grants revoked>}`.
pub(super) async fn revoke_account(
    data: Data,
    path: web::Path<String>,
    body: Option<web::Json<RevokeAccountRequest>>,
) -> Reply {
    let client_id = body.and_then(|b| b.into_inner().client_id);
    let revoked = emulator(&data).revoke_user_grant(&path, client_id.as_deref());
    Ok(HttpResponse::Ok().json(json!({"revoked": revoked})))
}

/// `GET /emulator/oauth/refresh-tokens`: `{"items": [{"token", "account",
/// "clientId", "scope", "revoked"}]}`, oldest first.
pub(super) async fn refresh_tokens(data: Data) -> Reply {
    let items: Vec<Value> = emulator(&data)
        .refresh_tokens()
        .into_iter()
        .map(|t| {
            json!({
                "token": t.token,
                "account": t.account,
                "clientId": t.client_id,
                "scope": t.scope,
                "revoked": t.revoked,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

#[derive(Deserialize)]
pub(super) struct LifetimeRequest {
    seconds: u64,
}

/// `PUT /emulator/oauth/access-token-lifetime {"seconds": 3600}`.
pub(super) async fn set_access_lifetime(data: Data, body: web::Json<LifetimeRequest>) -> Reply {
    emulator(&data).set_access_token_lifetime(Duration::from_secs(body.seconds));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub(super) struct DenyRequest {
    #[serde(default)]
    account: Option<String>,
}

/// `POST /emulator/oauth/deny {"account": "ada@example.com"}`: the next
/// authorization for that account (any account's without one) answers
/// `error=access_denied`.
pub(super) async fn deny(data: Data, body: Option<web::Json<DenyRequest>>) -> Reply {
    let account = body.and_then(|b| b.into_inner().account);
    emulator(&data).deny_next_authorization(account.as_deref());
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub(super) struct CalendarRequest {
    #[serde(default)]
    summary: Option<String>,
}

/// `PUT /emulator/users/{email}/calendars/{calendar} {"summary": ...}`:
/// a calendar owned by the account.
pub(super) async fn create_user_calendar(
    data: Data,
    path: web::Path<(String, String)>,
    body: Option<web::Json<CalendarRequest>>,
) -> Reply {
    let (account, calendar) = path.into_inner();
    let summary = body
        .and_then(|b| b.into_inner().summary)
        .unwrap_or_else(|| calendar.clone());
    emulator(&data).create_user_calendar(&account, &calendar, &summary);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub(super) struct ShareRequest {
    role: AccessRole,
}

/// `PUT /emulator/calendars/{calendar}/shares/{email} {"role": "reader"}`.
pub(super) async fn share(
    data: Data,
    path: web::Path<(String, String)>,
    body: web::Json<ShareRequest>,
) -> Reply {
    emulator(&data).share_calendar(&path.0, &path.1, body.role);
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /emulator/calendars/{calendar}/shares/{email}`.
pub(super) async fn unshare(data: Data, path: web::Path<(String, String)>) -> Reply {
    emulator(&data).unshare_calendar(&path.0, &path.1);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub(super) struct ListEntryRequest {
    #[serde(default)]
    hidden: Option<bool>,
}

/// `PUT /emulator/users/{email}/calendar-list/{calendar} {"hidden": true}`:
/// adds the calendar to the account's list (404 if the account cannot
/// reach it), or with `hidden` hides or shows its entry.
pub(super) async fn list_entry(
    data: Data,
    path: web::Path<(String, String)>,
    body: Option<web::Json<ListEntryRequest>>,
) -> Reply {
    let emulator = emulator(&data);
    match body.and_then(|b| b.into_inner().hidden) {
        Some(hidden) => emulator.set_calendar_list_hidden(&path.0, &path.1, hidden)?,
        None => emulator.add_calendar_list_entry(&path.0, &path.1)?,
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /emulator/users/{email}/calendar-list/{calendar}`.
pub(super) async fn remove_list_entry(data: Data, path: web::Path<(String, String)>) -> Reply {
    emulator(&data).remove_calendar_list_entry(&path.0, &path.1)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /emulator/users/{email}/calendar-list`: every entry, deleted ones included.
pub(super) async fn calendar_list(data: Data, path: web::Path<String>) -> Reply {
    Ok(HttpResponse::Ok().json(json!({"items": emulator(&data).calendar_list(&path)})))
}
