//! Google's OAuth 2.0 server for user grants: the domain's
//! [`OAuthProvider`] (authorization code with PKCE, refresh, revocation,
//! userinfo), as plain HTTP requests on the adapter's hyper client.
//!
//! Sources: "Using OAuth 2.0 for Web Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/web-server>:
//! the authorization parameters, the code exchange and refresh at the token
//! endpoint, "Revoking a token"), Google's OpenID Connect reference
//! (<https://developers.google.com/identity/openid-connect/reference>: the
//! discovery document at
//! `https://accounts.google.com/.well-known/openid-configuration` names the
//! endpoints, `userinfo_endpoint` among them), RFC 6749 section 5.2 (token
//! error answers) and RFC 7009 (revocation).
//!
//! No token, code, verifier or client secret ever enters an error message:
//! messages quote only the status and Google's `error` and
//! `error_description`.

use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::grant::{AccountInfo, AuthorizationRequest, GOOGLE_SCOPES, TokenGrant};
use calsync_domain::ports::OAuthProvider;
use calsync_domain::{Error as DomainError, ProviderErrorKind, Result as DomainResult};
use google_calendar3::{common, hyper, hyper_rustls, hyper_util};
use serde_json::Value;

use crate::Connector;
use crate::config::check_url;
use crate::error::Error;

/// Google's authorization endpoint (web-server guide, and the discovery
/// document's `authorization_endpoint`).
pub const GOOGLE_AUTHORIZATION_ENDPOINT: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint (web-server guide, "Exchange authorization code
/// for refresh and access tokens").
pub const GOOGLE_TOKEN_ENDPOINT: &str = "https://oauth2.googleapis.com/token";
/// Google's revocation endpoint (web-server guide, "Revoking a token").
pub const GOOGLE_REVOCATION_ENDPOINT: &str = "https://oauth2.googleapis.com/revoke";
/// Google's OpenID Connect userinfo endpoint, as the discovery document's
/// `userinfo_endpoint` names it (the OpenID Connect reference says to read
/// it from there rather than hard-code it: hence it is configurable).
pub const GOOGLE_USERINFO_ENDPOINT: &str = "https://openidconnect.googleapis.com/v1/userinfo";

/// How long one request to Google's OAuth server may take by default.
pub const DEFAULT_OAUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `error_description` quoted in an error message.
const DESCRIPTION_CAP: usize = 200;

/// An OAuth client registered with Google (or with the emulator).
#[derive(Clone)]
pub struct OAuthClientConfig {
    pub client_id: String,
    /// Never logged nor shown (`Debug` redacts it).
    pub client_secret: String,
    /// Where Google sends the browser back; must be registered for the
    /// client, and is sent again with the code exchange (RFC 6749 4.1.3).
    pub redirect_uri: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub userinfo_endpoint: String,
    pub scopes: Vec<String>,
    /// Per HTTP request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("token_endpoint", &self.token_endpoint)
            .field("revocation_endpoint", &self.revocation_endpoint)
            .field("userinfo_endpoint", &self.userinfo_endpoint)
            .field("scopes", &self.scopes)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl OAuthClientConfig {
    /// A client of Google's own OAuth server, asking for [`GOOGLE_SCOPES`].
    pub fn google(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uri: redirect_uri.into(),
            authorization_endpoint: GOOGLE_AUTHORIZATION_ENDPOINT.to_owned(),
            token_endpoint: GOOGLE_TOKEN_ENDPOINT.to_owned(),
            revocation_endpoint: GOOGLE_REVOCATION_ENDPOINT.to_owned(),
            userinfo_endpoint: GOOGLE_USERINFO_ENDPOINT.to_owned(),
            scopes: GOOGLE_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            request_timeout: DEFAULT_OAUTH_TIMEOUT,
        }
    }

    /// A client of the calsync emulator at `base_url` (`http://127.0.0.1:PORT`),
    /// which serves Google's paths from one root.
    pub fn emulator(
        base_url: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        let base = base_url.trim_end_matches('/');
        Self {
            authorization_endpoint: format!("{base}/o/oauth2/v2/auth"),
            token_endpoint: format!("{base}/token"),
            revocation_endpoint: format!("{base}/revoke"),
            userinfo_endpoint: format!("{base}/oauth2/v3/userinfo"),
            ..Self::google(client_id, client_secret, redirect_uri)
        }
    }
}

/// Google's OAuth 2.0 server for user grants.
pub struct GoogleOAuth {
    config: OAuthClientConfig,
    /// The authorization endpoint, parsed once (its query is appended to).
    authorization: url::Url,
    client: common::Client<Connector>,
}

impl std::fmt::Debug for GoogleOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleOAuth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Which request failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Exchange,
    Refresh,
    Revoke,
    Userinfo,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Self::Exchange => "oauth code exchange",
            Self::Refresh => "oauth refresh",
            Self::Revoke => "oauth revoke",
            Self::Userinfo => "oauth userinfo",
        }
    }
}

