//! What Google holds, as Google hands it over (issue 22): an `UNTIL` date
//! read in the series' zone, `EXRULE` lines, a deleted series taking its
//! exceptions with it (each window checked against the emulator's own
//! `events.instances`); short and empty pages while more remain; deletions
//! purged before calsync synced. On both backends.

use std::collections::BTreeMap;
use std::time::Duration;

use calsync_domain::event::EventStatus;
use calsync_domain::ports::EventQuery;
use calsync_emulator::Change;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::object;
use crate::helpers::{bearer, http};

/// A series made in Google (not through calsync), linked to deal `entity`.
fn google_series(id: &str, entity: &str, start: Value, end: Value, rules: &[&str]) -> Change {
    Change::Insert(object(json!({
        "id": id, "summary": "Made in Google",
        "start": start, "end": end, "recurrence": rules,
        "extendedProperties": {"private": {"entity_type": "deal", "entity_id": entity}},
    })))
}

/// The instance-id suffixes of the items calsync lists (`{masterId}_{suffix}`).
fn suffixes(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|e| {
            let id = e[field].as_str().unwrap();
            id.rsplit_once('_').map_or(id, |(_, s)| s).to_owned()
        })
        .collect()
}

/// What Google itself lists: `events.instances` of the series in the window.
async fn google_instances(api: &Api, id: &str, from: &str, until: &str) -> Vec<String> {
    let base = &api.running.emulator.as_ref().unwrap().base_url;
    let url = format!(
        "{base}/calendar/v3/calendars/primary/events/{id}/instances?timeMin={from}&timeMax={until}&maxResults=2500"
    );
    let (name, value) = bearer();
    let (status, page) = http("GET", &url, &[(name, &value)], None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.get("nextPageToken").is_none(), "one page: {page}");
    suffixes(page["items"].as_array().unwrap(), "id")
}

