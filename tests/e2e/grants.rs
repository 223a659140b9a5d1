//! Connecting a user's own Google account end to end, through the
//! emulator's OAuth server over real HTTP: the redirect flow with PKCE,
//! the callback refusing a replayed or forged state and a denied consent,
//! the same account reconnecting to the same grant, no refresh token in
//! the database (the SQLite file, a Postgres dump), and a deleted grant
//! revoked at Google. On both backends.

use calsync_emulator::AccessRole;
use serde_json::{Value, json};

use crate::events_api::Api;
use crate::helpers::http_with_headers;

/// Follows the authorization URL as a browser would, to Google's redirect
/// back to calsync: the callback URL with `code` and `state`.
async fn consent(authorization_url: &str) -> String {
    let (status, headers, body) = http_with_headers("GET", authorization_url, &[], None).await;
    assert_eq!(status, 302, "{body}");
    headers["location"].to_str().unwrap().to_owned()
}

async fn start(api: &Api, hint: &str) -> Value {
    let (status, started) = api
        .call(
            "POST",
            "/calendar/grants/google",
            Some(json!({"loginHint": hint})),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    started
}

/// The callback on calsync's own address (the path and query Google sent).
async fn callback(api: &Api, location: &str) -> (u16, Value) {
    let path = location
        .split_once("/calendar/grants/google/callback")
        .map(|(_, rest)| format!("/calendar/grants/google/callback{rest}"))
        .unwrap();
    api.call("GET", &path, None).await
}

async fn an_account_connects_reconnects_and_disconnects(api: Api) {
    let started = start(&api, "ana@example.com").await;
    let url = started["authorizationUrl"].as_str().unwrap();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("access_type=offline"), "{url}");
    let location = consent(url).await;
    assert!(
        location.contains(&format!("state={}", started["state"].as_str().unwrap())),
        "{location}"
    );

    let (status, grant) = callback(&api, &location).await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["email"], "ana@example.com", "{grant}");
    assert_eq!(grant["status"], "active", "{grant}");
    assert_eq!(grant["provider"], "google");
    let id = grant["id"].as_str().unwrap().to_owned();

    // The same redirect again (a replay): refused, nothing changes.
    let (status, error) = callback(&api, &location).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("state")),
        "{error}"
    );
    // A forged state.
    let forged = location.replace(
        started["state"].as_str().unwrap(),
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    let (status, _) = callback(&api, &forged).await;
    assert_eq!(status, 400);
    let (status, list) = api.call("GET", "/calendar/grants", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    // The user declines: Google's error comes back, no grant.
    api.emulator()
        .deny_next_authorization(Some("bo@example.com"));
    let denied = start(&api, "bo@example.com").await;
    let location = consent(denied["authorizationUrl"].as_str().unwrap()).await;
    assert!(location.contains("error=access_denied"), "{location}");
    let (status, error) = callback(&api, &location).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("error")),
        "{error}"
    );

    // Reconnecting the same account restores the same grant, with the
    // new refresh token (the earlier one is not revoked: that would
    // revoke the account's whole authorization, the new token included).
    let again = start(&api, "ana@example.com").await;
    let location = consent(again["authorizationUrl"].as_str().unwrap()).await;
    let (status, restored) = callback(&api, &location).await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["id"], id.as_str(), "{restored}");

    // No refresh token the emulator issued is anywhere in the database.
    let issued = api.emulator().refresh_tokens();
    assert!(!issued.is_empty(), "{issued:?}");
    let dump = api.database_dump();
    assert!(!dump.is_empty());
    for token in &issued {
        assert!(
            !dump
                .windows(token.token.len())
                .any(|w| w == token.token.as_bytes()),
            "a refresh token is in the database in the clear"
        );
    }

    // Disconnecting revokes at Google.
    let (status, deleted) = api
        .call("DELETE", &format!("/calendar/grants/{id}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["status"], "revoked", "{deleted}");
    let live: Vec<_> = api
        .emulator()
        .refresh_tokens()
        .into_iter()
        .filter(|t| t.account == "ana@example.com" && !t.revoked)
        .collect();
    assert!(live.is_empty(), "{live:?}");
    let (status, got) = api
        .call("GET", &format!("/calendar/grants/{id}"), None)
        .await;
    assert_eq!(
        (status, got["status"].as_str()),
        (200, Some("revoked")),
        "{got}"
    );
    let (status, _) = api.call("GET", "/calendar/grants/gr_nope", None).await;
    assert_eq!(status, 404);
}

/// Connects `hint`'s account through the redirect flow; answers the grant.
async fn connect(api: &Api, hint: &str) -> Value {
    let started = start(api, hint).await;
    let location = consent(started["authorizationUrl"].as_str().unwrap()).await;
    let (status, grant) = callback(api, &location).await;
    assert_eq!(status, 200, "{grant}");
    grant
}

/// Polls `path` until `done` holds for its answer (at most 20 s).
async fn until(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, answer) = api.call("GET", path, None).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never got there: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn event_in(calendar: &str, entity_id: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    json!({
        "calendarId": calendar,
        "entityType": "deal",
        "entityId": entity_id,
        "summary": format!("Deal {entity_id}"),
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
    })
}

fn at_google(api: &Api, calendar: &str, entity_id: &str) -> usize {
    api.emulator()
        .events(calendar)
        .into_iter()
        .filter(|e| e["extendedProperties"]["private"]["entity_id"] == entity_id)
        .count()
}

/// The whole life of a calendar managed through a user's own account:
/// listed from the account's calendar list, managed, written as the
/// account; the user revokes access in Google, so the grant needs
/// reconnecting and a write waits (never dead-lettered); the user
/// connects again, and the same grant resumes and the write lands;
/// deleting the grant stops its channels and revokes it at Google.
async fn a_calendar_is_managed_through_a_grant_and_survives_revocation(api: Api) {
    let team = "ana-team@example.com";
    api.emulator()
        .create_user_calendar("ana@example.com", team, "Ana's team");
    let grant = connect(&api, "ana@example.com").await;
    let id = grant["id"].as_str().unwrap().to_owned();

    // The account's calendars, from Google's calendar list.
    let (status, listed) = api
        .call("GET", &format!("/calendar/grants/{id}/calendars"), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    let entry = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["calendarId"] == team)
        .cloned()
        .unwrap_or_else(|| panic!("{team} not listed: {listed}"));
    assert_eq!(entry["accessRole"], "owner", "{entry}");
    assert_eq!(entry["managed"], false, "{entry}");

    // A subject and a grant together, an unknown grant: refused.
    let (status, error) = api
        .call(
            "POST",
            "/calendar/calendars",
            Some(json!({"calendarId": team, "grant": id, "subject": "x@example.com"})),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("grant")),
        "{error}"
    );
    let (status, error) = api
        .call(
            "POST",
            "/calendar/calendars",
            Some(json!({"calendarId": team, "grant": "gr_00000000000000000000000000000000"})),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (400, Some("grant")),
        "{error}"
    );

    let (status, managed) = api
        .call(
            "POST",
            "/calendar/calendars",
            Some(json!({"calendarId": team, "grant": id})),
        )
        .await;
    assert_eq!(status, 201, "{managed}");
    assert_eq!(managed["grant"], id.as_str(), "{managed}");
    let (_, listed) = api
        .call("GET", &format!("/calendar/grants/{id}/calendars"), None)
        .await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["calendarId"] == team && c["managed"] == true),
        "{listed}"
    );

    // A write lands in the account's calendar, made as the account.
    let (status, created) = api
        .call("POST", "/calendar/events", Some(event_in(team, "g-1")))
        .await;
    assert!(matches!(status, 201 | 202), "{status} {created}");
    api.pushed(created["id"].as_str().unwrap()).await;
    assert_eq!(at_google(&api, team, "g-1"), 1);
    assert_eq!(
        api.emulator().last_writer(team).as_deref(),
        Some("ana@example.com")
    );

    // The user revokes calsync's access in their Google account.
    assert!(api.emulator().revoke_user_grant("ana@example.com", None) > 0);
    let (status, waiting) = api
        .call("POST", "/calendar/events", Some(event_in(team, "g-2")))
        .await;
    assert!(matches!(status, 201 | 202), "{status} {waiting}");
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    let refused = until(&api, &format!("/calendar/grants/{id}"), |g| {
        g["status"] == "reconnect_required"
    })
    .await;
    assert!(refused["lastError"].as_str().is_some(), "{refused}");
    let (_, event) = api
        .call("GET", &format!("/calendar/events/{waiting_id}"), None)
        .await;
    assert_eq!(event["pushState"], "pending", "the write waits: {event}");
    assert_eq!(at_google(&api, team, "g-2"), 0);
    let health = until(&api, "/health/calendar", |h| {
        h.to_string().contains("reconnect_required")
    })
    .await;
    assert_ne!(health["status"], "healthy", "{health}");
    let (_, changes) = api
        .call(
            "GET",
            "/calendar/changes?types=grant.reconnect_required",
            None,
        )
        .await;
    let items = changes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{changes}");
    assert_eq!(items[0]["grantId"], id.as_str(), "{changes}");
    let (status, _) = api
        .call("GET", &format!("/calendar/grants/{id}/calendars"), None)
        .await;
    assert_eq!(status, 409);

    // The user connects again: the same grant, and the write lands.
    let again = connect(&api, "ana@example.com").await;
    assert_eq!(again["id"], id.as_str(), "{again}");
    assert_eq!(again["status"], "active", "{again}");
    api.pushed(&waiting_id).await;
    assert_eq!(at_google(&api, team, "g-2"), 1);
    let (_, changes) = api
        .call("GET", "/calendar/changes?types=grant.recovered", None)
        .await;
    assert_eq!(changes["items"].as_array().unwrap().len(), 1, "{changes}");
    until(&api, &format!("/calendar/calendars/{team}"), |c| {
        c["health"]["reconnectRequired"] == false
    })
    .await;

    // Deleting the grant stops its calendars' channels and revokes it.
    let channels_before = api.emulator().channel_count();
    assert!(channels_before > 0);
    let (status, deleted) = api
        .call("DELETE", &format!("/calendar/grants/{id}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["status"], "revoked", "{deleted}");
    assert!(
        api.emulator().channel_count() < channels_before,
        "no channel was stopped at Google"
    );
    let (status, _) = api
        .call("GET", &format!("/calendar/calendars/{team}"), None)
        .await;
    assert_eq!(status, 404, "the calendar is no longer managed");
    assert!(
        api.emulator()
            .refresh_tokens()
            .iter()
            .filter(|t| t.account == "ana@example.com")
            .all(|t| t.revoked),
        "the revoke did not reach Google"
    );
    api.stop().await;
}

/// A calendar the account loses in Google (its owner takes the share
/// back) stops being managed once calsync reads the account's calendar
/// list again; the one it keeps stays managed.
async fn a_calendar_the_account_loses_stops_being_managed(api: Api) {
    let (kept, shared) = ("bo-own@example.com", "carla-shared@example.com");
    api.emulator()
        .create_user_calendar("bo@example.com", kept, "Bo's own");
    api.emulator()
        .create_user_calendar("carla@example.com", shared, "Carla's");
    api.emulator()
        .share_calendar(shared, "bo@example.com", AccessRole::Writer);
    let grant = connect(&api, "bo@example.com").await;
    let id = grant["id"].as_str().unwrap().to_owned();
    for calendar in [kept, shared] {
        let (status, managed) = api
            .call(
                "POST",
                "/calendar/calendars",
                Some(json!({"calendarId": calendar, "grant": id})),
            )
            .await;
        assert_eq!(status, 201, "{managed}");
    }

    api.emulator().unshare_calendar(shared, "bo@example.com");
    let (status, listed) = api
        .call("GET", &format!("/calendar/grants/{id}/calendars"), None)
        .await;
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().unwrap();
    assert!(!items.iter().any(|c| c["calendarId"] == shared), "{listed}");
    assert!(
        items
            .iter()
            .any(|c| c["calendarId"] == kept && c["managed"] == true),
        "{listed}"
    );
    let (status, gone) = api
        .call("GET", &format!("/calendar/calendars/{shared}"), None)
        .await;
    assert_eq!(status, 404, "no longer managed: {gone}");
    let (status, still) = api
        .call("GET", &format!("/calendar/calendars/{kept}"), None)
        .await;
    assert_eq!(status, 200, "{still}");
    api.stop().await;
}

both_backends!(
    an_account_connects_reconnects_and_disconnects,
    a_calendar_is_managed_through_a_grant_and_survives_revocation,
    a_calendar_the_account_loses_stops_being_managed,
);
