//! Connected accounts' calendar lists kept in step with Google: a
//! calendar its account no longer lists stops being managed (its channel
//! stopped), one still listed stays, a list that cannot be read changes
//! nothing, and each pass covers only its slice of the grants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::calendar::{ManagedCalendar, Subject};
use calsync_domain::event::{EventStatus, EventTime};
use calsync_domain::feed::signature::SigningSecret;
use calsync_domain::feed::subscription::SealedSecret;
use calsync_domain::grant::TokenGrant;
use calsync_domain::grant::{AccountInfo, AuthorizationRequest, Grant, GrantId, GrantStatus};
use calsync_domain::ids::{CalendarId, EventId};
use calsync_domain::ports::{CalendarStore, Clock, GrantStore, OAuthProvider, SecretKeeper};
use calsync_domain::services::slice_of;
use calsync_domain::services::{CalendarListReport, GrantAdapters, Services, ServicesConfig};
use calsync_domain::sync::RemoteEvent;
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use calsync_domain::webhook::WebhookSecret;
use calsync_domain::{Error, ProviderErrorKind, Result};
use futures_executor::block_on;

/// No OAuth call is made by a calendar list pass.
struct NoOAuth;

#[async_trait]
impl OAuthProvider for NoOAuth {
    fn authorization_url(&self, _request: &AuthorizationRequest) -> String {
        unreachable!()
    }
    async fn exchange_code(&self, _code: &str, _verifier: &str) -> Result<TokenGrant> {
        unreachable!()
    }
    async fn refresh(&self, _refresh_token: &str) -> Result<TokenGrant> {
        unreachable!()
    }
    async fn revoke(&self, _token: &str) -> Result<()> {
        unreachable!()
    }
    async fn account(&self, _access_token: &str) -> Result<AccountInfo> {
        unreachable!()
    }
}

struct NoKeeper;

impl SecretKeeper for NoKeeper {
    fn new_signing_secret(&self) -> Result<SigningSecret> {
        unreachable!()
    }
    fn seal_bytes(&self, _plain: &[u8]) -> Result<SealedSecret> {
        unreachable!()
    }
    fn open_bytes(&self, _sealed: &SealedSecret) -> Result<Vec<u8>> {
        unreachable!()
    }
    fn sealed_with_current_key(&self, _sealed: &SealedSecret) -> bool {
        true
    }
}

struct World {
    services: Services,
    store: Arc<MemoryStore>,
    google: Arc<FakeCalendar>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let clock = ManualClock::fixed();
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let services = Services::new(
        store.clone(),
        google.clone(),
        clock.clone(),
        ServicesConfig {
            channel_ttl: Duration::from_secs(3600),
            ..ServicesConfig::new(
                WebhookSecret::new("webhook-secret-0123456789").unwrap(),
                "https://calsync.example.com/webhooks/calendar",
            )
        },
    )
    .with_grants(GrantAdapters {
        oauth: Arc::new(NoOAuth),
        keeper: Arc::new(NoKeeper),
    });
    World {
        services,
        store,
        google,
        clock,
    }
}

impl World {
    fn grant(&self, status: GrantStatus) -> GrantId {
        let now = self.clock.now();
        block_on(self.store.upsert_grant(&Grant {
            id: GrantId::random(),
            provider: "google".into(),
            email: "ana@example.com".into(),
            account: GrantId::random().to_string(),
            scopes: Vec::new(),
            status,
            refresh_token: SealedSecret("sealed".into()),
            created_at: now,
            updated_at: now,
            last_refresh_at: None,
            last_error: None,
        }))
        .unwrap()
        .id
    }

    /// A calendar that exists at Google (it holds an event), managed
    /// through `grant` or as `subject`, with a channel.
    fn managed(&self, id: &str, grant: Option<&GrantId>, subject: Option<&str>) -> CalendarId {
        let calendar = CalendarId::new(id).unwrap();
        let start = self.clock.now() + chrono::Duration::days(1);
        self.google.put(
            &calendar,
            RemoteEvent {
                status: EventStatus::Confirmed,
                start: Some(EventTime::at(start, None)),
                end: Some(EventTime::at(start + chrono::Duration::hours(1), None)),
                ..RemoteEvent::cancelled_stub(EventId::new(format!("ev{}", id.len())).unwrap())
            },
        );
        let now = self.clock.now();
        block_on(self.store.upsert_calendar(&ManagedCalendar {
            calendar_id: calendar.clone(),
            subject: subject.map(|s| Subject::new(s).unwrap()),
            grant: grant.cloned(),
            created_at: now,
            updated_at: now,
        }))
        .unwrap();
        block_on(self.services.channels.create(&calendar)).unwrap();
        calendar
    }

