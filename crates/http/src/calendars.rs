//! `/calendar/calendars`: the managed calendars, each read and written as
//! its own principal (a Workspace user the service account acts as).

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_domain::calendar::Subject;
use calsync_domain::grant::GrantId;
use calsync_domain::ids::CalendarId;
use calsync_domain::services::ActingAs;
use serde::Deserialize;
use slog::info;

use crate::auth::Authenticated;
use crate::openapi::responses::{
    CalendarNotManaged, GoogleOrStoreUnavailable, ReconnectRequired, StoreUnavailable, Unauthorized,
};
use crate::{AppState, HttpError, context};

/// `POST /calendar/calendars`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"calendarId": "room-4@example.com", "subject": "facilities@example.com"}))]
pub struct AddCalendar {
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    calendar_id: String,
    /// The Workspace user to act as for this calendar (domain-wide
    /// delegation), an email address (one `@`, no whitespace, at most 254
    /// bytes); absent or `null`: `CALSYNC_GOOGLE_SUBJECT`, else the
    /// service account itself.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$",
        example = "owner@example.com"
    )]
    subject: Option<String>,
    /// A connected account's grant (`POST /calendar/grants/google`) to act
    /// as instead: the calendar is read, watched and written with that
    /// account's access, under its own quota. Never with `subject`.
    #[schema(
        pattern = r"^gr_[0-9a-fA-F]{32}$",
        example = "gr_4f9c2d1e8a7b6c5d4e3f2a1b0c9d8e7f"
    )]
    grant: Option<String>,
}

/// `PATCH /calendar/calendars/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeCalendar {
    /// The new subject, an email address (one `@`, no whitespace, at most
    /// 254 bytes); `null` goes back to the deployment's default. Required.
    #[serde(deserialize_with = "present")]
    #[schema(
        value_type = Option<String>,
        required = true,
        max_length = 254,
        pattern = r"^[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    subject: Option<Option<String>>,
}

fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A managed calendar and its sync health.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct CalendarDoc {
    calendar_id: String,
    subject: Option<String>,
    /// The connected account's grant the calendar is managed through.
    grant: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Absent until its first sync is queued.
    health: Option<crate::health::CalendarHealthDoc>,
}

