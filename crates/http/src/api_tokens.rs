//! The API tokens management routes accept (`CALSYNC_API_TOKENS`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What the console's session keys are derived from, with each token as the
/// HMAC key. Changing it ends every console session.
const SESSION_KEY_LABEL: &[u8] = b"calsync console session v1";

/// HMAC-SHA256 of `parts` concatenated, keyed by `key`. HMAC takes a key of
/// any length, so `None` cannot happen in practice; callers refuse on it.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

/// The key that signs one token's console sessions: derived from the token,
/// so every replica configured with it verifies its sessions with no shared
/// store, and removing the token ends them.
#[derive(Clone, Copy)]
pub(crate) struct SessionKey(pub(crate) [u8; 32]);

#[derive(Clone)]
struct Token {
    digest: [u8; 32],
    session_key: SessionKey,
}

/// The accepted API tokens, kept only as SHA-256 digests (and the console
/// session keys derived from them) so comparisons are constant-time over
/// fixed-size values and the tokens never sit in memory in the clear longer
/// than parsing takes.
#[derive(Clone)]
pub struct ApiTokens(Vec<Token>);

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
        tokens
            .into_iter()
            .map(|token| {
                let session_key = hmac_sha256(token.as_bytes(), &[SESSION_KEY_LABEL])
                    .map(SessionKey)
                    .ok_or_else(|| {
                        calsync_domain::Error::invalid("CALSYNC_API_TOKENS", "unusable token")
                    })?;
                Ok(Token {
                    digest: digest(token),
                    session_key,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn accepts(&self, presented: &str) -> bool {
        self.session_key(presented).is_some()
    }

    /// The console session key of `presented`, if it is an accepted token.
    pub(crate) fn session_key(&self, presented: &str) -> Option<SessionKey> {
        let presented = digest(presented);
        // Check every token, so timing does not tell which one matched.
        let mut found = subtle::Choice::from(0);
        let mut key = [0u8; 32];
        for token in &self.0 {
            let matched = token.digest.ct_eq(&presented);
            found |= matched;
            for (byte, candidate) in key.iter_mut().zip(token.session_key.0) {
                subtle::ConditionallySelectable::conditional_assign(byte, &candidate, matched);
            }
        }
        bool::from(found).then_some(SessionKey(key))
    }

    /// Every token's console session key, in configuration order.
    pub(crate) fn session_keys(&self) -> impl Iterator<Item = &SessionKey> {
        self.0.iter().map(|token| &token.session_key)
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

    #[test]
    fn each_token_has_its_own_session_key_derived_from_it() {
        let tokens = ApiTokens::parse("first-token-0123456,second-token-0123456").unwrap();
        let keys: Vec<[u8; 32]> = tokens.session_keys().map(|k| k.0).collect();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
        // HMAC-SHA256(key = token, "calsync console session v1"): the same on
        // every replica, and not the token's digest.
        let expected = hmac_sha256(b"first-token-0123456", &[b"calsync console session v1"]);
        assert_eq!(Some(keys[0]), expected);
        assert_ne!(keys[0], digest("first-token-0123456"));
        assert_eq!(
            tokens.session_key("second-token-0123456").map(|k| k.0),
            Some(keys[1])
        );
        assert!(tokens.session_key("third-token-0123456").is_none());
        assert!(ApiTokens::none().session_key("").is_none());
        // RFC 4231 test case 2, so the HMAC is the standard one.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]).unwrap();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
