//! calsync's HTTP layer: actix-web routes for Google's push notifications
//! and the management API. Mount it in any actix app with [`configure`];
//! the binary builds the [`AppState`] from real adapters.

mod auth;
mod channels;
mod error;
mod request_log;
mod webhooks;
pub mod workers;

use std::sync::Arc;

use actix_web::web;
use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::{ChannelStore, DriveNotificationSink};
use calsync_domain::services::{ChannelService, NotificationService};
use calsync_resilience::RateLimiter;
use tokio::sync::mpsc::UnboundedSender;

pub use auth::{ApiTokens, Authenticated};
pub use error::HttpError;
pub use webhooks::{LoggingDriveSink, MAX_BODY_BYTES};

/// What the routes need, built once by the composition root.
pub struct AppState {
    pub notifications: NotificationService,
    pub channels: ChannelService,
    pub channel_store: Arc<dyn ChannelStore>,
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
    pub sync_wakeup: Arc<tokio::sync::Notify>,
    pub logger: slog::Logger,
}

/// Registers calsync's routes. `state` is shared by every worker.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let query = web::QueryConfig::default().error_handler(|error, _| {
            HttpError::from(calsync_domain::Error::invalid("query", error.to_string())).into()
        });
        config
            .app_data(state)
            .app_data(query)
            .service(
                web::scope("/webhooks")
                    .wrap(actix_web::middleware::from_fn(request_log::log_requests))
                    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                    .route("/calendar", web::post().to(webhooks::calendar))
                    .route("/drive", web::post().to(webhooks::drive)),
            )
            .service(
                web::scope("/calendar/channels")
                    .wrap(actix_web::middleware::from_fn(request_log::log_requests))
                    .route("", web::post().to(channels::create))
                    .route("", web::get().to(channels::list))
                    .route("/{id}", web::delete().to(channels::stop)),
            );
    }
}