/// A calendar just added, with the watch channel made for it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // documentation only
pub struct CalendarAddedDoc {
    calendar_id: String,
    subject: Option<String>,
    grant: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    health: Option<crate::health::CalendarHealthDoc>,
    channel: crate::channels::ChannelDoc,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct CalendarList {
    items: Vec<CalendarDoc>,
}

fn subject(value: Option<String>) -> Result<Option<Subject>, HttpError> {
    Ok(value.map(Subject::new).transpose()?)
}

/// Whom to act as: a subject, a grant, or (neither) the default.
fn acting(subject_field: Option<String>, grant: Option<String>) -> Result<ActingAs, HttpError> {
    match (subject(subject_field)?, grant) {
        (Some(_), Some(_)) => Err(calsync_domain::Error::invalid(
            "grant",
            "a calendar is managed either as a subject or through a grant, not both",
        )
        .into()),
        (Some(subject), None) => Ok(ActingAs::Subject(subject)),
        (None, Some(grant)) => GrantId::parse(&grant).map(ActingAs::Grant).map_err(|_| {
            calsync_domain::Error::invalid("grant", "must be gr_ and 32 hex digits").into()
        }),
        (None, None) => Ok(ActingAs::Default),
    }
}

fn calendar_id(path: &str) -> Result<CalendarId, HttpError> {
    Ok(CalendarId::new(path)?)
}

#[utoipa::path(
    post, path = "/calendar/calendars", tag = "calendars", operation_id = "addCalendar",
    request_body = AddCalendar,
    responses(
        (status = 201, description = "Managed, watched, and its first (full) sync queued; `channel` is its watch channel", body = CalendarAddedDoc),
        (status = 400, description = "Invalid body, calendarId, subject or grant (unknown, or given with a subject); `error.field` names it", body = crate::error::ErrorBody),
        (status = 422, description = "The grant's account must be connected again first, or the grant was deleted (`error.field` is `grant`)", body = crate::error::ErrorBody),
        (status = 404, description = "Google does not show the calendar to this principal (`not_found_in_google`); nothing is kept", body = crate::error::ErrorBody),
        (status = 502, description = "Google refused the watch (`google_refused`)", body = crate::error::ErrorBody),
        Unauthorized, ReconnectRequired, GoogleOrStoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn add(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let input: AddCalendar = crate::request::parse_body(&body)?;
    let id = CalendarId::new(input.calendar_id)?;
    let (calendar, channel) = state
        .calendars
        .add(&id, acting(input.subject, input.grant)?)
        .await?;
    state.sync_wakeup.notify_one();
    info!(context::logger(&request, &state), "calendar added";
        "action" => "calendar_add", "status" => "success", "calendar_id" => id.to_string(),
        "channel_id" => channel.id.to_string());
    let mut answer =
        serde_json::to_value(state.calendars.get(&calendar.calendar_id).await?).unwrap_or_default();
    answer["channel"] = serde_json::to_value(&channel).unwrap_or_default();
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(
    get, path = "/calendar/calendars", tag = "calendars", operation_id = "listCalendars",
    responses(
        (status = 200, description = "The managed calendars, by id, with their sync health", body = CalendarList),
        Unauthorized, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(_: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let items = state.calendars.list().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

#[utoipa::path(
    get, path = "/calendar/calendars/{id}", tag = "calendars", operation_id = "getCalendar",
    params(("id" = String, Path, description = "The calendar id: 1 to 1024 characters, no whitespace or control character (else a 400 naming `calendarId`)", min_length = 1, max_length = 1024, pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$")),
    responses(
        (status = 200, description = "The calendar and its sync health", body = CalendarDoc),
        (status = 400, description = "Not a calendar id (`error.field` is `calendarId`)", body = crate::error::ErrorBody),
        Unauthorized, CalendarNotManaged, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let view = state.calendars.get(&calendar_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    patch, path = "/calendar/calendars/{id}", tag = "calendars", operation_id = "changeCalendar",
    params(("id" = String, Path, description = "The calendar id: 1 to 1024 characters, no whitespace or control character (else a 400 naming `calendarId`)", min_length = 1, max_length = 1024, pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$")),
    request_body = ChangeCalendar,
    responses(
        (status = 200, description = "Changed; calls act as the new subject within 30 s on every replica, and a sync is queued", body = CalendarDoc),
        (status = 400, description = "Invalid body, subject or calendar id; `error.field` names it", body = crate::error::ErrorBody),
        Unauthorized, CalendarNotManaged, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn change(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let id = calendar_id(&path)?;
    let input: ChangeCalendar = crate::request::parse_body(&body)?;
    let Some(new_subject) = input.subject else {
        return Err(calsync_domain::Error::invalid(
            "subject",
            "is required (null for the default)",
        )
        .into());
    };
    state
        .calendars
        .set_subject(&id, acting(new_subject, None)?)
        .await?;
    state.sync_wakeup.notify_one();
    info!(context::logger(&request, &state), "calendar subject changed";
        "action" => "calendar_change", "status" => "success", "calendar_id" => id.to_string());
    Ok(HttpResponse::Ok().json(state.calendars.get(&id).await?))
}

#[utoipa::path(
    delete, path = "/calendar/calendars/{id}", tag = "calendars", operation_id = "removeCalendar",
    params(("id" = String, Path, description = "The calendar id: 1 to 1024 characters, no whitespace or control character (else a 400 naming `calendarId`)", min_length = 1, max_length = 1024, pattern = r"^[^\x00-\x20\x7F-\x9F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$")),
    responses(
        (status = 200, description = "No longer managed: its channels are stopped and it is no longer synced; its mirrored events stay until retention", body = CalendarDoc),
        (status = 400, description = "Not a calendar id (`error.field` is `calendarId`)", body = crate::error::ErrorBody),
        Unauthorized, CalendarNotManaged, StoreUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    _: Authenticated,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = calendar_id(&path)?;
    let removed = state.calendars.remove(&id).await?;
    info!(context::logger(&request, &state), "calendar removed";
        "action" => "calendar_remove", "status" => "success", "calendar_id" => id.to_string());
    Ok(HttpResponse::Ok().json(removed))
}
