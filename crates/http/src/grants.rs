//! `/calendar/grants`: users' own Google accounts connected through
//! OAuth 2.0 with PKCE (docs/GRANTS.md). The callback is the one route
//! without an API token: the browser arrives from Google, and the
//! single-use `state` is what authenticates it.

use actix_web::{HttpResponse, web};
use calsync_domain::Error as DomainError;
use calsync_domain::grant::{Grant, GrantId};
use calsync_domain::services::GrantService;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::changes::instant;
use crate::openapi::responses::{BodyTooLarge, GrantNotFound, GrantsUnavailable, Unauthorized};
use crate::request::parse_optional_body;
use crate::{AppState, HttpError};

/// Starts connecting an account.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartGrantBody {
    /// The account's address, so Google preselects it.
    #[schema(min_length = 1, max_length = 320, pattern = r"^[^\x00-\x20\x7F]+$")]
    pub login_hint: Option<String>,
    /// Where the browser goes once connected (`?grant={id}&status=active`
    /// appended): an `https` URL on a host in `CALSYNC_GRANT_RETURN_HOSTS`
    /// (else a 400 naming `returnTo`). Without it the callback answers the
    /// grant as JSON.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://[\x21-\x7E]+$"
    )]
    pub return_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedResource {
    /// Send the user's browser here (Google's consent screen).
    pub authorization_url: String,
    /// The authorization's single-use state, valid for 10 minutes.
    pub state: String,
}

/// Google's redirect back to calsync.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The `state` calsync issued.
    #[param(max_length = 256)]
    pub state: Option<String>,
    /// The authorization code.
    #[param(max_length = 2048)]
    pub code: Option<String>,
    /// Google's refusal (`access_denied` when the user declined).
    #[param(max_length = 256)]
    pub error: Option<String>,
    /// The scopes granted (informational: the token answer is authoritative).
    #[param(max_length = 2048)]
    #[allow(dead_code)] // accepted so Google's redirect parses
    pub scope: Option<String>,
}

/// A connected account. Its refresh token is never shown.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantResource {
    #[schema(pattern = "^gr_[0-9a-f]{32}$")]
    pub id: String,
    /// `google`.
    pub provider: String,
    pub email: String,
    pub scopes: Vec<String>,
    /// `active`; `reconnect_required` (Google refused its refresh token:
    /// the user must connect again, which restores this grant);
    /// `revoked` (deleted).
    #[schema(inline, value_type = GrantStatusDoc)]
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_refresh_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // documentation only
pub enum GrantStatusDoc {
    #[schema(rename = "active")]
    Active,
    #[schema(rename = "reconnect_required")]
    ReconnectRequired,
    #[schema(rename = "revoked")]
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    /// Oldest first.
    pub items: Vec<GrantResource>,
}

impl GrantResource {
    fn new(grant: &Grant) -> Self {
        Self {
            id: grant.id.to_string(),
            provider: grant.provider.clone(),
            email: grant.email.clone(),
            scopes: grant.scopes.clone(),
            status: grant.status.as_str(),
            created_at: instant(grant.created_at),
            last_refresh_at: grant.last_refresh_at.map(instant),
            last_error: grant.last_error.clone(),
        }
    }
}

fn service(state: &AppState) -> Result<&GrantService, HttpError> {
    state.grants.as_ref().ok_or(HttpError::GrantsNotConfigured)
}

fn grant_id(path: &str) -> Result<GrantId, HttpError> {
    Ok(GrantId::parse(path)?)
}

/// Whether the browser may be sent to `url` after connecting: https (or
/// http to loopback) on an allowed host, so the callback is no open redirect.
fn return_allowed(url: &str, hosts: &[String]) -> bool {
    let lower = url.to_ascii_lowercase();
    let (secure, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1");
    (secure || loopback)
        && hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host))
}

/// Starts connecting a Google account: answers the URL to send the
/// user's browser to. Google redirects back to
/// `{CALSYNC_PUBLIC_URL}/calendar/grants/google/callback`.
#[utoipa::path(
    post, path = "/calendar/grants/google", tag = "grants", operation_id = "startGoogleGrant",
    request_body(content = Option<StartGrantBody>, description = "Optional; `{}` or no body starts without a hint"),
    responses(
        (status = 201, description = "Send the browser to `authorizationUrl`", body = StartedResource),
        (status = 400, description = "Invalid body: `error.field` names it (`returnTo` on a host not in `CALSYNC_GRANT_RETURN_HOSTS`)", body = crate::error::ErrorBody),
        Unauthorized, BodyTooLarge, GrantsUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn start(
    _: Authenticated,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let grants = service(&state)?;
    // No body, `null` and `{}` all start without a hint.
    let input: StartGrantBody = parse_optional_body::<Option<StartGrantBody>>(&body)?
        .flatten()
        .unwrap_or_default();
    if let Some(url) = &input.return_to
        && !return_allowed(url, &state.grant_return_hosts)
    {
        return Err(DomainError::invalid(
            "returnTo",
            "must be an https URL on a host in CALSYNC_GRANT_RETURN_HOSTS",
        )
        .into());
    }
    let started = grants.start(input.login_hint, input.return_to).await?;
    Ok(HttpResponse::Created().json(StartedResource {
        authorization_url: started.authorization_url,
        state: started.state,
    }))
}

/// Google's redirect after consent: redeems the code (PKCE), learns the
/// account and creates its grant, or restores the grant the same account
/// had. A replayed, forged or expired `state` is a 400 and changes nothing.
#[utoipa::path(
    get, path = "/calendar/grants/google/callback", tag = "grants", operation_id = "googleGrantCallback",
    params(CallbackParams),
    responses(
        (status = 200, description = "Connected (no `returnTo`): the grant", body = GrantResource),
        (status = 303, description = "Connected: the browser is sent to `returnTo` with `grant` and `status`"),
        (status = 400, description = "An unknown, used or expired `state`, a refused code, or Google's `error` (`access_denied`)", body = crate::error::ErrorBody),
        (status = 422, description = "Google issued no refresh token", body = crate::error::ErrorBody),
        GrantsUnavailable,
    )
)]
pub async fn callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackParams>,
) -> Result<HttpResponse, HttpError> {
    let grants = service(&state)?;
    let Some(token) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(DomainError::invalid("state", "is required").into());
    };
    let connected = grants
        .complete(token, query.code.as_deref(), query.error.as_deref())
        .await?;
    let grant = &connected.grant;
    match connected.return_to {
        Some(url) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            let location = format!(
                "{url}{separator}grant={}&status={}",
                grant.id,
                grant.status.as_str()
            );
            Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, location))
                .finish())
        }
        None => Ok(HttpResponse::Ok().json(GrantResource::new(grant))),
    }
}

