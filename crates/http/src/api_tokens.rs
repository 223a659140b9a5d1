//! The API tokens management routes accept (`CALSYNC_API_TOKENS`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

#[cfg(test)]
mod tests {
    use super::*;

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
