//! Recurring series and the whole Google event, end to end: the API, the
//! outbox and sync against the emulator over HTTP, on both backends.

use std::time::Duration;

use calsync_emulator::{Change, Fault};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::settled;
use crate::helpers::{object, primary};

/// The first Monday of next year's March at 09:00 in Berlin (UTC+1); its
/// fifth Monday is the first after Berlin's DST change (last Sunday of March).
fn first_monday_of_march() -> DateTime<Utc> {
    let year = Utc::now().year() + 1;
    let mut day = NaiveDate::from_ymd_opt(year, 3, 1).unwrap();
    while day.weekday() != Weekday::Mon {
        day = day.succ_opt().unwrap();
    }
    Utc.from_utc_datetime(&day.and_hms_opt(8, 0, 0).unwrap())
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

impl Api {
    pub(crate) async fn synced(&self) {
        let (status, body) = self.call("POST", "/calendar/sync", Some(json!({}))).await;
        assert_eq!(status, 202, "{body}");
        assert!(
            settled(&self.running.store, &primary()).await,
            "sync never settled"
        );
    }

    pub(crate) async fn window(
        &self,
        entity: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<Value> {
        let path = format!(
            "/calendar/events?singleEvents=true&entityType=deal&entityId={entity}&timeMin={}&timeMax={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            until.format("%Y-%m-%dT%H:%M:%SZ"),
        );
        let (status, page) = self.call("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    }
}

fn starts(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| {
            e["start"]["dateTime"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

async fn a_weekly_series_answers_what_the_calendar_shows(api: Api) {
    let first = first_monday_of_march();
    let week = Duration::from_secs(7 * 86_400);
    let nth = |n: u32| first + chrono::Duration::weeks(i64::from(n - 1));
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "series-1", "summary": "Standup",
                "start": {"dateTime": first.to_rfc3339(), "timeZone": "Europe/Berlin"},
                "end": {"dateTime": (first + chrono::Duration::minutes(30)).to_rfc3339(), "timeZone": "Europe/Berlin"},
                "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO"],
            })),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["recurrence"][0], "RRULE:FREQ=WEEKLY;BYDAY=MO");
    let master = api.pushed(created["id"].as_str().unwrap()).await;
    let google_id = master["googleEventId"].as_str().unwrap().to_owned();

    // In Google: the second occurrence moves to Tuesday 15:00, the third is cancelled.
    let emulator = api.emulator();
    let moved_to = nth(2) + chrono::Duration::hours(30);
    emulator
        .change(
            "primary",
            Change::Patch {
                id: format!("{google_id}_{}", stamp(nth(2))),
                fields: object(json!({
                    "start": {"dateTime": moved_to.to_rfc3339(), "timeZone": "Europe/Berlin"},
                    "end": {"dateTime": (moved_to + chrono::Duration::minutes(30)).to_rfc3339(), "timeZone": "Europe/Berlin"},
                })),
            },
        )
        .unwrap();
    api.synced().await;
    let five_weeks = api.window("series-1", first, nth(5) + week / 7).await;
    assert_eq!(
        starts(&five_weeks),
        [
            nth(1),
            moved_to,
            nth(3),
            nth(4),
            nth(5) - chrono::Duration::hours(1)
        ]
        .map(utc)
        .to_vec(),
        "the fifth Monday is after DST: still 09:00 in Berlin, an hour earlier in UTC"
    );
    let third_id = five_weeks[2]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        third_id,
        format!("{}_{}", master["id"].as_str().unwrap(), stamp(nth(3)))
    );
    assert_eq!(five_weeks[2]["recurringEventId"], google_id.as_str());
    assert_eq!(five_weeks[2]["entityId"], "series-1");

    // Cancelled in Google: gone from the window after the next sync.
    emulator
        .change(
            "primary",
            Change::Delete {
                id: format!("{google_id}_{}", stamp(nth(3))),
            },
        )
        .unwrap();
    api.synced().await;
    let after_cancel = api.window("series-1", first, nth(5) + week / 7).await;
    assert_eq!(after_cancel.len(), 4, "{after_cancel:?}");
    assert!(after_cancel.iter().all(|e| e["id"] != third_id.as_str()));

    // A window in the fifth week alone.
    let fifth = api
        .window(
            "series-1",
            nth(5) - chrono::Duration::hours(12),
            nth(5) + week / 2,
        )
        .await;
    assert_eq!(starts(&fifth), [utc(nth(5) - chrono::Duration::hours(1))]);

    // A change to the fourth occurrence through the API becomes an
    // exception at Google.
    let fourth_id = after_cancel[2]["id"].as_str().unwrap().to_owned();
    let (status, changed) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{fourth_id}?wait=true"),
            Some(json!({"summary": "Standup (demo day)"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let instance = format!("{google_id}_{}", stamp(nth(4)));
    let at_google: Vec<Value> = emulator
        .events("primary")
        .into_iter()
        .filter(|e| e["id"] == instance.as_str())
        .collect();
    assert_eq!(at_google.len(), 1, "one exception at Google");
    assert_eq!(at_google[0]["summary"], "Standup (demo day)");
    assert_eq!(at_google[0]["recurringEventId"], google_id.as_str());
    let (status, one) = api
        .call(
            "GET",
            &format!("/calendar/events/{}", changed["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["originalStartTime"]["dateTime"], utc(nth(4)));
    api.stop().await;
}

async fn an_all_day_yearly_series_lists_as_dates(api: Api) {
    let year = Utc::now().year() + 1;
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "yearly-1", "summary": "Founding day",
                "start": {"date": format!("{year}-05-12")},
                "end": {"date": format!("{year}-05-13")},
                "recurrence": ["RRULE:FREQ=YEARLY"],
            })),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap();
    let items = api
        .window(
            "yearly-1",
            Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(year + 3, 1, 1, 0, 0, 0).unwrap(),
        )
        .await;
    let dates: Vec<&str> = items
        .iter()
        .map(|e| e["start"]["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [0, 1, 2]
            .map(|n| format!("{}-05-12", year + n))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(items[1]["id"], format!("{id}_{}0512", year + 1));
    assert_eq!(items[1]["end"]["date"], format!("{}-05-13", year + 1));
    api.stop().await;
}

async fn an_endless_series_from_300_days_ago_survives_retention(api: Api) {
    let start = Utc::now() - chrono::Duration::days(300);
    let old_single = Utc::now() - chrono::Duration::days(300);
    let emulator = api.emulator();
    for (summary, recurrence) in [
        ("Weekly review", Some("RRULE:FREQ=WEEKLY")),
        ("Old one-off", None),
    ] {
        let mut body = json!({
            "summary": summary,
            "start": {"dateTime": start.to_rfc3339(), "timeZone": "UTC"},
            "end": {"dateTime": (old_single + chrono::Duration::hours(1)).to_rfc3339(), "timeZone": "UTC"},
            "extendedProperties": {"private": {"entity_type": "deal", "entity_id": "old-1"}},
        });
        if let Some(rule) = recurrence {
            body["recurrence"] = json!([rule]);
        }
        emulator
            .change("primary", Change::Insert(object(body)))
            .unwrap();
    }
    api.synced().await;
    let store = &api.running.store;
    let listed = store
        .list_events(&calsync_domain::ports::EventQuery {
            entity: Some(calsync_domain::ids::EntityRef::new("deal", "old-1").unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let summaries: Vec<_> = listed
        .iter()
        .map(|e| e.summary.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        summaries,
        ["Weekly review"],
        "the ended one-off is beyond retention"
    );
    let now = Utc::now();
    let retired = store
        .cancel_ended_before(now - chrono::Duration::days(180), 1000, now)
        .await
        .unwrap();
    assert_eq!(retired, 0);
    let this_week = api
        .window("old-1", now, now + chrono::Duration::days(7))
        .await;
    assert_eq!(this_week.len(), 1, "the series still runs: {this_week:?}");
    api.stop().await;
}

async fn a_meet_link_is_created_once_across_a_retried_insert(api: Api) {
    let emulator = api.emulator();
    // The first insert reaches Google but its answer is lost: the outbox
    // tries again, meets its own event (409) and adopts it.
    emulator.schedule_fault(Some("insert"), 1, Fault::apply_then_drop());
    let start = Utc::now() + chrono::Duration::days(5);
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "meet-1", "summary": "Call",
                "start": {"dateTime": start.to_rfc3339()},
                "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
                "conference": {"create": "meet"},
            })),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["conference"]["status"], "requested");
    let id = created["id"].as_str().unwrap();
    api.pushed(id).await;
    api.synced().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let event = loop {
        let (_, event) = api
            .call(
                "GET",
                &format!("/calendar/events/{id}?include=google"),
                None,
            )
            .await;
        if event["hangoutLink"].is_string() {
            break event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Meet link: {event}"
        );
        api.synced().await;
    };
    assert_eq!(emulator.conferences_created("primary"), 1);
    assert!(
        event["hangoutLink"]
            .as_str()
            .unwrap()
            .starts_with("https://meet.google.com/")
    );
    assert_eq!(
        event["conference"]["entryPoints"][0]["entryPointType"],
        "video"
    );
    assert_eq!(
        event["google"]["conferenceData"]["conferenceSolution"]["key"]["type"],
        "hangoutsMeet"
    );
    api.stop().await;
}

async fn a_patch_to_a_birthday_is_refused(api: Api) {
    let year = Utc::now().year() + 1;
    let emulator = api.emulator();
    emulator
        .change(
            "primary",
            Change::Insert(object(json!({
                "summary": "Ada's birthday",
                "eventType": "birthday",
                "birthdayProperties": {"type": "birthday"},
                "start": {"date": format!("{year}-04-02")},
                "end": {"date": format!("{year}-04-03")},
                "recurrence": ["RRULE:FREQ=YEARLY"],
                "visibility": "private",
                "transparency": "transparent",
                "extendedProperties": {"private": {"entity_type": "deal", "entity_id": "bday-1"}},
            }))),
        )
        .unwrap();
    api.synced().await;
    let (status, page) = api
        .call(
            "GET",
            "/calendar/events?eventType=birthday&include=google",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["eventType"], "birthday");
    assert_eq!(items[0]["visibility"], "private");
    assert_eq!(items[0]["google"]["birthdayProperties"]["type"], "birthday");
    let id = items[0]["id"].as_str().unwrap();
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}"),
            Some(json!({"summary": "Party"})),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "eventType");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("birthday")
    );
    let (status, _) = api
        .call("DELETE", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(status, 422);
    api.stop().await;
}

async fn a_bad_rule_is_a_422_naming_the_line(api: Api) {
    let start = Utc::now() + chrono::Duration::days(5);
    let (status, refused) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "bad-1",
                "start": {"dateTime": start.to_rfc3339()},
                "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
                "recurrence": ["RRULE:FREQ=WEEKLY", "RRULE:FREQ=FORTNIGHTLY"],
            })),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "recurrence");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{refused}"
    );
    let (status, refused) = api
        .call("GET", "/calendar/events?singleEvents=true", None)
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["field"], "timeMax");
    api.stop().await;
}

both_backends!(
    a_weekly_series_answers_what_the_calendar_shows,
    an_all_day_yearly_series_lists_as_dates,
    an_endless_series_from_300_days_ago_survives_retention,
    a_meet_link_is_created_once_across_a_retried_insert,
    a_patch_to_a_birthday_is_refused,
    a_bad_rule_is_a_422_naming_the_line,
);
