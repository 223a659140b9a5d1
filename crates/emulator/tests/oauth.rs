//! Per-user OAuth grants (authorization code with PKCE, refresh,
//! revocation, expiry), account isolation and calendarList, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use calsync_emulator::{
    AccessRole, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, OAuthClient,
    RunningEmulator, encode_path,
};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::Digest;
use support::Http;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const REDIRECT: &str = "http://127.0.0.1:4567/oauth/callback";
const SCOPE: &str = "openid email https://www.googleapis.com/auth/calendar";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

/// A GET that does not follow redirects: status and `Location`.
async fn get_raw(url: &str) -> (u16, Option<String>, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client
        .request(
            hyper::Request::get(url)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn query_of(location: &str) -> HashMap<String, String> {
    let query = location.split_once('?').unwrap().1;
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_path(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The authorization URL for `account` with the RFC's challenge.
fn auth_url(emu: &RunningEmulator, params: &[(&str, &str)]) -> String {
    let mut all: Vec<(&str, &str)> = vec![
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", "xyz-123"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
    ];
    for (k, v) in params {
        all.retain(|(name, _)| name != k);
        if !v.is_empty() {
            all.push((k, v));
        }
    }
    format!(
        "{}?{}",
        emu.authorization_url(),
        String::from_utf8(form(&all)).unwrap()
    )
}

/// Authorizes `account` and returns the code.
async fn code_for(emu: &RunningEmulator, account: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("login_hint", account)];
    params.extend_from_slice(extra);
    let (status, location, _) = get_raw(&auth_url(emu, &params)).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query = query_of(&location);
    assert_eq!(query["state"], "xyz-123");
    assert_eq!(query["scope"], SCOPE);
    query["code"].clone()
}

async fn exchange(http: &Http, emu: &RunningEmulator, code: &str, verifier: &str) -> (u16, Value) {
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ]);
    post_form(http, &emu.token_url(), body).await
}

async fn refresh(http: &Http, emu: &RunningEmulator, refresh_token: &str) -> (u16, Value) {
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ]);
    post_form(http, &emu.token_url(), body).await
}

async fn post_form(http: &Http, url: &str, body: Vec<u8>) -> (u16, Value) {
    http.send(
        "POST",
        url,
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body,
    )
    .await
}

