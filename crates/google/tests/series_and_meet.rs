//! Recurring series, occurrence ids, event types and Meet conferences
//! through the adapter, against the emulator over HTTP (as `adapter.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use calsync_domain::ProviderErrorKind as Kind;
use calsync_domain::event::{
    ConferenceStatus, Event, EventChanges, EventStatus, EventTime, EventType, NewEvent,
    NewEventFields, TimeZoneName,
};
use calsync_domain::ids::{CalendarId, EntityRef, EventId};
use calsync_domain::ports::{CalendarProvider, PatchCall};
use calsync_emulator::{Change, Fault};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use support::{adapter, fast_retries, setup};

const CAL: &str = "team@example.com";

fn cal() -> CalendarId {
    CalendarId::new(CAL).unwrap()
}

fn berlin() -> Option<TimeZoneName> {
    Some(TimeZoneName::new("Europe/Berlin").unwrap())
}

/// Mondays and Wednesdays at 09:00 Berlin from Monday 2 March 2026
/// (08:00 UTC), but not on 9 March.
fn series() -> Event {
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    NewEvent::new(
        cal(),
        EntityRef::new("deal", "7").unwrap(),
        EventTime::at(start, berlin()),
        EventTime::at(start + chrono::Duration::minutes(15), berlin()),
        NewEventFields {
            summary: Some("Stand-up".into()),
            recurrence: vec![
                "RRULE:FREQ=WEEKLY;BYDAY=MO,WE".into(),
                "EXDATE;TZID=Europe/Berlin:20260309T090000".into(),
            ],
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(Utc::now())
}

fn meeting(meet: bool) -> Event {
    let start = Utc::now() + chrono::Duration::days(1);
    NewEvent::new(
        cal(),
        EntityRef::new("deal", "42").unwrap(),
        EventTime::at(start, None),
        EventTime::at(start + chrono::Duration::hours(1), None),
        NewEventFields {
            summary: Some("Kick-off".into()),
            meet,
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(Utc::now())
}

fn patch(id: &EventId, changes: EventChanges) -> PatchCall {
    PatchCall {
        calendar_id: cal(),
        event_id: id.clone(),
        changes,
        if_match: None,
    }
}

fn kind<T: std::fmt::Debug>(result: Result<T, calsync_domain::Error>) -> Kind {
    match result {
        Err(error) => error
            .provider_kind()
            .unwrap_or_else(|| panic!("not a provider error: {error:?}")),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

fn stored(events: &[Value], id: &str) -> Option<Value> {
    events.iter().find(|e| e["id"] == id).cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recurring_insert_round_trips_its_rules_and_zone() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = series();
    let created = google.insert_event(&event).await.unwrap();
    assert_eq!(created.recurrence, event.recurrence);
    assert_eq!(created.start, Some(event.start.clone()), "zone kept");
    assert_eq!(created.event_type, EventType::Default, "Google's default");
    let fetched = google
        .get_event(&cal(), &event.google_event_id)
        .await
        .unwrap();
    assert_eq!(fetched.recurrence, event.recurrence);
    assert_eq!(fetched.recurring_event_id, None);
    let verbatim = fetched.google.expect("the resource is kept");
    assert_eq!(
        verbatim["recurrence"][1],
        "EXDATE;TZID=Europe/Berlin:20260309T090000"
    );
    assert_eq!(verbatim["start"]["timeZone"], "Europe/Berlin");
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn occurrence_ids_get_patch_and_delete_as_exceptions() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = series();
    google.insert_event(&event).await.unwrap();
    let master = event.google_event_id.clone();
    let wednesday = EventId::new(format!("{master}_20260304T080000Z")).unwrap();
    let original = EventTime::at(Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap(), berlin());

    let occurrence = google.get_event(&cal(), &wednesday).await.unwrap();
    assert_eq!(occurrence.id, wednesday);
    assert_eq!(occurrence.recurring_event_id.as_ref(), Some(&master));
    assert_eq!(
        occurrence.original_start.as_ref().map(EventTime::sort_key),
        Some(original.sort_key())
    );

    let moved_start = Utc.with_ymd_and_hms(2026, 3, 4, 9, 0, 0).unwrap();
    let exception = google
        .patch_event(&patch(
            &wednesday,
            EventChanges {
                summary: Some(Some("Stand-up (moved)".into())),
                start: Some(EventTime::at(moved_start, berlin())),
                end: Some(EventTime::at(
                    moved_start + chrono::Duration::minutes(15),
                    berlin(),
                )),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(exception.id, wednesday);
    assert_eq!(exception.summary.as_deref(), Some("Stand-up (moved)"));
    assert_eq!(exception.recurring_event_id.as_ref(), Some(&master));
    assert_eq!(
        exception.original_start.as_ref().map(EventTime::sort_key),
        Some(original.sort_key()),
        "the occurrence it replaces"
    );
    assert!(exception.recurrence.is_empty());
    let at_google = stored(&setup.emulator.emulator.events(CAL), wednesday.as_str())
        .expect("the patch stored an exception");
    assert_eq!(at_google["recurringEventId"], master.as_str());

    // Deleting an occurrence leaves a cancelled exception of the series.
    let monday = EventId::new(format!("{master}_20260316T080000Z")).unwrap();
    google.delete_event(&cal(), &monday, None).await.unwrap();
    let cancelled = google.get_event(&cal(), &monday).await.unwrap();
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert_eq!(cancelled.recurring_event_id.as_ref(), Some(&master));

    // An occurrence cannot carry a recurrence of its own.
    let refused = google
        .patch_event(&patch(
            &wednesday,
            EventChanges {
                recurrence: Some(vec!["RRULE:FREQ=DAILY".into()]),
                ..EventChanges::default()
            },
        ))
        .await;
    assert_eq!(kind(refused), Kind::Permanent);
    // No such occurrence (the EXDATE removed 9 March).
    let excluded = EventId::new(format!("{master}_20260309T080000Z")).unwrap();
    assert_eq!(
        kind(google.get_event(&cal(), &excluded).await),
        Kind::NotFound
    );
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_changes_or_ends_the_recurrence() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = series();
    google.insert_event(&event).await.unwrap();
    let id = event.google_event_id.clone();
    let changed = google
        .patch_event(&patch(
            &id,
            EventChanges {
                recurrence: Some(vec!["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4".into()]),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        changed.recurrence,
        vec!["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4"]
    );
    let ended = google
        .patch_event(&patch(
            &id,
            EventChanges {
                recurrence: Some(Vec::new()),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    assert!(ended.recurrence.is_empty(), "[] cleared it at Google");
    let at_google = stored(&setup.emulator.emulator.events(CAL), id.as_str()).unwrap();
    assert!(
        at_google
            .get("recurrence")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        "{at_google}"
    );
    // A patch that does not name the recurrence leaves it.
    let series_again = series();
    google.insert_event(&series_again).await.unwrap();
    let renamed = google
        .patch_event(&patch(
            &series_again.google_event_id,
            EventChanges {
                summary: Some(Some("Daily".into())),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(renamed.recurrence, series_again.recurrence);
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_meet_request_makes_one_conference_even_when_the_insert_is_retried() {
    let setup = setup().await;
    let emu = &setup.emulator.emulator;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = meeting(true);
    let request_id = format!("calsync-{}", event.id);
    // Google carries the insert out, the answer is lost, the adapter sends
    // it again: the id is taken (409), and the conference was made once.
    emu.schedule_fault(Some("insert"), 1, Fault::apply_then_drop());
    assert_eq!(kind(google.insert_event(&event).await), Kind::Duplicate);
    assert_eq!(emu.calls("insert"), 2, "the insert was retried");
    assert_eq!(emu.conferences_created(CAL), 1);
    let fetched = google
        .get_event(&cal(), &event.google_event_id)
        .await
        .unwrap();
    let conference = fetched.details.conference.clone().expect("a conference");
    assert_eq!(conference.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(conference.solution.as_deref(), Some("hangoutsMeet"));
    assert!(!conference.needs_creating());
    let conference_id = conference.conference_id.clone().expect("an id");

    // Another insert with the same request id (an insert retried under a
    // new event id) gets the same conference: none is made.
    let mut again = meeting(false);
    again.details.conference = event.details.conference.clone();
    let second = google.insert_event(&again).await.unwrap();
    assert_eq!(emu.conferences_created(CAL), 1);
    assert_eq!(
        second
            .details
            .conference
            .and_then(|c| c.conference_id)
            .as_deref(),
        Some(conference_id.as_str())
    );
    // An event without the request gets none.
    let plain = google.insert_event(&meeting(false)).await.unwrap();
    assert_eq!(plain.details.conference, None);
    assert_eq!(plain.details.hangout_link, None);
    assert_eq!(emu.conferences_created(CAL), 1);
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conference_goes_from_pending_to_a_link_and_survives_a_patch() {
    let setup = setup().await;
    let emu = &setup.emulator.emulator;
    let google = adapter(&setup, fast_retries(3)).await;
    let event = meeting(true);
    let created = google.insert_event(&event).await.unwrap();
    let pending = created.details.conference.expect("asked for");
    assert_eq!(pending.status, ConferenceStatus::Pending);
    assert_eq!(created.details.hangout_link, None);
    let ready = google
        .get_event(&cal(), &event.google_event_id)
        .await
        .unwrap();
    let conference = ready.details.conference.clone().expect("a conference");
    assert_eq!(conference.status, ConferenceStatus::Success);
    let link = ready.details.hangout_link.clone().expect("a Meet link");
    assert!(link.starts_with("https://meet.google.com/"), "{link}");
    assert!(
        conference
            .entry_points
            .iter()
            .any(|p| p.entry_point_type == "video" && p.uri == link)
    );
    let patched = google
        .patch_event(&patch(
            &event.google_event_id,
            EventChanges {
                summary: Some(Some("Kick-off (v2)".into())),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(patched.details.conference, Some(conference));
    assert_eq!(patched.details.hangout_link, Some(link));
    assert_eq!(emu.conferences_created(CAL), 1);
    setup.emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_types_made_in_google_read_back_with_their_properties() {
    let setup = setup().await;
    let emu = &setup.emulator.emulator;
    let google = adapter(&setup, fast_retries(3)).await;
    let seeded = |body: Value| {
        let Value::Object(body) = body else {
            panic!("an object")
        };
        let made = emu.change(CAL, Change::Insert(body)).unwrap();
        EventId::new(made["id"].as_str().unwrap()).unwrap()
    };
    let birthday = seeded(json!({
        "summary": "Ann's birthday",
        "start": {"date": "2026-04-12"}, "end": {"date": "2026-04-13"},
        "recurrence": ["RRULE:FREQ=YEARLY"],
        "visibility": "private", "transparency": "transparent",
        "eventType": "birthday",
        "birthdayProperties": {"type": "birthday", "contact": "people/c1"}
    }));
    let office = seeded(json!({
        "summary": "Office",
        "start": {"date": "2026-03-05"}, "end": {"date": "2026-03-06"},
        "visibility": "public", "transparency": "transparent",
        "eventType": "workingLocation",
        "workingLocationProperties": {"type": "officeLocation", "officeLocation": {"label": "HQ"}}
    }));
    let read = google.get_event(&cal(), &birthday).await.unwrap();
    assert_eq!(read.event_type, EventType::Birthday);
    assert_eq!(read.details.visibility.as_deref(), Some("private"));
    assert_eq!(
        read.google.unwrap()["birthdayProperties"]["contact"],
        "people/c1"
    );
    let read = google.get_event(&cal(), &office).await.unwrap();
    assert_eq!(read.event_type, EventType::WorkingLocation);
    assert_eq!(
        read.google.unwrap()["workingLocationProperties"]["officeLocation"]["label"],
        "HQ"
    );
    // Google refuses what a type does not allow: a permanent failure.
    let refused = google
        .patch_event(&patch(
            &birthday,
            EventChanges {
                location: Some(Some("Berlin".into())),
                ..EventChanges::default()
            },
        ))
        .await;
    assert_eq!(kind(refused), Kind::Permanent);
    // An API insert without a type is a default event.
    let plain = google.insert_event(&meeting(false)).await.unwrap();
    assert_eq!(plain.event_type, EventType::Default);
    assert_eq!(plain.google.unwrap()["eventType"], "default");
    setup.emulator.stop().await;
}

/// A conference calsync did not ask for (made in Google's UI, or by
/// another client) is left alone by calsync's patches: the patch names no
/// conference data and goes with `conferenceDataVersion` 0.
#[tokio::test(flavor = "multi_thread")]
async fn a_conference_made_in_google_survives_a_patch() {
    let setup = setup().await;
    let emu = &setup.emulator.emulator;
    let google = adapter(&setup, fast_retries(3)).await;
    let start = Utc::now() + chrono::Duration::days(2);
    let Value::Object(body) = json!({
        "summary": "Made in Google",
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
        "hangoutLink": "https://meet.google.com/abc-defg-hij",
        "conferenceData": {
            "createRequest": {"requestId": "made-in-the-ui",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
                "status": {"statusCode": "success"}},
            "entryPoints": [{"entryPointType": "video",
                "uri": "https://meet.google.com/abc-defg-hij"}],
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
            "conferenceId": "abc-defg-hij"
        }
    }) else {
        panic!("an object")
    };
    let made = emu.change(CAL, Change::Insert(body)).unwrap();
    let id = EventId::new(made["id"].as_str().unwrap()).unwrap();
    let patched = google
        .patch_event(&patch(
            &id,
            EventChanges {
                summary: Some(Some("Renamed".into())),
                ..EventChanges::default()
            },
        ))
        .await
        .unwrap();
    let conference = patched.details.conference.expect("kept");
    assert_eq!(conference.conference_id.as_deref(), Some("abc-defg-hij"));
    assert_eq!(conference.status, ConferenceStatus::Success);
    assert_eq!(
        patched.details.hangout_link.as_deref(),
        Some("https://meet.google.com/abc-defg-hij")
    );
    assert_eq!(emu.conferences_created(CAL), 0);
    setup.emulator.stop().await;
}

/// One of `date` and `dateTime`, never both (a `null` counts as absent).
fn kind_of(time: &Value) -> &'static str {
    match (time["date"].is_null(), time["dateTime"].is_null()) {
        (false, true) => "date",
        (true, false) => "dateTime",
        _ => panic!("both or neither of date and dateTime: {time}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_between_all_day_and_timed_replaces_the_other_kind() {
    let setup = setup().await;
    let google = adapter(&setup, fast_retries(3)).await;
    let day = |d| EventTime::date(chrono::NaiveDate::from_ymd_opt(2026, 5, d).unwrap());
    let at = |h| EventTime::at(Utc.with_ymd_and_hms(2026, 5, 4, h, 0, 0).unwrap(), berlin());
    let mut event = meeting(false);
    event.start = day(4);
    event.end = day(5);
    google.insert_event(&event).await.unwrap();
    let id = event.google_event_id.clone();
    let all_day = EventChanges {
        start: Some(day(4)),
        end: Some(day(5)),
        ..EventChanges::default()
    };
    let timed = EventChanges {
        start: Some(at(9)),
        end: Some(at(10)),
        ..EventChanges::default()
    };
    let patched = google.patch_event(&patch(&id, timed)).await.unwrap();
    assert_eq!(patched.start, Some(at(9)));
    let copy = stored(&setup.emulator.emulator.events(CAL), id.as_str()).unwrap();
    assert_eq!(
        (kind_of(&copy["start"]), kind_of(&copy["end"])),
        ("dateTime", "dateTime"),
        "{copy}"
    );
    // Timed to timed: the `"date": null` sent along clears nothing.
    let later = EventChanges {
        start: Some(at(11)),
        end: Some(at(12)),
        ..EventChanges::default()
    };
    let patched = google.patch_event(&patch(&id, later)).await.unwrap();
    assert_eq!(patched.start, Some(at(11)));
    let patched = google
        .patch_event(&patch(&id, all_day.clone()))
        .await
        .unwrap();
    assert_eq!(patched.start, Some(day(4)));
    // All-day to all-day: the nulls sent along clear nothing either.
    let patched = google.patch_event(&patch(&id, all_day)).await.unwrap();
    assert_eq!(patched.start, Some(day(4)));
    let copy = stored(&setup.emulator.emulator.events(CAL), id.as_str()).unwrap();
    assert_eq!(
        (kind_of(&copy["start"]), kind_of(&copy["end"])),
        ("date", "date"),
        "{copy}"
    );
    assert!(copy["start"]["timeZone"].is_null(), "{copy}");
    setup.emulator.stop().await;
}
