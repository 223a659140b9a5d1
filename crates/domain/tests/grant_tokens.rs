//! Grants' access tokens on the in-memory store with a scripted OAuth
//! server: held until five minutes before they expire, one refresh for
//! callers that need one at once, a claim another replica holds waited
//! for, a rotated refresh token saved sealed, and `invalid_grant` turning
//! the grant and its calendars `reconnect_required`, recorded in the feed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::calendar::ManagedCalendar;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::feed::{ChangeQuery, ChangeType};
use calsync_domain::grant::{
    AccountInfo, AuthorizationRequest, Grant, GrantId, GrantStatus, RefreshClaim, TokenGrant,
};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{
    CalendarStore, ChangeFeedStore, GrantStore, GrantTokenSource, OAuthProvider, SecretKeeper,
    SyncStateStore, Timer,
};
use calsync_domain::services::GrantTokens;
use calsync_domain::testing::{ManualClock, MemoryStore};
use calsync_domain::{Error, ProviderErrorKind, Result};
use chrono::{TimeZone, Utc};
use futures_executor::block_on;

/// Google's token endpoint, scripted: counts refreshes, may rotate the
/// refresh token, refuses a revoked one.
#[derive(Default)]
struct ScriptedGoogle {
    refreshes: Mutex<u32>,
    rotate: Mutex<bool>,
    revoked: Mutex<bool>,
    /// Access tokens' lifetime; an hour (Google's) when unset.
    lifetime: Mutex<Option<chrono::Duration>>,
}

#[async_trait]
impl OAuthProvider for ScriptedGoogle {
    fn authorization_url(&self, _request: &AuthorizationRequest) -> String {
        unreachable!()
    }
    async fn exchange_code(&self, _code: &str, _verifier: &str) -> Result<TokenGrant> {
        unreachable!()
    }
    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant> {
        if *self.revoked.lock().unwrap() {
            return Err(Error::provider(
                ProviderErrorKind::ReconnectRequired,
                "token endpoint: invalid_grant (Token has been expired or revoked.)",
            ));
        }
        let mut count = self.refreshes.lock().unwrap();
        *count += 1;
        Ok(TokenGrant {
            access_token: format!("access-{count}-for-{refresh_token}"),
            expires_in: self
                .lifetime
                .lock()
                .unwrap()
                .unwrap_or(chrono::Duration::hours(1)),
            refresh_token: self
                .rotate
                .lock()
                .unwrap()
                .then(|| format!("rotated-{count}")),
            scopes: Vec::new(),
        })
    }
    async fn revoke(&self, _token: &str) -> Result<()> {
        unreachable!()
    }
    async fn account(&self, _access_token: &str) -> Result<AccountInfo> {
        unreachable!()
    }
}

struct PrefixKeeper;

impl SecretKeeper for PrefixKeeper {
    fn new_signing_secret(&self) -> Result<calsync_domain::feed::signature::SigningSecret> {
        unreachable!()
    }
    fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret> {
        Ok(SealedSecret(format!(
            "sealed:{}",
            String::from_utf8(plain.to_vec()).unwrap()
        )))
    }
    fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>> {
        Ok(sealed
            .0
            .strip_prefix("sealed:")
            .unwrap()
            .as_bytes()
            .to_vec())
    }
}

/// Sleeping advances the manual clock: a wait costs no real time.
struct ClockTimer(Arc<ManualClock>);

#[async_trait]
impl Timer for ClockTimer {
    async fn sleep(&self, duration: Duration) {
        self.0.advance(duration);
    }
}

struct World {
    tokens: GrantTokens,
    store: Arc<MemoryStore>,
    google: Arc<ScriptedGoogle>,
    clock: Arc<ManualClock>,
    grant: GrantId,
}

fn world() -> World {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).unwrap());
    let store = MemoryStore::new();
    let google = Arc::new(ScriptedGoogle::default());
    let now = clock.now_utc();
    let grant = block_on(store.upsert_grant(&Grant {
        id: GrantId::random(),
        provider: "google".into(),
        email: "ana@example.com".into(),
        account: "108".into(),
        scopes: vec!["email".into()],
        status: GrantStatus::Active,
        refresh_token: SealedSecret("sealed:refresh-1".into()),
        created_at: now,
        updated_at: now,
        last_refresh_at: None,
        last_error: None,
    }))
    .unwrap();
    let tokens = GrantTokens::new(
        store.clone(),
        google.clone(),
        Arc::new(PrefixKeeper),
        clock.clone(),
        Arc::new(ClockTimer(clock.clone())),
        "replica-a",
    );
    World {
        tokens,
        store,
        google,
        clock,
        grant: grant.id,
    }
}

trait NowUtc {
    fn now_utc(&self) -> chrono::DateTime<Utc>;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> chrono::DateTime<Utc> {
        calsync_domain::ports::Clock::now(self)
    }
}

#[test]
fn a_token_is_held_until_shortly_before_it_expires() {
    let w = world();
    let first = block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    assert_eq!(first, "access-1-for-refresh-1");
    w.clock.advance(Duration::from_secs(54 * 60));
    assert_eq!(
        block_on(w.tokens.access_token(&w.grant, false)).unwrap(),
        first
    );
    assert_eq!(*w.google.refreshes.lock().unwrap(), 1);
    // Within five minutes of its expiry: refreshed.
    w.clock.advance(Duration::from_secs(2 * 60));
    let second = block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    assert_eq!(second, "access-2-for-refresh-1");
    // Google refused the token: a new one at once.
    let third = block_on(w.tokens.access_token(&w.grant, true)).unwrap();
    assert_eq!(third, "access-3-for-refresh-1");
    let stored = block_on(w.store.get_grant(&w.grant)).unwrap().unwrap();
    assert_eq!(stored.last_refresh_at, Some(w.clock.now_utc()));
}

