//! Grants: a user's own Google account connected to calsync through
//! OAuth 2.0 (authorization code with PKCE, RFC 7636), its refresh token
//! sealed at rest. A grant is how calsync reaches calendars outside any
//! Workspace domain that delegated authority to its service account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::feed::subscription::SealedSecret;

/// How long a started authorization may be completed.
pub const STATE_LIFETIME: Duration = Duration::minutes(10);

/// The scopes calsync asks for: the calendars and their events (read and
/// write), and who the account is (`openid email`, so the answer names
/// the account's address).
pub const GOOGLE_SCOPES: [&str; 3] = [
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar",
];

/// A grant's id: `gr_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct GrantId(String);

impl GrantId {
    pub fn random() -> Self {
        Self(format!("gr_{}", uuid::Uuid::new_v4().simple()))
    }

    /// Anything but the id form is `NotFound` (it names no grant).
    pub fn parse(value: &str) -> Result<Self> {
        let hex = value
            .strip_prefix("gr_")
            .filter(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(Error::NotFound { what: "grant" })?;
        Ok(Self(format!("gr_{}", hex.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    Active,
    /// Google refused its refresh token (`invalid_grant`): the user
    /// revoked access, or it expired. Re-consent restores it.
    ReconnectRequired,
    /// Deleted through the API: revoked at Google.
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ReconnectRequired => "reconnect_required",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "active" => Ok(Self::Active),
            "reconnect_required" => Ok(Self::ReconnectRequired),
            "revoked" => Ok(Self::Revoked),
            _ => Err(Error::Storage(format!("unknown grant status {value:?}"))),
        }
    }
}

/// A connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    /// `google`.
    pub provider: String,
    /// The account's address, as Google's userinfo names it.
    pub email: String,
    /// Google's stable account id (`sub`): the same person reconnecting
    /// restores the same grant even if their address changed.
    pub account: String,
    pub scopes: Vec<String>,
    pub status: GrantStatus,
    /// The refresh token, sealed; never stored or logged in the clear.
    pub refresh_token: SealedSecret,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// An authorization started and not yet completed: what the callback
/// needs, found by its `state` (single use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub state: String,
    /// The PKCE verifier, sealed.
    pub verifier: SealedSecret,
    pub login_hint: Option<String>,
    pub return_to: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// 64 characters from RFC 7636's unreserved set (two random UUIDs, 244
/// random bits), for a `state` or a PKCE `code_verifier` (43 to 128 chars).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The S256 `code_challenge` of a verifier (RFC 7636 section 4.2):
/// BASE64URL(SHA256(ASCII(code_verifier))), unpadded.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What Google answers a code exchange or a refresh with.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    pub expires_in: Duration,
    /// Present on the first consent (and with `prompt=consent`).
    pub refresh_token: Option<String>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The answer to a claim on refreshing a grant's access token: at most one
/// holder (one replica) refreshes a grant at a time, so a refresh token
/// Google rotates is never raced by a second refresh with the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshClaim {
    /// The caller refreshes now; the grant as stored.
    Claimed(Grant),
    /// Another holder is refreshing, until `until` at the latest.
    Busy {
        until: DateTime<Utc>,
    },
    /// Not active: no refresh until the user connects again.
    Inactive(GrantStatus),
    Missing,
}

/// How a claimed refresh ended, recorded with the claim released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshResult {
    /// Google issued an access token; `rotated` is the new refresh token
    /// (sealed) when Google sent one.
    Refreshed {
        rotated: Option<SealedSecret>,
        scopes: Vec<String>,
    },
    /// Google refused the refresh token for good (`invalid_grant`): the
    /// grant becomes `reconnect_required`, and the feed says so.
    Refused { error: String },
    /// Google did not answer (or answered a transient error): recorded as
    /// the grant's `lastError`, its status unchanged.
    Failed { error: String },
}

/// One entry of an account's calendar list (`calendarList.list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCalendar {
    pub calendar_id: crate::ids::CalendarId,
    pub summary: String,
    /// Google's `accessRole`: `owner`, `writer`, `reader`, `freeBusyReader`.
    pub access_role: String,
    pub primary: bool,
    pub time_zone: Option<String>,
}

impl AccountCalendar {
    /// Whether calsync may write events there (and so manage it fully).
    pub fn writable(&self) -> bool {
        matches!(self.access_role.as_str(), "owner" | "writer")
    }
}

/// Who an access token belongs to (Google's userinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub account: String,
    pub email: String,
}

/// The authorization request the user's browser is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub state: String,
    pub code_challenge: String,
    pub login_hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_appendix_b_example() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_long_enough_for_a_verifier_and_unreserved() {
        let token = random_token();
        assert!((43..=128).contains(&token.len()));
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(token, random_token());
    }

    #[test]
    fn grant_ids_parse_only_their_form() {
        let id = GrantId::random();
        assert_eq!(GrantId::parse(id.as_str()).unwrap(), id);
        assert!(GrantId::parse("gr_xyz").is_err());
        assert!(GrantId::parse(&id.as_str()[3..]).is_err());
    }
}
