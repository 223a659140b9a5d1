//! The Calendar API's handlers (`/calendar/v3`): events, the calendar,
//! watch channels, and free/busy.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::gate::enter;
use super::{Data, Reply};
use crate::error::ApiError;
use crate::event_types;
use crate::listing::{InstancesParams, ListParams};
use crate::lock;
use crate::state::WriteOptions;

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

pub(super) async fn list(
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
        let mut body = lock(&data.calendars).list(&call.calendar, &params)?;
        // events.list `accessRole`: "The user's access role for this calendar."
        body["accessRole"] = json!(call.role.as_str());
        Ok(HttpResponse::Ok().json(body))
    })
}

/// `events.instances`.
pub(super) async fn instances(
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
        let mut body = lock(&data.calendars).instances(&call.calendar, &path.1, &params)?;
        body["accessRole"] = json!(call.role.as_str());
        Ok(HttpResponse::Ok().json(body))
    })
}

pub(super) async fn get(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Reply {
    let call = enter(&data, &request, "get", Some(&path.0)).await?;
    call.run(|| {
        let body = lock(&data.calendars).get(&call.calendar, &path.1)?;
        Ok(HttpResponse::Ok().json(body))
    })
}

/// `calendars.get`.
pub(super) async fn calendar_get(
    data: Data,
    request: HttpRequest,
    path: web::Path<String>,
) -> Reply {
    let call = enter(&data, &request, "calendars.get", Some(&path)).await?;
    call.run(|| {
        let mut body = lock(&data.calendars).calendar(&call.calendar)?;
        if call.principal.user {
            let (summary, time_zone) = lock(&data.users).summary(&call.calendar);
            body["summary"] = json!(summary);
            body["timeZone"] = json!(time_zone);
        }
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

pub(super) async fn insert(
    data: Data,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Reply {
    let call = enter(&data, &request, "insert", Some(&path)).await?;
    call.run(|| {
        let body = object(&body)?;
        call.check_attendees(&data, &body)?;
        let (event, notifications) = lock(&data.calendars).insert(
            &call.calendar,
            body,
            chrono::Utc::now(),
            write_options(&request)?,
        )?;
        call.wrote(&data, &call.calendar);
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
            &call.calendar,
            &path.1,
            changes,
            replace,
            if_match(&request).as_deref(),
            chrono::Utc::now(),
            write_options(&request)?,
        )?;
        call.wrote(&data, &call.calendar);
        data.notify(notifications);
        Ok(HttpResponse::Ok().json(event))
    })
}

pub(super) async fn patch(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Reply {
    modify(data, request, path, body, false).await
}

pub(super) async fn update(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Reply {
    modify(data, request, path, body, true).await
}

pub(super) async fn delete(
    data: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Reply {
    let call = enter(&data, &request, "delete", Some(&path.0)).await?;
    call.run(|| {
        let notifications = lock(&data.calendars).delete(
            &call.calendar,
            &path.1,
            if_match(&request).as_deref(),
            chrono::Utc::now(),
            WriteOptions::default(),
        )?;
        call.wrote(&data, &call.calendar);
        data.notify(notifications);
        Ok(HttpResponse::NoContent().finish())
    })
}

pub(super) async fn watch(
    data: Data,
    request: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
) -> Reply {
    let call = enter(&data, &request, "watch", Some(&path)).await?;
    call.run(|| {
        let request_body: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
        let types = event_types::filter(repeated(&request, "eventTypes"))?;
        let (channel, sync) = lock(&data.calendars).watch(
            &call.calendar,
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

pub(super) async fn stop(data: Data, request: HttpRequest, body: Bytes) -> Reply {
    // channels.stop names no calendar: a revoked calendar's channel can still be stopped.
    let call = enter(&data, &request, "stop", None).await?;
    call.run(|| {
        let request_body: Value = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("parseError", "Parse Error"))?;
        lock(&data.calendars).stop(&call.principal.name, &request_body)?;
        Ok(HttpResponse::NoContent().finish())
    })
}

/// `freebusy.query` (`POST /freeBusy`): one call, gated and counted once
/// whatever the number of calendars it names; a calendar the principal
/// cannot reach is answered inside the body, never as a failed call.
pub(super) async fn free_busy(data: Data, request: HttpRequest, body: Bytes) -> Reply {
    let call = enter(&data, &request, "freebusy", None).await?;
    call.run(|| {
        let asked = crate::freebusy::Query::parse(&object(&body)?)?;
        if !call.principal.user {
            call.read(&data, &asked.calendars);
            let body = lock(&data.calendars).free_busy(&asked);
            return Ok(HttpResponse::Ok().json(body));
        }
        // A user's `primary` is its own calendar; calendars it cannot see
        // are `notFound` in the answer, as revoked ones are.
        let account = &call.principal.name;
        let mut query = asked.clone();
        for id in &mut query.calendars {
            if id == "primary" {
                id.clone_from(account);
            }
        }
        call.read(&data, &query.calendars);
        let hidden: Vec<bool> = {
            let users = lock(&data.users);
            query
                .calendars
                .iter()
                .map(|id| users.role(account, id).is_none())
                .collect()
        };
        let mut body = lock(&data.calendars).free_busy(&query);
        let mut answers = Map::new();
        for ((asked, resolved), hidden) in asked.calendars.iter().zip(&query.calendars).zip(hidden)
        {
            let answer = if hidden && body["calendars"][resolved].get("errors").is_none() {
                json!({"busy": [], "errors": [{"domain": "global", "reason": "notFound"}]})
            } else {
                body["calendars"][resolved].clone()
            };
            answers.insert(asked.clone(), answer);
        }
        body["calendars"] = Value::Object(answers);
        Ok(HttpResponse::Ok().json(body))
    })
}

/// `calendarList.list` (`GET /users/me/calendarList`): the principal's
/// calendar list (see `calendar_list.rs` for the rules). A user's list
/// holds its primary from its first authorization on.
pub(super) async fn calendar_list(
    data: Data,
    request: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> Reply {
    let call = enter(&data, &request, "calendarList.list", None).await?;
    call.run(|| {
        let min_access_role = query
            .get("minAccessRole")
            .map(|role| {
                serde_json::from_value::<crate::AccessRole>(json!(role)).map_err(|_| {
                    ApiError::bad_request("invalid", "Invalid value for minAccessRole")
                })
            })
            .transpose()?;
        let params = crate::calendar_list::ListParams {
            sync_token: query.get("syncToken").cloned(),
            page_token: query.get("pageToken").cloned(),
            max_results: max_results(&query)?,
            show_deleted: bool_param(&query, "showDeleted"),
            show_hidden: bool_param(&query, "showHidden"),
            min_access_role,
        };
        let body = lock(&data.users)
            .lists
            .list(&call.principal.name, &params)?;
        Ok(HttpResponse::Ok().json(body))
    })
}
