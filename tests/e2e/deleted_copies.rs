//! A delete racing an edit in Google, end to end: the delete's `If-Match`
//! names the etag from before the edit, Google answers 412, the delete
//! reads Google's copy and goes through on its etag. Google keeps the
//! deleted event's details on the organizer's calendar (events reference,
//! `status`: https://developers.google.com/workspace/calendar/api/v3/reference/events),
//! while listings bring it as a bare stub: the mirror must hold what
//! Google holds, the edit included (the chaos battery saw it keep its own).

use calsync_emulator::Change;
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::object;

async fn a_delete_after_an_edit_in_google_keeps_googles_deleted_copy(api: Api) {
    let start = chrono::Utc::now() + chrono::Duration::days(3);
    let (status, created) = api
        .call(
            "POST",
            "/calendar/events?wait=true",
            Some(json!({
                "entityType": "deal", "entityId": "deleted-copy", "summary": "Kick-off",
                "start": {"dateTime": start.to_rfc3339()},
                "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let google_id = created["googleEventId"].as_str().unwrap().to_owned();
    // Someone renames it in Google; no channel, so the mirror does not know.
    api.emulator()
        .change(
            "primary",
            Change::Patch {
                id: google_id.clone(),
                fields: object(json!({"summary": "Renamed in Google"})),
            },
        )
        .unwrap();

    let (status, deleted) = api
        .call("DELETE", &format!("/calendar/events/{id}?wait=true"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    let at_google: Value = api
        .emulator()
        .events("primary")
        .into_iter()
        .find(|e| e["id"] == google_id.as_str())
        .unwrap();
    assert_eq!(
        (at_google["status"].as_str(), at_google["summary"].as_str()),
        (Some("cancelled"), Some("Renamed in Google")),
        "{at_google}"
    );
    let (_, event) = api
        .call("GET", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(
        (
            event["status"].as_str(),
            event["summary"].as_str(),
            event["pushState"].as_str()
        ),
        (Some("cancelled"), Some("Renamed in Google"), Some("synced")),
        "the mirror holds Google's deleted copy: {event}"
    );
    api.stop().await;
}

both_backends!(a_delete_after_an_edit_in_google_keeps_googles_deleted_copy);
