//! Writes Google would refuse are never sent, and refusals Google keeps
//! giving are handled as what they are, end to end: the real server, the
//! emulator over HTTP and each backend.
//!
//! - a recurring timed event without a zone is a 422 naming
//!   `start.timeZone`, and nothing is queued;
//! - a PATCH between all-day and timed lands (Google's patch merges into
//!   `start`/`end`, so the other kind must be cleared explicitly);
//! - 403 `requiredAccessLevel` makes writes wait, health names the
//!   calendar, and the mark goes once a write lands;
//! - a PATCH of an invitation's shared fields, or of a locked copy's main
//!   ones, is a 422 naming what Google lets an attendee change; its own
//!   RSVP lands at Google, the other attendees' answers as they were.

use std::time::Duration;

use calsync_emulator::{Change, Fault, FaultPlan, ScheduledFault};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::{eventually, settled};
use crate::helpers::{object, primary};

/// Probes of a read-only calendar every second, so the test sees access
/// come back within seconds.
const QUICK_PROBE: [&str; 2] = ["--read-only-probe-secs", "1"];

/// Next year's 2 March at 09:00 UTC (a Monday or not, it does not matter).
fn next_year_at_nine() -> DateTime<Utc> {
    let year = Utc::now().year() + 1;
    NaiveDate::from_ymd_opt(year, 3, 2)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
        .and_utc()
}

fn date(at: DateTime<Utc>) -> String {
    at.date_naive().format("%Y-%m-%d").to_string()
}

fn timed(at: DateTime<Utc>, zone: Option<&str>) -> Value {
    match zone {
        Some(zone) => json!({"dateTime": at.to_rfc3339(), "timeZone": zone}),
        None => json!({"dateTime": at.to_rfc3339()}),
    }
}

/// The events of an entity in the mirror (one row each, series unexpanded).
async fn mirrored_rows(api: &Api, entity: &str) -> Vec<Value> {
    let (status, page) = api
        .call(
            "GET",
            &format!("/calendar/events?entityType=deal&entityId={entity}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Google's copy of the event with this Google id.
fn at_google(api: &Api, google_id: &str) -> Value {
    api.emulator()
        .events("primary")
        .into_iter()
        .find(|e| e["id"] == google_id)
        .unwrap_or_else(|| panic!("{google_id} is not at Google"))
}

/// Google's events carrying this entity id.
fn entity_at_google(api: &Api, entity: &str) -> Vec<Value> {
    api.emulator()
        .events("primary")
        .into_iter()
        .filter(|e| e["extendedProperties"]["private"]["entity_id"] == entity)
        .collect()
}

/// `start` or `end` of a stored event holds exactly one of `date` and
/// `dateTime` (a `null` counts as absent), and it is the wanted one.
fn one_kind(event: &Value, field: &str, all_day: bool) {
    let time = &event[field];
    let has = |key: &str| !time[key].is_null();
    assert!(
        has("date") != has("dateTime"),
        "{field} holds both or neither of date and dateTime at Google: {event}"
    );
    assert_eq!(has("date"), all_day, "{field} at Google: {event}");
    if all_day {
        assert!(
            time["timeZone"].is_null(),
            "an all-day {field} keeps no zone: {event}"
        );
    }
}

async fn sync_now(api: &Api) {
    let (status, body) = api.call("POST", "/calendar/sync", Some(json!({}))).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        settled(&api.running.store, &primary()).await,
        "sync never settled"
    );
}

async fn health(api: &Api) -> Value {
    let (status, report) = api.call("GET", "/health/calendar", None).await;
    assert_eq!(status, 200, "{report}");
    report
}

fn has_issue(report: &Value, code: &str) -> Option<String> {
    report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .map(|i| i["message"].as_str().unwrap_or_default().to_owned())
}

async fn a_recurring_event_without_a_zone_is_refused_before_anything_is_queued(api: Api) {
    let start = next_year_at_nine();
    let hour = chrono::Duration::hours(1);
    let (status, refused) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "nozone-1", "summary": "Standup",
                "start": timed(start, None),
                "end": timed(start + hour, None),
                "recurrence": ["RRULE:FREQ=WEEKLY"],
            })),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "start.timeZone", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("timeZone") && message.contains("recurring"),
        "says why: {message}"
    );
    // A zone on the start only: the end is named.
    let (status, refused) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "nozone-1",
                "start": timed(start, Some("Europe/Berlin")),
                "end": timed(start + hour, None),
                "recurrence": ["RRULE:FREQ=WEEKLY"],
            })),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "end.timeZone", "{refused}");
    assert!(
        mirrored_rows(&api, "nozone-1").await.is_empty(),
        "nothing stored"
    );

    // A zone-less single event is fine; making it recurring is not.
    let (status, single) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "nozone-2",
                "start": timed(start, None),
                "end": timed(start + hour, None),
            })),
        )
        .await;
    assert_eq!(status, 201, "{single}");
    let id = single["id"].as_str().unwrap().to_owned();
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}"),
            Some(json!({"recurrence": ["RRULE:FREQ=DAILY;COUNT=5"]})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "start.timeZone", "{refused}");
    // With zones it may become a series; then a move to a zone-less time
    // is refused in turn.
    let (status, series) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
                "start": timed(start, Some("Europe/Berlin")),
                "end": timed(start + hour, Some("Europe/Berlin")),
            })),
        )
        .await;
    assert_eq!(status, 200, "{series}");
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}"),
            Some(json!({"end": timed(start + hour + hour, None)})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "end.timeZone", "{refused}");

    // Nothing of the refused writes reached the outbox or Google.
    assert!(entity_at_google(&api, "nozone-1").is_empty());
    let google_id = single["googleEventId"].as_str().unwrap();
    let copy = at_google(&api, google_id);
    assert_eq!(copy["recurrence"][0], "RRULE:FREQ=DAILY;COUNT=5");
    assert_eq!(
        copy["end"]["timeZone"], "Europe/Berlin",
        "the refused move was never sent: {copy}"
    );
    let (_, current) = api
        .call("GET", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(current["pushState"], "synced", "{current}");
    api.stop().await;
}

