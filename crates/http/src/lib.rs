//! calsync's HTTP layer: actix-web routes for Google's push notifications
//! and the management API. Mount it in any actix app with [`configure`];
//! the binary builds the [`AppState`] from real adapters.

mod auth;
mod channels;
mod context;
mod error;
mod events;
mod health;
mod openapi;
mod webhooks;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::{DriveNotificationSink, Store};
use calsync_domain::services::{ChannelService, EventService, HealthService, NotificationService};
use calsync_resilience::{Metrics, RateLimiter};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

pub use auth::{ApiTokens, Authenticated};
pub use context::{REQUEST_ID_HEADER, RequestContext};
pub use error::{ErrorBody, HttpError};
pub use events::{EventResource, MAX_EVENT_BODY_BYTES};
pub use openapi::ApiDoc;
pub use webhooks::{LoggingDriveSink, MAX_BODY_BYTES};

/// What the routes need, built once by the composition root.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub notifications: NotificationService,
    pub channels: ChannelService,
    pub events: EventService,
    pub health: HealthService,
    pub drive_sink: Arc<dyn DriveNotificationSink>,
    pub api_tokens: ApiTokens,
    /// Used when a request names no calendar.
    pub default_calendar: Option<CalendarId>,
    /// Keyed by request source, so a flood from one sender cannot starve the rest.
    pub webhook_limiter: RateLimiter,
    /// Channels to stop at Google (validly signed notifications for
    /// channels calsync no longer wants); a background task drains it.
    pub channel_stops: UnboundedSender<(ChannelId, ResourceId)>,
    /// Woken after a webhook marks a calendar dirty, so the sync starts at once.
    pub sync_wakeup: Arc<Notify>,
    /// Woken after a write, so the outbox worker pushes it at once.
    pub outbox_wakeup: Arc<Notify>,
    /// The longest a `?wait=true` write waits for Google's answer.
    pub write_wait: Duration,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
}

/// Registers calsync's routes. `state` is shared by every worker. Each
/// scope carries the request-context middleware (request id, access log,
/// metrics); the routes claim only their own paths, so the host app's
/// other routes are untouched.
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
        let with_context = || actix_web::middleware::from_fn(context::middleware);
        config
            .app_data(state)
            .app_data(query)
            .app_data(path)
            .service(
                web::scope("/webhooks")
                    .wrap(with_context())
                    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                    .route("/calendar", web::post().to(webhooks::calendar))
                    .route("/drive", web::post().to(webhooks::drive)),
            )
            .service(
                web::scope("/calendar")
                    .wrap(with_context())
                    .app_data(web::PayloadConfig::new(MAX_EVENT_BODY_BYTES))
                    .route("/events", web::post().to(events::create))
                    .route("/events", web::get().to(events::list))
                    .route("/events/{id}", web::get().to(events::get))
                    .route("/events/{id}", web::patch().to(events::patch))
                    .route("/events/{id}", web::delete().to(events::delete))
                    .route("/sync", web::post().to(events::request_sync))
                    .route("/channels", web::post().to(channels::create))
                    .route("/channels", web::get().to(channels::list))
                    .route("/channels/{id}", web::delete().to(channels::stop)),
            )
            .service(
                web::scope("/health")
                    .wrap(with_context())
                    .route("/calendar", web::get().to(health::calendar))
                    .route("/live", web::get().to(health::live))
                    .route("/ready", web::get().to(health::ready)),
            )
            .service(
                web::resource("/metrics")
                    .wrap(with_context())
                    .route(web::get().to(health::metrics)),
            )
            .service(
                web::resource("/openapi.json")
                    .wrap(with_context())
                    .route(web::get().to(openapi::spec)),
            );
    }
}
