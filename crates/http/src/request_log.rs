//! One structured log record per request: method, route, status, duration.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::AppState;

pub async fn log_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let logger = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.logger.clone());
    let method = request.method().to_string();
    // The route template, not the path: ids stay out of this field.
    let route = request
        .match_pattern()
        .unwrap_or_else(|| request.path().to_owned());
    let started = Instant::now();
    let response = next.call(request).await?;
    if let Some(logger) = logger {
        let status = response.status().as_u16();
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record = slog::o!("action" => "http_request", "status" => status, "method" => method,
            "route" => route, "duration_ms" => duration_ms);
        if response.status().is_server_error() {
            slog::warn!(logger.new(record), "request failed");
        } else {
            slog::info!(logger.new(record), "request served");
        }
    }
    Ok(response)
}
