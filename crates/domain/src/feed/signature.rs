//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, the
//! specification's "Signature scheme"): `v1,` and the base64 HMAC-SHA256
//! of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret's
//! decoded bytes (a secret is `whsec_` and base64). Several signatures are
//! separated by spaces, so a rotated-out secret still verifies. Receivers
//! written in Rust can call [`verify`]; any Standard Webhooks library
//! verifies what calsync sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix of a secret in its Standard Webhooks form.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a delivery's timestamp may be from the receiver's clock (the
/// specification's suggested tolerance: replay protection).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A signing secret's bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// 32 bytes from the caller's source of randomness.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 24 || bytes.len() > 64 {
            return Err(Error::invalid("secret", "must be 24 to 64 bytes"));
        }
        Ok(Self(bytes))
    }

    /// `whsec_<base64>` (the prefix may be left off, as the reference
    /// libraries allow).
    pub fn parse(text: &str) -> Result<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| Error::invalid("secret", "must be whsec_ followed by base64"))?;
        Self::from_bytes(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `whsec_` form shown to the application once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC takes keys of any length; the constructor cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// One `v1,<base64>` signature.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }
}

/// The `webhook-signature` header: one signature per live secret, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a delivery: its timestamp within `tolerance_secs` of `now`
/// (Unix seconds), and one of the header's `v1` signatures made with
/// `secret` (`whsec_...`) over exactly these bytes.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<()> {
    let secret = SigningSecret::parse(secret)?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| Error::InvalidHeader {
        header: HEADER_TIMESTAMP,
        reason: "must be Unix seconds".into(),
    })?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err(Error::InvalidHeader {
            header: HEADER_TIMESTAMP,
            reason: "too far from the current time".into(),
        });
    }
    let expected = secret.mac(id, timestamp, body);
    let matched = signature_header
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| bool::from(candidate.as_slice().ct_eq(&expected)));
    if matched {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example, reproduced
    // by its reference libraries: a receiver's library accepts exactly this.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_reproduces_the_specification_test_vector() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn verify_accepts_the_vector_among_others_and_refuses_tampering() {
        let both = format!("v1,bm9wZQ== {SIGNATURE}");
        assert!(verify(SECRET, ID, "1614265330", &both, BODY, TIMESTAMP + 10, 300).is_ok());
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(
                SECRET,
                ID,
                "1614265330",
                SIGNATURE,
                tampered,
                TIMESTAMP,
                300
            ),
            Err(Error::Forbidden)
        );
        assert_eq!(
            verify(
                SECRET,
                "msg_other",
                "1614265330",
                SIGNATURE,
                BODY,
                TIMESTAMP,
                300
            ),
            Err(Error::Forbidden)
        );
        assert!(
            verify(
                SECRET,
                ID,
                "1614265330",
                SIGNATURE,
                BODY,
                TIMESTAMP + 301,
                300
            )
            .is_err()
        );
        assert!(verify(SECRET, ID, "soon", SIGNATURE, BODY, TIMESTAMP, 300).is_err());
    }

    #[test]
    fn two_live_secrets_sign_twice() {
        let old = SigningSecret::parse(SECRET).unwrap();
        let new = SigningSecret::from_bytes(vec![7; 32]).unwrap();
        let header = signature_header(&[new.clone(), old], ID, TIMESTAMP, BODY);
        assert!(header.ends_with(&format!(" {SIGNATURE}")), "{header}");
        assert!(
            verify(
                &new.expose(),
                ID,
                "1614265330",
                &header,
                BODY,
                TIMESTAMP,
                300
            )
            .is_ok()
        );
    }
}