/// A token living less than twice the margin is kept for half its life,
/// not refreshed on every call (an emulator or a provider may hand out
/// short-lived tokens).
#[test]
fn a_short_lived_token_is_held_for_half_its_life() {
    let w = world();
    *w.google.lifetime.lock().unwrap() = Some(chrono::Duration::seconds(20));
    let first = block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    for _ in 0..9 {
        w.clock.advance(Duration::from_secs(1));
        assert_eq!(
            block_on(w.tokens.access_token(&w.grant, false)).unwrap(),
            first
        );
    }
    assert_eq!(*w.google.refreshes.lock().unwrap(), 1);
    w.clock.advance(Duration::from_secs(1));
    let second = block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    assert_ne!(second, first);
    assert_eq!(*w.google.refreshes.lock().unwrap(), 2);
}

#[test]
fn callers_at_once_share_one_refresh() {
    let w = world();
    let calls: Vec<_> = (0..8)
        .map(|_| w.tokens.access_token(&w.grant, false))
        .collect();
    let tokens = block_on(futures_util::future::join_all(calls));
    assert!(
        tokens
            .iter()
            .all(|t| t.as_deref() == Ok("access-1-for-refresh-1"))
    );
    assert_eq!(*w.google.refreshes.lock().unwrap(), 1);
}

#[test]
fn another_replicas_claim_is_waited_for_then_taken_over_when_it_lapses() {
    let w = world();
    let now = w.clock.now_utc();
    let claim = block_on(w.store.claim_grant_refresh(
        &w.grant,
        "replica-b",
        now,
        now + chrono::Duration::seconds(5),
    ))
    .unwrap();
    assert!(matches!(claim, RefreshClaim::Claimed(_)), "{claim:?}");
    // Replica b holds it for 5 s: a waits (its timer advances the clock),
    // and takes it over once it lapses.
    let token = block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    assert_eq!(token, "access-1-for-refresh-1");
    assert!(w.clock.now_utc() >= now + chrono::Duration::seconds(5));
    // A claim held longer than the wait: a transient error, no refresh.
    let w = world();
    let now = w.clock.now_utc();
    block_on(w.store.claim_grant_refresh(
        &w.grant,
        "replica-b",
        now,
        now + chrono::Duration::minutes(10),
    ))
    .unwrap();
    let busy = block_on(w.tokens.access_token(&w.grant, false)).unwrap_err();
    assert_eq!(
        busy.provider_kind(),
        Some(ProviderErrorKind::Transient),
        "{busy}"
    );
    assert_eq!(*w.google.refreshes.lock().unwrap(), 0);
}

#[test]
fn a_rotated_refresh_token_is_saved_sealed() {
    let w = world();
    *w.google.rotate.lock().unwrap() = true;
    block_on(w.tokens.access_token(&w.grant, false)).unwrap();
    let stored = block_on(w.store.get_grant(&w.grant)).unwrap().unwrap();
    assert_eq!(
        stored.refresh_token,
        SealedSecret("sealed:rotated-1".into())
    );
    // The next refresh uses it.
    let token = block_on(w.tokens.access_token(&w.grant, true)).unwrap();
    assert_eq!(token, "access-2-for-rotated-1");
}

#[test]
fn invalid_grant_turns_the_grant_and_its_calendars_reconnect_required_once() {
    let w = world();
    let calendar = CalendarId::new("ana@example.com").unwrap();
    let now = w.clock.now_utc();
    block_on(w.store.upsert_calendar(&ManagedCalendar {
        calendar_id: calendar.clone(),
        subject: None,
        grant: Some(w.grant.clone()),
        created_at: now,
        updated_at: now,
    }))
    .unwrap();
    block_on(w.store.mark_dirty(&calendar, false)).unwrap();
    *w.google.revoked.lock().unwrap() = true;

    let refused = block_on(w.tokens.access_token(&w.grant, false)).unwrap_err();
    assert_eq!(
        refused.provider_kind(),
        Some(ProviderErrorKind::ReconnectRequired),
        "{refused}"
    );
    let stored = block_on(w.store.get_grant(&w.grant)).unwrap().unwrap();
    assert_eq!(stored.status, GrantStatus::ReconnectRequired);
    assert!(stored.last_error.unwrap().contains("invalid_grant"));
    let state = block_on(w.store.sync_state(&calendar)).unwrap().unwrap();
    assert!(state.reconnect_required);
    // Asked again: refused without asking Google, nothing recorded twice.
    let again = block_on(w.tokens.access_token(&w.grant, false)).unwrap_err();
    assert_eq!(
        again.provider_kind(),
        Some(ProviderErrorKind::ReconnectRequired)
    );
    let changes = block_on(w.store.read_changes(&ChangeQuery {
        limit: 100,
        ..ChangeQuery::default()
    }))
    .unwrap();
    let kinds: Vec<ChangeType> = changes.items.iter().map(|c| c.change.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeType::GrantReconnectRequired,
            ChangeType::CalendarReconnectRequired
        ]
    );
    assert_eq!(
        changes.items[0].change.detail.grant.as_deref(),
        Some(w.grant.as_str())
    );
}
