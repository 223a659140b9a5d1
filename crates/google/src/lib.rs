//! calsync's Google Calendar adapter: the domain's [`CalendarProvider`] on
//! the generated google-calendar3 client, authenticated as a service account
//! with yup-oauth2. Every call is rate limited, given a timeout, classified
//! into the domain's error kinds, and retried by the resilience crate when
//! the kind says so (google-calendar3's own retry hook is never used, so no
//! request is retried twice over).

mod classify;
mod mapping;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::channel::{WatchGrant, WatchRequest};
use calsync_domain::event::Event;
use calsync_domain::ids::{CalendarId, ChannelId, Etag, EventId, ResourceId};
use calsync_domain::ports::{CalendarProvider, PatchCall};
use calsync_domain::sync::{ChangePage, ListRequest, RemoteEvent};
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_resilience::metrics::{GoogleCallLabels, GoogleOpLabels};
use calsync_resilience::{RateLimitConfig, RateLimiter, RetryPolicy};
use google_calendar3::api::{self, Scope};
use google_calendar3::{CalendarHub, common, hyper, hyper_rustls, hyper_util};

pub use mapping::{ENTITY_ID_KEY, ENTITY_TYPE_KEY};

use classify::{Capture, Failure, Op, classify};

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Google's Calendar API root; the trailing slash is required by the client.
pub const GOOGLE_API_BASE_URL: &str = "https://www.googleapis.com/calendar/v3/";

/// The adapter's errors, all from construction (calls report domain errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Google configuration: {0}")]
    Config(String),
    #[error("cannot read the service account key: {0}")]
    Credentials(String),
    #[error("invalid rate limit or retry settings: {0}")]
    Resilience(#[from] calsync_resilience::Error),
}

/// How calsync proves who it is to Google.
#[derive(Clone)]
pub enum Credentials {
    /// A service account key (the JSON file's content), optionally
    /// impersonating `subject` through domain-wide delegation.
    ServiceAccount {
        key_json: String,
        subject: Option<String>,
    },
    /// A fixed bearer token (the emulator in its open mode accepts any).
    AccessToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceAccount { subject, .. } => f
                .debug_struct("ServiceAccount")
                .field("subject", subject)
                .finish_non_exhaustive(),
            Self::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Reads `GOOGLE_SERVICE_ACCOUNT_JSON`'s value: the key JSON itself, or
    /// the path of a file holding it.
    pub fn service_account_from(value: &str, subject: Option<String>) -> Result<Self, Error> {
        let trimmed = value.trim();
        let key_json = if trimmed.starts_with('{') {
            trimmed.to_owned()
        } else {
            std::fs::read_to_string(trimmed)
                .map_err(|error| Error::Credentials(format!("{trimmed}: {error}")))?
        };
        Ok(Self::ServiceAccount { key_json, subject })
    }
}

/// Whom Google should email about a write (`sendUpdates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendUpdates {
    All,
    ExternalOnly,
    /// The default: calsync writes on the application's behalf and leaves
    /// notifying guests to it.
    #[default]
    None,
}

impl SendUpdates {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::ExternalOnly => "externalOnly",
            Self::None => "none",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "all" => Ok(Self::All),
            "externalOnly" => Ok(Self::ExternalOnly),
            "none" => Ok(Self::None),
            other => Err(Error::Config(format!(
                "sendUpdates must be all, externalOnly or none, not '{other}'"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// The Calendar API root, ending in `/`. Plain `http://` is accepted only
    /// for loopback hosts (the emulator).
    pub api_base_url: String,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    pub rate_limits: RateLimitConfig,
    /// Per HTTP request; google-calendar3 has none of its own.
    pub request_timeout: Duration,
    pub send_updates: SendUpdates,
    pub logger: slog::Logger,
    /// Counts calls by operation and outcome, and retries.
    pub metrics: Option<Arc<calsync_resilience::Metrics>>,
}

impl GoogleConfig {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            api_base_url: GOOGLE_API_BASE_URL.to_owned(),
            credentials,
            retry: RetryPolicy::default(),
            rate_limits: RateLimitConfig::default(),
            request_timeout: Duration::from_secs(30),
            send_updates: SendUpdates::default(),
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            metrics: None,
        }
    }
}

/// Refuses plain HTTP except to this machine: credentials and calendars
/// must not cross a network in the clear.
fn check_url(what: &str, value: &str) -> Result<url::Url, Error> {
    let parsed = url::Url::parse(value)
        .map_err(|error| Error::Config(format!("{what} '{value}': {error}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(Error::Config(format!(
            "{what} must be https:// (http:// only for loopback hosts): {value}"
        ))),
    }
}

