//! The operator console at `/console`: server-rendered pages over the same
//! services the API uses, behind the API tokens (a login form sets a
//! session cookie, see [`session`]). Not part of the OpenAPI document: every
//! action it offers is also an API route.
//!
//! Pages read without JavaScript. Privacy: the only email addresses shown
//! unmasked are calendar ids; every other address (principals, attendees,
//! addresses in error text or URLs) goes through
//! [`calsync_resilience::mask_emails`], and no secret is ever rendered.

mod auth;
mod calendars;
mod charts;
mod failed;
mod layout;
mod overview;
pub(crate) mod session;
mod webhooks;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{AppState, HttpError, context};
use layout::Flash;
use session::Session;

/// The largest form the console takes.
const FORM_LIMIT: usize = 16 * 1024;

/// Mounts the console's routes under `/console`, with the request-context
/// middleware (request id, access log, HTTP metrics).
pub fn mount(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/console")
            .wrap(actix_web::middleware::from_fn(context::middleware))
            .app_data(web::PayloadConfig::new(FORM_LIMIT))
            .route("", web::get().to(overview::page))
            .route("/", web::get().to(overview::page))
            .route("/console.css", web::get().to(layout::stylesheet))
            .route("/login", web::get().to(auth::form))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/calendars", web::get().to(calendars::page))
            .route("/calendars/sync", web::post().to(calendars::sync))
            .route("/calendars/resync", web::post().to(calendars::resync))
            .route("/calendars/stop", web::post().to(calendars::stop))
            .route("/failed-writes", web::get().to(failed::page))
            .route("/failed-writes/retry", web::post().to(failed::retry))
            .route("/failed-writes/discard", web::post().to(failed::discard))
            .route("/webhooks", web::get().to(webhooks::page))
            .route("/webhooks/enable", web::post().to(webhooks::enable))
            .route("/webhooks/replay", web::post().to(webhooks::replay)),
    );
}

/// What any action form posts; each action reads the fields it needs.
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    calendar: Option<String>,
    event: Option<String>,
    webhook: Option<String>,
    cursor: Option<String>,
}

/// A form body (`application/x-www-form-urlencoded`, the query string's
/// encoding) into `T`; `None` if it does not parse.
fn parse_form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    web::Query::<T>::from_query(text.trim())
        .ok()
        .map(web::Query::into_inner)
}

/// The checks before any action: same origin, a session, its CSRF token.
/// The refusal is a short HTML page (403), boxed (a response is large).
fn authorize_post(
    request: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Session, ActionForm), Box<HttpResponse>> {
    if !session::same_origin(request, state) {
        return Err(Box::new(layout::forbidden(
            "Refused: this form was not sent from the console's own site.",
        )));
    }
    let Some(session) = session::current(request, state) else {
        return Err(Box::new(layout::forbidden(
            "Refused: no valid session (it may have expired). Log in again.",
        )));
    };
    let form: ActionForm = parse_form(body).unwrap_or_default();
    if !session.csrf_matches(&form.csrf) {
        return Err(Box::new(layout::forbidden(
            "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.",
        )));
    }
    Ok((session, form))
}

/// A GET page's session, or the 303 to the login form.
fn require_session(request: &HttpRequest, state: &AppState) -> Result<Session, Box<HttpResponse>> {
    session::current(request, state)
        .ok_or_else(|| Box::new(layout::see_other("/console/login").finish()))
}

/// The `?done=` / `?error=` of the redirect after an action.
#[derive(Debug, Default, Deserialize)]
struct FlashQuery {
    done: Option<String>,
    error: Option<String>,
}

