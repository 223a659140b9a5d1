//! Logging in and out of the console.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use slog::{info, warn};

use super::layout::{self, Flash, Nav, Page};
use super::{parse_form, session};
use crate::{AppState, context};

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

fn login_page(error: Option<&str>) -> Markup {
    let page = Page {
        title: "Log in",
        nav: Nav::None,
        session: None,
        flashes: error.map(Flash::error).into_iter().collect(),
        refresh: None,
    };
    page.render(html! {
        p.note { "Log in with one of the server's API tokens (" code { "CALSYNC_API_TOKENS" } "). The session lasts 12 hours, or until the token is removed." }
        form id="login" method="post" action="/console/login" {
            label for="token" { "API token" }
            input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
            button type="submit" data-action="login" { "Log in" }
        }
    })
}

/// `GET /console/login`.
pub async fn form() -> HttpResponse {
    layout::ok(login_page(None))
}

/// `POST /console/login`: a token `state.api_tokens` accepts gets a session
/// cookie and a 303 to the overview; any other is a 401 with the form again.
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let logger = context::logger(&request, &state);
    if !session::same_origin(&request, &state) {
        warn!(logger, "console login refused"; "action" => "console_login", "status" => "cross_origin");
        return layout::forbidden("Refused: this form was not sent from the console's own site.");
    }
    let form: LoginForm = parse_form(&body).unwrap_or_default();
    let cookie = state
        .api_tokens
        .session_key(form.token.trim())
        .and_then(|key| session::new_cookie(&key, session::unix_now()));
    let Some(cookie) = cookie else {
        warn!(logger, "console login refused"; "action" => "console_login", "status" => "unauthorized");
        return layout::refusal(
            StatusCode::UNAUTHORIZED,
            login_page(Some("That token is not accepted.")),
        );
    };
    info!(logger, "console login"; "action" => "console_login", "status" => "success");
    let secure = session::is_https(&request, &state);
    layout::see_other("/console")
        .insert_header((header::SET_COOKIE, session::set_cookie(&cookie, secure)))
        .finish()
}

/// `POST /console/logout`: clears the cookie. With a valid session the
/// form's CSRF token must match; without one there is nothing to end.
pub async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if session::current(&request, &state).is_some() {
        if let Err(refusal) = super::authorize_post(&request, &state, &body) {
            return *refusal;
        }
        info!(context::logger(&request, &state), "console logout";
            "action" => "console_logout", "status" => "success");
    } else if !session::same_origin(&request, &state) {
        return layout::forbidden("Refused: this form was not sent from the console's own site.");
    }
    let secure = session::is_https(&request, &state);
    layout::see_other("/console/login")
        .insert_header((header::SET_COOKIE, session::clear_cookie(secure)))
        .finish()
}
