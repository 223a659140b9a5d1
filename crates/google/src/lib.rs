//! calsync's Google Calendar adapter: the domain's [`CalendarProvider`] on
//! the generated google-calendar3 client, authenticated as a service account
//! with yup-oauth2. Every call is rate limited, given a timeout, classified
//! into the domain's error kinds, and retried by the resilience crate when
//! the kind says so (google-calendar3's own retry hook is never used, so no
//! request is retried twice over).

mod classify;
mod mapping;

mod config;
mod error;
mod hub_cache;
mod oauth_client;
mod provider;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use calsync_domain::grant::GrantId;
use calsync_domain::ids::{CalendarId, Etag, EventId};
use calsync_domain::ports::GrantTokenSource;
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use calsync_resilience::metrics::{GoogleCallLabels, GoogleOpLabels};
use calsync_resilience::{RateLimiter, RetryPolicy};
use google_calendar3::api::Scope;
use google_calendar3::{CalendarHub, common, hyper, hyper_rustls, hyper_util};

pub use mapping::{ENTITY_ID_KEY, ENTITY_TYPE_KEY};
pub use provider::MISSING_FROM_ANSWER;

use classify::{Capture, Failure, Op, classify};

pub use config::{Credentials, GOOGLE_API_BASE_URL, GoogleConfig, SendUpdates};
pub use error::Error;
pub use oauth_client::{
    DEFAULT_OAUTH_TIMEOUT, GOOGLE_AUTHORIZATION_ENDPOINT, GOOGLE_REVOCATION_ENDPOINT,
    GOOGLE_TOKEN_ENDPOINT, GOOGLE_USERINFO_ENDPOINT, GoogleOAuth, OAuthClientConfig,
};

use config::{check_url, segment};
use hub_cache::{HUB_CAP, HUB_IDLE, IdleCache};

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The Google Calendar adapter.
pub struct GoogleCalendar {
    principals: Principals,
    /// Calendars managed through connected accounts act as those.
    grants: Option<GrantPrincipals>,
    /// The Calendar API root, ending in `/` (for requests made by hand).
    base_url: String,
    limiter: RateLimiter,
    retry: RetryPolicy,
    timeout: Duration,
    send_updates: SendUpdates,
    logger: slog::Logger,
    metrics: Option<Arc<calsync_resilience::Metrics>>,
}

/// One principal's client: a hub with its own authenticator (and so its
/// own token cache), and the key its calls are rate limited under, since
/// Google counts the per-user quota per principal, not per calendar.
pub(crate) struct Principal {
    pub(crate) hub: CalendarHub<Connector>,
    /// Set after a 401 so the next token request bypasses the cache.
    force_refresh: Arc<AtomicBool>,
    /// The subject, the service account's email, or `access-token`: one
    /// per principal.
    pub(crate) key: String,
}

/// Whom each call acts as.
enum Principals {
    /// One fixed token (development, tests): one principal.
    Token(Arc<Principal>),
    /// A service account, acting as each calendar's subject (domain-wide
    /// delegation) or, without one, as the default subject or itself.
    ServiceAccount(Box<ServiceAccount>),
}

struct ServiceAccount {
    key: yup_oauth2::ServiceAccountKey,
    default_subject: Option<String>,
    client: common::Client<Connector>,
    connector: Connector,
    base_url: String,
    /// Who each managed calendar is read as; absent: everything as the default.
    calendars: Option<Arc<dyn calsync_domain::ports::CalendarStore>>,
    /// Calendar -> subject, re-read after [`SUBJECT_TTL`] so a subject
    /// changed on another replica takes effect here soon.
    subjects: std::sync::Mutex<HashMap<String, (Option<String>, std::time::Instant)>>,
    /// Each subject's hub (`None`: the service account itself), dropped
    /// after an hour unused (see [`hub_cache`]).
    hubs: tokio::sync::Mutex<IdleCache<Option<String>, Arc<Principal>>>,
}

/// Connected accounts as principals: a calendar managed through a grant
/// acts with that account's access token (kept and refreshed by the
/// domain's [`GrantTokenSource`]), rate limited under the grant's key, since
/// Google counts the per-user quota per account.
struct GrantPrincipals {
    calendars: Arc<dyn calsync_domain::ports::CalendarStore>,
    tokens: Arc<dyn GrantTokenSource>,
    client: common::Client<Connector>,
    base_url: String,
    /// Calendar -> its grant (`None`: not managed through one), re-read
    /// after [`SUBJECT_TTL`] as subjects are.
    of_calendar: std::sync::Mutex<HashMap<String, (Option<GrantId>, std::time::Instant)>>,
    hubs: tokio::sync::Mutex<IdleCache<GrantId, Arc<Principal>>>,
}

