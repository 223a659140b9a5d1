//! What the emulator refuses because Google does (issue 22), over real
//! HTTP: recurring events without a zone, patch merging, access roles,
//! invited copies, purged deletions and ragged pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use calsync_emulator::{AccessRole, Change, Emulator, EmulatorConfig, Fault, RunningEmulator};
use serde_json::{Map, Value, json};

const CAL: &str = "team@example.com";
const CAL_PATH: &str = "team%40example.com";
const OWNER: &str = "owner-token";

struct Http {
    client: support::Http,
    base: String,
}

impl Http {
    fn new(emu: &RunningEmulator) -> Self {
        Self {
            client: support::Http::new(),
            base: emu.base_url.clone(),
        }
    }

    /// A call on the calendar's events (`path` after `/events`) as `token`.
    async fn api(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!(
            "{}/calendar/v3/calendars/{CAL_PATH}/events{path}",
            self.base
        );
        self.send(Some(token), method, &url, body).await
    }

    /// An admin call (`path` after `/emulator`).
    async fn admin(&self, method: &str, path: &str, body: Value) -> u16 {
        let url = format!("{}/emulator{path}", self.base);
        self.send(None, method, &url, Some(body)).await.0
    }

    async fn send(
        &self,
        token: Option<&str>,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.client
            .json(method, url, token, &[], body.as_ref())
            .await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.api(OWNER, method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }
}

async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

/// Google's error body for one error.
fn google_error(status: u16, domain: &str, reason: &str, message: &str) -> Value {
    json!({"error": {
        "errors": [{"domain": domain, "reason": reason, "message": message}],
        "code": status,
        "message": message,
    }})
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn recurring_timed_events_need_a_time_zone() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new(&emu);
    let missing = |field: &str| {
        google_error(
            400,
            "global",
            "required",
            &format!("Missing time zone definition for {field} time."),
        )
    };
    // No zone at all, then a zone on the start only.
    let (status, answer) = http
        .api(
            OWNER,
            "POST",
            "",
            Some(json!({
                "id": "rule000001",
                "start": {"dateTime": "2026-03-02T10:00:00Z"},
                "end": {"dateTime": "2026-03-02T11:00:00Z"},
                "recurrence": ["RRULE:FREQ=WEEKLY"],
            })),
        )
        .await;
    assert_eq!((status, answer), (400, missing("start")));
    let (status, answer) = http
        .api(
            OWNER,
            "POST",
            "",
            Some(json!({
                "id": "rule000001",
                "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2026-03-02T11:00:00Z"},
                "recurrence": ["RRULE:FREQ=WEEKLY"],
            })),
        )
        .await;
    assert_eq!((status, answer), (400, missing("end")));
    assert!(emu.emulator.events(CAL).is_empty(), "nothing was stored");

