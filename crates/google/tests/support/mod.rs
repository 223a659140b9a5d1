//! What the adapter's test targets share: an emulator that accepts only a
//! test service account's tokens, and the adapter pointed at it with fast
//! retries. The RSA key is made once per test binary (generation is slow).
#![allow(dead_code)] // each test target uses its own part

use std::sync::OnceLock;
use std::time::Duration;

use calsync_emulator::{Emulator, EmulatorAuth, EmulatorConfig, RunningEmulator};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use calsync_resilience::RetryPolicy;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;

struct Keys {
    private_pem: String,
    public_pem: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        Keys {
            private_pem: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }
    })
}

/// A service-account key file (JSON) for `private_pem`, exchanging its JWT
/// at `token_uri`.
pub fn key_json(private_pem: &str, client_email: &str, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "calsync-test",
        "private_key_id": "test-key",
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": "1",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/calsync"
    })
    .to_string()
}

/// A key the emulator has never heard of, for the same token endpoint.
pub fn stranger_key_json(token_uri: &str) -> String {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    key_json(
        &key.to_pkcs8_pem(LineEnding::LF).unwrap(),
        "stranger@p.iam.gserviceaccount.com",
        token_uri,
    )
}

pub fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
        max_retries,
        max_elapsed: Some(Duration::from_secs(10)),
        jitter: false,
        ..RetryPolicy::default()
    }
}

pub struct Setup {
    pub emulator: RunningEmulator,
    pub key_json: String,
}

/// An emulator that only accepts tokens for the test service account.
pub async fn setup() -> Setup {
    setup_with(EmulatorConfig::default()).await
}

/// [`setup`] with more of the emulator's settings (quotas, rules).
pub async fn setup_with(base: EmulatorConfig) -> Setup {
    let keys = keys();
    let config = EmulatorConfig {
        auth: EmulatorAuth::ServiceAccount {
            public_key_pem: keys.public_pem.clone(),
        },
        ..base
    };
    let emulator = Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let key_json = key_json(
        &keys.private_pem,
        "calsync@calsync-test.iam.gserviceaccount.com",
        &emulator.token_url(),
    );
    Setup { emulator, key_json }
}

/// The adapter, as the test service account, against `setup`'s emulator.
pub async fn adapter(setup: &Setup, retry: RetryPolicy) -> GoogleCalendar {
    let mut config = GoogleConfig::new(Credentials::ServiceAccount {
        key_json: setup.key_json.clone(),
        subject: None,
    });
    config.api_base_url = setup.emulator.calendar_api_url();
    config.retry = retry;
    config.request_timeout = Duration::from_secs(5);
    GoogleCalendar::new(config).await.unwrap()
}