/// Path segments are not encoded by google-calendar3: calendar ids with
/// `#` (holiday calendars) or `/` would break the URL.
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The Google Calendar adapter.
pub struct GoogleCalendar {
    hub: CalendarHub<Connector>,
    /// The Calendar API root, ending in `/` (for requests made by hand).
    base_url: String,
    /// Set after a 401 so the next token request bypasses the cache.
    force_refresh: Arc<AtomicBool>,
    limiter: RateLimiter,
    retry: RetryPolicy,
    timeout: Duration,
    send_updates: SendUpdates,
    logger: slog::Logger,
    metrics: Option<Arc<calsync_resilience::Metrics>>,
}

impl std::fmt::Debug for GoogleCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleCalendar")
            .field("send_updates", &self.send_updates)
            .finish_non_exhaustive()
    }
}

impl GoogleCalendar {
    /// Builds the adapter: TLS (bundled web PKI roots, so no system CA store
    /// is needed), the authenticator, the rate limiter.
    pub async fn new(config: GoogleConfig) -> Result<Self, Error> {
        config.retry.validate()?;
        let mut base = check_url("Google API base URL", &config.api_base_url)?.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        // Several crates may try to pick a rustls provider; calsync uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // TCP_NODELAY: small API requests must not wait on Nagle's algorithm.
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector: Connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let executor = hyper_util::rt::TokioExecutor::new();
        let client =
            hyper_util::client::legacy::Client::builder(executor.clone()).build(connector.clone());
        let force_refresh = Arc::new(AtomicBool::new(false));
        let mut hub = match config.credentials {
            Credentials::AccessToken(token) => CalendarHub::new(client, token),
            Credentials::ServiceAccount { key_json, subject } => {
                let key = yup_oauth2::parse_service_account_key(&key_json)
                    .map_err(|error| Error::Credentials(error.to_string()))?;
                check_url("service account token_uri", &key.token_uri)?;
                let token_client = hyper_util::client::legacy::Client::builder(executor)
                    .build::<_, String>(connector);
                let mut builder = yup_oauth2::ServiceAccountAuthenticator::with_client(
                    key,
                    yup_oauth2::CustomHyperClientBuilder::from(token_client),
                );
                if let Some(subject) = subject {
                    builder = builder.subject(subject);
                }
                let authenticator = builder
                    .build()
                    .await
                    .map_err(|error| Error::Credentials(error.to_string()))?;
                CalendarHub::new(
                    client,
                    Refreshing {
                        inner: authenticator,
                        force: force_refresh.clone(),
                    },
                )
            }
        };
        hub.base_url(base.clone());
        Ok(Self {
            hub,
            base_url: base,
            force_refresh,
            limiter: RateLimiter::new(config.rate_limits)?,
            retry: config.retry,
            timeout: config.request_timeout,
            send_updates: config.send_updates,
            logger: config.logger,
            metrics: config.metrics,
        })
    }

