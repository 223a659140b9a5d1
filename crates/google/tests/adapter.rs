//! The adapter against the emulator, over real HTTP, with the real
//! service-account flow (an RSA key generated here, a JWT signed by
//! yup-oauth2, checked by the emulator's token endpoint).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ProviderErrorKind as Kind;
use calsync_domain::channel::WatchRequest;
use calsync_domain::event::{EventChanges, EventStatus, EventTime, NewEvent, NewEventFields};
use calsync_domain::ids::{CalendarId, ChannelId, EntityRef, Etag};
use calsync_domain::ports::{CalendarProvider, PatchCall};
use calsync_domain::services::{SyncMode, SyncService};
use calsync_domain::sync::ListRequest;
use calsync_domain::testing::{ManualClock, MemoryStore};
use calsync_domain::{Error, ports::Clock};
use calsync_emulator::{Change, Fault};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use serde_json::json;
use support::{adapter, fast_retries, setup, stranger_key_json};

const CAL: &str = "team@example.com";

fn cal() -> CalendarId {
    CalendarId::new(CAL).unwrap()
}

fn new_event() -> calsync_domain::event::Event {
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    NewEvent::new(
        cal(),
        EntityRef::new("deal", "42").unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        NewEventFields {
            summary: Some("Kick-off".into()),
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(chrono::Utc::now())
}

fn kind(result: Result<impl std::fmt::Debug, Error>) -> Kind {
    match result {
        Err(error) => error
            .provider_kind()
            .unwrap_or_else(|| panic!("not a provider error: {error:?}")),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

fn request(
    sync_token: Option<String>,
    page_token: Option<String>,
    max_results: u32,
) -> ListRequest {
    ListRequest {
        sync_token,
        page_token,
        max_results,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_by_page_and_continue_from_sync_tokens() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    setup.emulator.emulator.seed(CAL, 5).unwrap();
    let mut page_token = None;
    let mut pages = Vec::new();
    loop {
        let page = google
            .list_events(&cal(), &request(None, page_token, 2))
            .await
            .unwrap();
        page_token = page.next_page_token.clone();
        pages.push(page);
        if page_token.is_none() {
            break;
        }
    }
    assert_eq!(
        pages.iter().map(|p| p.events.len()).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert!(pages[..2].iter().all(|p| p.next_sync_token.is_none()));
    let token = pages[2]
        .next_sync_token
        .clone()
        .expect("a sync token on the last page");
    assert!(
        setup.emulator.emulator.calls("token") >= 1,
        "the service-account flow ran"
    );

    let mut fields = serde_json::Map::new();
    fields.insert("summary".into(), json!("changed"));
    let id = pages[0].events[0].id.to_string();
    setup
        .emulator
        .emulator
        .change(
            CAL,
            Change::Patch {
                id: id.clone(),
                fields,
            },
        )
        .unwrap();
    setup
        .emulator
        .emulator
        .change(
            CAL,
            Change::Delete {
                id: pages[0].events[1].id.to_string(),
            },
        )
        .unwrap();
    let changes = google
        .list_events(&cal(), &request(Some(token.clone()), None, 2500))
        .await
        .unwrap();
    assert_eq!(changes.events.len(), 2);
    assert_eq!(changes.events[0].summary.as_deref(), Some("changed"));
    assert_eq!(changes.events[1].status, EventStatus::Cancelled);
    assert_eq!(changes.events[1].start, None, "a bare stub");

    setup.emulator.emulator.invalidate_sync_tokens();
    let before = setup.emulator.emulator.calls("list");
    assert_eq!(
        kind(
            google
                .list_events(&cal(), &request(Some(token), None, 2500))
                .await
        ),
        Kind::SyncTokenExpired
    );
    assert_eq!(
        setup.emulator.emulator.calls("list") - before,
        1,
        "410 is not retried"
    );
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inserts_use_the_client_id_and_a_retry_is_a_duplicate() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = new_event();
    let created = google.insert_event(&event).await.unwrap();
    assert_eq!(created.id, event.google_event_id);
    assert_eq!(
        created.entity, event.entity,
        "the entity link is stored in Google"
    );
    assert!(created.etag.is_some() && created.updated.is_some());
    let stored = setup.emulator.emulator.events(CAL);
    assert_eq!(
        stored[0]["extendedProperties"]["private"]["entity_type"],
        "deal"
    );
    assert_eq!(
        setup
            .emulator
            .emulator
            .last_send_updates("insert")
            .as_deref(),
        Some("none"),
        "sendUpdates on every write"
    );
    assert_eq!(kind(google.insert_event(&event).await), Kind::Duplicate);
    let fetched = google
        .get_event(&cal(), &event.google_event_id)
        .await
        .unwrap();
    assert_eq!(fetched.entity, event.entity);
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_and_deletes_send_a_real_if_match_and_only_the_changed_fields() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = new_event();
    let created = google.insert_event(&event).await.unwrap();
    let call = |if_match: Option<Etag>| PatchCall {
        calendar_id: cal(),
        event_id: event.google_event_id.clone(),
        changes: EventChanges {
            summary: Some(Some("Renamed".into())),
            location: Some(None),
            ..EventChanges::default()
        },
        if_match,
    };
    let stale = Etag::new("\"0\"").unwrap();
    assert_eq!(
        kind(google.patch_event(&call(Some(stale.clone()))).await),
        Kind::PreconditionFailed
    );
    let patched = google
        .patch_event(&call(created.etag.clone()))
        .await
        .unwrap();
    assert_eq!(patched.summary.as_deref(), Some("Renamed"));
    assert_eq!(
        patched.location, None,
        "cleared: sent as \"\", read back as absent"
    );
    // Fields the patch does not name are left as Google has them.
    assert_eq!(patched.entity, event.entity);
    assert!(patched.start.is_some() && patched.end.is_some());
    assert_eq!(patched.attendees.len(), event.attendees.len());
    assert_eq!(patched.status, EventStatus::Confirmed);
    assert_ne!(patched.etag, created.etag);
    // The condition travels as a header: no read before the write.
    assert_eq!(setup.emulator.emulator.calls("get"), 0);
    assert_eq!(
        kind(
            google
                .delete_event(&cal(), &event.google_event_id, Some(&stale))
                .await
        ),
        Kind::PreconditionFailed
    );
    google
        .delete_event(&cal(), &event.google_event_id, patched.etag.as_ref())
        .await
        .unwrap();
    assert_eq!(
        kind(
            google
                .delete_event(&cal(), &event.google_event_id, None)
                .await
        ),
        Kind::Gone,
        "410 deleted"
    );
    // A patch without status does not undelete (Google restores an event
    // only when a write sets its status).
    assert_eq!(kind(google.patch_event(&call(None)).await), Kind::Gone);
    let at_google = google
        .get_event(&cal(), &event.google_event_id)
        .await
        .unwrap();
    assert_eq!(at_google.status, EventStatus::Cancelled);
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_calendar_is_not_accessible() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    assert!(google.calendar_accessible(&cal()).await.unwrap());
    setup
        .emulator
        .emulator
        .set_calendar_revoked(cal().as_str(), true);
    assert!(!google.calendar_accessible(&cal()).await.unwrap());
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_grants_an_expiry_and_stop_ends_the_channel() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let id = ChannelId::random();
    let watch = WatchRequest {
        channel_id: id.clone(),
        token: "t".repeat(64),
        address: "http://127.0.0.1:9/webhooks/calendar".into(),
        ttl: Duration::from_secs(3600),
    };
    let grant = google.watch(&cal(), &watch).await.unwrap();
    let expected = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(
        (grant.expiration - expected).num_seconds().abs() < 30,
        "{} vs {expected}",
        grant.expiration
    );
    google
        .stop_channel(&cal(), &id, &grant.resource_id)
        .await
        .unwrap();
    assert_eq!(
        kind(google.stop_channel(&cal(), &id, &grant.resource_id).await),
        Kind::NotFound
    );
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_are_retried_or_failed_fast_as_classified() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let emu = &setup.emulator.emulator;
    let (calendar, everything) = (cal(), request(None, None, 10));
    let list = || google.list_events(&calendar, &everything);
    // Warm the token so the counts below are list calls only.
    list().await.unwrap();

    let cases: Vec<(Vec<Fault>, Option<Kind>, u64)> = vec![
        (vec![Fault::status(503), Fault::status(500)], None, 3),
        (
            vec![Fault::status(403).with_reason("rateLimitExceeded")],
            None,
            2,
        ),
        (
            vec![Fault::status(403).with_reason("userRateLimitExceeded")],
            None,
            2,
        ),
        (vec![Fault::status(429)], None, 2),
        (vec![Fault::dropped()], None, 2),
        (
            vec![Fault::status(403).with_reason("quotaExceeded")],
            Some(Kind::QuotaExhausted),
            1,
        ),
        (
            vec![Fault::status(400).with_reason("invalid")],
            Some(Kind::Permanent),
            1,
        ),
        // Neither is helped by retrying soon: one call each.
        (
            vec![Fault::status(403).with_reason("requiredAccessLevel")],
            Some(Kind::ReadOnly),
            1,
        ),
        (
            vec![Fault::status(403).with_reason("forbiddenForNonOrganizer")],
            Some(Kind::NotOrganizer),
            1,
        ),
        (vec![Fault::status(404)], Some(Kind::ReconnectRequired), 1),
        (vec![Fault::status(503); 6], Some(Kind::Transient), 4),
    ];
    for (faults, expected, calls) in cases {
        let label = format!("{faults:?}");
        for fault in faults {
            emu.schedule_fault(Some("list"), 1, fault);
        }
        let before = emu.calls("list");
        match expected {
            None => assert!(list().await.is_ok(), "{label}"),
            Some(expected) => assert_eq!(kind(list().await), expected, "{label}"),
        }
        assert_eq!(emu.calls("list") - before, calls, "attempts for {label}");
        emu.set_faults(Default::default());
    }

    // Retry-After reaches the domain error (here with retries off, so no wait).
    let no_retries = adapter(&setup, fast_retries(0)).await;
    emu.schedule_fault(
        Some("list"),
        1,
        Fault {
            retry_after: Some(7),
            ..Fault::status(429)
        },
    );
    match no_retries
        .list_events(&cal(), &request(None, None, 10))
        .await
    {
        Err(Error::Provider {
            kind, retry_after, ..
        }) => {
            assert_eq!(
                (kind, retry_after),
                (Kind::RateLimited, Some(Duration::from_secs(7)))
            );
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_service_account_key_is_refused_by_the_token_endpoint() {
    let setup = setup().await;
    let other = stranger_key_json(&setup.emulator.token_url());
    let mut config = GoogleConfig::new(Credentials::ServiceAccount {
        key_json: other,
        subject: None,
    });
    config.api_base_url = setup.emulator.calendar_api_url();
    config.retry = fast_retries(1);
    let google = GoogleCalendar::new(config).await.unwrap();
    let result = google.list_events(&cal(), &request(None, None, 10)).await;
    assert_eq!(
        kind(result),
        Kind::ReconnectRequired,
        "invalid_grant needs a person"
    );
    assert_eq!(
        setup.emulator.emulator.calls("list"),
        0,
        "no API call without a token"
    );
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sync_service_converges_on_the_emulators_ground_truth() {
    let setup = setup().await;
    let google: Arc<dyn CalendarProvider> = Arc::new(adapter(&setup, fast_retries(3)).await);
    let store = MemoryStore::new();
    let clock = ManualClock::new(chrono::Utc::now());
    let sync =
        SyncService::new(google, store.clone(), store.clone(), clock.clone()).with_page_size(7);
    let emu = &setup.emulator.emulator;
    emu.seed(CAL, 30).unwrap();
    let first = sync
        .sync_calendar(&cal(), SyncMode::Auto, None)
        .await
        .unwrap();
    assert!(first.full);
    assert_eq!((first.pages, first.outcome.inserted), (5, 30));

    let http = ClientForAdmin::new(&setup.emulator.base_url);
    http.post(
        &format!("/emulator/calendars/{}/changes", "team%40example.com"),
        json!({"count": 25}),
    )
    .await;
    let second = sync
        .sync_calendar(&cal(), SyncMode::Auto, None)
        .await
        .unwrap();
    assert!(!second.full);

    let live_in_google: BTreeSet<String> = emu
        .events(CAL)
        .iter()
        .filter(|e| e["status"] != "cancelled")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let live_in_mirror: BTreeSet<String> = store
        .all_events()
        .iter()
        .filter(|e| e.status != EventStatus::Cancelled)
        .map(|e| e.google_event_id.to_string())
        .collect();
    assert_eq!(live_in_mirror, live_in_google);
    let _ = clock.now();
    setup.emulator.stop().await;
}

/// Just enough HTTP to drive the emulator's admin API.
struct ClientForAdmin {
    base: String,
}

impl ClientForAdmin {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_token_is_refreshed_once_then_needs_a_person() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let emu = &setup.emulator.emulator;
    google
        .list_events(&cal(), &request(None, None, 10))
        .await
        .unwrap();
    let (tokens, lists) = (emu.calls("token"), emu.calls("list"));
    emu.schedule_fault(Some("list"), 1, Fault::status(401));
    google
        .list_events(&cal(), &request(None, None, 10))
        .await
        .unwrap();
    assert_eq!(emu.calls("token") - tokens, 1, "a fresh token was fetched");
    assert_eq!(emu.calls("list") - lists, 2);
    emu.schedule_fault(Some("list"), 2, Fault::status(401));
    assert_eq!(
        kind(google.list_events(&cal(), &request(None, None, 10)).await),
        Kind::ReconnectRequired
    );
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_insert_counts_as_pushed_only_when_the_event_is_ours() {
    use calsync_domain::event::PushState;
    use calsync_domain::ports::EventStore;
    use calsync_domain::services::EventService;
    let setup = setup().await;
    let google: Arc<dyn CalendarProvider> = Arc::new(adapter(&setup, fast_retries(3)).await);
    let store = MemoryStore::new();
    let clock = ManualClock::new(chrono::Utc::now());
    let writes = EventService::new(google.clone(), store.clone(), store.clone(), clock.clone());
    let new = |id: &str| {
        NewEvent::new(
            cal(),
            EntityRef::new("deal", id).unwrap(),
            EventTime::at(clock.now(), None),
            EventTime::at(clock.now() + chrono::Duration::hours(1), None),
            NewEventFields::default(),
        )
        .unwrap()
    };
    // Our first try reached Google, but its answer was lost.
    let (ours, _) = writes.create(new("1")).await.unwrap();
    google.insert_event(&ours).await.unwrap();
    // Someone else's event, since deleted, holds the next id.
    let (theirs, _) = writes.create(new("2")).await.unwrap();
    let mut foreign = theirs.clone();
    foreign.entity = Some(EntityRef::new("ticket", "9").unwrap());
    google.insert_event(&foreign).await.unwrap();
    google
        .delete_event(&cal(), &theirs.google_event_id, None)
        .await
        .unwrap();

    let report = writes.drain_outbox("worker", 10).await.unwrap();
    assert_eq!((report.pushed, report.dead_lettered), (1, 1));
    assert_eq!(
        store.get_event(ours.id).await.unwrap().unwrap().push_state,
        PushState::Synced
    );
    assert_eq!(
        store
            .get_event(theirs.id)
            .await
            .unwrap()
            .unwrap()
            .push_state,
        PushState::Failed
    );
    setup.emulator.stop().await;
}
