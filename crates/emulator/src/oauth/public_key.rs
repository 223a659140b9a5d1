//! A service account's RSA public key, as PEM, for checking RS256 JWT
//! assertions. Verification is `ring`'s (already linked by rustls), so the
//! shipping binary carries no second RSA implementation; only the small
//! PEM/DER unwrapping below is ours.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

/// `rsaEncryption` (1.2.840.113549.1.1.1), DER-encoded with its tag.
const RSA_ENCRYPTION_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// An RSA public key as PKCS#1 `RSAPublicKey` DER, the form `ring` verifies with.
#[derive(Clone, Debug)]
pub struct RsaPublicKey {
    pkcs1_der: Vec<u8>,
}

impl RsaPublicKey {
    /// Reads `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo, what
    /// Google's service-account tooling and OpenSSL write) or
    /// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        if let Some(der) = pem_body(pem, "PUBLIC KEY")? {
            return spki_rsa_key(&der)
                .map(|key| Self {
                    pkcs1_der: key.to_vec(),
                })
                .ok_or_else(|| "not a PEM RSA public key: not an RSA SubjectPublicKeyInfo".into());
        }
        match pem_body(pem, "RSA PUBLIC KEY")? {
            Some(der) => Ok(Self { pkcs1_der: der }),
            None => Err("not a PEM RSA public key: no PUBLIC KEY block".into()),
        }
    }

    /// Whether `signature` is this key's RS256 (PKCS#1 v1.5, SHA-256)
    /// signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.pkcs1_der)
            .verify(message, signature)
            .is_ok()
    }
}

/// The base64 body of the first `label` block, decoded; None if there is none.
fn pem_body(pem: &str, label: &str) -> Result<Option<Vec<u8>>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = pem.find(&begin) else {
        return Ok(None);
    };
    let rest = &pem[start + begin.len()..];
    let body = rest
        .find(&end)
        .map(|stop| &rest[..stop])
        .ok_or_else(|| format!("not a PEM RSA public key: no {end}"))?;
    let base64: String = body.split_whitespace().collect();
    STANDARD
        .decode(base64)
        .map(Some)
        .map_err(|error| format!("not a PEM RSA public key: {error}"))
}

/// Splits one DER element off `input`: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || input.len() < octets {
            return None;
        }
        let (len, rest) = input.split_at(octets);
        input = rest;
        len.iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (contents, rest) = input.split_at(len);
    Some((tag, contents, rest))
}

/// The `RSAPublicKey` inside an RSA SubjectPublicKeyInfo:
/// SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0, key } }.
fn spki_rsa_key(der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    let (SEQUENCE, spki, _) = der_element(der)? else {
        return None;
    };
    let (SEQUENCE, algorithm, rest) = der_element(spki)? else {
        return None;
    };
    if !algorithm.starts_with(RSA_ENCRYPTION_OID) {
        return None;
    }
    let (BIT_STRING, bits, _) = der_element(rest)? else {
        return None;
    };
    // The first octet counts unused bits: a key is whole octets.
    match bits.split_first()? {
        (0, key) => Some(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_rsa_public_key() {
        assert!(RsaPublicKey::from_pem("hello").is_err());
        assert!(
            RsaPublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        // A SubjectPublicKeyInfo for id-ecPublicKey (1.2.840.10045.2.1): not RSA.
        let ec_algorithm = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let mut algorithm = vec![0x30, ec_algorithm.len() as u8];
        algorithm.extend(ec_algorithm);
        let spki = |algorithm: &[u8]| {
            let mut body = algorithm.to_vec();
            body.extend([0x03, 0x03, 0x00, 0x30, 0x00]);
            let mut der = vec![0x30, body.len() as u8];
            der.extend(body);
            der
        };
        assert_eq!(spki_rsa_key(&spki(&algorithm)), None);
        let mut rsa = vec![0x30, RSA_ENCRYPTION_OID.len() as u8 + 2];
        rsa.extend(RSA_ENCRYPTION_OID);
        rsa.extend([0x05, 0x00]);
        assert_eq!(spki_rsa_key(&spki(&rsa)), Some(&[0x30, 0x00][..]));
    }

    #[test]
    fn reads_long_and_short_der_lengths() {
        let short = [0x30, 0x02, 0xaa, 0xbb, 0xcc];
        assert_eq!(
            der_element(&short),
            Some((0x30, &[0xaa, 0xbb][..], &[0xcc][..]))
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 128]);
        let (tag, contents, rest) = der_element(&long).unwrap();
        assert_eq!((tag, contents.len(), rest.len()), (0x04, 128, 0));
        assert_eq!(der_element(&[0x04, 0x82, 0x01]), None, "truncated length");
        assert_eq!(der_element(&[0x04, 0x05, 0x01]), None, "truncated contents");
    }
}
