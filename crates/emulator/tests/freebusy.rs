//! `freebusy.query` over real HTTP: busy time from the emulator's own
//! events and series, per-calendar errors, Google's limits and the gate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use calsync_emulator::{Emulator, EmulatorConfig, Fault, RunningEmulator};
use serde_json::{Value, json};
use support::Http;

const CAL: &str = "team@example.com";
const CAL_PATH: &str = "team%40example.com";

async fn start_with(config: EmulatorConfig) -> RunningEmulator {
    Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

async fn start() -> RunningEmulator {
    start_with(EmulatorConfig::default()).await
}

struct Api {
    http: Http,
    base: String,
}

impl Api {
    fn new(emu: &RunningEmulator) -> Self {
        Self {
            http: Http::new(),
            base: format!("{}/calendar/v3", emu.base_url),
        }
    }

    async fn insert(&self, body: Value) -> Value {
        let url = format!("{}/calendars/{CAL_PATH}/events", self.base);
        let (status, answer) = self
            .http
            .json("POST", &url, Some("any"), &[], Some(&body))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn event(&self, method: &str, id: &str, body: Option<Value>) {
        let url = format!("{}/calendars/{CAL_PATH}/events/{id}", self.base);
        let (status, answer) = self
            .http
            .json(method, &url, Some("any"), &[], body.as_ref())
            .await;
        assert!(
            (200..300).contains(&status),
            "{method} {id}: {status} {answer}"
        );
    }

    async fn free_busy_as(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let url = format!("{}/freeBusy", self.base);
        self.http.json("POST", &url, token, &[], Some(body)).await
    }

    async fn free_busy(&self, body: &Value) -> (u16, Value) {
        self.free_busy_as(Some("any"), body).await
    }

    /// A query over March 2026 (UTC) for `calendars`.
    async fn march(&self, calendars: &[&str], zone: Option<&str>) -> Value {
        let mut body = json!({
            "timeMin": "2026-03-01T00:00:00Z",
            "timeMax": "2026-04-01T00:00:00Z",
            "items": calendars.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        });
        if let Some(zone) = zone {
            body["timeZone"] = json!(zone);
        }
        let (status, answer) = self.free_busy(&body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

fn timed(id: &str, start: &str, end: &str, extra: Value) -> Value {
    let mut body = json!({
        "id": id,
        "summary": id,
        "start": {"dateTime": start},
        "end": {"dateTime": end},
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

fn all_day(id: &str, start: &str, end: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "start": {"date": start}, "end": {"date": end}});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

fn busy(answer: &Value, calendar: &str) -> Vec<(String, String)> {
    answer["calendars"][calendar]["busy"]
        .as_array()
        .unwrap_or_else(|| panic!("no busy list for {calendar}: {answer}"))
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_owned(),
                b["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn spans(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(s, e)| ((*s).to_owned(), (*e).to_owned()))
        .collect()
}

fn reason(answer: &Value) -> Option<&str> {
    answer["error"]["errors"][0]["reason"].as_str()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_series_with_a_moved_and_a_cancelled_occurrence_and_what_is_free() {
    let emu = start().await;
    let api = Api::new(&emu);
    // Mondays 2, 9, 16, 23 and 30 March at 10:00 UTC.
    api.insert(json!({
        "id": "standup001",
        "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T10:30:00Z", "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
        "attendees": [{"email": CAL, "responseStatus": "accepted"}],
    }))
    .await;
    // The 9th moves to Tuesday afternoon; the 16th is cancelled; the
    // calendar declines the 30th alone.
    api.event(
        "PATCH",
        "standup001_20260309T100000Z",
        Some(json!({
            "start": {"dateTime": "2026-03-10T14:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-10T15:00:00Z", "timeZone": "UTC"},
        })),
    )
    .await;
    api.event("DELETE", "standup001_20260316T100000Z", None)
        .await;
    api.event(
        "PATCH",
        "standup001_20260330T100000Z",
        Some(json!({"attendees": [{"email": CAL, "responseStatus": "declined"}]})),
    )
    .await;

    // Free: declined by this calendar, transparent, a working location,
    // a deleted event.
    let declined = json!({"attendees": [
        {"email": "bob@example.com", "responseStatus": "accepted"},
        {"email": "TEAM@example.com", "responseStatus": "declined"},
    ]});
    api.insert(timed(
        "declined01",
        "2026-03-03T09:00:00Z",
        "2026-03-03T10:00:00Z",
        declined,
    ))
    .await;
    let transparent = json!({"transparency": "transparent"});
    api.insert(timed(
        "transparent1",
        "2026-03-03T11:00:00Z",
        "2026-03-03T12:00:00Z",
        transparent,
    ))
    .await;
    let working = json!({"eventType": "workingLocation", "transparency": "transparent",
        "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}}});
    api.insert(all_day("location01", "2026-03-04", "2026-03-05", working))
        .await;
    let opaque_working = json!({"eventType": "workingLocation"});
    api.insert(timed(
        "location02",
        "2026-03-04T09:00:00Z",
        "2026-03-04T17:00:00Z",
        opaque_working,
    ))
    .await;
    api.insert(timed(
        "deleted001",
        "2026-03-12T09:00:00Z",
        "2026-03-12T10:00:00Z",
        json!({}),
    ))
    .await;
    api.event("DELETE", "deleted001", None).await;

    // Busy: an unanswered invitation, overlapping and touching events
    // (merged), an out-of-office, and an event that began before timeMin
    // (clipped).
    let unanswered = json!({"attendees": [{"email": CAL, "responseStatus": "needsAction"}]});
    api.insert(timed(
        "invited001",
        "2026-03-05T09:00:00Z",
        "2026-03-05T10:00:00Z",
        unanswered,
    ))
    .await;
    let tentative = json!({"attendees": [{"email": CAL, "responseStatus": "tentative"}]});
    api.insert(timed(
        "overlaps01",
        "2026-03-05T09:30:00Z",
        "2026-03-05T11:00:00Z",
        tentative,
    ))
    .await;
    api.insert(timed(
        "touches001",
        "2026-03-05T11:00:00Z",
        "2026-03-05T11:30:00+00:00",
        json!({}),
    ))
    .await;
    let away = json!({"eventType": "outOfOffice"});
    api.insert(timed(
        "absent0001",
        "2026-03-06T08:00:00Z",
        "2026-03-06T12:00:00Z",
        away,
    ))
    .await;
    api.insert(timed(
        "before0001",
        "2026-02-28T22:00:00Z",
        "2026-03-01T01:00:00Z",
        json!({}),
    ))
    .await;

    let answer = api.march(&[CAL], None).await;
    assert_eq!(answer["kind"], "calendar#freeBusy");
    assert_eq!(answer["timeMin"], "2026-03-01T00:00:00.000Z");
    assert_eq!(answer["timeMax"], "2026-04-01T00:00:00.000Z");
    assert!(
        answer["calendars"][CAL].get("errors").is_none(),
        "no errors key when there are none: {answer}"
    );
    assert_eq!(
        busy(&answer, CAL),
        spans(&[
            ("2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z"),
            ("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z"),
            ("2026-03-05T09:00:00Z", "2026-03-05T11:30:00Z"),
            ("2026-03-06T08:00:00Z", "2026-03-06T12:00:00Z"),
            ("2026-03-10T14:00:00Z", "2026-03-10T15:00:00Z"),
            ("2026-03-23T10:00:00Z", "2026-03-23T10:30:00Z"),
        ])
    );

    // Clipped to a window inside an occurrence (fractions kept).
    let (_, answer) = api
        .free_busy(&json!({
            "timeMin": "2026-03-23T10:10:00.250Z",
            "timeMax": "2026-03-23T10:20:00Z",
            "items": [{"id": CAL}],
        }))
        .await;
    assert_eq!(
        busy(&answer, CAL),
        spans(&[("2026-03-23T10:10:00.250Z", "2026-03-23T10:20:00Z")])
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn all_day_events_are_busy_from_midnight_to_midnight_in_the_requested_zone() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.insert(all_day("offsite001", "2026-03-10", "2026-03-11", json!({})))
        .await;
    // Across New York's change to daylight time (8 March 2026).
    api.insert(all_day("dstend0001", "2026-03-07", "2026-03-09", json!({})))
        .await;
    // An end date not after the start date: the start date (as calsync's
    // own rule reads it).
    api.insert(all_day("samedate01", "2026-03-14", "2026-03-14", json!({})))
        .await;
    // Thursdays 26 March and 2 April, all day.
    api.insert(all_day(
        "thursd0001",
        "2026-03-26",
        "2026-03-27",
        json!({"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2"]}),
    ))
    .await;
    // Birthdays are free.
    api.insert(all_day(
        "birth00001",
        "2026-03-20",
        "2026-03-21",
        json!({"eventType": "birthday", "recurrence": ["RRULE:FREQ=YEARLY"]}),
    ))
    .await;

    let utc = api.march(&[CAL], None).await;
    assert_eq!(
        busy(&utc, CAL),
        spans(&[
            ("2026-03-07T00:00:00Z", "2026-03-09T00:00:00Z"),
            ("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z"),
            ("2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"),
            ("2026-03-26T00:00:00Z", "2026-03-27T00:00:00Z"),
        ])
    );
    let new_york = api.march(&[CAL], Some("America/New_York")).await;
    assert_eq!(
        busy(&new_york, CAL),
        spans(&[
            ("2026-03-07T05:00:00Z", "2026-03-09T04:00:00Z"),
            ("2026-03-10T04:00:00Z", "2026-03-11T04:00:00Z"),
            ("2026-03-14T04:00:00Z", "2026-03-15T04:00:00Z"),
            ("2026-03-26T04:00:00Z", "2026-03-27T04:00:00Z"),
        ]),
        "midnight EST to midnight EDT; times are answered in UTC"
    );
    let tokyo = api.march(&[CAL], Some("Asia/Tokyo")).await;
    assert_eq!(
        busy(&tokyo, CAL),
        spans(&[
            ("2026-03-06T15:00:00Z", "2026-03-08T15:00:00Z"),
            ("2026-03-09T15:00:00Z", "2026-03-10T15:00:00Z"),
            ("2026-03-13T15:00:00Z", "2026-03-14T15:00:00Z"),
            ("2026-03-25T15:00:00Z", "2026-03-26T15:00:00Z"),
        ])
    );
    // Clipped to the window like any other.
    let (status, answer) = api
        .free_busy(&json!({
            "timeMin": "2026-03-10T00:00:00Z",
            "timeMax": "2026-03-10T12:00:00Z",
            "timeZone": "America/New_York",
            "items": [{"id": CAL}],
        }))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        busy(&answer, CAL),
        spans(&[("2026-03-10T04:00:00Z", "2026-03-10T12:00:00Z")])
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_calendars_carry_not_found_and_the_call_still_answers() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.insert(timed(
        "meeting001",
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
        json!({}),
    ))
    .await;
    emu.emulator.set_calendar_revoked("gone@example.com", true);
    let answer = api
        .march(&[CAL, "gone@example.com", "empty@example.com"], None)
        .await;
    assert_eq!(
        busy(&answer, CAL),
        spans(&[("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")])
    );
    assert_eq!(
        answer["calendars"]["gone@example.com"],
        json!({"busy": [], "errors": [{"domain": "global", "reason": "notFound"}]})
    );
    assert_eq!(
        answer["calendars"]["empty@example.com"],
        json!({"busy": []})
    );
    // The revoked calendar's own events are not read.
    emu.emulator.set_calendar_revoked(CAL, true);
    let answer = api.march(&[CAL], None).await;
    assert_eq!(answer["calendars"][CAL]["errors"][0]["reason"], "notFound");
    assert_eq!(busy(&answer, CAL), spans(&[]));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn more_calendars_than_google_expands_get_no_busy_time() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.insert(timed(
        "meeting001",
        "2026-03-02T10:00:00Z",
        "2026-03-02T11:00:00Z",
        json!({}),
    ))
    .await;
    let mut names: Vec<String> = (1..50).map(|i| format!("room-{i}@example.com")).collect();
    names.insert(0, CAL.to_owned());
    let fifty: Vec<&str> = names.iter().map(String::as_str).collect();
    let answer = api.march(&fifty, None).await;
    assert_eq!(answer["calendars"].as_object().unwrap().len(), 50);
    assert_eq!(busy(&answer, CAL).len(), 1, "50 calendars are answered");

    names.push("room-50@example.com".into());
    let fifty_one: Vec<&str> = names.iter().map(String::as_str).collect();
    let answer = api.march(&fifty_one, None).await;
    let calendars = answer["calendars"].as_object().unwrap();
    assert_eq!(calendars.len(), 51);
    for (id, calendar) in calendars {
        assert_eq!(
            calendar,
            &json!({"busy": [], "errors": [
                {"domain": "global", "reason": "tooManyCalendarsRequested"}]}),
            "{id}"
        );
    }

    // A smaller calendarExpansionMax is a lower limit.
    let (status, answer) = api
        .free_busy(&json!({
            "timeMin": "2026-03-01T00:00:00Z",
            "timeMax": "2026-04-01T00:00:00Z",
            "calendarExpansionMax": 1,
            "items": [{"id": CAL}, {"id": "room-1@example.com"}],
        }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["calendars"][CAL]["errors"][0]["reason"],
        "tooManyCalendarsRequested"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_long_and_malformed_windows_are_refused() {
    let emu = start().await;
    let api = Api::new(&emu);
    let refused = |status: u16, answer: &Value| (status, reason(answer).map(str::to_owned));
    let items = json!([{"id": CAL}]);
    let cases = [
        (
            json!({"timeMin": "2026-03-01T00:00:00Z", "timeMax": "2026-03-01T00:00:00Z", "items": items}),
            "timeRangeEmpty",
        ),
        (
            json!({"timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-01T00:00:00Z", "items": items}),
            "timeRangeEmpty",
        ),
        (
            json!({"timeMin": "2026-03-01T00:00:00Z", "timeMax": "2026-05-30T00:00:01Z", "items": items}),
            "timeRangeTooLong",
        ),
        (
            json!({"timeMax": "2026-03-02T00:00:00Z", "items": items}),
            "required",
        ),
        (
            json!({"timeMin": "2026-03-01", "timeMax": "2026-03-02T00:00:00Z", "items": items}),
            "invalid",
        ),
        (
            json!({"timeMin": "2026-03-01T00:00:00Z", "timeMax": "2026-03-02T00:00:00Z",
                "timeZone": "Nowhere/Special", "items": items}),
            "invalid",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = api.free_busy(&body).await;
        assert_eq!(
            refused(status, &answer),
            (400, Some(expected.to_owned())),
            "{body}: {answer}"
        );
    }
    assert_eq!(
        api.free_busy(&json!({"timeMin": "2026-03-01T00:00:00Z"}))
            .await
            .1["error"]["message"],
        "Missing timeMax parameter."
    );
    // Exactly 90 days is allowed.
    let (status, _) = api
        .free_busy(&json!({"timeMin": "2026-03-01T00:00:00Z",
            "timeMax": "2026-05-30T00:00:00Z", "items": items}))
        .await;
    assert_eq!(status, 200);
    let url = format!("{}/calendar/v3/freeBusy", emu.base_url);
    let (status, answer) = api
        .http
        .send("POST", &url, Some("any"), &[], b"not json".to_vec())
        .await;
    assert_eq!((status, reason(&answer)), (400, Some("parseError")));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn free_busy_passes_the_gate_like_every_call() {
    let emu = start_with(EmulatorConfig {
        per_principal_per_minute: Some(2),
        ..EmulatorConfig::default()
    })
    .await;
    let api = Api::new(&emu);
    let body = json!({
        "timeMin": "2026-03-01T00:00:00Z",
        "timeMax": "2026-03-02T00:00:00Z",
        "items": [{"id": CAL}, {"id": "room@example.com"}],
    });
    let (status, answer) = api.free_busy_as(None, &body).await;
    assert_eq!((status, reason(&answer)), (401, Some("authError")));

    emu.emulator
        .schedule_fault(Some("freebusy"), 1, Fault::status(503));
    let (status, answer) = api.free_busy_as(Some("ada"), &body).await;
    assert_eq!((status, reason(&answer)), (503, Some("backendError")));
    let (status, _) = api.free_busy_as(Some("ada"), &body).await;
    assert_eq!(status, 200);
    // One quota unit per query, whatever the number of calendars.
    let (status, answer) = api.free_busy_as(Some("ada"), &body).await;
    assert_eq!(
        (status, reason(&answer)),
        (403, Some("userRateLimitExceeded"))
    );
    let (status, _) = api.free_busy_as(Some("bob"), &body).await;
    assert_eq!(status, 200);

    assert_eq!(emu.emulator.calls("freebusy"), 5);
    assert_eq!(
        emu.emulator.faults_fired().get("503:backendError"),
        Some(&1)
    );
    let principals: Vec<String> = emu
        .emulator
        .principals_for("room@example.com")
        .into_iter()
        .collect();
    assert_eq!(principals, ["ada", "bob"]);
    emu.stop().await;
}
