//! The grant flow's rules on the in-memory store with a scripted OAuth
//! server: a state is used once and expires, the verifier reaches the
//! exchange exactly as its challenge promised, tokens are sealed, and the
//! same account reconnecting keeps its grant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::grant::{
    AccountInfo, AuthorizationRequest, GrantStatus, TokenGrant, code_challenge,
};
use calsync_domain::ports::{GrantStore, OAuthProvider, SecretKeeper};
use calsync_domain::services::{GrantAdapters, GrantService};
use calsync_domain::testing::{ManualClock, MemoryStore};
use calsync_domain::{Error, ProviderErrorKind, Result};
use chrono::{TimeZone, Utc};
use futures_executor::block_on;

/// Google, scripted: remembers the challenge it was shown and redeems a
/// code only with the verifier that hashes to it.
#[derive(Default)]
struct ScriptedGoogle {
    challenge: Mutex<Option<String>>,
    issued: Mutex<u32>,
    revoked: Mutex<Vec<String>>,
}

#[async_trait]
impl OAuthProvider for ScriptedGoogle {
    fn authorization_url(&self, request: &AuthorizationRequest) -> String {
        *self.challenge.lock().unwrap() = Some(request.code_challenge.clone());
        format!("https://accounts.example/auth?state={}", request.state)
    }

    async fn exchange_code(&self, code: &str, verifier: &str) -> Result<TokenGrant> {
        let expected = self.challenge.lock().unwrap().clone();
        if code != "good-code" || expected != Some(code_challenge(verifier)) {
            return Err(Error::Provider {
                kind: ProviderErrorKind::ReconnectRequired,
                message: "invalid_grant".into(),
                retry_after: None,
            });
        }
        let mut issued = self.issued.lock().unwrap();
        *issued += 1;
        Ok(TokenGrant {
            access_token: "access".into(),
            expires_in: chrono::Duration::hours(1),
            refresh_token: Some(format!("refresh-{issued}")),
            scopes: vec!["email".into()],
        })
    }

    async fn refresh(&self, _refresh_token: &str) -> Result<TokenGrant> {
        unreachable!("not part of connecting")
    }

    async fn revoke(&self, token: &str) -> Result<()> {
        self.revoked.lock().unwrap().push(token.to_owned());
        Ok(())
    }

    async fn account(&self, _access_token: &str) -> Result<AccountInfo> {
        Ok(AccountInfo {
            account: "108".into(),
            email: "ana@example.com".into(),
        })
    }
}

/// "Seals" by reversing and prefixing: enough to tell sealed from clear.
struct ReversingKeeper;

impl SecretKeeper for ReversingKeeper {
    fn new_signing_secret(&self) -> Result<calsync_domain::feed::signature::SigningSecret> {
        unreachable!()
    }
    fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret> {
        let mut bytes = plain.to_vec();
        bytes.reverse();
        Ok(SealedSecret(format!(
            "sealed:{}",
            String::from_utf8(bytes).unwrap()
        )))
    }
    fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>> {
        let mut bytes = sealed
            .0
            .strip_prefix("sealed:")
            .unwrap()
            .as_bytes()
            .to_vec();
        bytes.reverse();
        Ok(bytes)
    }
}

fn world() -> (
    GrantService,
    Arc<MemoryStore>,
    Arc<ScriptedGoogle>,
    Arc<ManualClock>,
) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).unwrap());
    let store = MemoryStore::new();
    let google = Arc::new(ScriptedGoogle::default());
    let service = GrantService::new(
        store.clone(),
        GrantAdapters {
            oauth: google.clone(),
            keeper: Arc::new(ReversingKeeper),
        },
        clock.clone(),
    );
    (service, store, google, clock)
}

#[test]
fn a_state_is_used_once_and_expires_after_ten_minutes() {
    let (service, _, _, clock) = world();
    let started = block_on(service.start(Some("ana@example.com".into()), None)).unwrap();
    let connected = block_on(service.complete(&started.state, Some("good-code"), None)).unwrap();
    assert_eq!(connected.grant.status, GrantStatus::Active);
    let replay = block_on(service.complete(&started.state, Some("good-code"), None));
    assert!(
        matches!(replay, Err(Error::Invalid { field: "state", .. })),
        "{replay:?}"
    );

    let late = block_on(service.start(None, None)).unwrap();
    clock.advance(Duration::from_secs(10 * 60));
    let expired = block_on(service.complete(&late.state, Some("good-code"), None));
    assert!(
        matches!(expired, Err(Error::Invalid { field: "state", .. })),
        "{expired:?}"
    );
}

#[test]
fn a_refused_code_or_a_denial_is_a_400_and_creates_nothing() {
    let (service, store, _, _) = world();
    let started = block_on(service.start(None, None)).unwrap();
    let refused = block_on(service.complete(&started.state, Some("forged"), None));
    assert!(
        matches!(refused, Err(Error::Invalid { field: "code", .. })),
        "{refused:?}"
    );
    let denied = block_on(service.start(None, None)).unwrap();
    let answer = block_on(service.complete(&denied.state, None, Some("access_denied")));
    assert!(
        matches!(answer, Err(Error::Invalid { field: "error", .. })),
        "{answer:?}"
    );
    assert!(block_on(store.list_grants()).unwrap().is_empty());
}

#[test]
fn tokens_are_sealed_and_a_reconnect_keeps_the_grant() {
    let (service, store, google, _) = world();
    let first = block_on(service.start(None, Some("https://app.example/done".into()))).unwrap();
    let connected = block_on(service.complete(&first.state, Some("good-code"), None)).unwrap();
    assert_eq!(
        connected.return_to.as_deref(),
        Some("https://app.example/done")
    );
    let stored = block_on(store.get_grant(&connected.grant.id))
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token.0, "sealed:1-hserfer");
    assert_eq!(stored.email, "ana@example.com");

    let second = block_on(service.start(None, None)).unwrap();
    let again = block_on(service.complete(&second.state, Some("good-code"), None)).unwrap();
    assert_eq!(again.grant.id, connected.grant.id);
    let stored = block_on(store.get_grant(&again.grant.id)).unwrap().unwrap();
    assert_eq!(stored.refresh_token.0, "sealed:2-hserfer");
    // The earlier token is left alone (revoking it would revoke the new one).
    assert!(google.revoked.lock().unwrap().is_empty());

    let deleted = block_on(service.delete(&again.grant.id)).unwrap();
    assert_eq!(deleted.status, GrantStatus::Revoked);
    assert_eq!(*google.revoked.lock().unwrap(), ["refresh-2"]);
    // Deleting again is harmless and calls Google no more.
    block_on(service.delete(&again.grant.id)).unwrap();
    assert_eq!(google.revoked.lock().unwrap().len(), 1);
}

#[test]
fn a_login_hint_with_spaces_or_controls_is_refused() {
    let (service, _, _, _) = world();
    for hint in ["", "ana @example.com", "ana\u{0}@example.com"] {
        let answer = block_on(service.start(Some(hint.into()), None));
        assert!(
            matches!(
                answer,
                Err(Error::Invalid {
                    field: "loginHint",
                    ..
                })
            ),
            "{hint:?}"
        );
    }
}