async fn a_patch_between_all_day_and_timed_lands_at_google(api: Api) {
    let start = next_year_at_nine();
    let day = chrono::Duration::days(1);
    let hour = chrono::Duration::hours(1);
    let berlin = Some("Europe/Berlin");

    // A single event: all-day -> timed -> all-day.
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "kinds-1", "summary": "Offsite",
                "start": {"date": date(start)}, "end": {"date": date(start + day)},
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let google_id = created["googleEventId"].as_str().unwrap().to_owned();
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"start": timed(start, berlin), "end": timed(start + hour, berlin)})),
        )
        .await;
    assert_eq!(status, 200, "all-day -> timed: {patched}");
    let copy = at_google(&api, &google_id);
    one_kind(&copy, "start", false);
    one_kind(&copy, "end", false);
    assert_eq!(copy["start"]["timeZone"], "Europe/Berlin");
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"start": {"date": date(start)}, "end": {"date": date(start + day)}})),
        )
        .await;
    assert_eq!(status, 200, "timed -> all-day: {patched}");
    let copy = at_google(&api, &google_id);
    one_kind(&copy, "start", true);
    one_kind(&copy, "end", true);
    assert_eq!(copy["start"]["date"], date(start).as_str());

    // A series master: timed (with its zone) -> all-day -> timed.
    let (status, series) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "kinds-2", "summary": "Weekly",
                "start": timed(start, berlin), "end": timed(start + hour, berlin),
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{series}");
    let master = series["id"].as_str().unwrap().to_owned();
    let master_google = series["googleEventId"].as_str().unwrap().to_owned();
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{master}?wait=true"),
            Some(json!({"start": {"date": date(start)}, "end": {"date": date(start + day)}})),
        )
        .await;
    assert_eq!(status, 200, "series timed -> all-day: {patched}");
    let copy = at_google(&api, &master_google);
    one_kind(&copy, "start", true);
    one_kind(&copy, "end", true);
    assert_eq!(copy["recurrence"][0], "RRULE:FREQ=WEEKLY;COUNT=4");
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{master}?wait=true"),
            Some(json!({"start": timed(start, berlin), "end": timed(start + hour, berlin)})),
        )
        .await;
    assert_eq!(status, 200, "series all-day -> timed: {patched}");
    let copy = at_google(&api, &master_google);
    one_kind(&copy, "start", false);
    one_kind(&copy, "end", false);

    // An occurrence of an all-day series becomes a timed exception.
    let (status, yearly) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "kinds-3", "summary": "Founding day",
                "start": {"date": date(start)}, "end": {"date": date(start + day)},
                "recurrence": ["RRULE:FREQ=YEARLY;COUNT=3"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{yearly}");
    let yearly_id = yearly["id"].as_str().unwrap().to_owned();
    let yearly_google = yearly["googleEventId"].as_str().unwrap().to_owned();
    let suffix = start.date_naive().format("%Y%m%d").to_string();
    let occurrence = format!("{yearly_id}_{suffix}");
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{occurrence}?wait=true"),
            Some(json!({"start": timed(start, berlin), "end": timed(start + hour, berlin)})),
        )
        .await;
    assert_eq!(status, 200, "occurrence all-day -> timed: {patched}");
    let exception = at_google(&api, &format!("{yearly_google}_{suffix}"));
    one_kind(&exception, "start", false);
    one_kind(&exception, "end", false);
    assert_eq!(exception["recurringEventId"], yearly_google.as_str());
    // ... and back.
    let exception_id = patched["id"].as_str().unwrap().to_owned();
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{exception_id}?wait=true"),
            Some(json!({"start": {"date": date(start)}, "end": {"date": date(start + day)}})),
        )
        .await;
    assert_eq!(status, 200, "exception timed -> all-day: {patched}");
    let exception = at_google(&api, &format!("{yearly_google}_{suffix}"));
    one_kind(&exception, "start", true);
    one_kind(&exception, "end", true);
    api.stop().await;
}

