//! The mirror never diverges from Google: writes to events deleted or
//! edited in Google, through the real server, the emulator over HTTP and a
//! real database.

use calsync_emulator::Change;
use serde_json::{Map, Value, json};

use crate::events_api::Api;

/// What these tests add to the events API's harness.
impl Api {
    /// Creates an event and waits for Google to have it; returns (id, google id).
    async fn create(&self, entity_id: &str) -> (String, String) {
        let start = chrono::Utc::now() + chrono::Duration::days(2);
        let (status, created) = self
            .call(
                "POST",
                "/calendar/events?wait=true",
                Some(json!({
                    "entityType": "deal", "entityId": entity_id, "summary": "Kick-off",
                    "location": "Room 1",
                    "start": {"dateTime": start.to_rfc3339()},
                    "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
                    "attendees": [{"email": "guest@example.com"}],
                })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["id"].as_str().unwrap().to_owned(),
            created["googleEventId"].as_str().unwrap().to_owned(),
        )
    }

    /// "Someone else" edits the event in Google.
    fn edit_in_google(&self, google_id: &str, fields: Value) {
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        self.emulator()
            .change(
                "primary",
                Change::Patch {
                    id: google_id.to_owned(),
                    fields,
                },
            )
            .unwrap();
    }

    fn google_copy(&self, google_id: &str) -> Map<String, Value> {
        self.emulator()
            .events("primary")
            .into_iter()
            .find(|e| e["id"] == google_id)
            .and_then(|e| e.as_object().cloned())
            .unwrap()
    }
}

/// Issue 10's "zombie": Google deletes an event, then a PATCH is queued.
async fn a_patch_after_a_google_deletion_cancels_the_event_everywhere(world: Api) {
    let (id, google_id) = world.create("z1").await;
    world
        .emulator()
        .change(
            "primary",
            Change::Delete {
                id: google_id.clone(),
            },
        )
        .unwrap();
    let path = format!("/calendar/events/{id}");
    let (status, answer) = world
        .call(
            "PATCH",
            &format!("{path}?wait=true"),
            Some(json!({"summary": "Too late"})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("deleted_at_google")),
        "{answer}"
    );
    let (_, event) = world.call("GET", &path, None).await;
    assert_eq!(event["status"], "cancelled", "{event}");
    assert_ne!(event["pushState"], "failed", "not a dead letter: {event}");
    assert!(
        event["pushError"]
            .as_str()
            .is_some_and(|e| e.starts_with("deleted at Google")),
        "{event}"
    );
    // The queued patch did not undelete the event in Google.
    assert_eq!(world.google_copy(&google_id)["status"], "cancelled");
    // Further changes are refused with a reason, and nothing is queued.
    let (status, refused) = world
        .call("PATCH", &path, Some(json!({"summary": "Again"})))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{refused}"
    );
    // A full sync agrees: the event stays cancelled.
    let (status, _) = world
        .call("POST", "/calendar/sync", Some(json!({"full": true})))
        .await;
    assert!(status < 300);
    let (_, event) = world.call("GET", &path, None).await;
    assert_eq!(event["status"], "cancelled", "{event}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_after_a_google_deletion_cancels_the_event_everywhere_sqlite() {
    a_patch_after_a_google_deletion_cancels_the_event_everywhere(Api::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_after_a_google_deletion_cancels_the_event_everywhere_postgres() {
    if let Some(world) = Api::postgres().await {
        a_patch_after_a_google_deletion_cancels_the_event_everywhere(world).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_google_edit_of_another_field_and_an_api_patch_both_survive() {
    let world = Api::sqlite().await;
    let (id, google_id) = world.create("c1").await;
    // The mirror has not seen this edit (no channel): its etag is stale.
    world.edit_in_google(&google_id, json!({"location": "Room 9"}));
    let (status, patched) = world
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"summary": "Renamed here"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let at_google = world.google_copy(&google_id);
    assert_eq!(
        (&at_google["summary"], &at_google["location"]),
        (&json!("Renamed here"), &json!("Room 9")),
        "both changes survive"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_google_edit_of_the_same_field_is_a_conflict_and_googles_value_is_kept() {
    let world = Api::sqlite().await;
    let (id, google_id) = world.create("c2").await;
    world.edit_in_google(&google_id, json!({"summary": "Renamed in Google"}));
    let (status, answer) = world
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"summary": "Renamed here"})),
        )
        .await;
    assert_eq!(status, 412, "{answer}");
    assert_eq!(answer["event"]["pushState"], "conflict", "{answer}");
    assert_eq!(
        world.google_copy(&google_id)["summary"],
        "Renamed in Google",
        "not overwritten"
    );
    let (_, event) = world
        .call("GET", &format!("/calendar/events/{id}"), None)
        .await;
    assert_eq!(
        (event["summary"].as_str(), event["pushState"].as_str()),
        (Some("Renamed in Google"), Some("conflict")),
        "the mirror shows Google's version: {event}"
    );
    let (_, health) = world.call("GET", "/health/calendar", None).await;
    assert!(
        health.to_string().contains("push_conflicts"),
        "health names the conflict: {health}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_rsvp_made_in_google_survives_a_patch() {
    let world = Api::sqlite().await;
    let (id, google_id) = world.create("r1").await;
    world.edit_in_google(
        &google_id,
        json!({"attendees": [{"email": "guest@example.com", "responseStatus": "accepted"}]}),
    );
    let (status, patched) = world
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"summary": "Agenda attached"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let at_google = world.google_copy(&google_id);
    assert_eq!(at_google["summary"], "Agenda attached");
    assert_eq!(
        at_google["attendees"][0]["responseStatus"], "accepted",
        "the RSVP is kept"
    );
    world.stop().await;
}
