//! calsync's HTTP layer: actix-web routes for Google's push notifications
//! and the management API. Mount it in any actix app with [`configure`];
//! the binary builds the [`AppState`] from real adapters.

mod api_tokens;
mod auth;
mod calendars;
mod changes;
mod channels;
mod console;
mod context;
mod drive_sink;
mod error;
mod events;
mod failed_writes;
mod freebusy;
mod grants;
mod health;
mod openapi;
mod request;
mod state;
mod subscriptions;
mod sync;
mod trusted_proxies;
mod webhooks;

use actix_web::web;

pub use api_tokens::ApiTokens;
pub use auth::Authenticated;
pub use changes::{ChangeJson, ChangeResource};
pub use context::{REQUEST_ID_HEADER, RequestContext};
pub use error::{ErrorBody, HttpError};
pub use events::{EventResource, MAX_EVENT_BODY_BYTES};
pub use openapi::ApiDoc;
pub use state::{AppState, AppStateBuilder, ChannelStops, DEFAULT_WEBHOOK_RATE_PER_MINUTE};

/// The decoders the events routes use, for the `cargo fuzz` targets in
/// `fuzz/` (bodies to domain values, `pageToken` to a cursor).
pub mod decode {
    pub use crate::events::{
        decode_create_body as event_create_body, decode_patch_body as event_patch_body,
        parse_page_token as page_token,
    };
}
pub use drive_sink::LoggingDriveSink;
pub use trusted_proxies::TrustedProxies;
pub use webhooks::MAX_BODY_BYTES;

/// Declares the routes once: [`ROUTES`] lists them (the OpenAPI test
/// compares the document with it) and `mount` registers exactly those, one
/// actix scope per prefix, each with the request-context middleware and its
/// body size limit.
macro_rules! routes {
    ($( $scope:literal (limit $limit:expr) { $( $method:ident $path:literal => $handler:path; )* } )*) => {
        /// Every `(method, path)` calsync mounts, paths as in the OpenAPI document.
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), concat!($scope, $path)), )* )* ];

        fn mount(config: &mut web::ServiceConfig) {
            $(
                config.service(scope(
                    $scope,
                    $limit,
                    vec![ $( ($path, web::$method().to($handler)), )* ],
                ));
            )*
        }
    };
}

/// The methods [`ROUTES`] serves at `path` (a template such as
/// `/calendar/events/{id}`), upper-case, in declaration order: what a 405's
/// `Allow` header lists.
fn allowed_methods(path: &str) -> Vec<String> {
    ROUTES
        .iter()
        .filter(|(_, p)| *p == path)
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect()
}

/// One prefix's scope. Each path is one resource holding all its methods,
/// so a known path asked with another method is a 405 naming the methods
/// it serves, not the 404 that one resource per route would give.
fn scope(
    prefix: &'static str,
    limit: usize,
    routes: Vec<(&'static str, actix_web::Route)>,
) -> impl actix_web::dev::HttpServiceFactory {
    let mut scope = web::scope(prefix)
        .wrap(actix_web::middleware::from_fn(context::middleware))
        .app_data(web::PayloadConfig::new(limit));
    let mut pending = routes;
    while let Some(&(path, _)) = pending.first() {
        let (same, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(p, _)| *p == path);
        pending = rest;
        let allow = allowed_methods(&format!("{prefix}{path}"));
        let mut resource = web::resource(path).default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<actix_web::HttpResponse, _>(HttpError::MethodNotAllowed { allow }) }
        }));
        for (_, route) in same {
            resource = resource.route(route);
        }
        scope = scope.service(resource);
    }
    scope
}

routes! {
    "/webhooks" (limit MAX_BODY_BYTES) {
        post "/calendar" => webhooks::calendar;
        post "/drive" => webhooks::drive;
    }
    "/calendar" (limit MAX_EVENT_BODY_BYTES) {
        post "/events" => events::create;
        get "/events" => events::list;
        get "/events/{id}" => events::get;
        patch "/events/{id}" => events::patch;
        delete "/events/{id}" => events::delete;
        post "/events/{id}/retry" => failed_writes::retry;
        post "/events/{id}/discard" => failed_writes::discard;
        get "/failed-writes" => failed_writes::list;
        post "/sync" => sync::request_sync;
        post "/calendars" => calendars::add;
        get "/calendars" => calendars::list;
        get "/calendars/{id}" => calendars::get;
        patch "/calendars/{id}" => calendars::change;
        delete "/calendars/{id}" => calendars::remove;
        post "/channels" => channels::create;
        get "/channels" => channels::list;
        delete "/channels/{id}" => channels::stop;
        get "/changes" => changes::list;
        get "/changes/latest" => changes::latest;
        post "/freebusy" => freebusy::free_busy;
        post "/availability" => freebusy::availability;
        post "/grants/google" => grants::start;
        get "/grants/google/callback" => grants::callback;
        get "/grants" => grants::list;
        get "/grants/{id}" => grants::get;
        get "/grants/{id}/calendars" => grants::calendars;
        delete "/grants/{id}" => grants::delete;
        post "/webhooks" => subscriptions::create;
        get "/webhooks" => subscriptions::list;
        get "/webhooks/{id}" => subscriptions::get;
        patch "/webhooks/{id}" => subscriptions::update;
        delete "/webhooks/{id}" => subscriptions::delete;
        post "/webhooks/{id}/rotate-secret" => subscriptions::rotate_secret;
        post "/webhooks/{id}/test" => subscriptions::test;
        get "/webhooks/{id}/attempts" => subscriptions::attempts;
        post "/webhooks/{id}/replay" => subscriptions::replay;
    }
    "/health" (limit MAX_BODY_BYTES) {
        get "/calendar" => health::calendar;
        get "/live" => health::live;
        get "/ready" => health::ready;
    }
    "/metrics" (limit MAX_BODY_BYTES) {
        get "" => health::metrics;
    }
    "/openapi.json" (limit MAX_BODY_BYTES) {
        get "" => openapi::spec;
    }
    "/docs" (limit MAX_BODY_BYTES) {
        get "" => openapi::docs;
        get "/{file}" => openapi::docs_file;
    }
}

/// A JSON 404 in calsync's error shape, for paths outside its routes: the
/// server installs it as the app's default service; a host app may too.
pub async fn no_route() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().json(serde_json::json!({
        "error": {"code": "no_route", "message": "no such route"}
    }))
}

/// Registers calsync's routes ([`ROUTES`]) and the operator console
/// (`/console`, HTML pages outside the API). `state` is shared by every
/// worker. The routes claim only their own prefixes (`/calendar`,
/// `/webhooks`, `/health`, `/metrics`, `/openapi.json`, `/docs`,
/// `/console`), so the host app's other routes are untouched.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let query = web::QueryConfig::default().error_handler(|error, _| {
            HttpError::InvalidBody {
                field: "query".into(),
                message: error.to_string(),
            }
            .into()
        });
        let path = web::PathConfig::default().error_handler(|error, _| {
            HttpError::from(calsync_domain::Error::invalid("path", error.to_string())).into()
        });
        config.app_data(state).app_data(query).app_data(path);
        mount(config);
        // The operator console: HTML pages, not API routes, so not in ROUTES.
        console::mount(config);
    }
}