async fn a_read_only_calendar_makes_writes_wait_and_health_name_it(api: Api) {
    let start = next_year_at_nine();
    let hour = chrono::Duration::hours(1);
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "shared-1", "summary": "Before",
                "start": timed(start, Some("Europe/Berlin")),
                "end": timed(start + hour, Some("Europe/Berlin")),
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let google_id = created["googleEventId"].as_str().unwrap().to_owned();
    // The principal may only read the calendar for three tries.
    api.emulator().set_faults(FaultPlan {
        schedule: [ScheduledFault {
            op: Some("patch".into()),
            count: 3,
            fault: Fault::status(403).with_reason("requiredAccessLevel"),
        }]
        .into(),
        ..FaultPlan::default()
    });
    let (status, accepted) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}"),
            Some(json!({"summary": "After"})),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");

    // Health names the calendar while the write waits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (message, report) = loop {
        let report = health(&api).await;
        let read_only = report["calendars"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["calendarId"] == "primary" && c["readOnly"] == true);
        if let Some(message) = has_issue(&report, "calendar_read_only")
            && read_only
        {
            break (message, report);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never reported the read-only calendar: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(message.contains("primary"), "{message}");
    let calendar = report["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["calendarId"] == "primary")
        .unwrap();
    assert!(calendar["readOnlySince"].is_string(), "{calendar}");
    assert!(
        calendar["readOnlyReason"]
            .as_str()
            .unwrap()
            .contains("requiredAccessLevel"),
        "{calendar}"
    );
    assert!(
        has_issue(&report, "push_failures").is_none(),
        "waiting, not failed: {report}"
    );
    let (_, waiting) = api
        .call("GET", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(waiting["pushState"], "pending", "{waiting}");

    // Access comes back after the third refusal: the next probe lands.
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (_, event) = api
                .call("GET", &format!("/calendar/events/{id}"), None)
                .await;
            event["pushState"] == "synced"
        })
        .await,
        "the write never landed"
    );
    assert_eq!(at_google(&api, &google_id)["summary"], "After");
    assert_eq!(
        api.emulator()
            .faults_fired()
            .get("403:requiredAccessLevel")
            .copied(),
        Some(3)
    );
    let report = health(&api).await;
    assert!(
        has_issue(&report, "calendar_read_only").is_none(),
        "the issue clears once a write lands: {report}"
    );
    assert!(
        report["calendars"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["readOnly"] == false),
        "{report}"
    );
    api.stop().await;
}