    // An all-day series needs none; a single timed event neither.
    http.ok(
        "POST",
        "",
        Some(json!({
            "start": {"date": "2026-05-12"},
            "end": {"date": "2026-05-13"},
            "recurrence": ["RRULE:FREQ=YEARLY"],
        })),
    )
    .await;
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "single0001",
            "start": {"dateTime": "2026-03-02T10:00:00Z"},
            "end": {"dateTime": "2026-03-02T11:00:00Z"},
        })),
    )
    .await;
    // Making the single event recur needs the zone too, patch or update.
    let (status, answer) = http
        .api(
            OWNER,
            "PATCH",
            "/single0001",
            Some(json!({"recurrence": ["RRULE:FREQ=DAILY"]})),
        )
        .await;
    assert_eq!((status, answer), (400, missing("start")));
    let (status, answer) = http
        .api(
            OWNER,
            "PUT",
            "/single0001",
            Some(json!({
                "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-03-02T11:00:00Z"},
                "recurrence": ["RRULE:FREQ=DAILY"],
            })),
        )
        .await;
    assert_eq!((status, answer), (400, missing("end")));

    // With both zones it is taken; a patch may not take a zone away.
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "rule000001",
            "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-02T11:00:00Z", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        })),
    )
    .await;
    let (status, answer) = http
        .api(
            OWNER,
            "PATCH",
            "/rule000001",
            Some(json!({"end": {"timeZone": null}})),
        )
        .await;
    assert_eq!((status, answer), (400, missing("end")));
    let master = http.ok("GET", "/rule000001", None).await;
    assert_eq!(
        master["end"]["timeZone"], "Europe/Berlin",
        "refused: unchanged"
    );
    // An occurrence's write is not a series of its own: no zone rule.
    http.ok(
        "PATCH",
        "/rule000001_20260309T100000Z",
        Some(json!({"summary": "Moved"})),
    )
    .await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_merge_into_nested_objects_and_null_clears() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new(&emu);
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "dates00001",
            "summary": "Offsite",
            "start": {"date": "2026-05-01"},
            "end": {"date": "2026-05-02"},
            "attendees": [{"email": "a@example.com"}, {"email": "b@example.com"}],
            "extendedProperties": {"private": {"entity_id": "7", "note": "n"}},
        })),
    )
    .await;
    // `start` merges: the date stays beside the new dateTime, which Google refuses.
    let (status, answer) = http
        .api(
            OWNER,
            "PATCH",
            "/dates00001",
            Some(json!({"start": {"dateTime": "2026-05-01T09:00:00Z"}})),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            400,
            google_error(400, "global", "invalid", "Invalid start time.")
        )
    );
    let (status, answer) = http
        .api(
            OWNER,
            "PATCH",
            "/dates00001",
            Some(json!({"end": {"dateTime": "2026-05-01T09:00:00Z"}})),
        )
        .await;
    assert_eq!(
        (status, answer),
        (
            400,
            google_error(400, "global", "invalid", "Invalid end time.")
        )
    );
    let unchanged = http.ok("GET", "/dates00001", None).await;
    assert_eq!(unchanged["start"], json!({"date": "2026-05-01"}));

    // An explicit null removes the date; arrays are replaced, nested keys merge.
    let patched = http
        .ok(
            "PATCH",
            "/dates00001",
            Some(json!({
                "start": {"date": null, "dateTime": "2026-05-01T09:00:00+02:00", "timeZone": "Europe/Berlin"},
                "end": {"date": null, "dateTime": "2026-05-01T10:00:00+02:00"},
                "attendees": [{"email": "c@example.com"}],
                "extendedProperties": {"private": {"note": null, "extra": "x"}},
            })),
        )
        .await;
    assert_eq!(
        patched["start"],
        json!({"dateTime": "2026-05-01T09:00:00+02:00", "timeZone": "Europe/Berlin"})
    );
    assert_eq!(
        patched["end"],
        json!({"dateTime": "2026-05-01T10:00:00+02:00"})
    );
    assert_eq!(patched["attendees"], json!([{"email": "c@example.com"}]));
    assert_eq!(
        patched["extendedProperties"]["private"],
        json!({"entity_id": "7", "extra": "x"})
    );
    assert_eq!(patched["summary"], "Offsite", "unsent fields stay");

    // A new dateTime alone keeps the zone; a null zone removes it.
    let moved = http
        .ok(
            "PATCH",
            "/dates00001",
            Some(json!({"start": {"dateTime": "2026-05-01T08:30:00+02:00"}})),
        )
        .await;
    assert_eq!(moved["start"]["timeZone"], "Europe/Berlin");
    let unzoned = http
        .ok(
            "PATCH",
            "/dates00001",
            Some(json!({"start": {"timeZone": null}, "summary": null})),
        )
        .await;
    assert!(unzoned["start"].get("timeZone").is_none(), "{unzoned}");
    assert!(unzoned.get("summary").is_none(), "{unzoned}");

    // Update still replaces the whole resource, nested objects included.
    let replaced = http
        .ok(
            "PUT",
            "/dates00001",
            Some(json!({"start": {"date": "2026-05-03"}, "end": {"date": "2026-05-04"}})),
        )
        .await;
    assert_eq!(replaced["start"], json!({"date": "2026-05-03"}));
    assert!(replaced.get("attendees").is_none());
    assert!(replaced.get("extendedProperties").is_none());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_read_but_cannot_write() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new(&emu);
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "event00001",
            "start": {"dateTime": "2026-05-01T10:00:00Z"},
            "end": {"dateTime": "2026-05-01T11:00:00Z"},
        })),
    )
    .await;
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "morning001",
            "start": {"dateTime": "2026-05-01T08:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-01T08:30:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        })),
    )
    .await;
    // Through the admin endpoint for one principal, the handle for another.
    let status = http
        .admin(
            "PUT",
            &format!("/calendars/{CAL_PATH}/roles"),
            json!({"principal": "reader-token", "role": "reader"}),
        )
        .await;
    assert_eq!(status, 204);
    emu.emulator
        .set_access_role(CAL, "busy-token", AccessRole::FreeBusyReader);
    let refusal = google_error(
        403,
        "calendar",
        "requiredAccessLevel",
        "You need to have writer access to this calendar.",
    );
    for token in ["reader-token", "busy-token"] {
        let (status, list) = http.api(token, "GET", "", None).await;
        assert_eq!(status, 200, "{token} reads: {list}");
        assert_eq!(ids(&list).len(), 2);
        assert_ne!(list["accessRole"], "owner");
        let (status, _) = http.api(token, "GET", "/event00001", None).await;
        assert_eq!(status, 200);
        let (status, _) = http.api(token, "GET", "/morning001/instances", None).await;
        assert_eq!(status, 200);
        let writes = [
            (
                "POST",
                "",
                Some(json!({"start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}})),
            ),
            ("PATCH", "/event00001", Some(json!({"summary": "x"}))),
            (
                "PUT",
                "/event00001",
                Some(json!({"start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}})),
            ),
            ("DELETE", "/event00001", None),
            (
                "PATCH",
                "/morning001_20260502T080000Z",
                Some(json!({"summary": "x"})),
            ),
            ("DELETE", "/morning001_20260502T080000Z", None),
        ];
        for (method, path, body) in writes {
            let (status, answer) = http.api(token, method, path, body).await;
            assert_eq!(
                (status, &answer),
                (403, &refusal),
                "{token} {method} {path}"
            );
        }
    }
    let (_, list) = http.api("reader-token", "GET", "", None).await;
    assert_eq!(list["accessRole"], "reader");
    assert_eq!(emu.emulator.events(CAL).len(), 2, "nothing written");
    assert!(emu.emulator.last_writer(CAL).is_some_and(|w| w == OWNER));

    // `*` is every principal without a role of its own.
    let status = http
        .admin(
            "PUT",
            &format!("/calendars/{CAL_PATH}/roles"),
            json!({"principal": "*", "role": "reader"}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = http
        .api(OWNER, "PATCH", "/event00001", Some(json!({"summary": "x"})))
        .await;
    assert_eq!(status, 403, "the static token is refused too");
    emu.emulator.set_access_role(CAL, OWNER, AccessRole::Writer);
    let patched = http
        .ok("PATCH", "/event00001", Some(json!({"summary": "x"})))
        .await;
    assert_eq!(patched["summary"], "x");
    let (_, list) = http.api(OWNER, "GET", "", None).await;
    assert_eq!(list["accessRole"], "writer");
    let status = http
        .admin(
            "PUT",
            &format!("/calendars/{CAL_PATH}/roles"),
            json!({"principal": "*", "role": "superuser"}),
        )
        .await;
    assert_eq!(status, 400, "unknown roles are refused");

    // A fault plan can answer the same refusal.
    emu.emulator.schedule_fault(
        Some("insert"),
        1,
        Fault::status(403).with_reason("requiredAccessLevel"),
    );
    let (status, answer) = http
        .api(
            OWNER,
            "POST",
            "",
            Some(json!({"start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}})),
        )
        .await;
    assert_eq!((status, answer), (403, refusal));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invited_copies_take_only_the_attendees_changes() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new(&emu);
    let refusal = google_error(
        403,
        "calendar",
        "forbiddenForNonOrganizer",
        "Shared properties can only be changed by the organizer of the event.",
    );
    // Seeded as Google would hold an invitation from someone else.
    emu.emulator
        .change(
            CAL,
            Change::Insert(object(json!({
                "id": "invite0001",
                "summary": "Quarterly review",
                "organizer": {"email": "boss@example.com", "displayName": "Boss"},
                "start": {"dateTime": "2026-05-01T10:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-05-01T11:00:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
                "attendees": [
                    {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
                    {"email": CAL, "self": true, "responseStatus": "needsAction"},
                ],
                "extendedProperties": {"shared": {"agenda": "1"}},
            }))),
        )
        .unwrap();
    let stored = http.ok("GET", "/invite0001", None).await;
    assert_eq!(
        stored["organizer"]["email"], "boss@example.com",
        "seeded as given"
    );

    for (what, body) in [
        ("summary", json!({"summary": "Mine now"})),
        (
            "start",
            json!({"start": {"dateTime": "2026-05-01T09:00:00Z"}}),
        ),
        (
            "shared property",
            json!({"extendedProperties": {"shared": {"agenda": "2"}}}),
        ),
        (
            "another's answer",
            json!({"attendees": [
                {"email": "boss@example.com", "organizer": true, "responseStatus": "declined"},
                {"email": CAL, "self": true, "responseStatus": "needsAction"},
            ]}),
        ),
        ("recurrence", json!({"recurrence": ["RRULE:FREQ=DAILY"]})),
        (
            "another's answer left out (needsAction)",
            json!({"attendees": [
                {"email": CAL, "responseStatus": "accepted"},
                {"email": "boss@example.com"},
            ]}),
        ),
        (
            "a guest added",
            json!({"attendees": [
                {"email": CAL, "responseStatus": "accepted"},
                {"email": "boss@example.com", "responseStatus": "accepted"},
                {"email": "friend@example.com"},
            ]}),
        ),
    ] {
        let (status, answer) = http.api(OWNER, "PATCH", "/invite0001", Some(body)).await;
        assert_eq!((status, &answer), (403, &refusal), "{what}");
    }
    // An RSVP as calsync sends it: attendees matched by email, in another
    // order, without the read-only `organizer` and `self` keys, which
    // Google keeps as they were.
    let rsvp = http
        .ok(
            "PATCH",
            "/invite0001",
            Some(json!({"attendees": [
                {"email": CAL.to_uppercase(), "responseStatus": "tentative"},
                {"email": "boss@example.com", "responseStatus": "accepted"},
            ]})),
        )
        .await;
    assert_eq!(
        rsvp["attendees"],
        json!([
            {"email": CAL.to_uppercase(), "self": true, "responseStatus": "tentative"},
            {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
        ])
    );
    // An occurrence of the invited series is refused the same way.
    let (status, answer) = http
        .api(
            OWNER,
            "PATCH",
            "/invite0001_20260508T100000Z",
            Some(json!({"location": "Elsewhere"})),
        )
        .await;
    assert_eq!((status, answer), (403, refusal.clone()));
    // The attendee's own: the answer, colour, reminders, transparency, private properties.
    let answered = http
        .ok(
            "PATCH",
            "/invite0001",
            Some(json!({
                "attendees": [
                    {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
                    {"email": CAL, "self": true, "responseStatus": "accepted", "comment": "Sure"},
                ],
                "colorId": "5",
                "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 5}]},
                "transparency": "transparent",
                "extendedProperties": {"private": {"entity_id": "7"}},
                "organizer": {"email": CAL, "self": true},
            })),
        )
        .await;
    assert_eq!(answered["attendees"][1]["responseStatus"], "accepted");
    assert_eq!(answered["extendedProperties"]["shared"]["agenda"], "1");
    assert_eq!(
        answered["organizer"]["email"], "boss@example.com",
        "organizer is read-only: ignored"
    );
    // An update echoing the resource with one allowed change is fine; one
    // leaving the description out is a change.
    let mut echoed = answered.clone();
    echoed["colorId"] = json!("6");
    let updated = http.ok("PUT", "/invite0001", Some(echoed)).await;
    assert_eq!(updated["colorId"], "6");
    let mut renamed = updated.clone();
    renamed["summary"] = json!("Renamed");
    let (status, answer) = http.api(OWNER, "PUT", "/invite0001", Some(renamed)).await;
    assert_eq!((status, answer), (403, refusal.clone()));
    // The attendee may delete their copy.
    let (status, _) = http.api(OWNER, "DELETE", "/invite0001", None).await;
    assert_eq!(status, 204);

    // With guestsCanModify the attendee may change the event.
    emu.emulator
        .change(
            CAL,
            Change::Insert(object(json!({
                "id": "open000001",
                "organizer": {"email": "boss@example.com"},
                "guestsCanModify": true,
                "start": {"dateTime": "2026-05-01T10:00:00Z"},
                "end": {"dateTime": "2026-05-01T11:00:00Z"},
            }))),
        )
        .unwrap();
    http.ok("PATCH", "/open000001", Some(json!({"summary": "Agreed"})))
        .await;

    // A locked event keeps its main fields, even the organizer's own.
    emu.emulator
        .change(
            CAL,
            Change::Insert(object(json!({
                "id": "locked0001",
                "summary": "Booked room",
                "locked": true,
                "start": {"dateTime": "2026-05-01T10:00:00Z"},
                "end": {"dateTime": "2026-05-01T11:00:00Z"},
            }))),
        )
        .unwrap();
    for body in [
        json!({"summary": "Other"}),
        json!({"location": "Room 2"}),
        json!({"end": {"dateTime": "2026-05-01T12:00:00Z"}}),
    ] {
        let (status, answer) = http.api(OWNER, "PATCH", "/locked0001", Some(body)).await;
        assert_eq!((status, &answer), (403, &refusal));
    }
    let coloured = http
        .ok(
            "PATCH",
            "/locked0001",
            Some(json!({"colorId": "2", "visibility": "private", "locked": false})),
        )
        .await;
    assert_eq!(coloured["locked"], true, "locked is read-only");
    assert_eq!(coloured["visibility"], "private");

    // The API cannot make invited copies or locked events.
    let inserted = http
        .ok(
            "POST",
            "",
            Some(json!({
                "organizer": {"email": "boss@example.com"},
                "locked": true,
                "start": {"dateTime": "2026-05-01T10:00:00Z"},
                "end": {"dateTime": "2026-05-01T11:00:00Z"},
            })),
        )
        .await;
    assert_eq!(inserted["organizer"], json!({"email": CAL, "self": true}));
    assert!(inserted.get("locked").is_none());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_events_are_purged_after_the_configured_age() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new(&emu);
    for id in ["keep000001", "gone000001"] {
        http.ok(
            "POST",
            "",
            Some(json!({
                "id": id,
                "start": {"dateTime": "2026-05-01T10:00:00Z"},
                "end": {"dateTime": "2026-05-01T11:00:00Z"},
            })),
        )
        .await;
    }
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "series0001",
            "start": {"dateTime": "2026-05-01T08:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-01T08:30:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        })),
    )
    .await;
    let before = http.ok("GET", "", None).await;
    let old_token = before["nextSyncToken"].as_str().unwrap().to_owned();
    http.ok("DELETE", "/gone000001", None).await;
    http.ok("DELETE", "/series0001_20260502T080000Z", None)
        .await;
    let changes = http
        .ok("GET", &format!("?syncToken={old_token}"), None)
        .await;
    assert_eq!(
        ids(&changes),
        ["gone000001", "series0001_20260502T080000Z"],
        "the deletions, before the purge"
    );
    let after_token = changes["nextSyncToken"].as_str().unwrap().to_owned();
    // By default deleted events stay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        http.ok("GET", "/gone000001", None).await["status"],
        "cancelled"
    );

    let status = http
        .admin("PUT", "/deleted-events", json!({"purgeAfterMs": 200}))
        .await;
    assert_eq!(status, 204);
    let not_found = google_error(404, "global", "notFound", "Not Found");
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"status": "confirmed"}))),
        (
            "PUT",
            Some(
                json!({"status": "confirmed", "start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}}),
            ),
        ),
        ("DELETE", None),
    ] {
        let (status, answer) = http.api(OWNER, method, "/gone000001", body).await;
        assert_eq!((status, &answer), (404, &not_found), "{method}");
    }
    let all = http.ok("GET", "?showDeleted=true", None).await;
    assert!(!ids(&all).contains(&"gone000001".to_owned()), "{all}");
    assert!(
        ids(&all).contains(&"series0001_20260502T080000Z".to_owned()),
        "a cancelled occurrence of a live series is never purged"
    );
    assert_eq!(
        http.ok("GET", "/series0001_20260502T080000Z", None).await["status"],
        "cancelled"
    );
    let since_after = http
        .ok("GET", &format!("?syncToken={after_token}"), None)
        .await;
    assert!(ids(&since_after).is_empty(), "{since_after}");
    // A token from before the purged deletion cannot report it: full sync.
    let (status, answer) = http
        .api(OWNER, "GET", &format!("?syncToken={old_token}"), None)
        .await;
    assert_eq!(status, 410, "{answer}");
    assert_eq!(answer["error"]["errors"][0]["reason"], "fullSyncRequired");
    // The id stays reserved.
    let (status, answer) = http
        .api(
            OWNER,
            "POST",
            "",
            Some(json!({
                "id": "gone000001",
                "start": {"dateTime": "2026-05-01T10:00:00Z"},
                "end": {"dateTime": "2026-05-01T11:00:00Z"},
            })),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["errors"][0]["reason"].as_str()),
        (409, Some("duplicate"))
    );
    assert!(
        emu.emulator
            .events(CAL)
            .iter()
            .all(|e| e["id"] != "gone000001")
    );

    // A deleted series goes with its exceptions.
    http.ok("DELETE", "/series0001", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = http.api(OWNER, "GET", "/series0001", None).await;
    assert_eq!(status, 404);
    let (status, _) = http
        .api(OWNER, "GET", "/series0001_20260502T080000Z", None)
        .await;
    assert_eq!(status, 404);
    let left: Vec<String> = emu
        .emulator
        .events(CAL)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["keep000001"]);
    // Turned off again, deletions stay.
    emu.emulator.set_deleted_event_purge_after(None);
    http.ok("DELETE", "/keep000001", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        http.ok("GET", "/keep000001", None).await["status"],
        "cancelled"
    );
    emu.stop().await;
}

/// Reads every page of a listing (`query` without a page token); returns
/// the ids in order, how many pages were short or empty while more
/// remained, and the final sync token.
async fn read_all(
    http: &Http,
    path: &str,
    query: &str,
    max: usize,
) -> (Vec<String>, usize, Option<String>) {
    let mut all = Vec::new();
    let mut ragged = 0;
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let page_query = match &token {
            Some(token) => format!("{query}&pageToken={token}"),
            None => query.to_owned(),
        };
        let page = http.ok("GET", &format!("{path}?{page_query}"), None).await;
        let items = ids(&page);
        assert!(items.len() <= max, "{page}");
        all.extend(items.iter().cloned());
        match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
            Some(next) => {
                assert!(
                    page.get("nextSyncToken").is_none(),
                    "sync token only on the last page"
                );
                if items.len() < max {
                    ragged += 1;
                }
                token = Some(next.to_owned());
            }
            None => {
                return (
                    all,
                    ragged,
                    page["nextSyncToken"].as_str().map(str::to_owned),
                );
            }
        }
    }
    panic!("the listing never ended");
}

fn assert_each_once(ids: &[String], expected: &BTreeSet<String>, what: &str) {
    let seen: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(seen.len(), ids.len(), "{what}: an event repeated: {ids:?}");
    assert_eq!(&seen, expected, "{what}: skipped or extra events");
}

#[tokio::test(flavor = "multi_thread")]
async fn ragged_pages_skip_and_repeat_nothing() {
    let emu = start(EmulatorConfig {
        ragged_pages_seed: Some(7),
        ..EmulatorConfig::default()
    })
    .await;
    let http = Http::new(&emu);
    emu.emulator.seed(CAL, 60).unwrap();
    http.ok(
        "POST",
        "",
        Some(json!({
            "id": "morning001",
            "start": {"dateTime": "2026-05-01T08:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-05-01T08:30:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=40"],
        })),
    )
    .await;
    let stored: BTreeSet<String> = emu
        .emulator
        .events(CAL)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let mut ragged_total = 0;

    // A full listing.
    let (listed, ragged, sync) = read_all(&http, "", "maxResults=7", 7).await;
    assert_each_once(&listed, &stored, "full listing");
    ragged_total += ragged;

    // Changes, then an incremental listing of exactly them.
    let mut changed = BTreeSet::new();
    for (i, id) in stored
        .iter()
        .filter(|id| id.as_str() != "morning001")
        .take(25)
        .enumerate()
    {
        if i % 2 == 0 {
            http.ok(
                "PATCH",
                &format!("/{id}"),
                Some(json!({"summary": "changed"})),
            )
            .await;
        } else {
            http.ok("DELETE", &format!("/{id}"), None).await;
        }
        changed.insert(id.clone());
    }
    let (listed, ragged, _) = read_all(
        &http,
        "",
        &format!("maxResults=4&syncToken={}", sync.unwrap()),
        4,
    )
    .await;
    assert_each_once(&listed, &changed, "incremental listing");
    ragged_total += ragged;

    // Expanded occurrences, and one series' instances.
    let occurrences: BTreeSet<String> = (1..=31)
        .map(|day| format!("morning001_202605{day:02}T080000Z"))
        .chain((1..=9).map(|day| format!("morning001_202606{day:02}T080000Z")))
        .collect();
    let (listed, ragged, _) = read_all(
        &http,
        "",
        "maxResults=6&singleEvents=true&timeMin=2026-04-01T00:00:00Z&timeMax=2026-07-01T00:00:00Z",
        6,
    )
    .await;
    let daily: Vec<String> = listed
        .iter()
        .filter(|id| id.starts_with("morning001"))
        .cloned()
        .collect();
    assert_each_once(&daily, &occurrences, "expanded listing");
    ragged_total += ragged;
    let (listed, ragged, sync) = read_all(&http, "/morning001/instances", "maxResults=5", 5).await;
    assert_each_once(&listed, &occurrences, "instances");
    assert!(sync.is_none(), "instances have no sync token");
    ragged_total += ragged;
    assert!(
        ragged_total > 0,
        "some page was short or empty while more remained"
    );

    // Off again: full pages.
    emu.emulator.set_ragged_pages(None);
    let page = http
        .ok("GET", "/morning001/instances?maxResults=5", None)
        .await;
    assert_eq!(ids(&page).len(), 5);
    let status = http.admin("PUT", "/pages", json!({"raggedSeed": 3})).await;
    assert_eq!(status, 204);
    let (listed, _, _) = read_all(&http, "/morning001/instances", "maxResults=5", 5).await;
    assert_each_once(&listed, &occurrences, "instances, seed set over HTTP");
    emu.stop().await;
}
