//! Per-request context: an `X-Request-Id` (the caller's, if it is sane, or a
//! new one), a logger carrying it for every record of the request, one
//! access-log record, and the HTTP metrics.

use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use calsync_resilience::metrics::{HttpRequestLabels, RouteLabels};

use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the middleware attaches to each request.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub logger: slog::Logger,
}

/// A caller's id is kept only if it is short and plain, so it cannot forge
/// log structure or carry much data.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The request's logger: the state's logger with the request id, or the
/// state's own when the middleware is not mounted.
pub fn logger(request: &HttpRequest, state: &AppState) -> slog::Logger {
    request
        .extensions()
        .get::<RequestContext>()
        .map_or_else(|| state.logger.clone(), |context| context.logger.clone())
}

/// Metric and log labels come from a closed set: any other method a client
/// invents is `other`, so clients cannot grow `/metrics` without bound.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = method_label(request.method());
    // The route template, not the path: ids stay out of labels and this field.
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let logger = state.as_ref().map(|state| {
        state
            .logger
            .new(slog::o!("request_id" => request_id.clone()))
    });
    if let Some(logger) = &logger {
        request.extensions_mut().insert(RequestContext {
            request_id: request_id.clone(),
            logger: logger.clone(),
        });
    }
    let started = Instant::now();
    let mut request = request;
    let mut response = match buffer_body(&mut request).await {
        Ok(()) => json_errors(next.call(request).await?),
        Err(refusal) => {
            let (http_request, _) = request.into_parts();
            ServiceResponse::new(http_request, refusal).map_into_right_body()
        }
    };
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    if let (Some(state), Some(logger)) = (state, logger) {
        let status = response.status().as_u16();
        state
            .metrics
            .http_requests
            .get_or_create(&HttpRequestLabels {
                route: route.clone(),
                method,
                status,
            })
            .inc();
        state
            .metrics
            .http_request_duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        // Probes and scrapes come every few seconds; an accepted webhook
        // already logs its outcome (with this request id) at info, and
        // Google may send thousands a second: their access lines are debug.
        let quiet = route.starts_with("/health")
            || route == "/metrics"
            || (route.starts_with("/webhooks/") && response.status().is_success());
        let record = slog::o!("action" => "http_request", "status" => status, "method" => method,
            "route" => route, "duration_ms" => duration_ms);
        if response.status().is_server_error() {
            // The cause stays here: clients get a generic message.
            let cause = response
                .response()
                .error()
                .map(|error| match error.as_error::<crate::HttpError>() {
                    Some(crate::HttpError::NotReady(cause)) => cause.clone(),
                    _ => error.to_string(),
                })
                .unwrap_or_default();
            slog::warn!(logger.new(record), "request failed"; "error_message" => cause);
        } else if quiet {
            if slog::Drain::is_debug_enabled(&logger) {
                slog::debug!(logger.new(record), "request served");
            }
        } else {
            slog::info!(logger.new(record), "request served");
        }
    }
    Ok(response)
}

/// How long a client may take to send a request body: a slow sender must
/// not hold a connection (and a worker's attention) for as long as it likes.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body any route takes; each scope's own limit applies after.
const BUFFERED_BODY_LIMIT: usize = crate::MAX_EVENT_BODY_BYTES;

fn refusal(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Connection", "close"))
        .json(serde_json::json!({"error": {"code": code, "message": message}}))
}

/// Reads the whole body within [`BODY_READ_TIMEOUT`] and hands it on: 408
/// for a body that does not arrive in time, 413 for one over every limit.
async fn buffer_body(request: &mut ServiceRequest) -> Result<(), HttpResponse> {
    use futures_util::StreamExt;
    let mut payload = request.take_payload();
    let mut body = web::BytesMut::new();
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| {
                refusal(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("unreadable body: {error}"),
                )
            })?;
            if body.len() + chunk.len() > BUFFERED_BODY_LIMIT {
                return Err(refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Err(_) => {
            return Err(refusal(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            ));
        }
        Ok(result) => result?,
    }
    request.set_payload(actix_web::dev::Payload::from(body.freeze()));
    Ok(())
}

/// Every error answer has a JSON body: actix's own (an oversized body, an
/// unknown route, a wrong method) are rewritten in calsync's error shape.
fn json_errors<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let status = response.status();
    let ours = response
        .response()
        .error()
        .is_some_and(|error| error.as_error::<crate::HttpError>().is_some());
    let empty = matches!(
        response.response().body().size(),
        BodySize::None | BodySize::Sized(0)
    );
    if !(status.is_client_error() || status.is_server_error()) || (ours && !empty) {
        return response.map_into_left_body();
    }
    let message = response
        .response()
        .error()
        .map(ToString::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let code = match status {
        StatusCode::NOT_FOUND => "no_route",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        status if status.is_server_error() => "internal",
        _ => "invalid",
    };
    let (request, _) = response.into_parts();
    let body = HttpResponse::build(status)
        .json(serde_json::json!({"error": {"code": code, "message": message}}));
    ServiceResponse::new(request, body).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(acceptable("3f2c9a70-1b2c-4d5e-8f90-a1b2c3d4e5f6"));
        assert!(acceptable("req_01HZX.1:2"));
        for bad in ["", "with space", "quote\"", "new\nline", &"x".repeat(129)] {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }
}
