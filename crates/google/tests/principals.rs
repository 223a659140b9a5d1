//! Many calendars, many principals: each managed calendar is read and
//! written as its own subject (asserted at the emulator by the token's
//! `sub`), and Google's quota and service-account errors are classified
//! as calsync must treat them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ProviderErrorKind;
use calsync_domain::calendar::{ManagedCalendar, Subject};
use calsync_domain::channel::WatchRequest;
use calsync_domain::event::{Attendee, EventTime, NewEvent, NewEventFields};
use calsync_domain::ids::{CalendarId, ChannelId, EntityRef};
use calsync_domain::ports::{CalendarProvider, CalendarStore};
use calsync_domain::sync::ListRequest;
use calsync_domain::testing::MemoryStore;
use calsync_emulator::{EmulatorConfig, Fault};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use chrono::Utc;
use support::{Setup, fast_retries, setup, setup_with};

const SERVICE_ACCOUNT: &str = "calsync@calsync-test.iam.gserviceaccount.com";

async fn adapter_for(setup: &Setup, calendars: Option<Arc<dyn CalendarStore>>) -> GoogleCalendar {
    let mut config = GoogleConfig::new(Credentials::ServiceAccount {
        key_json: setup.key_json.clone(),
        subject: None,
    });
    config.api_base_url = setup.emulator.calendar_api_url();
    config.retry = fast_retries(2);
    config.request_timeout = Duration::from_secs(5);
    config.calendars = calendars;
    GoogleCalendar::new(config).await.unwrap()
}

