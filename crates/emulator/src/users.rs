//! Per-user OAuth grants: registered clients, authorization codes, grants
//! with their refresh and access tokens, and which calendars each Google
//! account may reach.
//!
//! Google's flow is "OAuth 2.0 for Web Server Applications"
//! (<https://developers.google.com/identity/protocols/oauth2/web-server>)
//! and, for loopback redirects and PKCE, "OAuth 2.0 for Mobile & Desktop
//! Apps" (<https://developers.google.com/identity/protocols/oauth2/native-app>).
//! A grant is what one code redemption creates: a refresh token (when
//! offline access was asked for and consent given) and the access tokens
//! issued from the code or the refresh token. Revoking any of them revokes
//! the grant (web-server guide, "Revoking a token": "If the token is an
//! access token and it has a corresponding refresh token, the refresh
//! token will also be revoked"; RFC 7009 section 2.1 lets a server revoke
//! the whole grant), and so does a second redemption of its code (RFC 6749
//! section 4.1.2: "the authorization server ... SHOULD revoke (when
//! possible) all tokens previously issued based on that authorization
//! code").

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

use crate::access::AccessRole;
use crate::calendar_list::CalendarLists;
use crate::error::ApiError;

/// An OAuth client registered with the emulator (the Cloud Console's
/// "OAuth client ID").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    /// Redirect URIs accepted as they are, besides the loopback ones
    /// (`http://127.0.0.1:PORT/...`, `http://localhost:PORT/...`,
    /// `http://[::1]:PORT/...`), which every client may use, as Google's
    /// desktop clients may (native-app guide, "Loopback IP address").
    pub redirect_uris: Vec<String>,
}

/// The client every emulator knows unless configured otherwise.
pub const DEFAULT_CLIENT_ID: &str = "calsync-emulator.apps.googleusercontent.com";
/// Its secret.
pub const DEFAULT_CLIENT_SECRET: &str = "calsync-emulator-secret";

impl Default for OAuthClient {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uris: Vec::new(),
        }
    }
}

/// A refresh token the emulator issued, for tests that look for it where
/// it must not be (database dumps, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRefreshToken {
    pub token: String,
    pub account: String,
    pub client_id: String,
    pub scope: String,
    pub revoked: bool,
}

/// How long an authorization code may be redeemed: the web-server guide
/// gives no figure; ten minutes is RFC 6749 section 4.1.2's maximum.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub account: String,
    pub scope: String,
    /// `(code_challenge, method)`, method `S256` or `plain`.
    pub challenge: Option<(String, String)>,
    /// Whether a refresh token comes with the redemption.
    pub refresh: bool,
    pub issued: Instant,
    /// The grant its redemption created.
    pub grant: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub account: String,
    pub client_id: String,
    pub scope: String,
    pub refresh_token: Option<String>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub grant: usize,
    pub expires: Instant,
}

/// A user's calendar: who owns it, what it is called.
#[derive(Debug, Clone)]
pub(crate) struct OwnedCalendar {
    pub owner: String,
    pub summary: String,
    pub time_zone: String,
}

#[derive(Debug)]
pub(crate) struct Users {
    pub clients: HashMap<String, OAuthClient>,
    pub codes: HashMap<String, Code>,
    pub grants: Vec<Grant>,
    /// Refresh token to grant.
    pub refresh: HashMap<String, usize>,
    pub access: HashMap<String, AccessToken>,
    /// (account, client) pairs that consented once: Google sends a refresh
    /// token only the first time unless `prompt=consent`.
    pub consented: HashSet<(String, String)>,
    /// Authorizations to deny, oldest first; `None` denies any account's.
    pub deny: Vec<Option<String>>,
    pub access_lifetime: Duration,
    pub default_account: Option<String>,
    pub require_s256: bool,
    /// Calendars created for accounts (besides each account's primary).
    pub calendars: HashMap<String, OwnedCalendar>,
    /// Calendars shared with accounts: calendar, then account, then role.
    pub shares: HashMap<String, HashMap<String, AccessRole>>,
    pub lists: CalendarLists,
}