    /// Rate limits, retries and classifies one logical call. `attempt` makes
    /// one HTTP request with a fresh [`Capture`].
    async fn run<T, F, Fut>(&self, op: Op, calendar: &str, mut attempt: F) -> Result<T, DomainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let rejected_once = AtomicBool::new(false);
        let result = calsync_resilience::retry(
            &self.retry,
            || {
                let attempt = attempt();
                let rejected_once = &rejected_once;
                async move {
                    self.limiter
                        .acquire(calendar, op.cost())
                        .await
                        .map_err(|error| Failure::new(DomainError::provider(ProviderErrorKind::Permanent, error.to_string())))?;
                    match attempt.await {
                        // A rejected token: fetch a fresh one and try once more; a
                        // second rejection means the credentials themselves are refused.
                        Err(Failure(_, true)) if rejected_once.swap(true, Ordering::SeqCst) => {
                            Err(Failure::new(DomainError::provider(
                                ProviderErrorKind::ReconnectRequired,
                                format!("{}: Google rejected freshly issued credentials (401)", op.name()),
                            )))
                        }
                        Err(Failure(error, true)) => {
                            self.force_refresh.store(true, Ordering::SeqCst);
                            Err(Failure::new(error))
                        }
                        other => other,
                    }
                }
            },
            |retry| {
                if let Some(metrics) = &self.metrics {
                    metrics
                        .google_retries
                        .get_or_create(&GoogleOpLabels { op: op.name() })
                        .inc();
                }
                slog::warn!(self.logger, "retrying a Google call";
                    "action" => op.name(), "status" => "retrying", "calendar_id" => calendar,
                    "error_type" => retry.error.0.error_type(), "error_message" => retry.error.0.to_string(),
                    "retry" => retry.retry, "delay_ms" => u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX));
            },
        )
        .await;
        if let Some(metrics) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "success",
                Err(Failure(error, _)) => error.error_type(),
            };
            metrics
                .google_calls
                .get_or_create(&GoogleCallLabels {
                    op: op.name(),
                    outcome,
                })
                .inc();
        }
        result.map_err(|Failure(error, _)| error)
    }

    /// `{base}calendars/{calendar}/events/{event}` with `sendUpdates` for writes.
    fn event_url(&self, calendar_id: &CalendarId, id: &EventId, write: bool) -> String {
        let mut url = format!(
            "{}calendars/{}/events/{}",
            self.base_url,
            segment(calendar_id.as_str()),
            segment(id.as_str())
        );
        if write {
            url.push_str("?sendUpdates=");
            url.push_str(self.send_updates.as_str());
        }
        url
    }

    /// One request with an optional `If-Match`, made with the hub's HTTP
    /// client and token source; answers the body of a 2xx. Failures are
    /// classified from the status and Google's error reason, as `settle` does.
    async fn conditional(
        &self,
        op: Op,
        method: hyper::Method,
        url: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&Etag>,
    ) -> Result<Vec<u8>, Failure> {
        use hyper::header;
        let failed = |kind, message: String| Failure::new(DomainError::provider(kind, message));
        let scopes = [Scope::Full.as_ref()];
        let token = self.hub.auth.get_token(&scopes).await.map_err(|error| {
            let capture = Capture::default();
            classify(op, common::Error::MissingToken(error), &capture)
        })?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, "calsync");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(etag) = if_match {
            request = request.header(header::IF_MATCH, etag.as_str());
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(common::to_body(body)).map_err(|error| {
            failed(
                ProviderErrorKind::Permanent,
                format!("{}: {error}", op.name()),
            )
        })?;
        let exchange = async {
            let response = self.hub.client.request(request).await.map_err(|error| {
                failed(
                    ProviderErrorKind::Transient,
                    format!("{}: connection failed: {error}", op.name()),
                )
            })?;
            let (parts, body) = response.into_parts();
            let bytes = common::to_bytes(body).await.ok_or_else(|| {
                failed(
                    ProviderErrorKind::Transient,
                    format!("{}: the connection closed mid-answer", op.name()),
                )
            })?;
            Ok::<_, Failure>((parts, bytes))
        };
        let (parts, bytes) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Err(failed(
                    ProviderErrorKind::Transient,
                    format!("{}: no answer within {:?}", op.name(), self.timeout),
                ));
            }
            Ok(result) => result?,
        };
        if parts.status.is_success() {
            return Ok(bytes.to_vec());
        }
        let capture = Capture {
            status: Some(parts.status.as_u16()),
            retry_after: parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| calsync_resilience::parse_retry_after(value, chrono::Utc::now())),
        };
        let error = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(json) => common::Error::BadRequest(json),
            Err(_) => common::Error::Failure(common::to_response(parts, Some(bytes))),
        };
        Err(classify(op, error, &capture))
    }

    /// Awaits one request under the timeout and classifies its failure.
    async fn settle<T>(
        &self,
        op: Op,
        request: impl Future<Output = common::Result<T>>,
        capture: &std::sync::Mutex<Capture>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, request).await {
            Err(_) => Err(Failure::new(DomainError::provider(
                ProviderErrorKind::Transient,
                format!("{}: no answer within {:?}", op.name(), self.timeout),
            ))),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                let capture = capture
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Err(classify(op, error, &capture))
            }
        }
    }
}

/// The service-account authenticator, able to skip its token cache once
/// after Google rejected a token.
#[derive(Clone)]
struct Refreshing {
    inner: yup_oauth2::authenticator::Authenticator<Connector>,
    force: Arc<AtomicBool>,
}

impl common::GetToken for Refreshing {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&str],
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let token = if self.force.swap(false, Ordering::SeqCst) {
                self.inner.force_refreshed_token(scopes).await
            } else {
                self.inner.token(scopes).await
            };
            token
                .map(|t| t.token().map(str::to_owned))
                .map_err(Into::into)
        })
    }
}

/// A `Capture` behind a lock, lent to one request as its delegate.
struct Lent<'a>(&'a std::sync::Mutex<Capture>);