/// One answer: status, `Retry-After`, body.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: hyper::body::Bytes,
}

impl GoogleOAuth {
    /// Checks the configuration (endpoints `https://`, or `http://` on
    /// loopback only; a client id and secret; some scopes) and builds the
    /// HTTP client (bundled web PKI roots, as the Calendar client's).
    pub fn new(config: OAuthClientConfig) -> Result<Self, Error> {
        if config.client_id.trim().is_empty() {
            return Err(Error::Config("the OAuth client id is empty".into()));
        }
        if config.client_secret.is_empty() {
            return Err(Error::Config("the OAuth client secret is empty".into()));
        }
        if config.scopes.is_empty() || config.scopes.iter().any(|s| s.trim().is_empty()) {
            return Err(Error::Config(
                "the OAuth scopes must be non-empty words".into(),
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(Error::Config("the OAuth request timeout is zero".into()));
        }
        url::Url::parse(&config.redirect_uri).map_err(|error| {
            Error::Config(format!(
                "OAuth redirect URI '{}': {error}",
                config.redirect_uri
            ))
        })?;
        let authorization = check_url(
            "OAuth authorization endpoint",
            &config.authorization_endpoint,
        )?;
        check_url("OAuth token endpoint", &config.token_endpoint)?;
        check_url("OAuth revocation endpoint", &config.revocation_endpoint)?;
        check_url("OAuth userinfo endpoint", &config.userinfo_endpoint)?;
        // Several crates may try to pick a rustls provider; calsync uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector: Connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self {
            config,
            authorization,
            client,
        })
    }

    /// One request under the timeout; connection failures and timeouts are
    /// transient. `bearer` goes in `Authorization`, `form` is the body.
    async fn send(
        &self,
        call: Call,
        method: hyper::Method,
        url: &str,
        bearer: Option<&str>,
        form: Option<String>,
    ) -> DomainResult<Answer> {
        use hyper::header;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(header::USER_AGENT, "calsync")
            .header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        // The error names the call only: a header value may hold the token.
        let request = request.body(common::to_body(form)).map_err(|_| {
            DomainError::provider(
                ProviderErrorKind::Permanent,
                format!("{}: the request could not be built", call.name()),
            )
        })?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                DomainError::provider(
                    ProviderErrorKind::Transient,
                    format!("{}: connection failed: {error}", call.name()),
                )
            })?;
            let (parts, body) = response.into_parts();
            let body = common::to_bytes(body).await.ok_or_else(|| {
                DomainError::provider(
                    ProviderErrorKind::Transient,
                    format!("{}: the connection closed mid-answer", call.name()),
                )
            })?;
            let retry_after = parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| calsync_resilience::parse_retry_after(value, chrono::Utc::now()));
            Ok(Answer {
                status: parts.status.as_u16(),
                retry_after,
                body,
            })
        };
        match tokio::time::timeout(self.config.request_timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(DomainError::provider(
                ProviderErrorKind::Transient,
                format!(
                    "{}: no answer within {:?}",
                    call.name(),
                    self.config.request_timeout
                ),
            )),
        }
    }

    /// A `grant_type` request at the token endpoint, the client's
    /// credentials in the body (`client_secret_post`).
    async fn token_request(&self, call: Call, params: &[(&str, &str)]) -> DomainResult<TokenGrant> {
        let mut fields = vec![
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ];
        fields.extend_from_slice(params);
        let answer = self
            .send(
                call,
                hyper::Method::POST,
                &self.config.token_endpoint,
                None,
                Some(form(&fields)),
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(failure(call, &answer));
        }
        self.token_grant(call, &answer.body)
    }

    /// Reads `{access_token, expires_in, refresh_token?, scope, token_type}`.
    fn token_grant(&self, call: Call, body: &[u8]) -> DomainResult<TokenGrant> {
        let unreadable = |what: &str| {
            DomainError::provider(
                ProviderErrorKind::Permanent,
                format!("{}: unreadable token answer: {what}", call.name()),
            )
        };
        let json: Value = serde_json::from_slice(body).map_err(|_| unreadable("not JSON"))?;
        let access_token = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unreadable("no access_token"))?;
        if let Some(kind) = json.get("token_type").and_then(Value::as_str)
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(unreadable("token_type is not Bearer"));
        }
        let expires_in = json
            .get("expires_in")
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .filter(|seconds| *seconds > 0)
            .ok_or_else(|| unreadable("no expires_in"))?;
        let refresh_token = json
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        // RFC 6749 section 5.1: `scope` may be left out when it is what was
        // asked for.
        let scopes = match json.get("scope").and_then(Value::as_str) {
            Some(scope) => scope.split_whitespace().map(str::to_owned).collect(),
            None => self.config.scopes.clone(),
        };
        Ok(TokenGrant {
            access_token: access_token.to_owned(),
            expires_in: chrono::Duration::seconds(expires_in),
            refresh_token,
            scopes,
        })
    }
}

