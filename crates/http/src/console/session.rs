//! The console's sessions, CSRF tokens and same-origin check.
//!
//! A session is a cookie `<expiry>.<nonce>.<mac>`: `mac` is HMAC-SHA256 of
//! `<expiry>.<nonce>` keyed by the session key of the API token that logged
//! in ([`crate::api_tokens`]). Any replica configured with that token
//! verifies it with no shared store; removing the token from
//! `CALSYNC_API_TOKENS` ends its sessions. Every form carries
//! `csrf` = HMAC(session key, `csrf:` + cookie value), and every POST must
//! come from the console's own origin.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use actix_web::http::header;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::api_tokens::{SessionKey, hmac_sha256};

/// The session cookie's name.
pub const COOKIE: &str = "calsync_console";
/// How long a session lasts.
pub const MAX_AGE_SECS: i64 = 12 * 60 * 60;
/// The path the cookie is scoped to: the API never sees it.
pub const COOKIE_PATH: &str = "/console";

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A verified session: the key that signed it and the cookie's value (what
/// its CSRF token is bound to).
#[derive(Clone)]
pub struct Session {
    key: SessionKey,
    cookie: String,
}

impl Session {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> String {
        csrf_token(&self.key, &self.cookie).unwrap_or_default()
    }

    /// Whether `presented` is this session's CSRF token (constant-time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        match (unhex32(presented), csrf_mac(&self.key, &self.cookie)) {
            (Some(presented), Some(expected)) => presented.ct_eq(&expected).into(),
            _ => false,
        }
    }
}

fn cookie_mac(key: &SessionKey, expiry: &str, nonce: &str) -> Option<[u8; 32]> {
    hmac_sha256(&key.0, &[expiry.as_bytes(), b".", nonce.as_bytes()])
}

fn csrf_mac(key: &SessionKey, cookie: &str) -> Option<[u8; 32]> {
    hmac_sha256(&key.0, &[b"csrf:", cookie.as_bytes()])
}

/// The CSRF token of the session `cookie` signed with `key`.
pub(crate) fn csrf_token(key: &SessionKey, cookie: &str) -> Option<String> {
    csrf_mac(key, cookie).map(|mac| hex(&mac))
}

/// A new session cookie value for `key`, valid [`MAX_AGE_SECS`] from `now`.
pub(crate) fn new_cookie(key: &SessionKey, now: i64) -> Option<String> {
    let expiry = now.saturating_add(MAX_AGE_SECS).to_string();
    // 122 random bits from the OS generator: two sessions never share a value.
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mac = cookie_mac(key, &expiry, &nonce)?;
    Some(format!("{expiry}.{nonce}.{}", hex(&mac)))
}

/// Verifies a cookie value against every configured key: the session if one
/// signed it and it has not expired at `now`. Every key is tried whatever
/// matches, so timing does not tell which token a session belongs to.
pub(crate) fn verify_cookie<'a>(
    keys: impl Iterator<Item = &'a SessionKey>,
    value: &str,
    now: i64,
) -> Option<Session> {
    let mut parts = value.split('.');
    let (expiry, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || expiry.is_empty()
        || expiry.len() > 12
        || !expiry.bytes().all(|b| b.is_ascii_digit())
        || nonce.len() != 32
        || !nonce.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let presented = unhex32(mac)?;
    let expires: i64 = expiry.parse().ok()?;
    // An expiry further out than a new session's cannot be one we made.
    if expires <= now || expires > now.saturating_add(MAX_AGE_SECS + 60) {
        return None;
    }
    let mut found = subtle::Choice::from(0);
    let mut chosen = [0u8; 32];
    for key in keys {
        let Some(expected) = cookie_mac(key, expiry, nonce) else {
            continue;
        };
        let matched = expected.ct_eq(&presented);
        found |= matched;
        for (byte, candidate) in chosen.iter_mut().zip(key.0) {
            subtle::ConditionallySelectable::conditional_assign(byte, &candidate, matched);
        }
    }
    bool::from(found).then(|| Session {
        key: SessionKey(chosen),
        cookie: value.to_owned(),
    })
}

/// The values of every cookie named [`COOKIE`] the request carries.
fn cookie_values(request: &HttpRequest) -> Vec<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .collect()
}

/// The request's session, if it carries a valid one.
pub fn current(request: &HttpRequest, state: &AppState) -> Option<Session> {
    let now = unix_now();
    cookie_values(request)
        .iter()
        .find_map(|value| verify_cookie(state.api_tokens.session_keys(), value, now))
}

