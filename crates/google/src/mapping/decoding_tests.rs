//! Decoding Google-shaped JSON: the text Google sends, decoded by the
//! generated client into `api::Event` and mapped to a `RemoteEvent`, one
//! test per event type and per recurrence and conference shape; and the
//! bodies calsync sends, as JSON the client would put on the wire.

use super::*;
use calsync_domain::event::{NewEvent, NewEventFields};
use calsync_domain::ids::CalendarId;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

/// Decodes JSON text as the client does and maps it.
fn decode(text: &str) -> RemoteEvent {
    let event: api::Event = serde_json::from_str(text).expect("Google's JSON decodes");
    from_google(event).expect("maps")
}

fn google(remote: &RemoteEvent) -> &Value {
    remote
        .google
        .as_ref()
        .expect("the verbatim resource is kept")
}

/// The body as the client sends it: JSON with nulls stripped.
fn wire(event: &api::Event) -> Value {
    let mut value = serde_json::to_value(event).unwrap();
    google_calendar3::common::remove_json_null_values(&mut value);
    value
}

fn berlin() -> Option<TimeZoneName> {
    Some(TimeZoneName::new("Europe/Berlin").unwrap())
}

#[test]
fn a_default_event_maps_its_details_and_keeps_the_resource() {
    let remote = decode(
        r#"{
          "kind": "calendar#event",
          "etag": "\"3481234567890000\"",
          "id": "4l6tq0m2k9c5e8g1h3j7n0p2r4",
          "status": "confirmed",
          "htmlLink": "https://www.google.com/calendar/event?eid=NGw2",
          "created": "2026-02-01T10:00:00.000Z",
          "updated": "2026-02-02T11:30:00.123Z",
          "summary": "Planning",
          "colorId": "5",
          "creator": {"email": "ann@example.com"},
          "organizer": {"email": "ann@example.com", "self": true},
          "start": {"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin"},
          "transparency": "transparent",
          "visibility": "private",
          "iCalUID": "4l6tq0m2k9c5e8g1h3j7n0p2r4@google.com",
          "sequence": 2,
          "guestsCanModify": true,
          "reminders": {"useDefault": false, "overrides": [
            {"method": "popup", "minutes": 10}, {"method": "email", "minutes": 1440}
          ]},
          "eventType": "default"
        }"#,
    );
    assert_eq!(remote.event_type, EventType::Default);
    assert_eq!(
        remote.start,
        Some(EventTime::at(
            Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
            berlin()
        ))
    );
    let details = &remote.details;
    assert_eq!(details.visibility.as_deref(), Some("private"));
    assert_eq!(details.transparency.as_deref(), Some("transparent"));
    assert_eq!(details.color_id.as_deref(), Some("5"));
    assert_eq!(details.hangout_link, None);
    assert_eq!(details.conference, None);
    assert_eq!(
        details.reminders,
        Some(Reminders {
            use_default: false,
            overrides: vec![
                ReminderOverride {
                    method: "popup".into(),
                    minutes: 10
                },
                ReminderOverride {
                    method: "email".into(),
                    minutes: 1440
                },
            ],
        })
    );
    let google = google(&remote);
    assert_eq!(google["sequence"], 2);
    assert_eq!(google["guestsCanModify"], true);
    assert_eq!(google["creator"]["email"], "ann@example.com");
    assert_eq!(google["organizer"]["self"], true);
    assert!(
        google.as_object().unwrap().values().all(|v| !v.is_null()),
        "fields Google did not send are absent, not null: {google}"
    );
}

#[test]
fn an_absent_event_type_is_default_and_unknown_fields_do_not_survive_the_client() {
    let remote = decode(
        r#"{"id": "abcde12345", "status": "confirmed",
            "start": {"date": "2026-03-02"}, "end": {"date": "2026-03-03"},
            "someFieldGoogleAddsLater": {"x": 1}}"#,
    );
    assert_eq!(remote.event_type, EventType::Default);
    assert_eq!(remote.details, EventDetails::default());
    // The generated client decodes into its own struct, which has no place
    // for a field it does not know: the copy is the client's, not the wire's.
    assert!(google(&remote).get("someFieldGoogleAddsLater").is_none());
    assert_eq!(google(&remote)["start"]["date"], "2026-03-02");
}

