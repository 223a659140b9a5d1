//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers'
//! annotations and the request and response types.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{channels, error, events, health, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "calsync",
        description = "A local, queryable mirror of Google Calendar events linked to business entities, with writes pushed to Google through a durable outbox."
    ),
    paths(
        events::create, events::list, events::get, events::patch, events::delete,
        events::request_sync,
        channels::create, channels::list, channels::stop,
        webhooks::calendar, webhooks::drive,
        health::calendar, health::live, health::ready, health::metrics,
        spec,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Events for business entities"),
        (name = "sync", description = "Sync requests"),
        (name = "channels", description = "Google push channels"),
        (name = "webhooks", description = "Google's push notifications (authenticated by channel token)"),
        (name = "health", description = "Health, probes and metrics"),
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

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