#[utoipa::path(
    get, path = "/calendar/grants", tag = "grants", operation_id = "listGrants",
    responses(
        (status = 200, description = "Every grant, oldest first", body = GrantList),
        Unauthorized, GrantsUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn list(_: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let items = service(&state)?
        .list()
        .await?
        .iter()
        .map(GrantResource::new)
        .collect();
    Ok(HttpResponse::Ok().json(GrantList { items }))
}

#[utoipa::path(
    get, path = "/calendar/grants/{id}", tag = "grants", operation_id = "getGrant",
    params(("id" = String, Path, description = "The grant's id (`gr_` and 32 hex digits); anything else is a 404", pattern = "^gr_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "The grant", body = GrantResource),
        Unauthorized, GrantNotFound, GrantsUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let grant = service(&state)?.get(&grant_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(GrantResource::new(&grant)))
}

/// Disconnects an account: stops managing its calendars (their channels
/// stopped at Google), revokes the grant at Google and records it
/// `revoked` (its refresh token dropped). Repeating it is harmless.
#[utoipa::path(
    delete, path = "/calendar/grants/{id}", tag = "grants", operation_id = "deleteGrant",
    params(("id" = String, Path, description = "The grant's id (`gr_` and 32 hex digits); anything else is a 404", pattern = "^gr_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "Revoked; its calendars are no longer managed (their mirrored events stay until retention)", body = GrantResource),
        Unauthorized, GrantNotFound, GrantsUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let grant = service(&state)?.delete(&grant_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(GrantResource::new(&grant)))
}

/// One calendar the account sees in Google.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountCalendarResource {
    /// Manage it with `POST /calendar/calendars {"calendarId", "grant"}`.
    pub calendar_id: String,
    /// The account's name for it (its own override, else the calendar's).
    pub summary: String,
    /// Google's `accessRole`: `owner`, `writer`, `reader` or
    /// `freeBusyReader` (below `writer`, writes through calsync are refused
    /// by Google).
    pub access_role: String,
    pub primary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Whether calsync manages it through this grant.
    pub managed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCalendarList {
    /// In the account's calendar list order.
    pub items: Vec<AccountCalendarResource>,
}

/// The calendars of the grant's account, read from Google's calendar list
/// now (so a calendar removed in Google is gone here, and one added is
/// here to choose).
#[utoipa::path(
    get, path = "/calendar/grants/{id}/calendars", tag = "grants", operation_id = "listGrantCalendars",
    params(("id" = String, Path, description = "The grant's id (`gr_` and 32 hex digits); anything else is a 404", pattern = "^gr_[0-9a-fA-F]{32}$")),
    responses(
        (status = 200, description = "The account's calendars, read from Google now; a calendar managed through the grant that the list no longer holds stops being managed (as `DELETE /calendar/calendars/{id}`)", body = AccountCalendarList),
        (status = 409, description = "The grant's account must be connected again (`reconnect_required`)", body = crate::error::ErrorBody),
        Unauthorized, GrantNotFound, GrantsUnavailable,
    ),
    security(("bearer" = []))
)]
pub async fn calendars(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let listed = service(&state)?
        .account_calendars(&grant_id(&path)?)
        .await?;
    let items = listed
        .into_iter()
        .map(|view| AccountCalendarResource {
            calendar_id: view.calendar.calendar_id.to_string(),
            summary: view.calendar.summary,
            access_role: view.calendar.access_role,
            primary: view.calendar.primary,
            time_zone: view.calendar.time_zone,
            managed: view.managed,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AccountCalendarList { items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_returns_only_to_allowed_hosts() {
        let hosts = vec!["app.example.com".to_owned(), "localhost".to_owned()];
        assert!(return_allowed(
            "https://app.example.com/settings?x=1",
            &hosts
        ));
        assert!(return_allowed("HTTPS://APP.example.com", &hosts));
        assert!(return_allowed("http://localhost:3000/done", &hosts));
        assert!(!return_allowed("http://app.example.com/", &hosts));
        assert!(!return_allowed(
            "https://evil.example/?app.example.com",
            &hosts
        ));
        assert!(!return_allowed(
            "https://app.example.com@evil.example/",
            &hosts
        ));
        assert!(!return_allowed(
            "https://app.example.com.evil.example/",
            &hosts
        ));
        assert!(!return_allowed("javascript:alert(1)", &hosts));
        assert!(!return_allowed("https://app.example.com/", &[]));
    }
}