#[test]
fn a_birthday_keeps_its_properties() {
    let remote = decode(
        r#"{
          "kind": "calendar#event", "etag": "\"3400000000000000\"",
          "id": "c4o3ae1p6kr3gb9k6or3cb9k68q3gbb26kq34b9o6gp3ec9l6cs3ad1k70",
          "status": "confirmed", "summary": "Ann Example's birthday",
          "start": {"date": "2026-04-12"}, "end": {"date": "2026-04-13"},
          "recurrence": ["RRULE:FREQ=YEARLY"],
          "transparency": "transparent", "visibility": "private",
          "reminders": {"useDefault": false},
          "eventType": "birthday",
          "birthdayProperties": {"contact": "people/c7317813425618424938", "type": "birthday"}
        }"#,
    );
    assert_eq!(remote.event_type, EventType::Birthday);
    assert_eq!(remote.recurrence, vec!["RRULE:FREQ=YEARLY".to_owned()]);
    assert_eq!(
        remote.details.reminders,
        Some(Reminders {
            use_default: false,
            overrides: vec![]
        })
    );
    assert_eq!(remote.details.transparency.as_deref(), Some("transparent"));
    assert_eq!(
        google(&remote)["birthdayProperties"],
        json!({"contact": "people/c7317813425618424938", "type": "birthday"})
    );
    assert_eq!(google(&remote)["eventType"], "birthday");
}

#[test]
fn focus_time_keeps_its_properties() {
    let remote = decode(
        r#"{
          "id": "f0cus7ime0001", "status": "confirmed", "summary": "Focus time",
          "start": {"dateTime": "2026-03-03T13:00:00Z"}, "end": {"dateTime": "2026-03-03T15:00:00Z"},
          "transparency": "opaque", "visibility": "public",
          "eventType": "focusTime",
          "focusTimeProperties": {"autoDeclineMode": "declineOnlyNewConflictingInvitations",
                                  "chatStatus": "doNotDisturb", "declineMessage": "Heads down"}
        }"#,
    );
    assert_eq!(remote.event_type, EventType::FocusTime);
    assert!(!remote.event_type.writable());
    assert_eq!(remote.details.visibility.as_deref(), Some("public"));
    let props = &google(&remote)["focusTimeProperties"];
    assert_eq!(props["chatStatus"], "doNotDisturb");
    assert_eq!(
        props["autoDeclineMode"],
        "declineOnlyNewConflictingInvitations"
    );
    assert_eq!(props["declineMessage"], "Heads down");
}

#[test]
fn out_of_office_keeps_its_properties() {
    let remote = decode(
        r#"{
          "id": "0u70f0ff1ce01", "status": "confirmed", "summary": "Out of office",
          "start": {"dateTime": "2026-03-04T00:00:00+01:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-06T00:00:00+01:00", "timeZone": "Europe/Berlin"},
          "eventType": "outOfOffice",
          "outOfOfficeProperties": {"autoDeclineMode": "declineAllConflictingInvitations",
                                    "declineMessage": "Back on Friday"}
        }"#,
    );
    assert_eq!(remote.event_type, EventType::OutOfOffice);
    assert_eq!(
        google(&remote)["outOfOfficeProperties"],
        json!({"autoDeclineMode": "declineAllConflictingInvitations",
               "declineMessage": "Back on Friday"})
    );
}

#[test]
fn working_location_keeps_its_properties() {
    let remote = decode(
        r#"{
          "id": "w0rk1ng10c01", "status": "confirmed", "summary": "Office",
          "start": {"date": "2026-03-05"}, "end": {"date": "2026-03-06"},
          "transparency": "transparent", "visibility": "public",
          "eventType": "workingLocation",
          "workingLocationProperties": {"type": "officeLocation",
            "officeLocation": {"buildingId": "B1", "floorId": "3", "deskId": "3-14", "label": "HQ"}}
        }"#,
    );
    assert_eq!(remote.event_type, EventType::WorkingLocation);
    assert_eq!(
        remote.start,
        Some(EventTime::date(
            NaiveDate::from_ymd_opt(2026, 3, 5).unwrap()
        ))
    );
    assert_eq!(
        google(&remote)["workingLocationProperties"],
        json!({"type": "officeLocation",
               "officeLocation": {"buildingId": "B1", "floorId": "3", "deskId": "3-14", "label": "HQ"}})
    );
    let home = decode(
        r#"{"id": "w0rk1ng10c02", "status": "confirmed",
            "start": {"date": "2026-03-06"}, "end": {"date": "2026-03-07"},
            "eventType": "workingLocation",
            "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}}}"#,
    );
    assert_eq!(
        google(&home)["workingLocationProperties"],
        json!({"type": "homeOffice", "homeOffice": {}}),
        "an empty homeOffice object is kept"
    );
}