fn event(calendar: &CalendarId, attendees: Vec<Attendee>) -> calsync_domain::event::Event {
    let start = Utc::now() + chrono::Duration::days(1);
    NewEvent::new(
        calendar.clone(),
        EntityRef::new("deal", "1").unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        NewEventFields {
            attendees,
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(Utc::now())
}

async fn manage(store: &MemoryStore, calendar: &CalendarId, subject: Option<&str>) {
    store
        .upsert_calendar(&ManagedCalendar {
            calendar_id: calendar.clone(),
            subject: subject.map(|s| Subject::new(s).unwrap()),
            grant: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[tokio::test]
async fn two_calendars_under_two_subjects_sync_and_write_as_their_own_principals() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let (ann, bob, room) = (
        CalendarId::new("ann@example.com").unwrap(),
        CalendarId::new("bob@example.com").unwrap(),
        CalendarId::new("room-1@example.com").unwrap(),
    );
    manage(&store, &ann, Some("ann@example.com")).await;
    manage(&store, &bob, Some("bob@example.com")).await;
    manage(&store, &room, None).await;
    let google = adapter_for(&setup, Some(store.clone())).await;
    let list = ListRequest {
        sync_token: None,
        page_token: None,
        max_results: 250,
    };
    for calendar in [&ann, &bob, &room] {
        google.insert_event(&event(calendar, vec![])).await.unwrap();
        google.list_events(calendar, &list).await.unwrap();
    }
    let emulator = &setup.emulator.emulator;
    assert_eq!(
        emulator.principals_for("ann@example.com"),
        set(&["ann@example.com"])
    );
    assert_eq!(
        emulator.principals_for("bob@example.com"),
        set(&["bob@example.com"])
    );
    assert_eq!(
        emulator.principals_for("room-1@example.com"),
        set(&[SERVICE_ACCOUNT]),
        "a calendar without a subject is read as the service account itself"
    );
    assert_eq!(
        emulator.last_writer("bob@example.com").as_deref(),
        Some("bob@example.com")
    );
}

#[tokio::test]
async fn a_channel_watched_as_a_subject_is_stopped_as_that_subject() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let (ann, bob) = (
        CalendarId::new("ann@example.com").unwrap(),
        CalendarId::new("bob@example.com").unwrap(),
    );
    manage(&store, &ann, Some("ann@example.com")).await;
    manage(&store, &bob, Some("bob@example.com")).await;
    let google = adapter_for(&setup, Some(store.clone())).await;
    let emulator = &setup.emulator.emulator;
    let watch = |calendar: &str| WatchRequest {
        channel_id: ChannelId::random(),
        token: "t".repeat(64),
        address: format!("http://127.0.0.1:9/webhooks/calendar/{calendar}"),
        ttl: Duration::from_secs(3600),
    };
    let (ann_watch, bob_watch) = (watch("ann"), watch("bob"));
    let ann_grant = google.watch(&ann, &ann_watch).await.unwrap();
    let bob_grant = google.watch(&bob, &bob_watch).await.unwrap();
    assert_eq!(
        emulator.principals_for("ann@example.com"),
        set(&["ann@example.com"])
    );
    let before = emulator.calls_by_principal();

    // The emulator refuses a stop by any principal but the watch's, so this
    // fails if the stop is made as the default principal (the service account).
    google
        .stop_channel(&ann, &ann_watch.channel_id, &ann_grant.resource_id)
        .await
        .unwrap();
    let after = emulator.calls_by_principal();
    let calls =
        |by: &std::collections::BTreeMap<String, u64>, who: &str| by.get(who).copied().unwrap_or(0);
    assert_eq!(
        calls(&after, "ann@example.com"),
        calls(&before, "ann@example.com") + 1,
        "the stop was made as ann: {after:?}"
    );
    assert_eq!(
        calls(&after, SERVICE_ACCOUNT),
        calls(&before, SERVICE_ACCOUNT),
        "not as the service account: {after:?}"
    );
    assert_eq!(emulator.channel_count(), 1, "bob's channel is still live");

    // Naming the wrong calendar acts as its principal, whom Google does not
    // let stop another's channel.
    let error = google
        .stop_channel(&ann, &bob_watch.channel_id, &bob_grant.resource_id)
        .await
        .unwrap_err();
    assert_eq!(
        error.provider_kind(),
        Some(ProviderErrorKind::NotFound),
        "{error}"
    );
    google
        .stop_channel(&bob, &bob_watch.channel_id, &bob_grant.resource_id)
        .await
        .unwrap();
    assert_eq!(emulator.channel_count(), 0);
}

#[tokio::test]
async fn spent_quota_is_its_own_kind_and_is_not_retried_in_the_call() {
    let setup = setup().await;
    let google = adapter_for(&setup, None).await;
    let emulator = &setup.emulator.emulator;
    emulator.schedule_fault(
        Some("insert"),
        1,
        Fault::status(403).with_reason("quotaExceeded"),
    );
    let calendar = CalendarId::new("team@example.com").unwrap();
    let error = google
        .insert_event(&event(&calendar, vec![]))
        .await
        .unwrap_err();
    assert_eq!(
        error.provider_kind(),
        Some(ProviderErrorKind::QuotaExhausted),
        "{error}"
    );
    assert_eq!(
        emulator.calls("insert"),
        1,
        "hours-long limits are not retried in-call"
    );
}

#[tokio::test]
async fn a_service_account_without_a_subject_cannot_invite() {
    let setup = setup_with(EmulatorConfig {
        forbid_service_account_attendees: true,
        ..EmulatorConfig::default()
    })
    .await;
    let store = MemoryStore::new();
    let (plain, delegated) = (
        CalendarId::new("plain@example.com").unwrap(),
        CalendarId::new("dana@example.com").unwrap(),
    );
    manage(&store, &delegated, Some("dana@example.com")).await;
    let google = adapter_for(&setup, Some(store.clone())).await;
    let guests = vec![Attendee::new("guest@example.com").unwrap()];
    let error = google
        .insert_event(&event(&plain, guests.clone()))
        .await
        .unwrap_err();
    assert_eq!(error.provider_kind(), Some(ProviderErrorKind::Permanent));
    assert!(
        error.to_string().contains("forbiddenForServiceAccounts"),
        "{error}"
    );
    google
        .insert_event(&event(&delegated, guests))
        .await
        .unwrap();
}