/// Known outcomes only for `done` (a link cannot make the console claim
/// something happened); `error` is shown as text, masked and shortened.
fn flashes(request: &HttpRequest) -> Vec<Flash> {
    let query: FlashQuery = web::Query::<FlashQuery>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let mut flashes = Vec::new();
    if let Some(done) = query.done {
        let text = match done.as_str() {
            "synced" => Some("Sync queued."),
            "resynced" => Some("Full resync queued."),
            "stopped" => Some("The calendar is no longer managed."),
            "retried" => Some("The write is queued again."),
            "discarded" => Some("The write was discarded: Google's version stands."),
            "enabled" => Some("The subscription is enabled again."),
            "replayed" => Some("The delivery was replayed."),
            _ => None,
        };
        if let Some(text) = text {
            flashes.push(Flash::ok(text));
        }
    }
    if let Some(error) = query.error {
        let short: String = error.chars().take(300).collect();
        flashes.push(Flash::error(mask(&short)));
    }
    flashes
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The redirect after an action: back to `page` with its outcome.
fn after_action(page: &str, outcome: Result<&str, String>) -> HttpResponse {
    let location = match outcome {
        Ok(done) => format!("{page}?done={done}"),
        Err(error) => format!("{page}?error={}", encode(&error)),
    };
    layout::see_other(&location).finish()
}

/// Logs an action's outcome as its API route does (its `action` name and
/// subject, with `via: console`), then sends the browser back to `page`
/// with the flash: `done`, or the service's error as an operator may read
/// it.
fn finish_action<T>(
    logger: &slog::Logger,
    page: &str,
    (action, key, subject): (&'static str, &'static str, String),
    outcome: Result<T, calsync_domain::Error>,
    done: &str,
) -> HttpResponse {
    match outcome {
        Ok(_) => {
            slog::info!(logger, "console action done";
                "action" => action, "via" => "console", "status" => "success", key => subject);
            after_action(page, Ok(done))
        }
        Err(error) => {
            slog::warn!(logger, "console action failed";
                "action" => action, "via" => "console", "status" => "failed", key => subject,
                "error_type" => error.error_type(), "error_message" => error.to_string());
            after_action(page, Err(error_text(error)))
        }
    }
}

/// What an operator may read of a service error: a server-side cause is
/// logged, not shown (as the API does), and addresses are masked.
fn error_text(error: calsync_domain::Error) -> String {
    let error = HttpError::from(error);
    if error.is_internal() {
        "the service is temporarily unavailable; try again".to_owned()
    } else {
        mask(&error.to_string())
    }
}

/// Masks every email address in `text`.
fn mask(text: &str) -> String {
    calsync_resilience::mask_emails(text).into_owned()
}

/// Whether `c` can be part of an email address's local part or domain.
fn address_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-".contains(c)
}

/// Masks every email address in `text` except the calendar ids in `keep`
/// where they stand as whole addresses (calendar ids are shown as they are).
fn mask_keeping(text: &str, keep: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = 0; // start of the text not yet masked and copied
    let mut from = 0;
    while from < text.len() {
        let next = keep
            .iter()
            .filter(|id| !id.is_empty())
            .filter_map(|id| text[from..].find(*id).map(|at| (from + at, id.len())))
            .min();
        let Some((at, len)) = next else { break };
        let before_ok = !text[..at].chars().next_back().is_some_and(address_char);
        let after_ok = !text[at + len..].chars().next().is_some_and(address_char);
        if before_ok && after_ok {
            out.push_str(&mask(&text[pending..at]));
            out.push_str(&text[at..at + len]);
            pending = at + len;
            from = at + len;
        } else {
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&mask(&text[pending..]));
    out
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn when_opt(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), when)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_ids_stay_and_other_addresses_are_masked() {
        let keep = ["team@example.com"];
        assert_eq!(
            mask_keeping("calendar team@example.com: bob@example.org refused", &keep),
            "calendar team@example.com: b***@example.org refused"
        );
        // Not the whole address: masked.
        assert_eq!(mask_keeping("xteam@example.com", &keep), "x***@example.com");
        assert_eq!(
            mask_keeping("team@example.com.evil", &keep),
            "t***@example.com.evil"
        );
        assert_eq!(
            mask_keeping("team@example.com,team@example.com", &keep),
            "team@example.com,team@example.com"
        );
        assert_eq!(mask_keeping("no address", &[]), "no address");
        assert_eq!(mask_keeping("a@b.c", &[""]), "a***@b.c");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("safe-_.~AZ09"), "safe-_.~AZ09");
    }

    #[test]
    fn forms_parse_as_url_encoded() {
        let form: ActionForm =
            parse_form(b"csrf=ab&calendar=team%40example.com&event=x+y").unwrap();
        assert_eq!(form.csrf, "ab");
        assert_eq!(form.calendar.as_deref(), Some("team@example.com"));
        assert_eq!(form.event.as_deref(), Some("x y"));
        assert!(parse_form::<ActionForm>(&[0xff, 0xfe]).is_none());
    }
}