/// What a bearer token is to the user-grant side.
pub(crate) enum Bearer {
    /// Not a user access token.
    Unknown,
    /// Expired, or its grant revoked.
    Dead,
    /// A live token of this account.
    Account(String),
}

impl Users {
    pub fn new(
        clients: &[OAuthClient],
        access_lifetime: Duration,
        default_account: Option<String>,
        require_s256: bool,
    ) -> Self {
        Self {
            clients: clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            consented: HashSet::new(),
            deny: Vec::new(),
            access_lifetime,
            default_account,
            require_s256,
            calendars: HashMap::new(),
            shares: HashMap::new(),
            lists: CalendarLists::default(),
        }
    }

    /// Whether `uri` may receive `client_id`'s codes: registered exactly,
    /// or a plain-HTTP loopback address with a port.
    pub fn redirect_allowed(&self, client_id: &str, uri: &str) -> bool {
        let Some(client) = self.clients.get(client_id) else {
            return false;
        };
        client.redirect_uris.iter().any(|u| u == uri) || loopback(uri)
    }

    /// Takes the first pending denial that covers `account`.
    pub fn take_denial(&mut self, account: &str) -> bool {
        match self
            .deny
            .iter()
            .position(|d| d.as_deref().is_none_or(|a| a == account))
        {
            Some(at) => {
                self.deny.remove(at);
                true
            }
            None => false,
        }
    }

    /// The account's primary calendar in its list, once.
    pub fn ensure_account(&mut self, account: &str) {
        if !self.lists.has(account, account) {
            self.lists
                .upsert(account, account, account, "UTC", AccessRole::Owner, true);
        }
    }

    pub fn new_access_token(&mut self, grant: usize, now: Instant) -> String {
        let token = format!("ya29.emu-{}", uuid::Uuid::new_v4().simple());
        self.access.insert(
            token.clone(),
            AccessToken {
                grant,
                expires: now + self.access_lifetime,
            },
        );
        token
    }

    pub fn bearer(&self, token: &str, now: Instant) -> Bearer {
        let Some(access) = self.access.get(token) else {
            return Bearer::Unknown;
        };
        match self.grants.get(access.grant) {
            Some(grant) if !grant.revoked && now < access.expires => {
                Bearer::Account(grant.account.clone())
            }
            _ => Bearer::Dead,
        }
    }

    /// The grant of a live refresh or access token.
    fn live_grant(&self, token: &str) -> Option<usize> {
        let grant = self
            .refresh
            .get(token)
            .copied()
            .or_else(|| self.access.get(token).map(|a| a.grant))?;
        self.grants.get(grant).filter(|g| !g.revoked).map(|_| grant)
    }

    /// `POST /revoke`: a live refresh or access token revokes the
    /// account's whole authorization of the client, every token of every
    /// consent, as removing the app in the account's settings does. Google
    /// binds an authorization to the account and the client, not to one
    /// token ("Revoking a token", web-server guide:
    /// https://developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke),
    /// so a client that revokes an old token of an account it reconnected
    /// loses the new one too.
    pub fn revoke_token(&mut self, token: &str) -> bool {
        match self.live_grant(token) {
            Some(grant) => {
                let (account, client) = match self.grants.get(grant) {
                    Some(g) => (g.account.clone(), g.client_id.clone()),
                    None => return false,
                };
                self.revoke_account(&account, Some(&client));
                true
            }
            None => false,
        }
    }

    pub fn revoke_grant(&mut self, grant: usize) {
        if let Some(grant) = self.grants.get_mut(grant) {
            grant.revoked = true;
        }
    }

    /// The user removes the app's access in their Google Account: every
    /// grant of the account (to `client_id`, or to every client) dies, and
    /// the next authorization is a first consent again. Returns how many
    /// live grants were revoked.
    pub fn revoke_account(&mut self, account: &str, client_id: Option<&str>) -> usize {
        let mut revoked = 0;
        for grant in &mut self.grants {
            if grant.account == account
                && client_id.is_none_or(|c| c == grant.client_id)
                && !grant.revoked
            {
                grant.revoked = true;
                revoked += 1;
            }
        }
        self.consented
            .retain(|(a, c)| !(a == account && client_id.is_none_or(|id| id == c)));
        revoked
    }

