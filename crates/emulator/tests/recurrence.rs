//! Recurring events, event types and conference data, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use calsync_emulator::{Change, Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Map, Value, json};

const CAL: &str = "team@example.com";
const CAL_PATH: &str = "team%40example.com";

struct Api {
    client: support::Http,
    base: String,
}

impl Api {
    fn new(emu: &RunningEmulator) -> Self {
        Self {
            client: support::Http::new(),
            base: format!("{}/calendar/v3/calendars/{CAL_PATH}/events", emu.base_url),
        }
    }

    async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{path_and_query}", self.base);
        self.client
            .json(method, &url, Some("any"), headers, body.as_ref())
            .await
    }

    async fn ok(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path_and_query, body, &[]).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path_and_query}: {status} {answer}"
        );
        answer
    }

    async fn refused(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let (status, answer) = self.call(method, path_and_query, body, &[]).await;
        assert!(
            status >= 400,
            "{method} {path_and_query}: {status} {answer}"
        );
        let reason = answer["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (status, reason)
    }
}

async fn start() -> RunningEmulator {
    Emulator::new(EmulatorConfig::default())
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    items(list)
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn weekly_series_with_a_moved_and_a_cancelled_occurrence() {
    let emu = start().await;
    let api = Api::new(&emu);
    let master = api
        .ok(
            "POST",
            "",
            Some(json!({
                "id": "standup001",
                "summary": "Stand-up",
                "description": "Every Monday and Wednesday",
                "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2026-03-02T10:30:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=20"],
                "extendedProperties": {"private": {"entity_id": "7"}},
            })),
        )
        .await;
    assert_eq!(master["eventType"], "default");

    // The 5th week: Monday 30 March and Wednesday 1 April.
    let monday = "standup001_20260330T100000Z";
    let wednesday = "standup001_20260401T100000Z";
    let occurrence = api.ok("GET", &format!("/{monday}"), None).await;
    assert_eq!(occurrence["recurringEventId"], "standup001");
    assert_eq!(
        occurrence["originalStartTime"]["dateTime"],
        "2026-03-30T10:00:00Z"
    );
    assert_eq!(occurrence["start"]["dateTime"], "2026-03-30T10:00:00Z");
    assert_eq!(occurrence["end"]["dateTime"], "2026-03-30T10:30:00Z");
    assert_eq!(occurrence["summary"], "Stand-up");
    assert_eq!(
        occurrence["extendedProperties"]["private"]["entity_id"],
        "7"
    );
    assert_eq!(occurrence["iCalUID"], master["iCalUID"]);
    assert!(occurrence.get("recurrence").is_none());
    assert_ne!(occurrence["etag"], master["etag"]);
    // Not an occurrence: a Tuesday, and a time the rule never makes.
    for id in [
        "standup001_20260331T100000Z",
        "standup001_20260330T110000Z",
        "standup001_x",
    ] {
        let (status, _) = api.refused("GET", &format!("/{id}"), None).await;
        assert_eq!(status, 404, "{id}");
    }

    // If-Match applies to occurrences as to events.
    let (status, _) = api
        .call(
            "PATCH",
            &format!("/{monday}"),
            Some(json!({"summary": "x"})),
            &[("If-Match", "\"nope\"")],
        )
        .await;
    assert_eq!(status, 412);
    let etag = occurrence["etag"].as_str().unwrap();
    let (status, moved) = api
        .call(
            "PATCH",
            &format!("/{monday}"),
            Some(json!({
                "summary": "Moved stand-up",
                "start": {"dateTime": "2026-03-31T14:00:00Z"},
                "end": {"dateTime": "2026-03-31T14:30:00Z"},
            })),
            &[("If-Match", etag)],
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["id"], monday);
    assert_eq!(moved["recurringEventId"], "standup001");
    assert_eq!(
        moved["originalStartTime"]["dateTime"],
        "2026-03-30T10:00:00Z"
    );
    assert_eq!(moved["description"], "Every Monday and Wednesday");
    let (status, _) = api
        .call("DELETE", &format!("/{wednesday}"), None, &[])
        .await;
    assert_eq!(status, 204);
    let cancelled = api.ok("GET", &format!("/{wednesday}"), None).await;
    assert_eq!(cancelled["status"], "cancelled");
    let (status, reason) = api
        .refused(
            "PATCH",
            &format!("/{wednesday}"),
            Some(json!({"summary": "y"})),
        )
        .await;
    assert_eq!((status, reason.as_str()), (410, "deleted"));

    let window = "timeMin=2026-03-30T00:00:00Z&timeMax=2026-04-06T00:00:00Z";
    let week = api
        .ok(
            "GET",
            &format!("?singleEvents=true&orderBy=startTime&{window}"),
            None,
        )
        .await;
    assert_eq!(ids(&week), [monday]);
    assert_eq!(items(&week)[0]["summary"], "Moved stand-up");
    assert_eq!(items(&week)[0]["start"]["dateTime"], "2026-03-31T14:00:00Z");
    // With showDeleted the cancelled occurrence comes back as a stub.
    let week = api
        .ok(
            "GET",
            &format!("?singleEvents=true&orderBy=startTime&showDeleted=true&{window}"),
            None,
        )
        .await;
    assert_eq!(ids(&week), [monday, wednesday]);
    assert_eq!(items(&week)[1]["status"], "cancelled");
    // The week before: both occurrences, computed.
    let before = api
        .ok(
            "GET",
            "?singleEvents=true&orderBy=startTime&timeMin=2026-03-23T00:00:00Z&timeMax=2026-03-30T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(
        ids(&before),
        ["standup001_20260323T100000Z", "standup001_20260325T100000Z"]
    );

    // Without singleEvents: the master and both exceptions, the cancelled
    // one as a stub even without showDeleted.
    let full = api.ok("GET", "", None).await;
    assert_eq!(ids(&full), ["standup001", monday, wednesday]);
    let stub = &items(&full)[2];
    assert_eq!(stub["status"], "cancelled");
    assert_eq!(stub["recurringEventId"], "standup001");
    assert_eq!(
        stub["originalStartTime"]["dateTime"],
        "2026-04-01T10:00:00Z"
    );
    assert!(stub.get("summary").is_none());

    // orderBy=startTime needs singleEvents.
    let (status, _) = api.refused("GET", "?orderBy=startTime", None).await;
    assert_eq!(status, 400);
    let (status, reason) = api
        .refused(
            "GET",
            "?singleEvents=true&timeMin=2026-04-01T00:00:00Z&timeMax=2026-03-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!((status, reason.as_str()), (400, "timeRangeEmpty"));

    // Paging through the expanded series: 20 occurrences, 7 a page.
    let mut seen = Vec::new();
    let mut query = "?singleEvents=true&orderBy=startTime&maxResults=7".to_owned();
    loop {
        let page = api.ok("GET", &query, None).await;
        seen.extend(ids(&page).into_iter().map(str::to_owned));
        match page["nextPageToken"].as_str() {
            Some(token) => {
                query =
                    format!("?singleEvents=true&orderBy=startTime&maxResults=7&pageToken={token}");
            }
            None => {
                assert!(page["nextSyncToken"].is_string());
                break;
            }
        }
    }
    assert_eq!(seen.len(), 19, "20 occurrences, one cancelled: {seen:?}");

    // Deleting the series cancels it and its exceptions.
    let (status, _) = api.call("DELETE", "/standup001", None, &[]).await;
    assert_eq!(status, 204);
    let full = api.ok("GET", "", None).await;
    assert!(items(&full).is_empty(), "{full}");
    let moved = api.ok("GET", &format!("/{monday}"), None).await;
    assert_eq!(moved["status"], "cancelled");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_berlin_series_keeps_nine_oclock_across_the_dst_change() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "berlin0001",
            "summary": "Jour fixe",
            // No offset: wall-clock time in the zone.
            "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-16T10:00:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20260407T000000Z"],
        })),
    )
    .await;
    let master = api.ok("GET", "/berlin0001", None).await;
    assert_eq!(master["start"]["dateTime"], "2026-03-16T08:00:00Z");
    let list = api
        .ok("GET", "?singleEvents=true&orderBy=startTime", None)
        .await;
    let starts: Vec<&str> = items(&list)
        .iter()
        .map(|i| i["start"]["dateTime"].as_str().unwrap())
        .collect();
    // CET (+01:00) until 29 March 2026, CEST (+02:00) after: 09:00 local.
    assert_eq!(
        starts,
        [
            "2026-03-16T08:00:00Z",
            "2026-03-23T08:00:00Z",
            "2026-03-30T07:00:00Z",
            "2026-04-06T07:00:00Z",
        ]
    );
    assert_eq!(ids(&list)[2], "berlin0001_20260330T070000Z");
    assert_eq!(items(&list)[2]["start"]["timeZone"], "Europe/Berlin");
    assert_eq!(
        items(&list)[2]["originalStartTime"]["timeZone"],
        "Europe/Berlin"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn all_day_yearly_series_lists_dates_and_honours_exdate() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "annual0001",
            "summary": "Anniversary",
            "start": {"date": "2026-05-10"},
            "end": {"date": "2026-05-11"},
            "recurrence": ["RRULE:FREQ=YEARLY", "EXDATE;VALUE=DATE:20280510"],
        })),
    )
    .await;
    let list = api
        .ok(
            "GET",
            "?singleEvents=true&orderBy=startTime&timeMin=2026-01-01T00:00:00Z&timeMax=2030-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(
        ids(&list),
        [
            "annual0001_20260510",
            "annual0001_20270510",
            "annual0001_20290510"
        ]
    );
    let second = &items(&list)[1];
    assert_eq!(second["start"], json!({"date": "2027-05-10"}));
    assert_eq!(second["end"], json!({"date": "2027-05-11"}));
    assert_eq!(second["originalStartTime"], json!({"date": "2027-05-10"}));
    let (status, _) = api.refused("GET", "/annual0001_20280510", None).await;
    assert_eq!(status, 404, "an EXDATE is no occurrence");
    // Without timeMax the expansion is bounded (about two years ahead).
    let unbounded = api.ok("GET", "?singleEvents=true", None).await;
    assert!((2..10).contains(&items(&unbounded).len()), "{unbounded}");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_instances_lists_one_series() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "morning001",
            "summary": "Daily",
            "start": {"dateTime": "2026-06-01T08:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-06-01T08:15:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
        })),
    )
    .await;
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "single0001",
            "start": {"dateTime": "2026-06-01T08:00:00Z"},
            "end": {"dateTime": "2026-06-01T09:00:00Z"},
        })),
    )
    .await;
    let (status, _) = api
        .call("DELETE", "/morning001_20260603T080000Z", None, &[])
        .await;
    assert_eq!(status, 204);
    let all = api.ok("GET", "/morning001/instances", None).await;
    assert_eq!(
        ids(&all),
        [
            "morning001_20260601T080000Z",
            "morning001_20260602T080000Z",
            "morning001_20260604T080000Z",
            "morning001_20260605T080000Z",
        ]
    );
    assert!(all.get("nextSyncToken").is_none());
    let with_deleted = api
        .ok("GET", "/morning001/instances?showDeleted=true", None)
        .await;
    assert_eq!(items(&with_deleted).len(), 5);
    assert_eq!(items(&with_deleted)[2]["status"], "cancelled");
    let page = api
        .ok("GET", "/morning001/instances?maxResults=3", None)
        .await;
    assert_eq!(items(&page).len(), 3);
    let token = page["nextPageToken"].as_str().unwrap();
    let rest = api
        .ok(
            "GET",
            &format!("/morning001/instances?maxResults=3&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(ids(&rest), ["morning001_20260605T080000Z"]);
    let windowed = api
        .ok(
            "GET",
            "/morning001/instances?timeMin=2026-06-02T08:10:00Z&timeMax=2026-06-04T08:00:00Z",
            None,
        )
        .await;
    assert_eq!(ids(&windowed), ["morning001_20260602T080000Z"]);
    let one = api
        .ok(
            "GET",
            "/morning001/instances?originalStart=2026-06-04T08:00:00Z",
            None,
        )
        .await;
    assert_eq!(ids(&one), ["morning001_20260604T080000Z"]);
    for id in ["single0001", "nosuchevent"] {
        let (status, _) = api.refused("GET", &format!("/{id}/instances"), None).await;
        assert_eq!(status, 404, "{id}");
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_sync_returns_a_cancelled_occurrence_as_a_stub() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "series0001",
            "summary": "Weekly",
            "start": {"dateTime": "2026-09-07T09:00:00+02:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-09-07T10:00:00+02:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=8"],
        })),
    )
    .await;
    let full = api.ok("GET", "", None).await;
    assert_eq!(ids(&full), ["series0001"]);
    let token = full["nextSyncToken"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call("DELETE", "/series0001_20260914T070000Z", None, &[])
        .await;
    assert_eq!(status, 204);
    let changes = api.ok("GET", &format!("?syncToken={token}"), None).await;
    assert_eq!(items(&changes).len(), 1, "{changes}");
    let stub = &items(&changes)[0];
    assert_eq!(stub["id"], "series0001_20260914T070000Z");
    assert_eq!(stub["status"], "cancelled");
    assert_eq!(stub["recurringEventId"], "series0001");
    assert_eq!(
        stub["originalStartTime"],
        json!({"dateTime": "2026-09-14T07:00:00Z", "timeZone": "Europe/Berlin"})
    );
    assert!(stub["etag"].is_string());

    // With singleEvents, a changed series comes back as its occurrences.
    let full = api.ok("GET", "?singleEvents=true", None).await;
    assert_eq!(items(&full).len(), 7);
    let token = full["nextSyncToken"].as_str().unwrap().to_owned();
    api.ok("PATCH", "/series0001", Some(json!({"summary": "Renamed"})))
        .await;
    let changes = api
        .ok(
            "GET",
            &format!("?singleEvents=true&syncToken={token}"),
            None,
        )
        .await;
    assert_eq!(
        items(&changes).len(),
        8,
        "7 occurrences and the cancelled one: {changes}"
    );
    assert_eq!(items(&changes)[0]["summary"], "Renamed");
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_types_restrict_changes_and_filter_lists() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "plain00001",
            "start": {"dateTime": "2026-07-01T10:00:00Z"},
            "end": {"dateTime": "2026-07-01T11:00:00Z"},
        })),
    )
    .await;
    let birthday = api
        .ok(
            "POST",
            "",
            Some(json!({
                "id": "cake000001",
                "eventType": "birthday",
                "summary": "Ada's birthday",
                "start": {"date": "2026-12-10"},
                "end": {"date": "2026-12-11"},
                "recurrence": ["RRULE:FREQ=YEARLY"],
            })),
        )
        .await;
    assert_eq!(birthday["visibility"], "private");
    assert_eq!(birthday["transparency"], "transparent");
    assert_eq!(birthday["birthdayProperties"]["type"], "birthday");
    // A birthday must be one all-day day recurring yearly.
    let (status, reason) = api
        .refused(
            "POST",
            "",
            Some(json!({
                "eventType": "birthday",
                "start": {"date": "2026-12-10"},
                "end": {"date": "2026-12-12"},
                "recurrence": ["RRULE:FREQ=YEARLY"],
            })),
        )
        .await;
    assert_eq!((status, reason.as_str()), (400, "eventTypeRestriction"));
    // Gmail makes fromGmail events, the API does not.
    let (status, reason) = api
        .refused(
            "POST",
            "",
            Some(json!({
                "eventType": "fromGmail",
                "start": {"dateTime": "2026-07-02T10:00:00Z"},
                "end": {"dateTime": "2026-07-02T11:00:00Z"},
            })),
        )
        .await;
    assert_eq!((status, reason.as_str()), (400, "eventTypeRestriction"));
    let flight = object(json!({
        "id": "flight0001",
        "eventType": "fromGmail",
        "summary": "Flight to Lisbon",
        "start": {"dateTime": "2026-07-03T06:00:00Z"},
        "end": {"dateTime": "2026-07-03T09:00:00Z"},
    }));
    emu.emulator.change(CAL, Change::Insert(flight)).unwrap();

    // Birthday: summary and colorId may change, a description may not.
    api.ok(
        "PATCH",
        "/cake000001",
        Some(json!({"summary": "Ada!", "colorId": "4"})),
    )
    .await;
    let (status, reason) = api
        .refused("PATCH", "/cake000001", Some(json!({"description": "cake"})))
        .await;
    assert_eq!((status, reason.as_str()), (400, "eventTypeRestriction"));
    let (_, answer) = api
        .call(
            "PATCH",
            "/cake000001",
            Some(json!({"location": "Home"})),
            &[],
        )
        .await;
    assert_eq!(answer["error"]["errors"][0]["domain"], "calendar");
    assert_eq!(
        answer["error"]["message"],
        "Attempt made to modify 'birthday' event in a way that is not valid for this event type."
    );
    // fromGmail: colorId and reminders, not the summary.
    api.ok(
        "PATCH",
        "/flight0001",
        Some(json!({"colorId": "2", "reminders": {"useDefault": false, "overrides": []}})),
    )
    .await;
    let (status, reason) = api
        .refused("PATCH", "/flight0001", Some(json!({"summary": "Trip"})))
        .await;
    assert_eq!((status, reason.as_str()), (400, "eventTypeRestriction"));

    // The type itself never changes.
    let (status, reason) = api
        .refused(
            "PATCH",
            "/plain00001",
            Some(json!({"eventType": "focusTime"})),
        )
        .await;
    assert_eq!((status, reason.as_str()), (400, "invalid"));
    let plain = api.ok("GET", "/plain00001", None).await;
    assert_eq!(plain["eventType"], "default");
    let mut replaced = plain.clone();
    replaced["eventType"] = json!("outOfOffice");
    let (status, _) = api.refused("PUT", "/plain00001", Some(replaced)).await;
    assert_eq!(status, 400);
    // An update carrying the same type (or none) keeps it.
    let mut same = plain.clone();
    same.as_object_mut().unwrap().remove("eventType");
    let updated = api.ok("PUT", "/plain00001", Some(same)).await;
    assert_eq!(updated["eventType"], "default");

    let only = api.ok("GET", "?eventTypes=birthday", None).await;
    assert_eq!(ids(&only), ["cake000001"]);
    let two = api
        .ok("GET", "?eventTypes=default&eventTypes=fromGmail", None)
        .await;
    assert_eq!(ids(&two), ["flight0001", "plain00001"]);
    let expanded = api
        .ok(
            "GET",
            "?eventTypes=birthday&singleEvents=true&timeMax=2028-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(
        ids(&expanded),
        ["cake000001_20261210", "cake000001_20271210"]
    );
    let (status, _) = api.refused("GET", "?eventTypes=party", None).await;
    assert_eq!(status, 400);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conferences_are_created_once_per_request_id() {
    let emu = start().await;
    let api = Api::new(&emu);
    let request = json!({
        "createRequest": {"requestId": "req-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}},
    });
    let token = api.ok("GET", "", None).await["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = api
        .ok(
            "POST",
            "?conferenceDataVersion=1",
            Some(json!({
                "id": "meeting001",
                "summary": "With Meet",
                "start": {"dateTime": "2026-08-01T10:00:00Z"},
                "end": {"dateTime": "2026-08-01T11:00:00Z"},
                "conferenceData": request,
            })),
        )
        .await;
    assert_eq!(
        created["conferenceData"]["createRequest"]["status"]["statusCode"],
        "pending"
    );
    assert!(created.get("hangoutLink").is_none());
    let conference_id = created["conferenceData"]["conferenceId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Ready by the next call: a change of its own, with a new etag.
    let ready = api.ok("GET", "/meeting001", None).await;
    let data = &ready["conferenceData"];
    assert_eq!(data["createRequest"]["status"]["statusCode"], "success");
    assert_eq!(data["conferenceId"], conference_id.as_str());
    assert_eq!(data["conferenceSolution"]["key"]["type"], "hangoutsMeet");
    assert_eq!(data["entryPoints"][0]["entryPointType"], "video");
    let link = format!("https://meet.google.com/{conference_id}");
    assert_eq!(data["entryPoints"][0]["uri"], link.as_str());
    assert_eq!(ready["hangoutLink"], link.as_str());
    assert_ne!(ready["etag"], created["etag"]);
    let changes = api.ok("GET", &format!("?syncToken={token}"), None).await;
    assert_eq!(ids(&changes), ["meeting001"]);
    assert_eq!(items(&changes)[0]["etag"], ready["etag"]);

    // A retried insert under another id with the same requestId: the same
    // conference, none created.
    let retried = api
        .ok(
            "POST",
            "?conferenceDataVersion=1",
            Some(json!({
                "id": "meeting002",
                "start": {"dateTime": "2026-08-01T10:00:00Z"},
                "end": {"dateTime": "2026-08-01T11:00:00Z"},
                "conferenceData": request,
            })),
        )
        .await;
    assert_eq!(
        retried["conferenceData"]["conferenceId"],
        conference_id.as_str()
    );
    assert_eq!(retried["hangoutLink"], link.as_str());
    assert_eq!(emu.emulator.conferences_created(CAL), 1);

    // Without conferenceDataVersion=1 conference data is ignored.
    for query in ["", "?conferenceDataVersion=0"] {
        let plain = api
            .ok(
                "POST",
                query,
                Some(json!({
                    "start": {"dateTime": "2026-08-02T10:00:00Z"},
                    "end": {"dateTime": "2026-08-02T11:00:00Z"},
                    "conferenceData": {"createRequest": {
                        "requestId": format!("other{query}"),
                        "conferenceSolutionKey": {"type": "hangoutsMeet"},
                    }},
                    "hangoutLink": "https://meet.google.com/aaa-bbbb-ccc",
                })),
            )
            .await;
        assert!(plain.get("conferenceData").is_none(), "{plain}");
        assert!(plain.get("hangoutLink").is_none(), "{plain}");
    }
    // ... and a patch without it keeps the stored conference.
    let patched = api
        .ok(
            "PATCH",
            "/meeting001",
            Some(json!({"conferenceData": null, "summary": "Still Meet"})),
        )
        .await;
    assert_eq!(patched["hangoutLink"], link.as_str());
    let (status, _) = api
        .refused(
            "POST",
            "?conferenceDataVersion=2",
            Some(json!({
                "start": {"dateTime": "2026-08-02T10:00:00Z"},
                "end": {"dateTime": "2026-08-02T11:00:00Z"},
            })),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(emu.emulator.conferences_created(CAL), 1);

    let (_, stats) = support::Http::new()
        .json(
            "GET",
            &format!("{}/emulator/stats", emu.base_url),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(stats["conferencesCreated"], 1);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_recurrence_is_refused() {
    let emu = start().await;
    let api = Api::new(&emu);
    for recurrence in [
        json!(["RRULE:FREQ=FORTNIGHTLY"]),
        json!(["RRULE:FREQ=WEEKLY;BYDAY=XX"]),
        json!(["RRULE:FREQ=WEEKLY;UNTIL=20200101T000000Z"]),
        json!(["EXDATE:notadate"]),
        json!(["DTSTART:20260101T000000Z"]),
        json!("RRULE:FREQ=DAILY"),
    ] {
        let (status, answer) = api
            .call(
                "POST",
                "",
                Some(json!({
                    "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
                    "end": {"dateTime": "2026-03-02T11:00:00Z", "timeZone": "UTC"},
                    "recurrence": recurrence,
                })),
                &[],
            )
            .await;
        assert_eq!(status, 400, "{recurrence}: {answer}");
        assert_eq!(answer["error"]["errors"][0]["reason"], "invalid");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ecurrence"),
            "{answer}"
        );
    }
    // A patch that breaks the rule is refused too, and changes nothing.
    api.ok(
        "POST",
        "",
        Some(json!({
            "id": "rrule00001",
            "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T11:00:00Z", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
        })),
    )
    .await;
    let (status, _) = api
        .refused(
            "PATCH",
            "/rrule00001",
            Some(json!({"recurrence": ["RRULE:FREQ="]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = api
        .refused(
            "PATCH",
            "/rrule00001_20260303T100000Z",
            Some(json!({"recurrence": ["RRULE:FREQ=DAILY"]})),
        )
        .await;
    assert_eq!(status, 400, "an occurrence has no recurrence of its own");
    let master = api.ok("GET", "/rrule00001", None).await;
    assert_eq!(master["recurrence"], json!(["RRULE:FREQ=DAILY;COUNT=2"]));
    emu.stop().await;
}