#[test]
fn from_gmail_is_its_own_type() {
    let remote = decode(
        r#"{
          "id": "fr0mgma1101", "status": "confirmed", "summary": "Flight to Lisbon",
          "start": {"dateTime": "2026-03-10T07:05:00+01:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-10T09:00:00Z", "timeZone": "Europe/Lisbon"},
          "visibility": "private", "locked": true,
          "eventType": "fromGmail"
        }"#,
    );
    assert_eq!(remote.event_type, EventType::FromGmail);
    assert_eq!(
        remote.end,
        Some(EventTime::at(
            Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap(),
            Some(TimeZoneName::new("Europe/Lisbon").unwrap())
        ))
    );
    assert_eq!(google(&remote)["locked"], true);
    let later =
        decode(r#"{"id": "n3wtype01", "status": "confirmed", "eventType": "somethingNew"}"#);
    assert_eq!(later.event_type, EventType::Other("somethingNew".into()));
}

#[test]
fn a_series_master_keeps_its_rules_and_zone() {
    let remote = decode(
        r#"{
          "kind": "calendar#event", "etag": "\"3481000000000000\"",
          "id": "5eri3s0000", "status": "confirmed", "summary": "Stand-up",
          "start": {"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-02T09:15:00+01:00", "timeZone": "Europe/Berlin"},
          "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "EXDATE;TZID=Europe/Berlin:20260309T090000"],
          "iCalUID": "5eri3s0000@google.com",
          "reminders": {"useDefault": true}
        }"#,
    );
    assert_eq!(
        remote.recurrence,
        vec![
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE".to_owned(),
            "EXDATE;TZID=Europe/Berlin:20260309T090000".to_owned()
        ]
    );
    assert_eq!(remote.recurring_event_id, None);
    assert_eq!(remote.original_start, None);
    assert_eq!(
        remote.start,
        Some(EventTime::at(
            Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap(),
            berlin()
        ))
    );
    assert_eq!(
        remote.details.reminders,
        Some(Reminders {
            use_default: true,
            overrides: vec![]
        })
    );
    assert_eq!(
        google(&remote)["recurrence"][1],
        "EXDATE;TZID=Europe/Berlin:20260309T090000"
    );
}

#[test]
fn an_exception_names_its_series_and_original_start() {
    let remote = decode(
        r#"{
          "id": "5eri3s0000_20260304T080000Z", "status": "confirmed", "summary": "Stand-up (moved)",
          "start": {"dateTime": "2026-03-04T10:00:00+01:00", "timeZone": "Europe/Berlin"},
          "end": {"dateTime": "2026-03-04T10:15:00+01:00", "timeZone": "Europe/Berlin"},
          "recurringEventId": "5eri3s0000",
          "originalStartTime": {"dateTime": "2026-03-04T09:00:00+01:00", "timeZone": "Europe/Berlin"},
          "iCalUID": "5eri3s0000@google.com"
        }"#,
    );
    assert_eq!(remote.id.as_str(), "5eri3s0000_20260304T080000Z");
    assert_eq!(remote.recurring_event_id.unwrap().as_str(), "5eri3s0000");
    assert_eq!(
        remote.original_start,
        Some(EventTime::at(
            Utc.with_ymd_and_hms(2026, 3, 4, 8, 0, 0).unwrap(),
            berlin()
        ))
    );
    assert!(remote.recurrence.is_empty());
    // An all-day series' occurrence: `originalStartTime` has only a date.
    let all_day = decode(
        r#"{"id": "a11day0000_20260309", "status": "confirmed",
            "start": {"date": "2026-03-10"}, "end": {"date": "2026-03-11"},
            "recurringEventId": "a11day0000", "originalStartTime": {"date": "2026-03-09"}}"#,
    );
    assert_eq!(
        all_day.original_start,
        Some(EventTime::date(
            NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()
        ))
    );
}