    fn is_managed(&self, calendar: &CalendarId) -> bool {
        block_on(self.store.get_calendar(calendar))
            .unwrap()
            .is_some()
    }

    fn pass(&self, slice: u32, slices: u32) -> CalendarListReport {
        let grants = self.services.grants.as_ref().unwrap();
        block_on(grants.reconcile_calendar_lists(slice, slices)).unwrap()
    }
}

#[test]
fn a_calendar_the_account_no_longer_lists_stops_being_managed() {
    let w = world();
    let grant = w.grant(GrantStatus::Active);
    let kept = w.managed("kept@example.com", Some(&grant), None);
    let dropped = w.managed("dropped@example.com", Some(&grant), None);
    // Managed as a subject: not the grant's to let go, even if unlisted.
    let delegated = w.managed("delegated@example.com", None, Some("bob@example.com"));
    let channels = w.google.active_channels().len();
    assert_eq!(channels, 3);

    // Nothing removed from the account: nothing changes.
    let report = w.pass(0, 1);
    assert_eq!(
        report,
        CalendarListReport {
            grants: 1,
            unmanaged: Vec::new(),
            failed: 0,
        }
    );

    // The account loses the calendar (deleted, or its sharing removed).
    w.google.set_unreachable(&dropped, true);
    w.google.set_unreachable(&delegated, true);
    let report = w.pass(0, 1);
    assert_eq!(report.unmanaged, vec![dropped.clone()]);
    assert!(!w.is_managed(&dropped));
    assert!(w.is_managed(&kept));
    assert!(w.is_managed(&delegated));
    // Its channel is stopped (Google's 404 for it counts as stopped).
    assert_eq!(w.google.active_channels().len(), channels - 1);

    // Again: nothing left to let go.
    assert!(w.pass(0, 1).unmanaged.is_empty());
}

#[test]
fn a_list_that_cannot_be_read_changes_nothing() {
    let w = world();
    let grant = w.grant(GrantStatus::Active);
    let calendar = w.managed("team@example.com", Some(&grant), None);
    w.google.set_unreachable(&calendar, true);
    w.google.fail_next(
        Some("calendar_list"),
        Error::provider(ProviderErrorKind::Transient, "backend error"),
    );
    let report = w.pass(0, 1);
    assert_eq!((report.grants, report.failed), (1, 1));
    assert!(report.unmanaged.is_empty());
    assert!(w.is_managed(&calendar));
    // The next pass reads it.
    assert_eq!(w.pass(0, 1).unmanaged, vec![calendar.clone()]);
    assert!(!w.is_managed(&calendar));
}

#[test]
fn a_grant_is_read_only_in_its_slice_and_only_while_active() {
    let w = world();
    let active = w.grant(GrantStatus::Active);
    let refused = w.grant(GrantStatus::ReconnectRequired);
    let a = w.managed("a@example.com", Some(&active), None);
    let r = w.managed("r@example.com", Some(&refused), None);
    w.google.set_unreachable(&a, true);
    w.google.set_unreachable(&r, true);
    let slices = 12;
    let own = slice_of(active.as_str(), slices);
    let other = (own + 1) % slices;
    if slice_of(refused.as_str(), slices) != other {
        assert_eq!(w.pass(other, slices).grants, 0);
        assert!(w.is_managed(&a));
    }
    let before = w.google.calls("calendar_list");
    let report = w.pass(own, slices);
    assert_eq!(report.unmanaged, vec![a.clone()]);
    // A grant waiting for its account to reconnect is not read (Google
    // would refuse it), and its calendars are kept for when it does.
    assert!(w.is_managed(&r));
    for slice in 0..slices {
        w.pass(slice, slices);
    }
    assert!(w.is_managed(&r));
    assert_eq!(w.google.calls("calendar_list"), before + 1);
}