async fn an_until_date_ends_a_timed_series_in_its_own_zone(api: Api) {
    // Daily at 08:00 in Tokyo until the 5th: the 5th's 08:00 (4 March 23:00
    // UTC) is the last occurrence; 5 March 23:00 UTC is already the 6th there.
    let tokyo = |h: &str| json!({"dateTime": format!("2030-03-01T{h}:00:00+09:00"), "timeZone": "Asia/Tokyo"});
    api.emulator()
        .change(
            "primary",
            google_series(
                "jp0tokio0001",
                "tokyo-1",
                tokyo("08"),
                tokyo("09"),
                &["RRULE:FREQ=DAILY;UNTIL=20300305"],
            ),
        )
        .unwrap();
    api.synced().await;
    let from = Utc.with_ymd_and_hms(2030, 2, 28, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2030, 3, 10, 0, 0, 0).unwrap();
    let listed = suffixes(&api.window("tokyo-1", from, until).await, "googleEventId");
    let google = google_instances(
        &api,
        "jp0tokio0001",
        "2030-02-28T00:00:00Z",
        "2030-03-10T00:00:00Z",
    )
    .await;
    assert_eq!(listed, google);
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert_eq!(listed.last().unwrap(), "20300304T230000Z");

    // The occurrence Google does not have is not one calsync will write.
    let (_, master) = api
        .call(
            "GET",
            "/calendar/events?entityType=deal&entityId=tokyo-1",
            None,
        )
        .await;
    let master_id = master["items"][0]["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{master_id}_20300305T230000Z"),
            Some(json!({"summary": "Phantom"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    api.stop().await;
}

async fn an_exrule_leaves_out_what_it_excludes(api: Api) {
    // Two weeks of days from Monday 4 March 2030, weekends excluded by EXRULE.
    let berlin = |h: &str| json!({"dateTime": format!("2030-03-04T{h}:00:00+01:00"), "timeZone": "Europe/Berlin"});
    api.emulator()
        .change(
            "primary",
            google_series(
                "mofr0series1",
                "weekdays-1",
                berlin("09"),
                berlin("10"),
                &[
                    "RRULE:FREQ=DAILY;COUNT=14",
                    "EXRULE:FREQ=WEEKLY;BYDAY=SA,SU",
                ],
            ),
        )
        .unwrap();
    api.synced().await;
    let from = Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2030, 4, 1, 0, 0, 0).unwrap();
    let listed = suffixes(
        &api.window("weekdays-1", from, until).await,
        "googleEventId",
    );
    let google = google_instances(
        &api,
        "mofr0series1",
        "2030-03-01T00:00:00Z",
        "2030-04-01T00:00:00Z",
    )
    .await;
    assert_eq!(listed.len(), 10, "{listed:?}");
    assert_eq!(listed, google);
    assert!(
        !listed.contains(&"20300309T080000Z".to_owned()),
        "a Saturday"
    );
    api.stop().await;
}

/// The rows calsync holds for deal `entity` (masters and exceptions), as
/// (googleEventId, status).
async fn rows(api: &Api, entity: &str) -> Vec<(String, String)> {
    let (status, page) = api
        .call(
            "GET",
            &format!("/calendar/events?entityType=deal&entityId={entity}&status=cancelled"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut all: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["googleEventId"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let (_, live) = api
        .call(
            "GET",
            &format!("/calendar/events?entityType=deal&entityId={entity}"),
            None,
        )
        .await;
    all.extend(live["items"].as_array().unwrap().iter().map(|e| {
        (
            e["googleEventId"].as_str().unwrap().to_owned(),
            e["status"].as_str().unwrap().to_owned(),
        )
    }));
    all.sort();
    all.dedup();
    all
}

async fn a_series_deleted_in_google_cancels_its_exceptions(api: Api) {
    let berlin = |d: &str, h: &str| json!({"dateTime": format!("2030-03-{d}T{h}:00:00+01:00"), "timeZone": "Europe/Berlin"});
    let emulator = api.emulator();
    emulator
        .change(
            "primary",
            google_series(
                "gone0series1",
                "gone-1",
                berlin("04", "09"),
                berlin("04", "10"),
                &["RRULE:FREQ=DAILY;COUNT=5"],
            ),
        )
        .unwrap();
    emulator
        .change(
            "primary",
            Change::Patch {
                id: "gone0series1_20300305T080000Z".into(),
                fields: object(json!({"summary": "Moved", "start": berlin("05", "11"), "end": berlin("05", "12")})),
            },
        )
        .unwrap();
    api.synced().await;
    let before = rows(&api, "gone-1").await;
    assert!(
        before.contains(&("gone0series1_20300305T080000Z".into(), "confirmed".into())),
        "{before:?}"
    );
    emulator
        .change(
            "primary",
            Change::Delete {
                id: "gone0series1".into(),
            },
        )
        .unwrap();
    api.synced().await;
    let after = rows(&api, "gone-1").await;
    assert!(
        after.iter().all(|(_, status)| status == "cancelled"),
        "{after:?}"
    );
    api.stop().await;
}

async fn a_series_deleted_through_the_api_cancels_its_exceptions(api: Api) {
    let berlin = |d: &str, h: &str| json!({"dateTime": format!("2030-03-{d}T{h}:00:00+01:00"), "timeZone": "Europe/Berlin"});
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events",
            Some(json!({
                "entityType": "deal", "entityId": "gone-2", "summary": "Daily",
                "start": berlin("04", "09"), "end": berlin("04", "10"),
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
            })),
        )
        .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap();
    api.pushed(id).await;
    let (status, body) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}_20300305T080000Z"),
            Some(json!({"summary": "Moved"})),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    api.pushed(body["id"].as_str().unwrap()).await;
    let (status, body) = api
        .call("DELETE", &format!("/calendar/events/{id}"), None)
        .await;
    assert!(status < 300, "{status} {body}");
    let after = rows(&api, "gone-2").await;
    assert!(after.len() >= 2, "{after:?}");
    assert!(
        after.iter().all(|(_, status)| status == "cancelled"),
        "{after:?}"
    );
    api.stop().await;
}

/// Google's events (id -> status) and the mirror's, by Google id.
async fn both_sides(api: &Api) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let google = api
        .emulator()
        .events("primary")
        .into_iter()
        .map(|e| {
            let status = e["status"].as_str().unwrap_or("confirmed").to_owned();
            (e["id"].as_str().unwrap().to_owned(), status)
        })
        .collect();
    let rows = api
        .running
        .store
        .list_events(&EventQuery {
            limit: 10_000,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let mirror = rows
        .into_iter()
        .map(|e| {
            let status = match e.status {
                EventStatus::Cancelled => "cancelled",
                EventStatus::Tentative => "tentative",
                EventStatus::Confirmed => "confirmed",
            };
            (e.google_event_id.to_string(), status.to_owned())
        })
        .collect();
    (google, mirror)
}

/// Google may answer a page short, or empty, while a `nextPageToken`
/// remains (events.list: only a token means more): a full and an
/// incremental sync through seven-event ragged pages miss nothing.
async fn short_and_empty_pages_lose_nothing(api: Api) {
    let emulator = api.emulator();
    emulator.set_ragged_pages(Some(22));
    emulator.seed("primary", 150).unwrap();
    api.synced().await;
    let (google, mirror) = both_sides(&api).await;
    assert_eq!(google.len(), 150);
    assert_eq!(mirror, google);

    let ids: Vec<String> = google.keys().cloned().collect();
    for id in ids.iter().step_by(10) {
        emulator
            .change(
                "primary",
                Change::Patch {
                    id: id.clone(),
                    fields: object(json!({"summary": "Changed in Google"})),
                },
            )
            .unwrap();
    }
    for id in ids.iter().skip(3).step_by(17) {
        emulator
            .change("primary", Change::Delete { id: id.clone() })
            .unwrap();
    }
    api.synced().await;
    let (google, mirror) = both_sides(&api).await;
    assert_eq!(mirror, google);
    assert!(
        mirror.values().any(|s| s == "cancelled"),
        "deletions arrived"
    );
    api.stop().await;
}

/// Deleted events "eventually disappear" from Google (then 404): one purged
/// before calsync heard of its deletion must still leave the mirror.
async fn a_deletion_purged_before_the_sync_still_leaves_the_mirror(api: Api) {
    let emulator = api.emulator();
    let at = |h: u32| json!({"dateTime": format!("2030-05-06T{h:02}:00:00Z")});
    for id in ["purged000001", "kept00000001"] {
        emulator
            .change(
                "primary",
                Change::Insert(object(json!({
                    "id": id, "summary": id, "start": at(9), "end": at(10),
                }))),
            )
            .unwrap();
    }
    api.synced().await;
    emulator.set_deleted_event_purge_after(Some(Duration::from_millis(1)));
    emulator
        .change(
            "primary",
            Change::Delete {
                id: "purged000001".into(),
            },
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        emulator
            .events("primary")
            .iter()
            .all(|e| e["id"] != "purged000001"),
        "Google no longer has it"
    );
    api.synced().await;
    let (_, mirror) = both_sides(&api).await;
    assert_eq!(
        mirror.get("purged000001").map(String::as_str),
        Some("cancelled")
    );
    assert_eq!(
        mirror.get("kept00000001").map(String::as_str),
        Some("confirmed")
    );
    api.stop().await;
}

/// Pages of seven events, so a few hundred events make many pages.
const SMALL_PAGES: [&str; 2] = ["--sync-page-size", "7"];

both_backends!(
    flags: &super::SMALL_PAGES;
    an_until_date_ends_a_timed_series_in_its_own_zone,
    an_exrule_leaves_out_what_it_excludes,
    a_series_deleted_in_google_cancels_its_exceptions,
    a_series_deleted_through_the_api_cancels_its_exceptions,
    short_and_empty_pages_lose_nothing,
    a_deletion_purged_before_the_sync_still_leaves_the_mirror,
);
