//! Managed calendars through the API, on both backends.
use serde_json::json;

use crate::events_api::Api;

/// Managed calendars through the API: added (watched, first sync
/// queued), listed with health, given a subject, removed (channels
/// stopped at Google).
async fn a_calendar_is_added_changed_and_removed(api: Api) {
    let (status, added) = api
        .call(
            "POST",
            "/calendar/calendars",
            Some(json!({"calendarId": "room-7@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["channel"]["status"], "active");
    assert_eq!(api.emulator().channel_count(), 1);
    let (status, page) = api.call("GET", "/calendar/calendars", None).await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["calendarId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"room-7@example.com"), "{page}");
    let (status, changed) = api
        .call(
            "PATCH",
            "/calendar/calendars/room-7@example.com",
            Some(json!({"subject": "facilities@example.com"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["subject"], "facilities@example.com");
    let (status, bad) = api
        .call(
            "PATCH",
            "/calendar/calendars/room-7@example.com",
            Some(json!({"subject": "not an email"})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["field"], "subject");
    let (status, removed) = api
        .call("DELETE", "/calendar/calendars/room-7@example.com", None)
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(api.emulator().channel_count(), 0, "its channel is stopped");
    let (status, _) = api
        .call("GET", "/calendar/calendars/room-7@example.com", None)
        .await;
    assert_eq!(status, 404);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    a_calendar_is_added_changed_and_removed(Api::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let Some(api) = Api::postgres().await else {
        return;
    };
    a_calendar_is_added_changed_and_removed(api).await;
}
