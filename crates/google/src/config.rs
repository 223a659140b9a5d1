//! How the adapter is configured: credentials, `sendUpdates`, the API base
//! URL and the resilience settings.

use std::sync::Arc;
use std::time::Duration;

use calsync_resilience::{RateLimitConfig, RetryPolicy};

use crate::error::Error;

/// Google's Calendar API root; the trailing slash is required by the client.
pub const GOOGLE_API_BASE_URL: &str = "https://www.googleapis.com/calendar/v3/";

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

#[derive(Clone)]
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
    /// The managed calendars: each is read and written as its subject
    /// (service-account credentials only). Without it, every call acts as
    /// the credentials' subject.
    pub calendars: Option<Arc<dyn calsync_domain::ports::CalendarStore>>,
    /// Access tokens of connected accounts: a calendar managed through a
    /// grant is read and written as that account. Needs `calendars`.
    pub grant_tokens: Option<Arc<dyn calsync_domain::ports::GrantTokenSource>>,
}

impl std::fmt::Debug for GoogleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleConfig")
            .field("api_base_url", &self.api_base_url)
            .field("credentials", &self.credentials)
            .field("rate_limits", &self.rate_limits)
            .field("send_updates", &self.send_updates)
            .field("calendars", &self.calendars.is_some())
            .field("grant_tokens", &self.grant_tokens.is_some())
            .finish_non_exhaustive()
    }
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
            calendars: None,
            grant_tokens: None,
        }
    }
}

/// Refuses plain HTTP except to this machine: credentials and calendars
/// must not cross a network in the clear.
pub(crate) fn check_url(what: &str, value: &str) -> Result<url::Url, Error> {
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
pub(crate) fn segment(value: &str) -> String {
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
        // Occurrence ids of a series pass unchanged.
        assert_eq!(
            segment("5eri3s0000_20260304T080000Z"),
            "5eri3s0000_20260304T080000Z"
        );
        assert_eq!(segment("a11day0000_20260309"), "a11day0000_20260309");
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
