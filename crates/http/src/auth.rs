//! Bearer API tokens for the management API.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{AppState, HttpError};

/// The accepted API tokens, kept only as SHA-256 digests so comparisons are
/// constant-time over fixed-size values and the tokens never sit in memory
/// in the clear longer than parsing takes.
#[derive(Clone)]
pub struct ApiTokens(Vec<[u8; 32]>);

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokens({} configured)", self.0.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl ApiTokens {
    /// Accepts no token: every management request is refused.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses `CALSYNC_API_TOKENS`: comma-separated, surrounding spaces
    /// ignored. Tokens shorter than 16 characters are refused.
    pub fn parse(list: &str) -> Result<Self, calsync_domain::Error> {
        let tokens: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tokens.is_empty() {
            return Err(calsync_domain::Error::invalid(
                "CALSYNC_API_TOKENS",
                "must name at least one token",
            ));
        }
        if tokens.iter().any(|t| t.len() < 16) {
            return Err(calsync_domain::Error::invalid(
                "CALSYNC_API_TOKENS",
                "every token must be at least 16 characters",
            ));
        }
        Ok(Self(tokens.into_iter().map(digest).collect()))
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let presented = digest(presented);
        // Check every token, so timing does not tell which one matched.
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.ct_eq(&presented)
            })
            .into()
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110, section 11.1), the token is not.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A request carrying a valid `Authorization: Bearer` API token. Taking it
/// as a handler argument is what protects a route.
#[derive(Debug)]
pub struct Authenticated;

impl FromRequest for Authenticated {
    type Error = HttpError;
    type Future = Ready<Result<Self, HttpError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let presented = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        let accepted = match (request.app_data::<web::Data<AppState>>(), presented) {
            (Some(state), Some(token)) => state.api_tokens.accepts(token),
            _ => false,
        };
        ready(if accepted {
            Ok(Self)
        } else {
            Err(HttpError::Unauthorized)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", "  bEaReR abc"] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        assert_eq!(bearer_token("Bearer ABC"), Some("ABC"));
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }

    #[test]
    fn tokens_are_parsed_and_compared() {
        let tokens = ApiTokens::parse(" first-token-0123456 , second-token-0123456,").unwrap();
        assert!(tokens.accepts("first-token-0123456"));
        assert!(tokens.accepts("second-token-0123456"));
        assert!(!tokens.accepts("first-token-012345"));
        assert!(!tokens.accepts(""));
        assert!(ApiTokens::parse(" , ").is_err());
        assert!(ApiTokens::parse("short").is_err());
        assert!(!format!("{tokens:?}").contains("first"));
    }
}
