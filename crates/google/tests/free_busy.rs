//! `freebusy.query` through the adapter against the emulator, over real
//! HTTP as a service account: busy time from events made at Google,
//! per-calendar errors, one call per subject, and refused windows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ProviderErrorKind;
use calsync_domain::calendar::{ManagedCalendar, Subject};
use calsync_domain::freebusy::{Interval, RemoteCalendarBusy, RemoteFreeBusyQuery};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::{CalendarProvider, CalendarStore};
use calsync_domain::testing::MemoryStore;
use calsync_emulator::{Change, Fault};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use support::{Setup, adapter, fast_retries, setup};

const SERVICE_ACCOUNT: &str = "calsync@calsync-test.iam.gserviceaccount.com";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn interval(start: &str, end: &str) -> Interval {
    Interval::new(at(start), at(end)).unwrap()
}

fn cal(id: &str) -> CalendarId {
    CalendarId::new(id).unwrap()
}

fn query(calendars: &[&CalendarId], time_zone: Option<&str>) -> RemoteFreeBusyQuery {
    RemoteFreeBusyQuery {
        time_min: at("2026-03-01T00:00:00Z"),
        time_max: at("2026-04-01T00:00:00Z"),
        time_zone: time_zone.map(str::to_owned),
        calendars: calendars.iter().map(|c| (*c).clone()).collect(),
    }
}