#[test]
fn a_cancelled_occurrence_is_a_stub_with_its_series() {
    let remote = decode(
        r#"{"kind": "calendar#event", "etag": "\"3481999999999999\"",
            "id": "5eri3s0000_20260311T080000Z", "status": "cancelled",
            "recurringEventId": "5eri3s0000",
            "originalStartTime": {"dateTime": "2026-03-11T09:00:00+01:00", "timeZone": "Europe/Berlin"}}"#,
    );
    assert_eq!(remote.status, EventStatus::Cancelled);
    assert_eq!((&remote.start, &remote.end), (&None, &None));
    assert_eq!(
        remote.recurring_event_id.as_ref().unwrap().as_str(),
        "5eri3s0000"
    );
    assert_eq!(
        remote.original_start,
        Some(EventTime::at(
            Utc.with_ymd_and_hms(2026, 3, 11, 8, 0, 0).unwrap(),
            berlin()
        ))
    );
    assert_eq!(remote.event_type, EventType::Default);
    assert_eq!(remote.details, EventDetails::default());
    assert_eq!(google(&remote)["status"], "cancelled");
}

#[test]
fn a_pending_conference_maps_its_request() {
    let remote = decode(
        r#"{"id": "meet0pend01", "status": "confirmed",
            "start": {"dateTime": "2026-03-02T09:00:00Z"}, "end": {"dateTime": "2026-03-02T10:00:00Z"},
            "conferenceData": {
              "createRequest": {"requestId": "calsync-1234",
                                "conferenceSolutionKey": {"type": "hangoutsMeet"},
                                "status": {"statusCode": "pending"}},
              "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"}
            }}"#,
    );
    let conference = remote.details.conference.expect("a conference");
    assert_eq!(conference.status, ConferenceStatus::Pending);
    assert_eq!(conference.request_id.as_deref(), Some("calsync-1234"));
    assert_eq!(conference.solution.as_deref(), Some(MEET));
    assert_eq!(conference.conference_id, None);
    assert!(conference.entry_points.is_empty());
    assert!(!conference.needs_creating(), "asked for already");
    assert_eq!(remote.details.hangout_link, None);
}

#[test]
fn a_successful_conference_maps_its_link_and_entry_points() {
    let remote = decode(
        r#"{"id": "meet0succ01", "status": "confirmed",
            "start": {"dateTime": "2026-03-02T09:00:00Z"}, "end": {"dateTime": "2026-03-02T10:00:00Z"},
            "hangoutLink": "https://meet.google.com/abc-defg-hij",
            "conferenceData": {
              "createRequest": {"requestId": "calsync-1234",
                                "conferenceSolutionKey": {"type": "hangoutsMeet"},
                                "status": {"statusCode": "success"}},
              "entryPoints": [
                {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij",
                 "label": "meet.google.com/abc-defg-hij"},
                {"entryPointType": "phone", "uri": "tel:+49-30-1234567", "label": "+49 30 1234567",
                 "pin": "123456789", "regionCode": "DE"},
                {"entryPointType": "more", "uri": "https://tel.meet/abc-defg-hij?pin=123"}
              ],
              "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet",
                                     "iconUri": "https://example.com/meet.png"},
              "conferenceId": "abc-defg-hij"
            }}"#,
    );
    assert_eq!(
        remote.details.hangout_link.as_deref(),
        Some("https://meet.google.com/abc-defg-hij")
    );
    let conference = remote.details.conference.as_ref().expect("a conference");
    assert_eq!(conference.status, ConferenceStatus::Success);
    assert_eq!(conference.conference_id.as_deref(), Some("abc-defg-hij"));
    assert_eq!(conference.solution.as_deref(), Some(MEET));
    assert_eq!(
        conference.entry_points,
        vec![
            EntryPoint {
                entry_point_type: "video".into(),
                uri: "https://meet.google.com/abc-defg-hij".into(),
                label: Some("meet.google.com/abc-defg-hij".into()),
            },
            EntryPoint {
                entry_point_type: "phone".into(),
                uri: "tel:+49-30-1234567".into(),
                label: Some("+49 30 1234567".into()),
            },
            EntryPoint {
                entry_point_type: "more".into(),
                uri: "https://tel.meet/abc-defg-hij?pin=123".into(),
                label: None,
            },
        ]
    );
    // What the domain does not model (the PIN) stays in the copy.
    assert_eq!(
        google(&remote)["conferenceData"]["entryPoints"][1]["pin"],
        "123456789"
    );
    // A conference added in Google's UI carries no createRequest: it exists.
    let added = decode(
        r#"{"id": "meet0ui0001", "status": "confirmed",
            "conferenceData": {"conferenceId": "xyz-abcd-efg",
              "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
              "entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/xyz-abcd-efg"}]}}"#,
    );
    let conference = added.details.conference.expect("a conference");
    assert_eq!(conference.status, ConferenceStatus::Success);
    assert_eq!(conference.request_id, None);
    let failed = decode(
        r#"{"id": "meet0fail01", "status": "confirmed",
            "conferenceData": {"createRequest": {"requestId": "r1",
              "conferenceSolutionKey": {"type": "hangoutsMeet"}, "status": {"statusCode": "failure"}}}}"#,
    );
    assert_eq!(
        failed.details.conference.map(|c| c.status),
        Some(ConferenceStatus::Failure)
    );
}