async fn an_invitation_or_a_locked_copy_takes_only_what_google_allows(api: Api) {
    let start = next_year_at_nine();
    let hour = chrono::Duration::hours(1);
    let seed = |id: &str, entity: &str, extra: Value| {
        let mut fields = object(json!({
            "id": id,
            "summary": "Quarterly review",
            "start": timed(start, Some("Europe/Berlin")),
            "end": timed(start + hour, Some("Europe/Berlin")),
            "extendedProperties": {"private": {"entity_type": "deal", "entity_id": entity}},
        }));
        fields.extend(object(extra));
        api.emulator()
            .change("primary", Change::Insert(fields))
            .unwrap();
    };
    // Organized from another calendar; this one is an attendee.
    seed(
        "invited0001",
        "invited-1",
        json!({
            "organizer": {"email": "boss@example.org", "displayName": "The Boss"},
            "attendees": [
                {"email": "me@example.com", "self": true, "responseStatus": "needsAction"},
                {"email": "boss@example.org", "displayName": "The Boss", "organizer": true, "responseStatus": "accepted"},
            ],
        }),
    );
    // An invitation to a series: its occurrences are invitations too.
    seed(
        "invitedser01",
        "invited-2",
        json!({
            "organizer": {"email": "boss@example.org"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        }),
    );
    // This calendar's own event, but a locked copy.
    seed(
        "locked00001",
        "locked-1",
        json!({"organizer": {"email": "primary", "self": true}, "locked": true}),
    );
    sync_now(&api).await;
    let invited = mirrored_rows(&api, "invited-1").await;
    assert_eq!(invited.len(), 1, "{invited:?}");
    let invited_id = invited[0]["id"].as_str().unwrap().to_owned();

    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{invited_id}"),
            Some(json!({"summary": "My review"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "summary", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    for allowed in [
        "responseStatus",
        "reminders",
        "colorId",
        "transparency",
        "private extended properties",
    ] {
        assert!(message.contains(allowed), "names {allowed}: {message}");
    }
    assert!(message.contains("boss@example.org"), "{message}");
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{invited_id}"),
            Some(json!({"start": timed(start + hour, Some("Europe/Berlin")), "end": timed(start + hour + hour, Some("Europe/Berlin"))})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "start", "{refused}");

    // One occurrence of the invited series, not yet an exception of its own.
    let series = mirrored_rows(&api, "invited-2").await;
    let second = (start + chrono::Duration::days(1)).format("%Y%m%dT%H%M%SZ");
    let occurrence = format!("{}_{second}", series[0]["id"].as_str().unwrap());
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{occurrence}"),
            Some(json!({"summary": "My day"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "summary", "{refused}");

    let locked = mirrored_rows(&api, "locked-1").await;
    let locked_id = locked[0]["id"].as_str().unwrap().to_owned();
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{locked_id}"),
            Some(json!({"summary": "Unlocked?"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "summary", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("locked"), "{message}");
    assert!(message.contains("responseStatus"), "{message}");

    // Nothing was queued: both copies stand as Google has them.
    for (id, google_id) in [(&invited_id, "invited0001"), (&locked_id, "locked00001")] {
        let (_, event) = api
            .call("GET", &format!("/calendar/events/{id}"), None)
            .await;
        assert_eq!(event["pushState"], "synced", "{event}");
        assert_eq!(event["summary"], "Quarterly review");
        assert_eq!(at_google(&api, google_id)["summary"], "Quarterly review");
    }
    // The attendee's own answer is its to give, and lands at Google. The
    // client leaves out the organizer's answer and name: they stay as
    // Google has them (sent as they are, not reset to needsAction).
    let (status, accepted) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{invited_id}"),
            Some(json!({"attendees": [
                {"email": "me@example.com", "responseStatus": "accepted"},
                {"email": "boss@example.org"},
            ]})),
        )
        .await;
    assert_eq!(status, 202, "an RSVP is not refused: {accepted}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (_, event) = api
                .call("GET", &format!("/calendar/events/{invited_id}"), None)
                .await;
            event["pushState"] == "synced"
        })
        .await,
        "the RSVP never landed: {:?}",
        api.call("GET", &format!("/calendar/events/{invited_id}"), None)
            .await
    );
    let at_google = at_google(&api, "invited0001");
    let answer = |email: &str| {
        at_google["attendees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["email"] == email)
            .unwrap_or_else(|| panic!("{email} is not invited: {at_google}"))
            .clone()
    };
    assert_eq!(
        answer("me@example.com")["responseStatus"],
        "accepted",
        "{at_google}"
    );
    let boss = answer("boss@example.org");
    assert_eq!(boss["responseStatus"], "accepted", "{at_google}");
    assert_eq!(boss["displayName"], "The Boss", "{at_google}");
    assert_eq!(boss["organizer"], true, "read-only, kept: {at_google}");
    assert_eq!(at_google["summary"], "Quarterly review");
    let (_, mirrored) = api
        .call("GET", &format!("/calendar/events/{invited_id}"), None)
        .await;
    assert_eq!(
        mirrored["attendees"],
        json!([
            {"email": "me@example.com", "responseStatus": "accepted"},
            {"email": "boss@example.org", "displayName": "The Boss", "responseStatus": "accepted"},
        ]),
        "the mirror holds Google's answer: {mirrored}"
    );
    api.stop().await;
}

/// The same through the emulator's own access roles rather than a fault
/// plan, for an insert and a delete: while the calendar's role for calsync
/// is `reader`, both wait (never dead-lettered) and health names the
/// calendar; once it is `owner` again both land.
async fn inserts_and_deletes_wait_while_the_role_is_reader(api: Api) {
    let start = next_year_at_nine();
    let hour = chrono::Duration::hours(1);
    let body = |entity: &str| {
        json!({
            "entityType": "deal", "entityId": entity, "summary": entity,
            "start": timed(start, Some("Europe/Berlin")),
            "end": timed(start + hour, Some("Europe/Berlin")),
        })
    };
    let (status, doomed) = api
        .call("POST", "/calendar/events?wait=true", Some(body("doomed-1")))
        .await;
    assert_eq!(status, 201, "{doomed}");
    let doomed_google = doomed["googleEventId"].as_str().unwrap().to_owned();
    // Someone turns calsync's access down to "See all event details".
    api.emulator()
        .set_access_role("primary", "*", calsync_emulator::AccessRole::Reader);
    let (status, created) = api
        .call("POST", "/calendar/events", Some(body("late-1")))
        .await;
    assert_eq!(status, 202, "{created}");
    let created_id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/calendar/events/{}", doomed["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(status < 300, "{status}");
    assert!(
        eventually(Duration::from_secs(15), || async {
            has_issue(&health(&api).await, "calendar_read_only").is_some()
        })
        .await,
        "health never named the read-only calendar"
    );
    // Several probes go by; nothing is given up meanwhile.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = health(&api).await;
    assert!(has_issue(&report, "push_failures").is_none(), "{report}");
    let (_, waiting) = api
        .call("GET", &format!("/calendar/events/{created_id}"), None)
        .await;
    assert_eq!(waiting["pushState"], "pending", "{waiting}");
    assert_eq!(at_google(&api, &doomed_google)["status"], "confirmed");

    api.emulator()
        .set_access_role("primary", "*", calsync_emulator::AccessRole::Owner);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (_, event) = api
                .call("GET", &format!("/calendar/events/{created_id}"), None)
                .await;
            event["pushState"] == "synced"
                && at_google(&api, &doomed_google)["status"] == "cancelled"
        })
        .await,
        "the waiting writes never landed"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            has_issue(&health(&api).await, "calendar_read_only").is_none()
        })
        .await,
        "the issue never cleared"
    );
    api.stop().await;
}

both_backends!(
    flags: &super::QUICK_PROBE;
    a_recurring_event_without_a_zone_is_refused_before_anything_is_queued,
    a_patch_between_all_day_and_timed_lands_at_google,
    a_read_only_calendar_makes_writes_wait_and_health_name_it,
    an_invitation_or_a_locked_copy_takes_only_what_google_allows,
    inserts_and_deletes_wait_while_the_role_is_reader,
);
