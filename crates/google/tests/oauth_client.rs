//! The user-grant OAuth client against the emulator over real HTTP: the
//! authorization redirect read by hand (no redirect following), the code
//! exchanged with its PKCE verifier, refresh, userinfo and revocation; and
//! against canned answers for what the emulator cannot be made to do
//! (5xx, 429, silence).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::HashMap;
use std::time::Duration;

use calsync_domain::grant::{
    AuthorizationRequest, GOOGLE_SCOPES, TokenGrant, code_challenge, random_token,
};
use calsync_domain::ports::OAuthProvider;
use calsync_domain::{Error as DomainError, ProviderErrorKind as Kind};
use calsync_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use calsync_google::{Error, GoogleOAuth, OAuthClientConfig};
use google_calendar3::{common, hyper, hyper_util};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const REDIRECT: &str = "http://127.0.0.1:8765/oauth/callback";
const ADA: &str = "ada@example.com";

async fn emulator() -> RunningEmulator {
    Emulator::new(EmulatorConfig::default())
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

fn config(emulator: &RunningEmulator) -> OAuthClientConfig {
    OAuthClientConfig {
        request_timeout: Duration::from_secs(5),
        ..OAuthClientConfig::emulator(
            &emulator.base_url,
            DEFAULT_CLIENT_ID,
            DEFAULT_CLIENT_SECRET,
            REDIRECT,
        )
    }
}

fn client(emulator: &RunningEmulator) -> GoogleOAuth {
    GoogleOAuth::new(config(emulator)).unwrap()
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A started authorization: its state and verifier, as the grant service
/// keeps them.
struct Started {
    state: String,
    verifier: String,
    url: String,
}

fn start(oauth: &GoogleOAuth, login_hint: Option<&str>) -> Started {
    let state = random_token();
    let verifier = random_token();
    let url = oauth.authorization_url(&AuthorizationRequest {
        state: state.clone(),
        code_challenge: code_challenge(&verifier),
        login_hint: login_hint.map(str::to_owned),
    });
    Started {
        state,
        verifier,
        url,
    }
}

/// The browser's part: GETs the authorization URL and reads the 302's
/// `Location` (not followed: nothing listens at the redirect URI).
async fn consent(url: &str) -> HashMap<String, String> {
    let browser = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<common::Body>();
    let request = hyper::Request::get(url)
        .body(common::to_body(None::<Vec<u8>>))
        .unwrap();
    let response = browser.request(request).await.unwrap();
    assert_eq!(
        response.status(),
        302,
        "the authorization endpoint redirects"
    );
    let location = response
        .headers()
        .get(hyper::header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    query(&location)
}

/// Consent for `account`, then the code exchanged with its verifier.
async fn connect(oauth: &GoogleOAuth, account: &str) -> TokenGrant {
    let started = start(oauth, Some(account));
    let callback = consent(&started.url).await;
    assert_eq!(callback.get("state"), Some(&started.state));
    oauth
        .exchange_code(&callback["code"], &started.verifier)
        .await
        .unwrap()
}

fn kind(error: &DomainError) -> Kind {
    error
        .provider_kind()
        .unwrap_or_else(|| panic!("not a provider error: {error:?}"))
}

/// Fails when a message quotes any of `secrets`.
fn assert_quotes_none(error: &DomainError, secrets: &[&str]) {
    let message = error.to_string();
    for secret in secrets {
        assert!(!message.contains(secret), "{message} quotes a secret");
    }
}

#[test]
fn the_authorization_url_carries_every_parameter() {
    let oauth = GoogleOAuth::new(OAuthClientConfig::google(
        "123.apps.googleusercontent.com",
        "shh",
        "https://calsync.example.com/oauth/callback?from=a b&x=é",
    ))
    .unwrap();
    let started = start(&oauth, Some("ada+cal@example.com"));
    let parsed = url::Url::parse(&started.url).unwrap();
    assert_eq!(parsed.scheme(), "https");
    assert_eq!(parsed.host_str(), Some("accounts.google.com"));
    assert_eq!(parsed.path(), "/o/oauth2/v2/auth");
    assert!(!started.url.contains(' '), "encoded: {}", started.url);
    let params = query(&started.url);
    let expected = [
        ("response_type", "code"),
        ("client_id", "123.apps.googleusercontent.com"),
        (
            "redirect_uri",
            "https://calsync.example.com/oauth/callback?from=a b&x=é",
        ),
        ("scope", &GOOGLE_SCOPES.join(" ")),
        ("state", &started.state),
        ("code_challenge", &code_challenge(&started.verifier)),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("include_granted_scopes", "true"),
        ("login_hint", "ada+cal@example.com"),
    ];
    for (name, value) in expected {
        assert_eq!(params.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(params.len(), expected.len(), "{params:?}");
    assert!(
        !started.url.contains("shh"),
        "the client secret stays out of the URL"
    );

    let without_hint = query(&start(&oauth, None).url);
    assert!(!without_hint.contains_key("login_hint"));
    assert_eq!(without_hint.len(), expected.len() - 1);
}

#[test]
fn google_defaults_and_configuration_checks() {
    let google = OAuthClientConfig::google("id", "s3cr3t-value", "https://x.example/cb");
    assert_eq!(
        google.authorization_endpoint,
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(google.token_endpoint, "https://oauth2.googleapis.com/token");
    assert_eq!(
        google.revocation_endpoint,
        "https://oauth2.googleapis.com/revoke"
    );
    assert_eq!(
        google.userinfo_endpoint,
        "https://openidconnect.googleapis.com/v1/userinfo"
    );
    assert_eq!(google.scopes, GOOGLE_SCOPES);
    assert!(
        !format!("{google:?}").contains("s3cr3t-value"),
        "Debug redacts the secret: {google:?}"
    );

    let emulator = OAuthClientConfig::emulator("http://127.0.0.1:9/", "id", "s", REDIRECT);
    assert_eq!(
        emulator.authorization_endpoint,
        "http://127.0.0.1:9/o/oauth2/v2/auth"
    );
    assert_eq!(emulator.token_endpoint, "http://127.0.0.1:9/token");
    assert_eq!(emulator.revocation_endpoint, "http://127.0.0.1:9/revoke");
    assert_eq!(
        emulator.userinfo_endpoint,
        "http://127.0.0.1:9/oauth2/v3/userinfo"
    );

    let refused = |config: OAuthClientConfig| {
        assert!(matches!(GoogleOAuth::new(config), Err(Error::Config(_))));
    };
    refused(OAuthClientConfig {
        token_endpoint: "http://oauth2.googleapis.com/token".into(),
        ..google.clone()
    });
    refused(OAuthClientConfig {
        client_id: " ".into(),
        ..google.clone()
    });
    refused(OAuthClientConfig {
        client_secret: String::new(),
        ..google.clone()
    });
    refused(OAuthClientConfig {
        scopes: Vec::new(),
        ..google.clone()
    });
    refused(OAuthClientConfig {
        redirect_uri: "not a url".into(),
        ..google.clone()
    });
    refused(OAuthClientConfig {
        request_timeout: Duration::ZERO,
        ..google
    });
}

#[tokio::test]
async fn a_code_redeemed_with_its_verifier_brings_tokens_that_refresh() {
    let emulator = emulator().await;
    let oauth = client(&emulator);
    let tokens = connect(&oauth, ADA).await;
    let refresh_token = tokens.refresh_token.clone().expect("prompt=consent");
    assert!(!tokens.access_token.is_empty());
    assert_eq!(tokens.expires_in, chrono::Duration::seconds(3600));
    assert_eq!(tokens.scopes, GOOGLE_SCOPES);

    let account = oauth.account(&tokens.access_token).await.unwrap();
    assert_eq!(account.email, ADA);
    assert!(!account.account.is_empty());
    assert_ne!(account.account, ADA, "the account is Google's stable id");

    let refreshed = oauth.refresh(&refresh_token).await.unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(refreshed.refresh_token, None, "a refresh keeps its token");
    assert_eq!(refreshed.scopes, GOOGLE_SCOPES);
    assert_eq!(
        oauth.account(&refreshed.access_token).await.unwrap(),
        account
    );

    // Consent again (a returning user): prompt=consent still brings a
    // refresh token, and the account is the same.
    let again = connect(&oauth, ADA).await;
    assert!(again.refresh_token.is_some());
    assert_eq!(oauth.account(&again.access_token).await.unwrap(), account);
    emulator.stop().await;
}

#[tokio::test]
async fn a_wrong_verifier_or_a_reused_code_is_invalid_grant() {
    let emulator = emulator().await;
    let oauth = client(&emulator);
    let started = start(&oauth, Some(ADA));
    let callback = consent(&started.url).await;
    let code = &callback["code"];
    let wrong = random_token();
    let error = oauth.exchange_code(code, &wrong).await.unwrap_err();
    // `invalid_grant`: the port maps it to ReconnectRequired, and only a
    // new authorization helps.
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    assert!(error.to_string().contains("invalid_grant"), "{error}");
    assert_quotes_none(&error, &[code, &wrong, DEFAULT_CLIENT_SECRET]);

    // A wrong verifier does not use the code up.
    let tokens = oauth.exchange_code(code, &started.verifier).await.unwrap();
    let error = oauth
        .exchange_code(code, &started.verifier)
        .await
        .unwrap_err();
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    // RFC 6749 4.1.2: a code used twice revokes what it issued.
    let error = oauth
        .refresh(tokens.refresh_token.as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    emulator.stop().await;
}

#[tokio::test]
async fn revoking_ends_the_grant_and_is_idempotent() {
    let emulator = emulator().await;
    let oauth = client(&emulator);
    let tokens = connect(&oauth, ADA).await;
    let refresh_token = tokens.refresh_token.unwrap();

    oauth.revoke(&refresh_token).await.unwrap();
    // Already revoked: Google answers 400 invalid_token, the goal state.
    oauth.revoke(&refresh_token).await.unwrap();
    oauth.revoke("never-issued").await.unwrap();

    let error = oauth.refresh(&refresh_token).await.unwrap_err();
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    assert_quotes_none(&error, &[&refresh_token, DEFAULT_CLIENT_SECRET]);
    // The grant's access tokens die with it.
    let error = oauth.account(&tokens.access_token).await.unwrap_err();
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    assert_quotes_none(&error, &[&tokens.access_token]);
    emulator.stop().await;
}

#[tokio::test]
async fn access_removed_in_the_google_account_needs_a_reconnect() {
    let emulator = emulator().await;
    let oauth = client(&emulator);
    let tokens = connect(&oauth, ADA).await;
    let refresh_token = tokens.refresh_token.unwrap();
    assert_eq!(
        emulator
            .emulator
            .revoke_user_grant(ADA, Some(DEFAULT_CLIENT_ID)),
        1
    );
    let error = oauth.refresh(&refresh_token).await.unwrap_err();
    assert_eq!(kind(&error), Kind::ReconnectRequired, "{error}");
    assert!(
        error
            .to_string()
            .contains("Token has been expired or revoked"),
        "Google's description is quoted: {error}"
    );

    // Reconnecting restores access.
    let again = connect(&oauth, ADA).await;
    oauth
        .refresh(again.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    emulator.stop().await;
}

#[tokio::test]
async fn client_misconfiguration_is_permanent() {
    let emulator = emulator().await;
    let oauth = client(&emulator);
    let started = start(&oauth, Some(ADA));
    let callback = consent(&started.url).await;

    let wrong_secret = GoogleOAuth::new(OAuthClientConfig {
        client_secret: "not-the-secret".into(),
        ..config(&emulator)
    })
    .unwrap();
    let error = wrong_secret
        .exchange_code(&callback["code"], &started.verifier)
        .await
        .unwrap_err();
    assert_eq!(kind(&error), Kind::Permanent, "{error}");
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert_quotes_none(&error, &["not-the-secret", &callback["code"]]);

    let other_redirect = GoogleOAuth::new(OAuthClientConfig {
        redirect_uri: "http://127.0.0.1:9999/elsewhere".into(),
        ..config(&emulator)
    })
    .unwrap();
    let error = other_redirect
        .exchange_code(&callback["code"], &started.verifier)
        .await
        .unwrap_err();
    assert_eq!(kind(&error), Kind::Permanent, "{error}");
    assert!(
        error.to_string().contains("redirect_uri_mismatch"),
        "{error}"
    );

    // The code is still good for the right client.
    oauth
        .exchange_code(&callback["code"], &started.verifier)
        .await
        .unwrap();
    emulator.stop().await;
}

/// A server answering every connection with `response` (or, with `None`,
/// never answering), and its base URL.
async fn canned(response: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let _ = socket.read(&mut buffer).await;
                match response {
                    Some(response) => {
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    base
}

fn canned_client(base: &str) -> GoogleOAuth {
    GoogleOAuth::new(OAuthClientConfig {
        request_timeout: Duration::from_millis(300),
        ..OAuthClientConfig::emulator(base, "id", "the-secret", REDIRECT)
    })
    .unwrap()
}

#[tokio::test]
async fn server_failures_pass_and_rate_limits_say_when() {
    let unavailable = canned_client(
        &canned(Some(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!",
        ))
        .await,
    );
    let error = unavailable.refresh("1//refresh").await.unwrap_err();
    assert_eq!(kind(&error), Kind::Transient, "{error}");
    assert_quotes_none(&error, &["1//refresh", "the-secret"]);
    assert_eq!(
        kind(&unavailable.revoke("1//refresh").await.unwrap_err()),
        Kind::Transient
    );
    assert_eq!(
        kind(&unavailable.account("ya29.token").await.unwrap_err()),
        Kind::Transient
    );

    let limited = canned_client(
        &canned(Some(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-type: application/json\r\n\
             content-length: 31\r\nconnection: close\r\n\r\n{\"error\":\"rate_limit_exceeded\"}",
        ))
        .await,
    );
    match limited
        .exchange_code("4/code", "verifier")
        .await
        .unwrap_err()
    {
        DomainError::Provider {
            kind, retry_after, ..
        } => {
            assert_eq!(kind, Kind::RateLimited);
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
        }
        other => panic!("unexpected {other:?}"),
    }

    let garbled = canned_client(
        &canned(Some(
            "HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!",
        ))
        .await,
    );
    let error = garbled.refresh("1//refresh").await.unwrap_err();
    assert_eq!(kind(&error), Kind::Permanent, "{error}");

    let silent = canned_client(&canned(None).await);
    let error = silent.refresh("1//refresh").await.unwrap_err();
    assert_eq!(kind(&error), Kind::Transient, "{error}");
    assert!(error.to_string().contains("no answer within"), "{error}");

    // Nothing listening at all.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        canned_client(&base)
    };
    let error = closed.refresh("1//refresh").await.unwrap_err();
    assert_eq!(kind(&error), Kind::Transient, "{error}");
}
