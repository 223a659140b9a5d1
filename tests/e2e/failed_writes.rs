//! Writes Google refused for good, and what an operator does about them,
//! end to end: a fault plan in the emulator makes Google refuse an insert
//! and a patch; `GET /calendar/failed-writes` lists both with Google's
//! error and the request; retrying the insert after the fault lifts lands
//! it at Google; discarding the patch leaves the mirror with Google's
//! version; each action is in the change feed once.

use std::time::Duration;

use calsync_emulator::Fault;
use serde_json::{Value, json};

use crate::events_api::Api;

fn event_body(entity_id: &str, summary: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    json!({
        "entityType": "deal", "entityId": entity_id, "summary": summary,
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
    })
}

/// The feed's changes of `kind` for `event_id`.
async fn changes(api: &Api, kind: &str, event_id: &str) -> Vec<Value> {
    let (status, page) = api
        .call(
            "GET",
            &format!("/calendar/changes?types={kind}&limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["eventId"] == event_id)
        .cloned()
        .collect()
}

async fn failed_writes(api: &Api) -> Vec<Value> {
    let (status, page) = api.call("GET", "/calendar/failed-writes", None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn failed_writes_are_listed_retried_and_discarded(api: Api) {
    // An insert Google refuses for good.
    api.emulator()
        .schedule_fault(Some("insert"), 1, Fault::status(400).with_reason("invalid"));
    let (status, refused) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(event_body("f1", "Refused insert")),
        )
        .await;
    assert_eq!(status, 502, "{refused}");
    let insert_id = refused["event"]["id"].as_str().unwrap().to_owned();

    // A patch Google refuses for good, on an event Google has.
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(event_body("f2", "Kept by Google")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let patch_id = created["id"].as_str().unwrap().to_owned();
    api.emulator()
        .schedule_fault(Some("patch"), 1, Fault::status(400).with_reason("invalid"));
    let (status, refused) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{patch_id}?wait=true"),
            Some(json!({"summary": "Refused rename"})),
        )
        .await;
    assert_eq!(status, 502, "{refused}");

    // Both listed, with the request and Google's error.
    let listed = failed_writes(&api).await;
    let find = |id: &str| {
        listed
            .iter()
            .find(|f| f["event"]["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {listed:#?}"))
            .clone()
    };
    let insert = find(&insert_id);
    assert_eq!(insert["request"]["op"], "insert", "{insert}");
    assert_eq!(insert["event"]["pushState"], "failed", "{insert}");
    assert!(
        insert["error"].as_str().unwrap().contains("400"),
        "{insert}"
    );
    let patch = find(&patch_id);
    assert_eq!(patch["request"]["op"], "patch", "{patch}");
    assert_eq!(patch["request"]["fields"], json!(["summary"]), "{patch}");
    assert_eq!(listed.len(), 2, "{listed:#?}");

    // Discarding the refused insert: Google never had the event, so the
    // mirror cancels it; its push no longer failed, so a retry is refused.
    let (status, body) = api
        .call(
            "POST",
            &format!("/calendar/events/{insert_id}/discard"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(body["pushState"], "synced", "{body}");
    let (status, body) = api
        .call("POST", &format!("/calendar/events/{insert_id}/retry"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert_eq!(
        changes(&api, "event.push_discarded", &insert_id)
            .await
            .len(),
        1
    );

    // Retrying the patch sends it again, as it was: Google takes it now.
    let (status, requeued) = api
        .call("POST", &format!("/calendar/events/{patch_id}/retry"), None)
        .await;
    assert_eq!(status, 202, "{requeued}");
    assert_eq!(requeued["event"]["pushState"], "pending", "{requeued}");
    let pushed = api.pushed(&patch_id).await;
    assert_eq!(pushed["summary"], "Refused rename", "{pushed}");
    let google_id = pushed["googleEventId"].as_str().unwrap().to_owned();
    let at_google = api
        .emulator()
        .events("primary")
        .into_iter()
        .find(|e| e["id"] == google_id.as_str())
        .unwrap();
    assert_eq!(at_google["summary"], "Refused rename", "{at_google}");
    assert_eq!(
        changes(&api, "event.push_retried", &patch_id).await.len(),
        1
    );
    assert!(failed_writes(&api).await.is_empty());

    // A second refusal, then a discard: the mirror goes back to Google's
    // version (the rename Google took) and the write is gone.
    api.emulator()
        .schedule_fault(Some("patch"), 1, Fault::status(400).with_reason("invalid"));
    let (status, _) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{patch_id}?wait=true"),
            Some(json!({"summary": "Refused again"})),
        )
        .await;
    assert_eq!(status, 502);
    let (status, discarded) = api
        .call(
            "POST",
            &format!("/calendar/events/{patch_id}/discard"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{discarded}");
    assert_eq!(discarded["summary"], "Refused rename", "{discarded}");
    assert_eq!(discarded["pushState"], "synced", "{discarded}");
    let (_, read) = api
        .call("GET", &format!("/calendar/events/{patch_id}"), None)
        .await;
    assert_eq!(read["summary"], "Refused rename", "{read}");
    let feed = changes(&api, "event.push_discarded", &patch_id).await;
    assert_eq!(feed.len(), 1, "{feed:#?}");
    assert_eq!(feed[0]["origin"], "api", "{feed:#?}");
    assert!(failed_writes(&api).await.is_empty());
    // The health figures count no failed write any more.
    // Nothing lingers: no failed event, no dead letter, nothing pending.
    let settled = crate::helpers::eventually(Duration::from_secs(10), || async {
        let (_, health) = api.call("GET", "/health/calendar", None).await;
        health["eventsPushFailed"] == 0
            && health["outboxDeadLetters"] == 0
            && health["outboxPending"] == 0
    })
    .await;
    let (_, health) = api.call("GET", "/health/calendar", None).await;
    assert!(settled, "{health}");

    let (status, missing) = api
        .call(
            "POST",
            "/calendar/events/00000000-0000-4000-8000-000000000000/retry",
            None,
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    let (status, bad) = api
        .call("POST", "/calendar/events/not-an-id/discard", None)
        .await;
    assert_eq!(status, 404, "{bad}");
    let (status, bad) = api
        .call("GET", "/calendar/failed-writes?limit=0", None)
        .await;
    assert_eq!(status, 400, "{bad}");
    api.stop().await;
}

both_backends!(failed_writes_are_listed_retried_and_discarded);