fn meeting(meet: bool) -> Event {
    let at = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
    NewEvent::new(
        CalendarId::new("c@example.com").unwrap(),
        EntityRef::new("deal", "42").unwrap(),
        EventTime::at(at, berlin()),
        EventTime::at(at + chrono::Duration::minutes(30), berlin()),
        NewEventFields {
            summary: Some("Kick-off".into()),
            recurrence: vec!["RRULE:FREQ=WEEKLY;BYDAY=MO,WE".into()],
            details: EventDetails {
                reminders: Some(Reminders {
                    use_default: false,
                    overrides: vec![ReminderOverride {
                        method: "popup".into(),
                        minutes: 15,
                    }],
                }),
                visibility: Some("private".into()),
                transparency: Some("opaque".into()),
                color_id: Some("7".into()),
                ..EventDetails::default()
            },
            meet,
            ..NewEventFields::default()
        },
    )
    .unwrap()
    .into_event(Utc::now())
}

#[test]
fn the_insert_body_asks_for_a_conference_and_sends_the_details() {
    let mut event = meeting(true);
    let request_id = format!("calsync-{}", event.id);
    // Even if the row somehow holds Google's link, it is never sent.
    event.details.hangout_link = Some("https://meet.google.com/should-not-go".into());
    let body = wire(&to_google(&event, false));
    assert_eq!(
        body["conferenceData"],
        json!({"createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"}
        }}),
        "only the request: no status, entry points or id, which are Google's"
    );
    assert_eq!(body["recurrence"], json!(["RRULE:FREQ=WEEKLY;BYDAY=MO,WE"]));
    assert_eq!(
        body["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 15}]})
    );
    assert_eq!(body["visibility"], "private");
    assert_eq!(body["transparency"], "opaque");
    assert_eq!(body["colorId"], "7");
    assert_eq!(body["start"]["timeZone"], "Europe/Berlin");
    assert!(body.get("hangoutLink").is_none());
    assert!(body.get("eventType").is_none(), "absent is default");
    assert_eq!(body["id"], event.google_event_id.as_str());
}

#[test]
fn a_conference_is_asked_for_only_while_it_needs_creating() {
    let plain = wire(&to_google(&meeting(false), false));
    assert!(plain.get("conferenceData").is_none());
    let mut asked = meeting(true);
    if let Some(conference) = &mut asked.details.conference {
        conference.status = ConferenceStatus::Pending;
    }
    assert!(
        wire(&to_google(&asked, false))
            .get("conferenceData")
            .is_none()
    );
    let whole_patch = wire(&to_google(&meeting(true), true));
    assert!(whole_patch.get("conferenceData").is_none());
    assert!(whole_patch.get("eventType").is_none());
}

