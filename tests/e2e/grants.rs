//! Connecting a user's own Google account end to end, through the
//! emulator's OAuth server over real HTTP: the redirect flow with PKCE,
//! the callback refusing a replayed or forged state and a denied consent,
//! the same account reconnecting to the same grant, no refresh token in
//! the database (the SQLite file, a Postgres dump), and a deleted grant
//! revoked at Google. On both backends.

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

both_backends!(an_account_connects_reconnects_and_disconnects);
