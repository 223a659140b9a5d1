//! The frame every console page shares: head, navigation, flash message,
//! and the headers its answers carry. The stylesheet is compiled in.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use crate::HttpError;

/// The console's stylesheet, served at `/console/console.css`.
pub const CSS: &str = include_str!("console.css");

/// Which navigation link is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Calendars,
    FailedWrites,
    Webhooks,
    /// The login page: no navigation.
    None,
}

const LINKS: [(Nav, &str, &str, &str); 4] = [
    (Nav::Overview, "overview", "/console", "Overview"),
    (
        Nav::Calendars,
        "calendars",
        "/console/calendars",
        "Calendars",
    ),
    (
        Nav::FailedWrites,
        "failed-writes",
        "/console/failed-writes",
        "Failed writes",
    ),
    (Nav::Webhooks, "webhooks", "/console/webhooks", "Webhooks"),
];

/// A message shown once after an action (or a failed read).
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }
}

/// A whole page. `refresh` reloads it every 30 s (without the flash query,
/// so a message is not repeated forever); `session` adds the log-out form.
pub struct Page<'a> {
    pub title: &'a str,
    pub nav: Nav,
    pub session: Option<&'a Session>,
    pub flashes: Vec<Flash>,
    pub refresh: Option<&'a str>,
}

impl Page<'_> {
    pub fn render(&self, body: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    @if let Some(url) = self.refresh {
                        meta http-equiv="refresh" content=(format!("30; url={url}"));
                    }
                    title { (self.title) " · calsync console" }
                    link rel="stylesheet" href="/console/console.css";
                }
                body {
                    header {
                        span.brand { "calsync" }
                        @if self.nav != Nav::None {
                            nav {
                                @for (nav, name, href, label) in LINKS {
                                    @if nav == self.nav {
                                        a.current href=(href) data-nav=(name) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) data-nav=(name) { (label) }
                                    }
                                }
                            }
                        }
                        @if let Some(session) = self.session {
                            form.logout method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(session.csrf());
                                button type="submit" data-action="logout" { "Log out" }
                            }
                        }
                    }
                    main {
                        h1 { (self.title) }
                        @for flash in &self.flashes {
                            p.flash data-flash=(if flash.ok { "ok" } else { "error" }) { (flash.text) }
                        }
                        (body)
                    }
                }
            }
        }
    }
}

/// The headers every console answer carries: not cached (pages show live
/// state and a CSRF token), not framed, no script, forms only to itself.
fn secure(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    builder
}

/// A page answered 200.
pub fn ok(markup: Markup) -> HttpResponse {
    secure(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A refusal (401, 403) with an HTML body. The request-context middleware
/// rewrites a 4xx into calsync's JSON error shape unless calsync's own error
/// is attached to it, so one is attached; the page is what is sent.
pub fn refusal(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response =
        HttpResponse::from_error(HttpError::Domain(calsync_domain::Error::Forbidden))
            .set_body(BoxBody::new(markup.into_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A 303 to `location` (a path of the console).
pub fn see_other(location: &str) -> HttpResponseBuilder {
    let mut builder = secure(HttpResponse::SeeOther());
    builder.insert_header((header::LOCATION, location));
    builder
}

/// A short page for a POST refused for its session, CSRF token or origin.
pub fn forbidden(reason: &str) -> HttpResponse {
    let page = Page {
        title: "Refused",
        nav: Nav::None,
        session: None,
        flashes: vec![Flash::error(reason)],
        refresh: None,
    };
    refusal(
        StatusCode::FORBIDDEN,
        page.render(html! {
            p { a href="/console/login" { "Log in" } " or go back to " a href="/console" { "the console" } "." }
        }),
    )
}

/// The stylesheet.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(CSS)
}
