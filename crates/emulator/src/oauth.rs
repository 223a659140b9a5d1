//! The OAuth2 token endpoint: checks a service account's signed JWT
//! assertion (RS256) and issues bearer tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::ApiError;
use crate::quota::Principal;

mod public_key;

pub use public_key::RsaPublicKey;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
}

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user impersonated under domain-wide delegation, if any.
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub scope: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
}

impl Claims {
    /// The principal of calls made with a token for these claims: the
    /// impersonated user (`sub`), else the service account itself (`iss`).
    pub fn principal(&self) -> Principal {
        match self.sub.as_deref().filter(|sub| !sub.is_empty()) {
            Some(sub) => Principal {
                name: sub.to_owned(),
                service_account: false,
                user: false,
            },
            None => Principal {
                name: self.iss.clone(),
                service_account: true,
                user: false,
            },
        }
    }
}

/// The claims of an assertion, unverified (open auth checks no signature).
pub fn peek_claims(assertion: &str) -> Option<Claims> {
    let claims = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Claims>(&bytes)
        .ok()
        .filter(|claims| !claims.iss.is_empty())
}

fn invalid_grant(message: &str) -> ApiError {
    ApiError::new(400, "invalid_grant", message)
}

pub fn parse_public_key(pem: &str) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_pem(pem)
}

/// Verifies a JWT assertion: RS256 signature by `key`, audience `audience`
/// (the token endpoint's own URL), and a current validity window.
pub fn verify_assertion(
    assertion: &str,
    key: &RsaPublicKey,
    audience: &str,
    now: i64,
) -> Result<Claims, ApiError> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_grant("assertion is not a JWT"));
    };
    // Some signers (yup-oauth2 among them) pad their base64url; accept both.
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| invalid_grant("assertion is not base64url"))
    };
    let header: Header = serde_json::from_slice(&decode(header)?)
        .map_err(|_| invalid_grant("unreadable JWT header"))?;
    if header.alg != "RS256" {
        return Err(invalid_grant("only RS256 assertions are accepted"));
    }
    let signature = decode(signature)?;
    let signed = assertion.rsplit_once('.').map_or("", |(signed, _)| signed);
    if !key.verifies(signed.as_bytes(), &signature) {
        return Err(invalid_grant("Invalid JWT Signature."));
    }
    let claims: Claims = serde_json::from_slice(&decode(claims)?)
        .map_err(|_| invalid_grant("unreadable JWT claims"))?;
    if claims.aud != audience {
        return Err(invalid_grant(
            "Invalid JWT: audience does not match the token endpoint",
        ));
    }
    if claims.exp <= now || claims.iat > now + 300 || claims.exp - claims.iat > 3600 {
        return Err(invalid_grant(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
        ));
    }
    if claims.iss.is_empty() {
        return Err(invalid_grant("Invalid JWT: no issuer"));
    }
    if !claims
        .scope
        .split(' ')
        .any(|scope| scope.contains("/auth/calendar"))
    {
        return Err(ApiError::new(
            400,
            "invalid_scope",
            "The assertion asks for no Calendar scope",
        ));
    }
    Ok(claims)
}