    pub fn refresh_tokens(&self) -> Vec<IssuedRefreshToken> {
        self.grants
            .iter()
            .filter_map(|g| {
                g.refresh_token.as_ref().map(|token| IssuedRefreshToken {
                    token: token.clone(),
                    account: g.account.clone(),
                    client_id: g.client_id.clone(),
                    scope: g.scope.clone(),
                    revoked: g.revoked,
                })
            })
            .collect()
    }

    /// The account's role on a calendar, `None` when it cannot see it:
    /// owner of its primary (id = its email) and of calendars created for
    /// it, the shared role on calendars shared with it.
    pub fn role(&self, account: &str, calendar_id: &str) -> Option<AccessRole> {
        if calendar_id == account
            || self
                .calendars
                .get(calendar_id)
                .is_some_and(|c| c.owner == account)
        {
            return Some(AccessRole::Owner);
        }
        self.shares
            .get(calendar_id)
            .and_then(|s| s.get(account))
            .copied()
    }

    pub fn summary(&self, calendar_id: &str) -> (String, String) {
        self.calendars.get(calendar_id).map_or_else(
            || (calendar_id.to_owned(), "UTC".to_owned()),
            |c| (c.summary.clone(), c.time_zone.clone()),
        )
    }
}

/// `http://127.0.0.1:PORT/...`, `http://localhost:PORT/...` or
/// `http://[::1]:PORT/...`, with a port and any path.
fn loopback(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((host, port)) = authority.rsplit_once(':') else {
        return false;
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 7636 section 4.1: `code_verifier = 43*128unreserved`.
pub fn verifier_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 section 4.6: S256 compares `BASE64URL(SHA256(verifier))`
/// with the challenge, `plain` compares them as they are.
pub fn verifier_matches(verifier: &str, challenge: &str, method: &str) -> bool {
    if method == "S256" {
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes())) == challenge
    } else {
        verifier == challenge
    }
}

/// A stable `sub` for an account: Google's are 21-digit numbers that never
/// change for the account; here one derived from the address.
pub fn subject(account: &str) -> String {
    let digest = sha2::Sha256::digest(account.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    format!("1{:020}", u64::from_be_bytes(bytes))
}

/// An `id_token` (OpenID Connect ID token) signed HS256 with the client's
/// secret: the emulator does not hold Google's keys, so clients must not
/// verify it against Google's certificates in tests (use
/// `/oauth2/v3/userinfo`, or check it with the client secret).
pub fn id_token(account: &str, client: &OAuthClient, now: i64, lifetime: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": "https://accounts.google.com",
        "azp": client.client_id,
        "aud": client.client_id,
        "sub": subject(account),
        "email": account,
        "email_verified": true,
        "iat": now,
        "exp": now + lifetime,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    let signed = format!("{header}.{claims}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, client.client_secret.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, signed.as_bytes()).as_ref());
    format!("{signed}.{signature}")
}

/// An OAuth error (RFC 6749 section 5.2 shape once answered).
pub fn oauth_error(status: u16, error: &str, description: &str) -> ApiError {
    ApiError::new(status, error, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_need_a_port_and_plain_http() {
        assert!(loopback("http://127.0.0.1:8080/callback"));
        assert!(loopback("http://localhost:1/"));
        assert!(loopback("http://[::1]:9000"));
        assert!(!loopback("http://127.0.0.1/callback"));
        assert!(!loopback("https://127.0.0.1:80/"));
        assert!(!loopback("http://127.0.0.1.evil.example:80/"));
        assert!(!loopback("http://evil.example/?x=http://127.0.0.1:1/"));
    }

    #[test]
    fn rfc_7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_well_formed(verifier));
        assert!(verifier_matches(verifier, challenge, "S256"));
        assert!(!verifier_matches(verifier, verifier, "S256"));
        assert!(verifier_matches(verifier, verifier, "plain"));
        assert!(!verifier_well_formed("short"));
    }

    #[test]
    fn subjects_are_stable_and_distinct() {
        assert_eq!(subject("ada@example.com"), subject("ada@example.com"));
        assert_ne!(subject("ada@example.com"), subject("bob@example.com"));
        assert_eq!(subject("ada@example.com").len(), 21);
    }
}