/// How long a calendar's subject is cached.
const SUBJECT_TTL: Duration = Duration::from_secs(30);

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
        let grant_client = client.clone();
        let calendars_for_grants = config.calendars.clone();
        let principals = match config.credentials {
            Credentials::AccessToken(token) => {
                let mut hub = CalendarHub::new(client, token);
                hub.base_url(base.clone());
                Principals::Token(Arc::new(Principal {
                    hub,
                    force_refresh: Arc::new(AtomicBool::new(false)),
                    key: "access-token".into(),
                }))
            }
            Credentials::ServiceAccount { key_json, subject } => {
                let key = yup_oauth2::parse_service_account_key(&key_json)
                    .map_err(|error| Error::Credentials(error.to_string()))?;
                check_url("service account token_uri", &key.token_uri)?;
                let account = ServiceAccount {
                    key,
                    default_subject: subject,
                    client,
                    connector,
                    base_url: base.clone(),
                    calendars: config.calendars,
                    subjects: std::sync::Mutex::new(HashMap::new()),
                    hubs: tokio::sync::Mutex::new(IdleCache::new(HUB_IDLE, HUB_CAP)),
                };
                // Build the default principal now: bad credentials fail at
                // start, not on the first call.
                let default = account.default_subject.clone();
                account
                    .hub_for(default)
                    .await
                    .map_err(|error| Error::Credentials(error.to_string()))?;
                Principals::ServiceAccount(Box::new(account))
            }
        };
        let grants = match (config.grant_tokens, calendars_for_grants) {
            (Some(tokens), Some(calendars)) => Some(GrantPrincipals {
                calendars,
                tokens,
                client: grant_client,
                base_url: base.clone(),
                of_calendar: std::sync::Mutex::new(HashMap::new()),
                hubs: tokio::sync::Mutex::new(IdleCache::new(HUB_IDLE, HUB_CAP)),
            }),
            _ => None,
        };
        Ok(Self {
            principals,
            grants,
            base_url: base,
            limiter: RateLimiter::new(config.rate_limits)?,
            retry: config.retry,
            timeout: config.request_timeout,
            send_updates: config.send_updates,
            logger: config.logger,
            metrics: config.metrics,
        })
    }

    /// The principal calls about `calendar` act as.
    pub(crate) async fn principal(&self, calendar: &str) -> Result<Arc<Principal>, DomainError> {
        if let Some(grants) = &self.grants
            && let Some(grant) = grants.grant_of(calendar).await?
        {
            return Ok(grants.hub_for(grant).await);
        }
        match &self.principals {
            Principals::Token(principal) => Ok(principal.clone()),
            Principals::ServiceAccount(account) => {
                let subject = account.subject_of(calendar).await?;
                account.hub_for(subject).await
            }
        }
    }

    /// Rate limits, retries and classifies one logical call. `attempt` makes
    /// one HTTP request with a fresh [`Capture`].
    pub(crate) async fn run<T, F, Fut>(
        &self,
        op: Op,
        calendar: &str,
        attempt: F,
    ) -> Result<T, DomainError>
    where
        F: FnMut(Arc<Principal>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let principal = self.principal(calendar).await?;
        self.run_as(op, calendar, principal, attempt).await
    }

    /// [`GoogleCalendar::run`] as a principal chosen by the caller (a call
    /// naming several calendars, all of that principal); `calendar` names
    /// them in logs.
    pub(crate) async fn run_as<T, F, Fut>(
        &self,
        op: Op,
        calendar: &str,
        principal: Arc<Principal>,
        mut attempt: F,
    ) -> Result<T, DomainError>
    where
        F: FnMut(Arc<Principal>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let rejected_once = AtomicBool::new(false);
        let result = calsync_resilience::retry(
            &self.retry,
            || {
                let attempt = attempt(principal.clone());
                let rejected_once = &rejected_once;
                let principal = &principal;
                async move {
                    self.limiter
                        .acquire(&principal.key, op.cost())
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
                            principal.force_refresh.store(true, Ordering::SeqCst);
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
    pub(crate) fn event_url(&self, calendar_id: &CalendarId, id: &EventId, write: bool) -> String {
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
    pub(crate) async fn conditional(
        &self,
        principal: &Principal,
        op: Op,
        method: hyper::Method,
        url: &str,
        body: Option<Vec<u8>>,
        if_match: Option<&Etag>,
    ) -> Result<Vec<u8>, Failure> {
        use hyper::header;
        let failed = |kind, message: String| Failure::new(DomainError::provider(kind, message));
        let scopes = [Scope::Full.as_ref()];
        let token = principal
            .hub
            .auth
            .get_token(&scopes)
            .await
            .map_err(|error| {
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
            let response = principal
                .hub
                .client
                .request(request)
                .await
                .map_err(|error| {
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
    pub(crate) async fn settle<T>(
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

impl GrantPrincipals {
    /// The grant `calendar` is managed through, if any.
    async fn grant_of(&self, calendar: &str) -> Result<Option<GrantId>, DomainError> {
        if let Some((grant, at)) = self
            .of_calendar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(calendar)
            && at.elapsed() < SUBJECT_TTL
        {
            return Ok(grant.clone());
        }
        let record = match CalendarId::new(calendar) {
            Ok(id) => self.calendars.get_calendar(&id).await?,
            Err(_) => None,
        };
        let grant = record.and_then(|c| c.grant);
        self.of_calendar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                calendar.to_owned(),
                (grant.clone(), std::time::Instant::now()),
            );
        Ok(grant)
    }

    /// The hub acting as the grant's account; its token comes from the
    /// token source on every request (held in memory there).
    pub(crate) async fn hub_for(&self, grant: GrantId) -> Arc<Principal> {
        let mut hubs = self.hubs.lock().await;
        if let Some(principal) = hubs.get(&grant, std::time::Instant::now()) {
            return principal;
        }
        let force_refresh = Arc::new(AtomicBool::new(false));
        let mut hub = CalendarHub::new(
            self.client.clone(),
            GrantToken {
                tokens: self.tokens.clone(),
                grant: grant.clone(),
                force: force_refresh.clone(),
            },
        );
        hub.base_url(self.base_url.clone());
        let principal = Arc::new(Principal {
            hub,
            force_refresh,
            key: format!("grant:{grant}"),
        });
        hubs.insert(grant, principal.clone(), std::time::Instant::now());
        principal
    }
}

/// What `common::GetToken::get_token` answers.
type TokenFuture<'a> = Pin<
    Box<
        dyn Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + 'a,
    >,
>;

/// A grant's access token, from the domain's token source; the domain's
/// error travels inside google-calendar3's `MissingToken` and is
/// recovered as it is by `classify`.
#[derive(Clone)]
struct GrantToken {
    tokens: Arc<dyn GrantTokenSource>,
    grant: GrantId,
    force: Arc<AtomicBool>,
}

impl common::GetToken for GrantToken {
    fn get_token<'a>(&'a self, _scopes: &'a [&str]) -> TokenFuture<'a> {
        Box::pin(async move {
            let refresh = self.force.swap(false, Ordering::SeqCst);
            self.tokens
                .access_token(&self.grant, refresh)
                .await
                .map(Some)
                .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
        })
    }
}

impl ServiceAccount {
    /// The subject for `calendar`: its managed record's, else the default.
    async fn subject_of(&self, calendar: &str) -> Result<Option<String>, DomainError> {
        let Some(calendars) = &self.calendars else {
            return Ok(self.default_subject.clone());
        };
        if let Some((subject, at)) = self
            .subjects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(calendar)
            && at.elapsed() < SUBJECT_TTL
        {
            return Ok(subject.clone());
        }
        let record = match CalendarId::new(calendar) {
            Ok(id) => calendars.get_calendar(&id).await?,
            Err(_) => None,
        };
        let subject = record
            .and_then(|c| c.subject.map(|s| s.as_str().to_owned()))
            .or_else(|| self.default_subject.clone());
        self.subjects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                calendar.to_owned(),
                (subject.clone(), std::time::Instant::now()),
            );
        Ok(subject)
    }

    /// The hub acting as `subject`, built on first use (and again after an
    /// idle hour dropped it): one authenticator (and token cache) per
    /// principal.
    async fn hub_for(&self, subject: Option<String>) -> Result<Arc<Principal>, DomainError> {
        let mut hubs = self.hubs.lock().await;
        if let Some(principal) = hubs.get(&subject, std::time::Instant::now()) {
            return Ok(principal);
        }
        let executor = hyper_util::rt::TokioExecutor::new();
        let token_client = hyper_util::client::legacy::Client::builder(executor)
            .build::<_, String>(self.connector.clone());
        let mut builder = yup_oauth2::ServiceAccountAuthenticator::with_client(
            self.key.clone(),
            yup_oauth2::CustomHyperClientBuilder::from(token_client),
        );
        if let Some(subject) = &subject {
            builder = builder.subject(subject.clone());
        }
        let authenticator = builder.build().await.map_err(|error| {
            DomainError::provider(
                ProviderErrorKind::ReconnectRequired,
                format!("service account credentials: {error}"),
            )
        })?;
        let force_refresh = Arc::new(AtomicBool::new(false));
        let mut hub = CalendarHub::new(
            self.client.clone(),
            Refreshing {
                inner: authenticator,
                force: force_refresh.clone(),
            },
        );
        hub.base_url(self.base_url.clone());
        let key = match &subject {
            Some(subject) => subject.clone(),
            None => self.key.client_email.clone(),
        };
        let principal = Arc::new(Principal {
            hub,
            force_refresh,
            key,
        });
        hubs.insert(subject, principal.clone(), std::time::Instant::now());
        Ok(principal)
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
    fn get_token<'a>(&'a self, scopes: &'a [&str]) -> TokenFuture<'a> {
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
pub(crate) struct Lent<'a>(&'a std::sync::Mutex<Capture>);

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
