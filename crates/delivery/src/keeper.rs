//! [`SealingKeeper`]: secrets sealed at rest (webhook signing secrets,
//! grants' refresh tokens, PKCE verifiers) with AES-256-GCM (ring), under
//! a key ring so keys can rotate.
//!
//! Sealed form: `v1.<key id>.<base64url(nonce || ciphertext || tag)>`, a
//! random 96-bit nonce per seal and the key id as associated data (a
//! ciphertext moved under another id does not open). The first key of the
//! ring seals; every key opens, so rotating is: put the new key first,
//! keep the old one after it until every secret has been re-sealed
//! (`calsync secrets reseal` re-seals what the first key did not seal).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use calsync_domain::feed::signature::SigningSecret;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::ports::SecretKeeper;
use calsync_domain::{Error, Result};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The sealed form's version prefix.
const VERSION: &str = "v1";
/// Bytes of a key, and of a new signing secret.
const KEY_LEN: usize = 32;
/// The development key's id.
pub const DEVELOPMENT_KEY_ID: &str = "dev";
/// INSECURE, public: the development key. It is in the source code, so
/// anything sealed with it is readable by anyone with the database. It
/// exists so a development server keeps opening, across restarts, what it
/// sealed; never use it in production.
const DEVELOPMENT_KEY: &[u8; KEY_LEN] = b"calsync-development-key-INSECURE";

/// The key ring: the first key seals, every key opens.
pub struct SealingKeeper {
    keys: Vec<(String, LessSafeKey)>,
    random: SystemRandom,
}

impl std::fmt::Debug for SealingKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SealingKeeper")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

fn config_error(reason: impl Into<String>) -> Error {
    Error::invalid("secret keys", reason)
}

fn random_bytes<const N: usize>(random: &SystemRandom) -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    random
        .fill(&mut bytes)
        .map_err(|_| Error::Storage("the system's random source failed".into()))?;
    Ok(bytes)
}

fn key(bytes: &[u8]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .ok()
        .map(LessSafeKey::new)
}

fn check_key_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 32
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(config_error(
            "a key id must be 1 to 32 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

impl SealingKeeper {
    /// A key ring from `<key id>:<base64 of 32 bytes>[,<key id>:<base64>...]`
    /// (key ids: letters, digits, `-` and `_`). Errors name the key id at
    /// fault, never a key.
    pub fn from_config(text: &str) -> Result<Self> {
        let mut keys: Vec<(String, LessSafeKey)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| config_error("each key must be <key id>:<base64 of 32 bytes>"))?;
            let id = id.trim();
            check_key_id(id)?;
            if keys.iter().any(|(known, _)| known == id) {
                return Err(config_error(format!("key id {id} appears twice")));
            }
            let bytes = STANDARD
                .decode(encoded.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
                .map_err(|_| config_error(format!("key {id} is not base64")))?;
            let sealing = (bytes.len() == KEY_LEN)
                .then(|| key(&bytes))
                .flatten()
                .ok_or_else(|| config_error(format!("key {id} must be {KEY_LEN} bytes")))?;
            keys.push((id.to_owned(), sealing));
        }
        if keys.is_empty() {
            return Err(config_error("at least one key is needed"));
        }
        Ok(Self {
            keys,
            random: SystemRandom::new(),
        })
    }

    /// INSECURE: the fixed, public development key, id `dev` (see
    /// [`DEVELOPMENT_KEY`]'s warning). For development servers only.
    pub fn development() -> Self {
        Self {
            keys: key(DEVELOPMENT_KEY)
                .map(|key| (DEVELOPMENT_KEY_ID.to_owned(), key))
                .into_iter()
                .collect(),
            random: SystemRandom::new(),
        }
    }

    /// A fresh key line, `k1:<base64 of 32 random bytes>`, for the docs and
    /// the CLI (rename the id when it joins an existing ring).
    pub fn generate_key_text() -> Result<String> {
        Self::generate_key_with_id("k1")
    }

    /// A fresh key line under the key id `id`:
    /// `<id>:<base64 of 32 random bytes>` (`calsync secrets generate-key`).
    pub fn generate_key_with_id(id: &str) -> Result<String> {
        check_key_id(id)?;
        let bytes: [u8; KEY_LEN] = random_bytes(&SystemRandom::new())?;
        Ok(format!("{id}:{}", STANDARD.encode(bytes)))
    }

    /// The id of the key that seals (the ring's first), for reports.
    pub fn sealing_key_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }
}