/// A full grant for `account`: (access token, refresh token).
async fn grant(http: &Http, emu: &RunningEmulator, account: &str) -> (String, String) {
    let code = code_for(emu, account, &[("prompt", "consent")]).await;
    let (status, body) = exchange(http, emu, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn calendar_url(emu: &RunningEmulator, calendar: &str, rest: &str) -> String {
    format!(
        "{}calendars/{}{rest}",
        emu.calendar_api_url(),
        encode_path(calendar)
    )
}

fn oauth_error(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or_default(),
        body["error_description"].as_str().unwrap_or_default(),
    )
}

fn event(summary: &str) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": "2030-01-01T10:00:00Z"},
        "end": {"dateTime": "2030-01-01T11:00:00Z"},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_code_flow_with_pkce_gives_tokens_that_act_as_the_account() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let code = code_for(&emu, ADA, &[]).await;
    let (status, body) = exchange(&http, &emu, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], SCOPE);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // The ID token's claims (not signed with Google's keys).
    let id_token = body["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["email"], ADA);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["aud"], DEFAULT_CLIENT_ID);
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    let (status, me) = http
        .json("GET", &emu.userinfo_url(), Some(&access), &[], None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], ADA);
    assert_eq!(me["sub"], claims["sub"], "sub is stable per account");

    // `primary` is the account's own calendar, and the principal is the account.
    let (status, inserted) = http
        .json(
            "POST",
            &calendar_url(&emu, "primary", "/events"),
            Some(&access),
            &[],
            Some(&event("Ada's")),
        )
        .await;
    assert_eq!(status, 200, "{inserted}");
    assert_eq!(emu.emulator.events(ADA).len(), 1);
    let (status, calendar) = http
        .json(
            "GET",
            &calendar_url(&emu, "primary", ""),
            Some(&access),
            &[],
            None,
        )
        .await;
    assert_eq!((status, calendar["id"].as_str()), (200, Some(ADA)));
    assert_eq!(emu.emulator.calls_by_principal().get(ADA), Some(&2));

    // Refresh: a new access token, no new refresh token.
    let (status, refreshed) = refresh(&http, &emu, &refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed.get("refresh_token").is_none());
    let (status, _) = http
        .json(
            "GET",
            &calendar_url(&emu, ADA, "/events"),
            refreshed["access_token"].as_str(),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Consent given once: no refresh token again unless prompt=consent.
    let code = code_for(&emu, ADA, &[]).await;
    let (_, again) = exchange(&http, &emu, &code, VERIFIER).await;
    assert!(again.get("refresh_token").is_none(), "{again}");
    assert!(again["access_token"].is_string());
    let code = code_for(&emu, ADA, &[("prompt", "consent")]).await;
    let (_, forced) = exchange(&http, &emu, &code, VERIFIER).await;
    assert!(forced["refresh_token"].is_string());
    // Without access_type=offline, no refresh token whatever the prompt.
    let code = code_for(&emu, ADA, &[("prompt", "consent"), ("access_type", "")]).await;
    let (_, online) = exchange(&http, &emu, &code, VERIFIER).await;
    assert!(online.get("refresh_token").is_none());

    // HTTP Basic client authentication works too.
    let code = code_for(&emu, ADA, &[]).await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}"));
    let (status, _) = http
        .send(
            "POST",
            &emu.token_url(),
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &format!("Basic {basic}")),
            ],
            form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(emu.emulator.refresh_tokens().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_verifier_is_invalid_grant() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let code = code_for(&emu, ADA, &[]).await;
    let wrong = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b"not the verifier"));
    let (status, body) = exchange(&http, &emu, &code, &format!("{wrong}xx")).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", "Invalid code verifier."))
    );
    // The challenge itself is not the verifier of an S256 code.
    let (status, body) = exchange(&http, &emu, &code, CHALLENGE).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    let (status, body) = post_form(
        &http,
        &emu.token_url(),
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ]),
    )
    .await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", "Missing code verifier."))
    );
    // Another redirect URI than the authorization's.
    let (status, body) = post_form(
        &http,
        &emu.token_url(),
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:4567/other"),
            ("code_verifier", VERIFIER),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ]),
    )
    .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "redirect_uri_mismatch")
    );
    // A wrong client secret.
    let (status, body) = post_form(
        &http,
        &emu.token_url(),
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "guess"),
        ]),
    )
    .await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
    // Failed attempts do not use the code up.
    let (status, _) = exchange(&http, &emu, &code, VERIFIER).await;
    assert_eq!(status, 200);
    // An unknown code.
    let (status, body) = exchange(&http, &emu, "4/0nonsense", VERIFIER).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_code_is_refused_and_kills_what_it_gave() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let code = code_for(&emu, ADA, &[]).await;
    let (status, first) = exchange(&http, &emu, &code, VERIFIER).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    let refresh_token = first["refresh_token"].as_str().unwrap();
    let (status, body) = exchange(&http, &emu, &code, VERIFIER).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    let (status, body) = refresh(&http, &emu, refresh_token).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", "Token has been expired or revoked."))
    );
    let (status, body) = http
        .json(
            "GET",
            &calendar_url(&emu, ADA, "/events"),
            Some(access),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert!(emu.emulator.refresh_tokens()[0].revoked);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_clients_and_redirects_get_error_pages_not_redirects() {
    let emu = start(EmulatorConfig {
        oauth_clients: vec![
            OAuthClient::default(),
            OAuthClient {
                client_id: "web-client".into(),
                client_secret: "web-secret".into(),
                redirect_uris: vec!["https://calsync.example.com/oauth/callback".into()],
            },
        ],
        ..EmulatorConfig::default()
    })
    .await;
    for redirect in [
        "https://evil.example.com/callback",
        "http://127.0.0.1/no-port",
        "https://calsync.example.com/oauth/callback",
    ] {
        let (status, location, page) = get_raw(&auth_url(
            &emu,
            &[("login_hint", ADA), ("redirect_uri", redirect)],
        ))
        .await;
        assert_eq!((status, location), (400, None), "{redirect}");
        assert!(page.contains("redirect_uri_mismatch"));
    }
    // A URI registered for its client works; only that client's.
    let (status, location, _) = get_raw(&auth_url(
        &emu,
        &[
            ("login_hint", ADA),
            ("client_id", "web-client"),
            ("redirect_uri", "https://calsync.example.com/oauth/callback"),
        ],
    ))
    .await;
    assert_eq!(status, 302);
    assert!(
        location
            .unwrap()
            .starts_with("https://calsync.example.com/oauth/callback?code=")
    );
    // Added at run time.
    assert!(
        emu.emulator
            .add_redirect_uri(DEFAULT_CLIENT_ID, "https://evil.example.com/callback")
    );
    let (status, _, _) = get_raw(&auth_url(
        &emu,
        &[
            ("login_hint", ADA),
            ("redirect_uri", "https://evil.example.com/callback"),
        ],
    ))
    .await;
    assert_eq!(status, 302);

    let (status, location, page) = get_raw(&auth_url(
        &emu,
        &[("login_hint", ADA), ("client_id", "nobody")],
    ))
    .await;
    assert_eq!((status, location), (401, None));
    assert!(page.contains("invalid_client"));
    // No login_hint and no default account: an error page.
    let (status, location, _) = get_raw(&auth_url(&emu, &[])).await;
    assert_eq!((status, location), (400, None));
    // A bad challenge method goes back to the (trusted) redirect URI.
    let (status, location, _) = get_raw(&auth_url(
        &emu,
        &[("login_hint", ADA), ("code_challenge_method", "S512")],
    ))
    .await;
    assert_eq!(status, 302);
    assert_eq!(query_of(&location.unwrap())["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_redirects_with_access_denied() {
    let emu = start(EmulatorConfig {
        default_account: Some(BOB.into()),
        ..EmulatorConfig::default()
    })
    .await;
    let http = Http::new();
    emu.emulator.deny_next_authorization(Some(ADA));
    // Bob's authorization is not the one denied.
    let (status, location, _) = get_raw(&auth_url(&emu, &[])).await;
    assert_eq!(status, 302);
    assert!(query_of(&location.unwrap()).contains_key("code"));
    let (status, location, _) = get_raw(&auth_url(&emu, &[("login_hint", ADA)])).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT));
    let query = query_of(&location);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "xyz-123");
    assert!(!query.contains_key("code"));
    // One denial, used up; the admin route denies any account's next.
    code_for(&emu, ADA, &[]).await;
    let (status, _) = http
        .json(
            "POST",
            &format!("{}/emulator/oauth/deny", emu.base_url),
            None,
            &[],
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, location, _) = get_raw(&auth_url(&emu, &[("login_hint", BOB)])).await;
    assert_eq!(query_of(&location.unwrap())["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_works_until_the_user_revokes_the_grant() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let (_, ada_refresh) = grant(&http, &emu, ADA).await;
    let (_, bob_refresh) = grant(&http, &emu, BOB).await;
    assert_eq!(refresh(&http, &emu, &ada_refresh).await.0, 200);

    // Over HTTP, as a test of another crate would.
    let (status, body) = http
        .json(
            "POST",
            &format!(
                "{}/emulator/oauth/accounts/{}/revoke",
                emu.base_url,
                encode_path(ADA)
            ),
            None,
            &[],
            Some(&json!({"clientId": DEFAULT_CLIENT_ID})),
        )
        .await;
    assert_eq!((status, body["revoked"].as_u64()), (200, Some(1)));
    let (status, body) = refresh(&http, &emu, &ada_refresh).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", "Token has been expired or revoked."))
    );
    assert_eq!(
        refresh(&http, &emu, &bob_refresh).await.0,
        200,
        "Bob's grant lives"
    );

    let (status, listed) = http
        .json(
            "GET",
            &format!("{}/emulator/oauth/refresh-tokens", emu.base_url),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    let revoked: HashMap<&str, bool> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["token"].as_str().unwrap(),
                t["revoked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(revoked[ada_refresh.as_str()]);
    assert!(!revoked[bob_refresh.as_str()]);

    // After revocation the next consent is a first one: a refresh token again.
    let code = code_for(&emu, ADA, &[]).await;
    let (_, body) = exchange(&http, &emu, &code, VERIFIER).await;
    assert!(body["refresh_token"].is_string());
    assert_eq!(emu.emulator.revoke_user_grant(BOB, None), 1);
    assert_eq!(refresh(&http, &emu, &bob_refresh).await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_revoke_endpoint_revokes_the_whole_grant() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    // Revoking an access token revokes its refresh token too.
    let (access, refresh_token) = grant(&http, &emu, ADA).await;
    let url = format!("{}?token={}", emu.revoke_url(), encode_path(&access));
    assert_eq!(post_form(&http, &url, Vec::new()).await.0, 200);
    assert_eq!(refresh(&http, &emu, &refresh_token).await.0, 400);
    let (status, body) = post_form(&http, &url, Vec::new()).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_token"));

    // Revoking a refresh token (form body) kills its access tokens.
    let (access, refresh_token) = grant(&http, &emu, ADA).await;
    let (status, _) = post_form(&http, &emu.revoke_url(), form(&[("token", &refresh_token)])).await;
    assert_eq!(status, 200);
    let (status, _) = http
        .json(
            "GET",
            &calendar_url(&emu, "primary", "/events"),
            Some(&access),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = http
        .json("GET", &emu.userinfo_url(), Some(&access), &[], None)
        .await;
    assert_eq!(status, 401);
    let (status, body) = post_form(&http, &emu.revoke_url(), form(&[("token", "nonsense")])).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_token_is_401_until_refreshed() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let (status, _) = http
        .json(
            "PUT",
            &format!("{}/emulator/oauth/access-token-lifetime", emu.base_url),
            None,
            &[],
            Some(&json!({"seconds": 1})),
        )
        .await;
    assert_eq!(status, 204);
    let code = code_for(&emu, ADA, &[]).await;
    let (_, body) = exchange(&http, &emu, &code, VERIFIER).await;
    assert_eq!(body["expires_in"], 1);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let access = access.as_str();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let events = calendar_url(&emu, "primary", "/events");
    assert_eq!(
        http.json("GET", &events, Some(access), &[], None).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = http.json("GET", &events, Some(access), &[], None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["errors"][0]["reason"], "authError");
    assert_eq!(body["error"]["message"], "Invalid Credentials");

    emu.emulator
        .set_access_token_lifetime(Duration::from_secs(3600));
    let (_, refreshed) = refresh(&http, &emu, &refresh_token).await;
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        http.json("GET", &events, Some(fresh), &[], None).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_see_only_their_own_and_shared_calendars() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let (ada, _) = grant(&http, &emu, ADA).await;
    let (bob, _) = grant(&http, &emu, BOB).await;
    let team = "team-ada@group.calendar.google.com";
    emu.emulator.create_user_calendar(ADA, team, "Ada's team");

    let (status, _) = http
        .json(
            "POST",
            &calendar_url(&emu, team, "/events"),
            Some(&ada),
            &[],
            Some(&event("Standup")),
        )
        .await;
    assert_eq!(status, 200);
    for calendar in [ADA, team, "someone-else@example.com"] {
        let (status, body) = http
            .json(
                "GET",
                &calendar_url(&emu, calendar, "/events"),
                Some(&bob),
                &[],
                None,
            )
            .await;
        assert_eq!(status, 404, "{calendar}");
        assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
    }
    // Bob's `primary` is Bob's.
    let (status, body) = http
        .json(
            "GET",
            &calendar_url(&emu, "primary", ""),
            Some(&bob),
            &[],
            None,
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (200, Some(BOB)));

    // Shared read-only: Bob reads, cannot write.
    let (status, _) = http
        .json(
            "PUT",
            &format!(
                "{}/emulator/calendars/{}/shares/{}",
                emu.base_url,
                encode_path(team),
                encode_path(BOB)
            ),
            None,
            &[],
            Some(&json!({"role": "reader"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = http
        .json(
            "GET",
            &calendar_url(&emu, team, "/events"),
            Some(&bob),
            &[],
            None,
        )
        .await;
    assert_eq!((status, body["accessRole"].as_str()), (200, Some("reader")));
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = http
        .json(
            "POST",
            &calendar_url(&emu, team, "/events"),
            Some(&bob),
            &[],
            Some(&event("Bob's")),
        )
        .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (403, Some("requiredAccessLevel"))
    );
    let (status, body) = http
        .json("GET", &calendar_url(&emu, team, ""), Some(&bob), &[], None)
        .await;
    assert_eq!(
        (status, body["summary"].as_str()),
        (200, Some("Ada's team"))
    );

    // Free/busy: Bob's own primary answers, Ada's calendar is notFound.
    let (status, body) = http
        .json(
            "POST",
            &format!("{}freeBusy", emu.calendar_api_url()),
            Some(&bob),
            &[],
            Some(&json!({
                "timeMin": "2030-01-01T00:00:00Z",
                "timeMax": "2030-01-02T00:00:00Z",
                "items": [{"id": "primary"}, {"id": ADA}, {"id": team}],
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["calendars"]["primary"], json!({"busy": []}));
    assert_eq!(body["calendars"][ADA]["errors"][0]["reason"], "notFound");
    assert_eq!(
        body["calendars"][team]["busy"][0]["start"],
        "2030-01-01T10:00:00Z"
    );

    emu.emulator.unshare_calendar(team, BOB);
    let (status, _) = http
        .json(
            "GET",
            &calendar_url(&emu, team, "/events"),
            Some(&bob),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 404);
    // Open-auth tokens keep today's behaviour: every calendar reachable.
    let (status, _) = http
        .json(
            "GET",
            &calendar_url(&emu, team, "/events"),
            Some("any-dev-token"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(emu.emulator.principals_for(team).contains(BOB));
}

async fn calendar_list(
    http: &Http,
    emu: &RunningEmulator,
    token: &str,
    query: &str,
) -> (u16, Value) {
    http.json(
        "GET",
        &format!("{}users/me/calendarList{query}", emu.calendar_api_url()),
        Some(token),
        &[],
        None,
    )
    .await
}

fn ids(body: &Value) -> Vec<&str> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn calendar_lists_sync_in_full_then_by_changes() {
    let emu = start(EmulatorConfig::default()).await;
    let http = Http::new();
    let (ada, _) = grant(&http, &emu, ADA).await;
    let admin = &emu.emulator;
    admin.create_user_calendar(ADA, "a-work@group.calendar.google.com", "Work");
    admin.create_user_calendar(ADA, "b-gym@group.calendar.google.com", "Gym");
    admin.create_user_calendar(BOB, "c-bob@group.calendar.google.com", "Bob's");
    admin.share_calendar("c-bob@group.calendar.google.com", ADA, AccessRole::Writer);
    admin
        .set_calendar_list_hidden(ADA, "b-gym@group.calendar.google.com", true)
        .unwrap();

    let (status, full) = calendar_list(&http, &emu, &ada, "").await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["kind"], "calendar#calendarList");
    assert!(full["etag"].is_string());
    assert_eq!(
        ids(&full),
        [
            "a-work@group.calendar.google.com",
            ADA,
            "c-bob@group.calendar.google.com"
        ]
    );
    let primary = &full["items"][1];
    assert_eq!(primary["kind"], "calendar#calendarListEntry");
    assert_eq!(primary["primary"], true);
    assert_eq!(primary["accessRole"], "owner");
    assert_eq!(primary["timeZone"], "UTC");
    assert_eq!(full["items"][2]["accessRole"], "writer");
    assert_eq!(full["items"][2]["summary"], "Bob's");
    let sync = full["nextSyncToken"].as_str().unwrap().to_owned();
    assert!(full.get("nextPageToken").is_none());

    let (_, hidden) = calendar_list(&http, &emu, &ada, "?showHidden=true").await;
    assert_eq!(ids(&hidden).len(), 4);

    // Paging: two at a time, the sync token only on the last page.
    let (_, page1) = calendar_list(&http, &emu, &ada, "?maxResults=2").await;
    assert_eq!(ids(&page1).len(), 2);
    assert!(page1.get("nextSyncToken").is_none());
    let next = page1["nextPageToken"].as_str().unwrap();
    let (_, page2) = calendar_list(
        &http,
        &emu,
        &ada,
        &format!("?maxResults=2&pageToken={next}"),
    )
    .await;
    assert_eq!(ids(&page2), ["c-bob@group.calendar.google.com"]);
    assert!(page2["nextSyncToken"].is_string());

    // Nothing changed: no items, a token still good.
    let (status, none) = calendar_list(&http, &emu, &ada, &format!("?syncToken={sync}")).await;
    assert_eq!((status, ids(&none).len()), (200, 0));

    // Changes: one removed (unshared), one hidden, one added.
    admin.unshare_calendar("c-bob@group.calendar.google.com", ADA);
    admin
        .set_calendar_list_hidden(ADA, "a-work@group.calendar.google.com", true)
        .unwrap();
    admin.create_user_calendar(ADA, "d-new@group.calendar.google.com", "New");
    let (status, changes) = calendar_list(&http, &emu, &ada, &format!("?syncToken={sync}")).await;
    assert_eq!(status, 200, "{changes}");
    assert_eq!(
        ids(&changes),
        [
            "a-work@group.calendar.google.com",
            "c-bob@group.calendar.google.com",
            "d-new@group.calendar.google.com"
        ]
    );
    assert_eq!(changes["items"][0]["hidden"], true);
    assert_eq!(changes["items"][1]["deleted"], true);
    assert!(changes["items"][2].get("deleted").is_none());
    let sync2 = changes["nextSyncToken"].as_str().unwrap().to_owned();

    // A full listing leaves deleted entries out unless showDeleted.
    let (_, full) = calendar_list(&http, &emu, &ada, "").await;
    assert_eq!(ids(&full), [ADA, "d-new@group.calendar.google.com"]);
    let (_, with_deleted) = calendar_list(&http, &emu, &ada, "?showDeleted=true").await;
    assert!(ids(&with_deleted).contains(&"c-bob@group.calendar.google.com"));

    // Refused combinations, then an invalidated token.
    let (status, _) = calendar_list(
        &http,
        &emu,
        &ada,
        &format!("?syncToken={sync2}&showDeleted=false"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = calendar_list(
        &http,
        &emu,
        &ada,
        &format!("?syncToken={sync2}&minAccessRole=owner"),
    )
    .await;
    assert_eq!(status, 400);
    // Another account's token is not Bob's to use.
    let (bob, _) = grant(&http, &emu, BOB).await;
    let (status, _) = calendar_list(&http, &emu, &bob, &format!("?syncToken={sync2}")).await;
    assert_eq!(status, 410);
    admin.invalidate_sync_tokens();
    let (status, body) = calendar_list(&http, &emu, &ada, &format!("?syncToken={sync2}")).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["errors"][0]["reason"], "fullSyncRequired");
    let (_, bob_list) = calendar_list(&http, &emu, &bob, "?minAccessRole=owner").await;
    assert_eq!(
        ids(&bob_list),
        [BOB, "c-bob@group.calendar.google.com"],
        "Bob owns his calendar and his primary"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn require_pkce_s256_refuses_plain_and_missing_challenges() {
    let emu = start(EmulatorConfig {
        require_pkce_s256: true,
        ..EmulatorConfig::default()
    })
    .await;
    for params in [
        vec![
            ("login_hint", ADA),
            ("code_challenge_method", "plain"),
            ("code_challenge", VERIFIER),
        ],
        vec![
            ("login_hint", ADA),
            ("code_challenge_method", ""),
            ("code_challenge", ""),
        ],
    ] {
        let (status, location, _) = get_raw(&auth_url(&emu, &params)).await;
        assert_eq!(status, 302);
        assert_eq!(query_of(&location.unwrap())["error"], "invalid_request");
    }
    code_for(&emu, ADA, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_tokens_work_under_service_account_auth_too() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public_key_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let emu = start(EmulatorConfig {
        auth: calsync_emulator::EmulatorAuth::ServiceAccount { public_key_pem },
        ..EmulatorConfig::default()
    })
    .await;
    let http = Http::new();
    let (access, _) = grant(&http, &emu, ADA).await;
    let events = calendar_url(&emu, "primary", "/events");
    assert_eq!(
        http.json("GET", &events, Some(&access), &[], None).await.0,
        200
    );
    assert_eq!(
        http.json("GET", &events, Some("made-up"), &[], None)
            .await
            .0,
        401
    );
}