fn body(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

/// Makes an event "in Google", as another user would.
fn put(setup: &Setup, calendar: &CalendarId, event: Value) {
    setup
        .emulator
        .emulator
        .change(calendar.as_str(), Change::Insert(body(event)))
        .unwrap();
}

fn meeting(id: &str, start: &str, end: &str) -> Value {
    json!({"id": id, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

async fn adapter_with_subjects(setup: &Setup, store: Arc<dyn CalendarStore>) -> GoogleCalendar {
    let mut config = GoogleConfig::new(Credentials::ServiceAccount {
        key_json: setup.key_json.clone(),
        subject: None,
    });
    config.api_base_url = setup.emulator.calendar_api_url();
    config.retry = fast_retries(2);
    config.request_timeout = Duration::from_secs(5);
    config.calendars = Some(store);
    GoogleCalendar::new(config).await.unwrap()
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

#[tokio::test(flavor = "multi_thread")]
async fn busy_time_per_calendar_in_request_order_with_google_errors() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(2)).await;
    let (team, gone, empty) = (
        cal("team@example.com"),
        cal("gone@example.com"),
        cal("empty@example.com"),
    );
    // A weekly series whose second occurrence moved and third was
    // cancelled, a transparent event, and an all-day event.
    put(
        &setup,
        &team,
        json!({
            "id": "standup001",
            "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T10:30:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        }),
    );
    let emulator = &setup.emulator.emulator;
    emulator
        .change(
            team.as_str(),
            Change::Patch {
                id: "standup001_20260309T100000Z".into(),
                fields: body(json!({
                    "start": {"dateTime": "2026-03-09T15:00:00Z", "timeZone": "UTC"},
                    "end": {"dateTime": "2026-03-09T16:00:00Z", "timeZone": "UTC"},
                })),
            },
        )
        .unwrap();
    emulator
        .change(
            team.as_str(),
            Change::Delete {
                id: "standup001_20260316T100000Z".into(),
            },
        )
        .unwrap();
    let mut transparent = meeting(
        "transparent1",
        "2026-03-03T09:00:00Z",
        "2026-03-03T10:00:00Z",
    );
    transparent["transparency"] = json!("transparent");
    put(&setup, &team, transparent);
    put(
        &setup,
        &team,
        json!({"id": "offsite001", "start": {"date": "2026-03-20"}, "end": {"date": "2026-03-21"}}),
    );
    emulator.set_calendar_revoked(gone.as_str(), true);

    let answers = google
        .free_busy(&query(&[&gone, &team, &empty], Some("Europe/Berlin")))
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            RemoteCalendarBusy {
                calendar_id: gone.clone(),
                busy: vec![],
                errors: vec!["notFound".into()],
            },
            RemoteCalendarBusy {
                calendar_id: team.clone(),
                busy: vec![
                    interval("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z"),
                    interval("2026-03-09T15:00:00Z", "2026-03-09T16:00:00Z"),
                    // Midnight to midnight in Berlin (UTC+1 in March).
                    interval("2026-03-19T23:00:00Z", "2026-03-20T23:00:00Z"),
                ],
                errors: vec![],
            },
            RemoteCalendarBusy {
                calendar_id: empty.clone(),
                busy: vec![],
                errors: vec![],
            },
        ]
    );
    assert_eq!(emulator.calls("freebusy"), 1, "one call for one principal");
    assert!(
        google
            .free_busy(&query(&[], None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(emulator.calls("freebusy"), 1, "nothing asked, no call");
}

#[tokio::test(flavor = "multi_thread")]
async fn calendars_of_different_subjects_are_asked_as_each_subject() {
    let setup = setup().await;
    let store = MemoryStore::new();
    let (ann, bob, ann_room, room) = (
        cal("ann@example.com"),
        cal("bob@example.com"),
        cal("ann-room@example.com"),
        cal("room@example.com"),
    );
    manage(&store, &ann, Some("ann@example.com")).await;
    manage(&store, &bob, Some("bob@example.com")).await;
    manage(&store, &ann_room, Some("ann@example.com")).await;
    manage(&store, &room, None).await;
    let google = adapter_with_subjects(&setup, store.clone()).await;
    for (calendar, hour) in [(&ann, 9), (&bob, 10), (&ann_room, 11), (&room, 12)] {
        put(
            &setup,
            calendar,
            meeting(
                "meeting001",
                &format!("2026-03-02T{hour:02}:00:00Z"),
                &format!("2026-03-02T{hour:02}:30:00Z"),
            ),
        );
    }
    let answers = google
        .free_busy(&query(&[&ann, &bob, &ann_room, &room], None))
        .await
        .unwrap();
    let got: Vec<(&str, Vec<Interval>)> = answers
        .iter()
        .map(|a| (a.calendar_id.as_str(), a.busy.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "ann@example.com",
                vec![interval("2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z")]
            ),
            (
                "bob@example.com",
                vec![interval("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z")]
            ),
            (
                "ann-room@example.com",
                vec![interval("2026-03-02T11:00:00Z", "2026-03-02T11:30:00Z")]
            ),
            (
                "room@example.com",
                vec![interval("2026-03-02T12:00:00Z", "2026-03-02T12:30:00Z")]
            ),
        ],
        "answers in request order"
    );
    let emulator = &setup.emulator.emulator;
    assert_eq!(emulator.calls("freebusy"), 3, "one call per subject");
    let only = |name: &str| BTreeSet::from([name.to_owned()]);
    assert_eq!(
        emulator.principals_for("ann@example.com"),
        only("ann@example.com")
    );
    assert_eq!(
        emulator.principals_for("ann-room@example.com"),
        only("ann@example.com")
    );
    assert_eq!(
        emulator.principals_for("bob@example.com"),
        only("bob@example.com")
    );
    assert_eq!(
        emulator.principals_for("room@example.com"),
        only(SERVICE_ACCOUNT)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_windows_fail_and_too_many_calendars_carry_googles_error() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(2)).await;
    let team = cal("team@example.com");
    let mut long = query(&[&team], None);
    long.time_max = long.time_min + chrono::Duration::days(91);
    let error = google.free_busy(&long).await.unwrap_err();
    assert_eq!(error.provider_kind(), Some(ProviderErrorKind::Permanent));
    assert!(error.to_string().contains("timeRangeTooLong"), "{error}");
    let mut empty = query(&[&team], None);
    empty.time_max = empty.time_min;
    let error = google.free_busy(&empty).await.unwrap_err();
    assert!(error.to_string().contains("timeRangeEmpty"), "{error}");

    // The adapter does not chunk: past Google's 50, Google's answer says so.
    let many: Vec<CalendarId> = (0..51)
        .map(|i| cal(&format!("room-{i}@example.com")))
        .collect();
    let answers = google
        .free_busy(&query(&many.iter().collect::<Vec<_>>(), None))
        .await
        .unwrap();
    assert_eq!(answers.len(), 51);
    assert!(
        answers
            .iter()
            .all(|a| a.errors == ["tooManyCalendarsRequested"] && a.busy.is_empty())
    );

    // Transient failures are retried like any call's.
    let emulator = &setup.emulator.emulator;
    let before = emulator.calls("freebusy");
    emulator.schedule_fault(Some("freebusy"), 1, Fault::status(503));
    let answers = google.free_busy(&query(&[&team], None)).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(emulator.calls("freebusy"), before + 2);
}