impl common::Delegate for Lent<'_> {
    fn http_failure(
        &mut self,
        response: &common::Response,
        body: Option<&serde_json::Value>,
    ) -> common::Retry {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .http_failure(response, body)
    }
}

fn remote(event: api::Event) -> Result<RemoteEvent, Failure> {
    mapping::from_google(event).map_err(Failure::new)
}

#[async_trait]
impl CalendarProvider for GoogleCalendar {
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &ListRequest,
    ) -> Result<ChangePage, DomainError> {
        let calendar = segment(calendar_id.as_str());
        let page_size = i32::try_from(request.max_results.clamp(1, 2500)).unwrap_or(2500);
        self.run(Op::List, calendar_id.as_str(), || async {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let mut call = self
                .hub
                .events()
                .list(&calendar)
                .max_results(page_size)
                .add_scope(Scope::Full);
            if let Some(token) = &request.sync_token {
                call = call.sync_token(token);
            }
            if let Some(token) = &request.page_token {
                call = call.page_token(token);
            }
            let (_, page) = self
                .settle(Op::List, call.delegate(&mut delegate).doit(), &capture)
                .await?;
            Ok(ChangePage {
                events: page
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(remote)
                    .collect::<Result<_, _>>()?,
                next_page_token: page.next_page_token.filter(|t| !t.is_empty()),
                next_sync_token: page.next_sync_token.filter(|t| !t.is_empty()),
            })
        })
        .await
    }

    async fn get_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
    ) -> Result<RemoteEvent, DomainError> {
        let (calendar, event) = (segment(calendar_id.as_str()), segment(id.as_str()));
        self.run(Op::Get, calendar_id.as_str(), || async {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = self
                .hub
                .events()
                .get(&calendar, &event)
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            let (_, found) = self.settle(Op::Get, call.doit(), &capture).await?;
            remote(found)
        })
        .await
    }

    async fn insert_event(&self, event: &Event) -> Result<RemoteEvent, DomainError> {
        let calendar = segment(event.calendar_id.as_str());
        let body = mapping::to_google(event, false);
        self.run(Op::Insert, event.calendar_id.as_str(), || async {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = self
                .hub
                .events()
                .insert(body.clone(), &calendar)
                .send_updates(self.send_updates.as_str())
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            let (_, created) = self.settle(Op::Insert, call.doit(), &capture).await?;
            remote(created)
        })
        .await
    }

    /// A patch of the changed fields, conditional on `If-Match` when an
    /// etag is given: sent with the hub's own client and authenticator,
    /// since the generated builders cannot set request headers.
    async fn patch_event(&self, call: &PatchCall) -> Result<RemoteEvent, DomainError> {
        let url = self.event_url(&call.calendar_id, &call.event_id, true);
        // As the generated client does: absent fields are left out, never
        // sent as `null` (Google's patch would clear them).
        let body = serde_json::to_value(mapping::patch_body(&call.changes))
            .map(|mut value| {
                common::remove_json_null_values(&mut value);
                value.to_string().into_bytes()
            })
            .map_err(|error| {
                DomainError::provider(ProviderErrorKind::Permanent, format!("patch body: {error}"))
            })?;
        self.run(Op::Patch, call.calendar_id.as_str(), || async {
            let answer = self
                .conditional(
                    Op::Patch,
                    hyper::Method::PATCH,
                    &url,
                    Some(body.clone()),
                    call.if_match.as_ref(),
                )
                .await?;
            let event: api::Event = serde_json::from_slice(&answer).map_err(|error| {
                Failure::new(DomainError::provider(
                    ProviderErrorKind::Permanent,
                    format!("patch: unreadable response: {error}"),
                ))
            })?;
            remote(event)
        })
        .await
    }

    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
        if_match: Option<&Etag>,
    ) -> Result<(), DomainError> {
        let url = self.event_url(calendar_id, id, true);
        self.run(Op::Delete, calendar_id.as_str(), || async {
            self.conditional(Op::Delete, hyper::Method::DELETE, &url, None, if_match)
                .await
                .map(|_| ())
        })
        .await
    }

    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> Result<bool, DomainError> {
        let calendar = segment(calendar_id.as_str());
        let result = self
            .run(Op::CalendarGet, calendar_id.as_str(), || async {
                let capture = std::sync::Mutex::new(Capture::default());
                let mut delegate = Lent(&capture);
                let call = self
                    .hub
                    .calendars()
                    .get(&calendar)
                    .add_scope(Scope::Full)
                    .delegate(&mut delegate);
                self.settle(Op::CalendarGet, call.doit(), &capture)
                    .await
                    .map(|_| ())
            })
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn watch(
        &self,
        calendar_id: &CalendarId,
        request: &WatchRequest,
    ) -> Result<WatchGrant, DomainError> {
        let calendar = segment(calendar_id.as_str());
        let channel = api::Channel {
            id: Some(request.channel_id.to_string()),
            token: Some(request.token.clone()),
            type_: Some("web_hook".into()),
            address: Some(request.address.clone()),
            params: Some(
                [("ttl".to_owned(), request.ttl.as_secs().to_string())]
                    .into_iter()
                    .collect(),
            ),
            ..api::Channel::default()
        };
        self.run(Op::Watch, calendar_id.as_str(), || async {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = self
                .hub
                .events()
                .watch(channel.clone(), &calendar)
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            let (_, granted) = self.settle(Op::Watch, call.doit(), &capture).await?;
            let invalid = |what: &str| {
                Failure::new(DomainError::provider(
                    ProviderErrorKind::Permanent,
                    format!("watch: {what}"),
                ))
            };
            let resource_id = granted
                .resource_id
                .and_then(|id| ResourceId::new(id).ok())
                .ok_or_else(|| invalid("no resourceId in Google's answer"))?;
            // `expiration` is Unix milliseconds, sent as a JSON string.
            let expiration = granted
                .expiration
                .and_then(chrono::DateTime::from_timestamp_millis)
                .ok_or_else(|| invalid("no expiration in Google's answer"))?;
            Ok(WatchGrant {
                resource_id,
                expiration,
            })
        })
        .await
    }

    async fn stop_channel(
        &self,
        id: &ChannelId,
        resource_id: &ResourceId,
    ) -> Result<(), DomainError> {
        let channel = api::Channel {
            id: Some(id.to_string()),
            resource_id: Some(resource_id.to_string()),
            ..api::Channel::default()
        };
        self.run(Op::Stop, "channels", || async {
            let capture = std::sync::Mutex::new(Capture::default());
            let mut delegate = Lent(&capture);
            let call = self
                .hub
                .channels()
                .stop(channel.clone())
                .add_scope(Scope::Full)
                .delegate(&mut delegate);
            self.settle(Op::Stop, call.doit(), &capture)
                .await
                .map(|_| ())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_url("x", "https://www.googleapis.com/calendar/v3/").is_ok());
        assert!(check_url("x", "http://127.0.0.1:8085/calendar/v3/").is_ok());
        assert!(check_url("x", "http://localhost:1/").is_ok());
        assert!(check_url("x", "http://[::1]:1/").is_ok());
        assert!(check_url("x", "http://calendar.internal/").is_err());
        assert!(check_url("x", "http://10.0.0.1/").is_err());
        assert!(check_url("x", "ftp://127.0.0.1/").is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("user@example.com"), "user@example.com");
        assert_eq!(
            segment("en.german#holiday@group.v.calendar.google.com"),
            "en.german%23holiday@group.v.calendar.google.com"
        );
        assert_eq!(segment("a/b?c d%"), "a%2Fb%3Fc%20d%25");
    }

    #[test]
    fn service_account_keys_are_read_from_json_or_a_path() {
        let json = r#"{"type": "service_account"}"#;
        let Credentials::ServiceAccount { key_json, .. } =
            Credentials::service_account_from(json, None).unwrap()
        else {
            panic!("expected a service account");
        };
        assert_eq!(key_json, json);
        let path = std::env::temp_dir().join(format!("calsync-key-{}.json", std::process::id()));
        std::fs::write(&path, json).unwrap();
        let from_file =
            Credentials::service_account_from(path.to_str().unwrap(), Some("a@b.c".into()))
                .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            matches!(from_file, Credentials::ServiceAccount { ref key_json, ref subject }
            if key_json == json && subject.as_deref() == Some("a@b.c"))
        );
        assert!(Credentials::service_account_from("/no/such/key.json", None).is_err());
        assert!(
            !format!("{from_file:?}").contains("service_account"),
            "keys never printed"
        );
    }

    #[test]
    fn send_updates_parses_googles_values() {
        for value in ["all", "externalOnly", "none"] {
            assert_eq!(SendUpdates::parse(value).unwrap().as_str(), value);
        }
        assert!(SendUpdates::parse("everyone").is_err());
        assert_eq!(SendUpdates::default(), SendUpdates::None);
    }
}