/// An `application/x-www-form-urlencoded` body.
fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Google's OAuth `error` and `error_description` (RFC 6749 section 5.2),
/// when the body is such an answer.
fn oauth_error(body: &[u8]) -> Option<(String, Option<String>)> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error")?;
    // An API-style body (`{"error": {"code", "message", "errors"}}`), as
    // userinfo answers: its first reason, and its message.
    if let Some(object) = error.as_object() {
        let reason = object
            .get("status")
            .or_else(|| error.pointer("/errors/0/reason"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let message = object
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Some((reason, message));
    }
    let description = json
        .get("error_description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((error.as_str()?.to_owned(), description))
}

/// The kind of a failed answer. `invalid_grant` (a code used, expired or
/// not matching its verifier; a refresh token revoked or expired) needs a
/// person to consent again, as does `unauthorized_client` on a refresh (the
/// token belongs to another client, so only a new consent for this one
/// helps). Rate limits and server failures pass; anything else
/// (`invalid_client`, `redirect_uri_mismatch`, `invalid_request`,
/// `invalid_scope`) is configuration that retrying cannot fix.
fn kind_for(call: Call, status: u16, error: Option<&str>) -> ProviderErrorKind {
    use ProviderErrorKind as K;
    match (status, error) {
        (_, Some("invalid_grant")) => K::ReconnectRequired,
        (_, Some("unauthorized_client")) if call == Call::Refresh => K::ReconnectRequired,
        (429, _) => K::RateLimited,
        (408 | 500..=599, _) => K::Transient,
        // A refused access token at userinfo: revoked (or expired, but
        // account() is asked right after the token was issued).
        (401, _) if call == Call::Userinfo => K::ReconnectRequired,
        _ => K::Permanent,
    }
}

/// The domain error for a non-2xx answer. The message quotes the status
/// and Google's `error`/`error_description` only, never the body itself.
fn failure(call: Call, answer: &Answer) -> DomainError {
    let parsed = oauth_error(&answer.body);
    let error = parsed.as_ref().map(|(error, _)| error.as_str());
    let mut message = format!("{}: HTTP {}", call.name(), answer.status);
    if let Some((error, description)) = &parsed {
        message.push_str(&format!(" {error}"));
        if let Some(description) = description.as_deref().filter(|d| !d.is_empty()) {
            let capped: String = description.chars().take(DESCRIPTION_CAP).collect();
            message.push_str(&format!(": {capped}"));
        }
    }
    DomainError::Provider {
        kind: kind_for(call, answer.status, error),
        message,
        retry_after: answer.retry_after,
    }
}

#[async_trait]
impl OAuthProvider for GoogleOAuth {
    /// The consent URL: code flow with an S256 PKCE challenge, offline
    /// access with `prompt=consent` (without it a returning user's consent
    /// brings no refresh token), and the scopes granted earlier kept.
    fn authorization_url(&self, request: &AuthorizationRequest) -> String {
        let mut url = self.authorization.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &self.config.redirect_uri)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", &request.state)
                .append_pair("code_challenge", &request.code_challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent")
                .append_pair("include_granted_scopes", "true");
            if let Some(hint) = request.login_hint.as_deref().filter(|h| !h.is_empty()) {
                query.append_pair("login_hint", hint);
            }
        }
        url.into()
    }

    /// Redeems a code. A code that is unknown, used, expired or does not
    /// match `verifier` is `invalid_grant`, so
    /// [`ProviderErrorKind::ReconnectRequired`]: only a new authorization helps.
    async fn exchange_code(&self, code: &str, verifier: &str) -> DomainResult<TokenGrant> {
        self.token_request(
            Call::Exchange,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", &self.config.redirect_uri),
            ],
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> DomainResult<TokenGrant> {
        self.token_request(
            Call::Refresh,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Revokes the token (in the body, not the URL, so it stays out of
    /// access logs) and with it the whole grant. Google answering 400
    /// `invalid_token` (already revoked, expired, or never its own) is
    /// `Ok` as well: a token Google no longer honours is the goal state.
    async fn revoke(&self, token: &str) -> DomainResult<()> {
        let answer = self
            .send(
                Call::Revoke,
                hyper::Method::POST,
                &self.config.revocation_endpoint,
                None,
                Some(form(&[("token", token)])),
            )
            .await?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        if answer.status == 400
            && oauth_error(&answer.body).is_some_and(|(error, _)| error == "invalid_token")
        {
            return Ok(());
        }
        Err(failure(Call::Revoke, &answer))
    }

    /// The account's stable id (`sub`) and address (`email`, present with
    /// the `email` scope).
    async fn account(&self, access_token: &str) -> DomainResult<AccountInfo> {
        let answer = self
            .send(
                Call::Userinfo,
                hyper::Method::GET,
                &self.config.userinfo_endpoint,
                Some(access_token),
                None,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(failure(Call::Userinfo, &answer));
        }
        let unreadable = |what: &str| {
            DomainError::provider(
                ProviderErrorKind::Permanent,
                format!("{}: unreadable answer: {what}", Call::Userinfo.name()),
            )
        };
        let json: Value =
            serde_json::from_slice(&answer.body).map_err(|_| unreadable("not JSON"))?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| unreadable(&format!("no {name}")))
        };
        Ok(AccountInfo {
            account: field("sub")?,
            email: field("email")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProviderErrorKind as K;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            retry_after: None,
            body: hyper::body::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn token_errors_map_to_kinds() {
        let grant =
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
        assert_eq!(
            failure(Call::Refresh, &answer(400, grant)).provider_kind(),
            Some(K::ReconnectRequired)
        );
        assert_eq!(
            failure(Call::Exchange, &answer(400, grant)).provider_kind(),
            Some(K::ReconnectRequired)
        );
        let client = r#"{"error":"invalid_client","error_description":"Unauthorized"}"#;
        assert_eq!(
            failure(Call::Exchange, &answer(401, client)).provider_kind(),
            Some(K::Permanent)
        );
        let mismatch = r#"{"error":"redirect_uri_mismatch","error_description":"Bad Request"}"#;
        assert_eq!(
            failure(Call::Exchange, &answer(400, mismatch)).provider_kind(),
            Some(K::Permanent)
        );
        let other_client = r#"{"error":"unauthorized_client"}"#;
        assert_eq!(
            failure(Call::Refresh, &answer(401, other_client)).provider_kind(),
            Some(K::ReconnectRequired)
        );
        assert_eq!(
            failure(Call::Exchange, &answer(401, other_client)).provider_kind(),
            Some(K::Permanent)
        );
        assert_eq!(
            failure(Call::Refresh, &answer(429, "")).provider_kind(),
            Some(K::RateLimited)
        );
        assert_eq!(
            failure(Call::Refresh, &answer(503, "<html>")).provider_kind(),
            Some(K::Transient)
        );
        assert_eq!(
            failure(Call::Revoke, &answer(400, r#"{"error":"invalid_request"}"#)).provider_kind(),
            Some(K::Permanent)
        );
        let api_style = r#"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#;
        let error = failure(Call::Userinfo, &answer(401, api_style));
        assert_eq!(error.provider_kind(), Some(K::ReconnectRequired));
        assert!(
            error.to_string().contains("authError: Invalid Credentials"),
            "{error}"
        );
    }

    #[test]
    fn messages_quote_only_the_error_fields() {
        let body = format!(
            r#"{{"error":"invalid_request","error_description":"{}","refresh_token":"1//secret"}}"#,
            "x".repeat(1000)
        );
        let message = failure(Call::Refresh, &answer(400, &body)).to_string();
        assert!(!message.contains("1//secret"), "{message}");
        assert!(message.contains("invalid_request"), "{message}");
        assert!(message.len() < 400, "{message}");
        let message = failure(Call::Refresh, &answer(502, "token=1//secret")).to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