/// Whether the request reached calsync over https: TLS terminated by
/// actix itself, or a trusted proxy (`CALSYNC_TRUSTED_PROXIES`) saying so
/// in `X-Forwarded-Proto`. Anyone else's forwarded headers are ignored.
pub fn is_https(request: &HttpRequest, state: &AppState) -> bool {
    if request.app_config().secure() {
        return true;
    }
    from_trusted_proxy(request, state)
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn from_trusted_proxy(request: &HttpRequest, state: &AppState) -> bool {
    request
        .peer_addr()
        .is_some_and(|peer| state.trusted_proxies.contains(peer.ip()))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Max-Age={MAX_AGE_SECS}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Max-Age=0; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A host and port, lower-cased, the port made explicit.
fn authority(text: &str, default_port: u16) -> Option<(String, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{host}]"), port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (text.to_owned(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Whether a POST may act: refused when the browser says the form came from
/// another site (`Sec-Fetch-Site: cross-site`) or its `Origin` is `null` or
/// names another host or port than the request's `Host` (a trusted proxy's
/// `X-Forwarded-Host` when it sends one). A request with neither header
/// (curl, old browsers) passes: the session cookie is SameSite=Strict and
/// the CSRF token is checked too.
pub fn same_origin(request: &HttpRequest, state: &AppState) -> bool {
    let headers = request.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetch_site.is_some_and(|site| site.trim().eq_ignore_ascii_case("cross-site")) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim();
    let (default_port, rest) = if let Some(rest) = origin.strip_prefix("https://") {
        (443, rest)
    } else if let Some(rest) = origin.strip_prefix("http://") {
        (80, rest)
    } else {
        // `null` (sandboxed frames, some redirects) or another scheme.
        return false;
    };
    if rest.contains(['/', '?', '#', '@']) {
        return false;
    }
    let forwarded_host = from_trusted_proxy(request, state)
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next());
    let host = forwarded_host
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
        })
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(ToString::to_string));
    match (
        authority(rest, default_port),
        host.and_then(|host| authority(&host, default_port)),
    ) {
        (Some(origin), Some(host)) => origin == host,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey([byte; 32])
    }

    #[test]
    fn a_cookie_verifies_with_its_own_key_until_it_expires() {
        let now = 1_800_000_000;
        let keys = [key(1), key(2)];
        let cookie = new_cookie(&keys[1], now).unwrap();
        let session = verify_cookie(keys.iter(), &cookie, now + 60).unwrap();
        assert_eq!(session.key.0, keys[1].0, "the key that signed it");
        assert!(verify_cookie(keys.iter(), &cookie, now + MAX_AGE_SECS - 1).is_some());
        assert!(verify_cookie(keys.iter(), &cookie, now + MAX_AGE_SECS).is_none());
        // Its token removed: no key signs it.
        assert!(verify_cookie([key(1)].iter(), &cookie, now).is_none());
        assert!(verify_cookie(std::iter::empty(), &cookie, now).is_none());
        // Two sessions never share a value.
        assert_ne!(new_cookie(&keys[1], now).unwrap(), cookie);
    }

    #[test]
    fn a_tampered_or_forged_cookie_is_refused() {
        let now = 1_800_000_000;
        let keys = [key(7)];
        let cookie = new_cookie(&keys[0], now).unwrap();
        let parts: Vec<&str> = cookie.split('.').collect();
        let later = (now + MAX_AGE_SECS + 30).to_string();
        let flipped = {
            let mut mac = parts[2].to_owned();
            let last = if mac.ends_with('0') { "1" } else { "0" };
            mac.replace_range(63.., last);
            mac
        };
        for bad in [
            format!("{later}.{}.{}", parts[1], parts[2]),
            format!("{}.{}.{}", parts[0], "0".repeat(32), parts[2]),
            format!("{}.{}.{flipped}", parts[0], parts[1]),
            format!("{}.{}", parts[0], parts[1]),
            format!("{cookie}.x"),
            format!("{}.{}.{}", parts[0], parts[1], &parts[2][..62]),
            "".into(),
            "..".into(),
            "-1.00000000000000000000000000000000.".to_owned() + &"0".repeat(64),
        ] {
            assert!(verify_cookie(keys.iter(), &bad, now).is_none(), "{bad}");
        }
        // A cookie signed by a key nobody configured, however well formed.
        let forged = new_cookie(&key(8), now).unwrap();
        assert!(verify_cookie(keys.iter(), &forged, now).is_none());
        // Far-future expiry, even correctly signed, is not one we issued.
        let far = new_cookie(&keys[0], now + 10 * MAX_AGE_SECS).unwrap();
        assert!(verify_cookie(keys.iter(), &far, now).is_none());
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session() {
        let now = 1_800_000_000;
        let keys = [key(3)];
        let first = verify_cookie(keys.iter(), &new_cookie(&keys[0], now).unwrap(), now).unwrap();
        let second = verify_cookie(keys.iter(), &new_cookie(&keys[0], now).unwrap(), now).unwrap();
        let token = first.csrf();
        assert_eq!(token.len(), 64);
        assert!(first.csrf_matches(&token));
        assert!(!second.csrf_matches(&token), "another session's token");
        assert!(!first.csrf_matches(""));
        assert!(!first.csrf_matches(&token[..63]));
        let other_first = if token.starts_with('0') { "1" } else { "0" };
        assert!(!first.csrf_matches(&format!("{other_first}{}", &token[1..])));
        assert_eq!(
            Some(token),
            hmac_sha256(&keys[0].0, &[b"csrf:", first.cookie.as_bytes()]).map(|m| hex(&m))
        );
    }

    #[test]
    fn cookies_carry_the_flags() {
        let set = set_cookie("v", false);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.contains("Path=/console") && set.contains("Max-Age=43200"));
        assert!(!set.contains("Secure"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn authorities_are_compared_with_explicit_ports() {
        assert_eq!(
            authority("Example.COM", 443),
            Some(("example.com".into(), 443))
        );
        assert_eq!(
            authority("localhost:8080", 80),
            Some(("localhost".into(), 8080))
        );
        assert_eq!(authority("[::1]:8080", 80), Some(("[::1]".into(), 8080)));
        assert_eq!(authority("[::1]", 443), Some(("[::1]".into(), 443)));
        assert_eq!(authority("host:x", 80), None);
        assert_eq!(authority("", 80), None);
    }
}