impl SecretKeeper for SealingKeeper {
    fn new_signing_secret(&self) -> Result<SigningSecret> {
        let bytes: [u8; KEY_LEN] = random_bytes(&self.random)?;
        SigningSecret::from_bytes(bytes.to_vec())
    }

    fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret> {
        let (id, key) = self
            .keys
            .first()
            .ok_or_else(|| Error::Storage("the secret key ring is empty".into()))?;
        let nonce: [u8; NONCE_LEN] = random_bytes(&self.random)?;
        let mut data = plain.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(id.as_bytes()),
            &mut data,
        )
        .map_err(|_| Error::Storage(format!("sealing a secret with key id {id} failed")))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(SealedSecret(format!(
            "{VERSION}.{id}.{}",
            URL_SAFE_NO_PAD.encode(sealed)
        )))
    }

    fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>> {
        let malformed =
            || Error::Storage("a sealed secret is malformed (not v1.<key id>.<data>)".into());
        let mut parts = sealed.0.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let (_, key) = self
            .keys
            .iter()
            .find(|(known, _)| known == id)
            .ok_or_else(|| {
                Error::Storage(format!(
                    "a secret is sealed with key id {id}, which is not in the key ring \
                 (add the key back, after the sealing key, to open it)"
                ))
            })?;
        let data = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| malformed())?;
        if data.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(malformed());
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| malformed())?;
        let mut ciphertext = ciphertext.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut ciphertext)
            .map_err(|_| {
                Error::Storage(format!(
                    "a secret sealed with key id {id} does not open: it was altered, or the \
                     key configured under {id} is not the one that sealed it"
                ))
            })?;
        Ok(plain.to_vec())
    }

    /// By the key id the sealed form names: the ring's first key is the
    /// one that seals. (Whether it opens is `open_bytes`'s to say.)
    fn sealed_with_current_key(&self, sealed: &SealedSecret) -> bool {
        let Some((current, _)) = self.keys.first() else {
            return false;
        };
        let mut parts = sealed.0.splitn(3, '.');
        parts.next() == Some(VERSION) && parts.next() == Some(current.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

    use super::*;

    fn key_text(id: &str, byte: u8) -> String {
        format!("{id}:{}", STANDARD.encode([byte; KEY_LEN]))
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_hides_it() {
        let keeper = SealingKeeper::from_config(&key_text("k1", 1)).unwrap();
        let secret = keeper.new_signing_secret().unwrap();
        assert_eq!(secret.bytes().len(), 32);
        let sealed = keeper.seal(&secret).unwrap();
        assert!(sealed.0.starts_with("v1.k1."), "{}", sealed.0);
        assert!(!sealed.0.contains(&STANDARD.encode(secret.bytes())));
        assert_eq!(keeper.open(&sealed).unwrap(), secret);
        // A fresh nonce each time: the same secret seals differently.
        assert_ne!(keeper.seal(&secret).unwrap(), sealed);
        assert_ne!(keeper.new_signing_secret().unwrap(), secret);
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let old = SealingKeeper::from_config(&key_text("k1", 1)).unwrap();
        let secret = old.new_signing_secret().unwrap();
        let sealed_old = old.seal(&secret).unwrap();
        let ring = format!("{} , {}", key_text("k2", 2), key_text("k1", 1));
        let new = SealingKeeper::from_config(&ring).unwrap();
        assert_eq!(new.open(&sealed_old).unwrap(), secret);
        let sealed_new = new.seal(&secret).unwrap();
        assert!(sealed_new.0.starts_with("v1.k2."), "{}", sealed_new.0);
        assert_eq!(new.open(&sealed_new).unwrap(), secret);
        // Only what the first key sealed is current; a value naming it
        // but malformed still is (opening is what checks the rest).
        assert!(!new.sealed_with_current_key(&sealed_old));
        assert!(new.sealed_with_current_key(&sealed_new));
        assert!(old.sealed_with_current_key(&sealed_old));
        assert!(!old.sealed_with_current_key(&sealed_new));
        assert!(new.sealed_with_current_key(&SealedSecret("v1.k2.not base64!".into())));
        for other in ["", "v1", "v1.k", "v1.k2x.AAAA", "v2.k2.AAAA", "k2.v1.AAAA"] {
            assert!(
                !new.sealed_with_current_key(&SealedSecret(other.into())),
                "{other}"
            );
        }
        // Once k1 is dropped, what it sealed names the missing key.
        let only_new = SealingKeeper::from_config(&key_text("k2", 2)).unwrap();
        let error = only_new.open(&sealed_old).unwrap_err().to_string();
        assert!(error.contains("key id k1"), "{error}");
        assert!(error.contains("not in the key ring"), "{error}");
        assert!(!error.contains(&STANDARD.encode([1u8; KEY_LEN])), "{error}");
    }

    #[test]
    fn tampering_is_detected() {
        let keeper = SealingKeeper::from_config(&key_text("k1", 1)).unwrap();
        let sealed = keeper.seal(&keeper.new_signing_secret().unwrap()).unwrap();
        let data = sealed.0.rsplit('.').next().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(data).unwrap();
        for index in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[index] ^= 1;
            let tampered = SealedSecret(format!("v1.k1.{}", URL_SAFE_NO_PAD.encode(&bytes)));
            let error = keeper.open(&tampered).unwrap_err().to_string();
            assert!(error.contains("does not open"), "{error}");
            bytes[index] ^= 1;
        }
        // The key id is authenticated: moved under another id, it fails.
        let two =
            SealingKeeper::from_config(&format!("{},{}", key_text("k1", 1), key_text("k2", 1)))
                .unwrap();
        let moved = SealedSecret(sealed.0.replacen("v1.k1.", "v1.k2.", 1));
        assert!(two.open(&moved).is_err());
        // Another key under the same id does not open it either.
        let other = SealingKeeper::from_config(&key_text("k1", 9)).unwrap();
        assert!(
            other
                .open(&sealed)
                .unwrap_err()
                .to_string()
                .contains("key id k1")
        );
        for bad in ["", "v1", "v2.k1.AAAA", "v1.k1.", "v1.k1.!!", "v1.k1.AAAA"] {
            assert!(keeper.open(&SealedSecret(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn configuration_errors_name_the_key_id_not_the_key() {
        for (text, expected) in [
            ("", "at least one key"),
            (" , ", "at least one key"),
            ("k1", "<key id>:"),
            (":AAAA", "key id must be"),
            ("k.1:AAAA", "key id must be"),
            ("k1:not base64!", "key k1 is not base64"),
            ("k1:AAAA", "key k1 must be 32 bytes"),
        ] {
            let error = SealingKeeper::from_config(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let twice = format!("{},{}", key_text("k1", 1), key_text("k1", 2));
        let error = SealingKeeper::from_config(&twice).unwrap_err().to_string();
        assert!(error.contains("k1 appears twice"), "{error}");
        assert!(!error.contains(&STANDARD.encode([2u8; KEY_LEN])), "{error}");
        let ring = format!("{},{}", key_text("k1", 1), key_text("k2", 2));
        let keeper = SealingKeeper::from_config(&ring).unwrap();
        let debug = format!("{keeper:?}");
        assert!(debug.contains("k1") && debug.contains("k2"), "{debug}");
        assert!(!debug.contains(&STANDARD.encode([1u8; KEY_LEN])), "{debug}");
    }

    #[test]
    fn generated_keys_and_the_development_key_work() {
        let text = SealingKeeper::generate_key_text().unwrap();
        assert!(text.starts_with("k1:"), "{text}");
        let named = SealingKeeper::generate_key_with_id("2027-q1").unwrap();
        assert!(named.starts_with("2027-q1:"), "{named}");
        let ring = SealingKeeper::from_config(&format!("{named},{text}")).unwrap();
        assert_eq!(ring.sealing_key_id(), "2027-q1");
        assert!(SealingKeeper::generate_key_with_id("k.1").is_err());
        assert!(SealingKeeper::generate_key_with_id("").is_err());
        assert_ne!(SealingKeeper::generate_key_text().unwrap(), text);
        let keeper = SealingKeeper::from_config(&text).unwrap();
        let secret = keeper.new_signing_secret().unwrap();
        assert_eq!(keeper.open(&keeper.seal(&secret).unwrap()).unwrap(), secret);

        // The development key is fixed: another instance (a restarted
        // server) opens what the first sealed.
        let sealed = SealingKeeper::development().seal(&secret).unwrap();
        assert!(sealed.0.starts_with("v1.dev."), "{}", sealed.0);
        assert_eq!(SealingKeeper::development().open(&sealed).unwrap(), secret);
        let config = format!("dev:{}", STANDARD.encode(DEVELOPMENT_KEY));
        assert_eq!(
            SealingKeeper::from_config(&config)
                .unwrap()
                .open(&sealed)
                .unwrap(),
            secret
        );
    }
}