#[test]
fn default_reminders_go_without_overrides() {
    let mut event = meeting(false);
    event.details.reminders = Some(Reminders {
        use_default: true,
        overrides: vec![],
    });
    assert_eq!(
        wire(&to_google(&event, false))["reminders"],
        json!({"useDefault": true})
    );
    event.details.reminders = None;
    assert!(wire(&to_google(&event, false)).get("reminders").is_none());
}

#[test]
fn a_patch_sends_recurrence_and_an_empty_list_clears_it() {
    let changes = EventChanges {
        recurrence: Some(vec!["RRULE:FREQ=DAILY;COUNT=3".into()]),
        ..EventChanges::default()
    };
    assert_eq!(
        patch_json(&changes).unwrap(),
        json!({"recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]})
    );
    let ended = EventChanges {
        recurrence: Some(vec![]),
        summary: Some(None),
        ..EventChanges::default()
    };
    assert_eq!(
        patch_json(&ended).unwrap(),
        json!({"recurrence": [], "summary": ""}),
        "[] survives the null stripping; nothing else is sent"
    );
    let untouched = EventChanges {
        location: Some(Some("Room 1".into())),
        ..EventChanges::default()
    };
    assert_eq!(
        patch_json(&untouched).unwrap(),
        json!({"location": "Room 1"}),
        "no recurrence, no eventType when the change does not name them"
    );
}

#[test]
fn a_patch_of_start_or_end_always_clears_the_other_kind() {
    let day = |d| EventTime::date(chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
    let at = |h| {
        EventTime::at(
            chrono::Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).unwrap(),
            Some(TimeZoneName::new("Europe/Berlin").unwrap()),
        )
    };
    let timed = EventChanges {
        start: Some(at(9)),
        end: Some(at(10)),
        ..EventChanges::default()
    };
    let all_day = EventChanges {
        start: Some(day(1)),
        end: Some(day(2)),
        ..EventChanges::default()
    };
    // Timed: `date` goes, explicitly, whatever Google holds (what the
    // mirror knows of it may be stale).
    let json = patch_json(&timed).unwrap();
    for field in ["start", "end"] {
        assert!(
            json[field]
                .as_object()
                .unwrap()
                .get("date")
                .is_some_and(serde_json::Value::is_null),
            "{json}"
        );
        assert_eq!(json[field]["timeZone"], "Europe/Berlin");
        assert!(json[field]["dateTime"].is_string());
    }
    // All-day: `dateTime` and `timeZone` go.
    let json = patch_json(&all_day).unwrap();
    assert_eq!(
        json["start"],
        json!({"date": "2026-03-01", "dateTime": null, "timeZone": null})
    );
    assert_eq!(
        json["end"],
        json!({"date": "2026-03-02", "dateTime": null, "timeZone": null})
    );
    // Only what is sent gets its nulls: an end alone leaves start absent.
    let end_only = EventChanges {
        end: Some(at(11)),
        summary: Some(Some("Later".into())),
        ..EventChanges::default()
    };
    let json = patch_json(&end_only).unwrap();
    assert!(json.get("start").is_none(), "{json}");
    assert_eq!(json["summary"], "Later");
    let mut keys: Vec<_> = json["end"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["date", "dateTime", "timeZone"], "{json}");
    assert!(json["end"]["date"].is_null(), "{json}");
    // A zone-less time clears the zone Google holds, as the mirror does
    // (calsync's PATCH replaces a time whole).
    let zoneless = EventChanges {
        end: Some(EventTime::at(
            chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            None,
        )),
        ..EventChanges::default()
    };
    let json = patch_json(&zoneless).unwrap();
    assert!(
        json["end"]
            .as_object()
            .unwrap()
            .get("timeZone")
            .is_some_and(serde_json::Value::is_null),
        "{json}"
    );
}

#[test]
fn details_round_trip_through_googles_shape() {
    let event = meeting(false);
    let back = from_google(to_google(&event, false)).unwrap();
    assert_eq!(back.details, event.details);
    assert_eq!(back.recurrence, event.recurrence);
    assert_eq!(back.event_type, EventType::Default);
}
