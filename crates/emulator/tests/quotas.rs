//! Quotas per principal and per project, principals, and the
//! service-account attendee refusal, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use calsync_emulator::{Emulator, EmulatorAuth, EmulatorConfig, Fault, RunningEmulator};
use serde_json::{Value, json};

const CAL: &str = "team@example.com";
const CAL_PATH: &str = "team%40example.com";
const SERVICE_ACCOUNT: &str = "svc@project.iam.gserviceaccount.com";

struct Http {
    client: support::Http,
}

impl Http {
    fn new() -> Self {
        Self {
            client: support::Http::new(),
        }
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.client
            .send(method, url, token, &[("Content-Type", content_type)], body)
            .await
    }

    async fn call(
        &self,
        token: &str,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.send(method, url, Some(token), "application/json", body)
            .await
    }

    /// Exchanges a JWT assertion for an access token.
    async fn token(&self, emu: &RunningEmulator, assertion: &str) -> (u16, Value) {
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        self.send(
            "POST",
            &emu.token_url(),
            None,
            "application/x-www-form-urlencoded",
            form.into_bytes(),
        )
        .await
    }

    async fn access_token(&self, emu: &RunningEmulator, assertion: &str) -> String {
        let (status, body) = self.token(emu, assertion).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

fn claims(audience: &str, subject: Option<&str>) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": SERVICE_ACCOUNT,
        "scope": "https://www.googleapis.com/auth/calendar",
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(subject) = subject {
        claims["sub"] = json!(subject);
    }
    claims
}

fn signed_jwt(key: &rsa::RsaPrivateKey, claims: &Value) -> String {
    use rsa::pkcs1v15::SigningKey;
    use rsa::sha2::Sha256;
    use rsa::signature::{SignatureEncoding, Signer};
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A key pair, and a service-account emulator configured by `config`.
async fn service_account_emulator(config: EmulatorConfig) -> (rsa::RsaPrivateKey, RunningEmulator) {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public_key_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let config = EmulatorConfig {
        auth: EmulatorAuth::ServiceAccount { public_key_pem },
        ..config
    };
    let emu = Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    (key, emu)
}

fn events_url(emu: &RunningEmulator) -> String {
    format!("{}/calendar/v3/calendars/{CAL_PATH}/events", emu.base_url)
}

fn event(summary: &str) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": "2026-05-01T10:00:00Z"},
        "end": {"dateTime": "2026-05-01T11:00:00Z"},
    })
}

fn google_error(status: u16, domain: &str, reason: &str, message: &str) -> Value {
    json!({"error": {
        "errors": [{"domain": domain, "reason": reason, "message": message}],
        "code": status,
        "message": message,
    }})
}

fn user_rate_limit_exceeded() -> Value {
    // The errors guide's message for this reason:
    // https://developers.google.com/workspace/calendar/api/guides/errors
    google_error(
        403,
        "usageLimits",
        "userRateLimitExceeded",
        "User Rate Limit Exceeded",
    )
}

async fn stats(http: &Http, emu: &RunningEmulator) -> Value {
    let url = format!("{}/emulator/stats", emu.base_url);
    let (status, body) = http.call("admin", "GET", &url, None).await;
    assert_eq!(status, 200);
    body
}

fn summaries(emu: &RunningEmulator) -> Vec<String> {
    let mut summaries: Vec<String> = emu
        .emulator
        .events(CAL)
        .iter()
        .map(|e| e["summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    summaries.sort();
    summaries
}

#[tokio::test(flavor = "multi_thread")]
async fn each_subject_has_its_own_budget_and_refused_calls_apply_nothing() {
    let (key, emu) = service_account_emulator(EmulatorConfig {
        per_principal_per_minute: Some(3),
        ..EmulatorConfig::default()
    })
    .await;
    let http = Http::new();
    let audience = emu.token_url();
    let alice = http
        .access_token(
            &emu,
            &signed_jwt(&key, &claims(&audience, Some("alice@example.com"))),
        )
        .await;
    let bob = http
        .access_token(
            &emu,
            &signed_jwt(&key, &claims(&audience, Some("bob@example.com"))),
        )
        .await;
    // Token requests spend no quota: alice has all 3 units left.
    let (status, created) = http
        .call(&alice, "POST", &events_url(&emu), Some(event("Alice's")))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let one = format!("{}/{id}", events_url(&emu));
    assert_eq!(http.call(&alice, "GET", &one, None).await.0, 200);
    assert_eq!(
        http.call(&alice, "GET", &events_url(&emu), None).await.0,
        200
    );

    let (status, body) = http
        .call(&alice, "POST", &events_url(&emu), Some(event("Refused")))
        .await;
    assert_eq!((status, body), (403, user_rate_limit_exceeded()));
    assert_eq!(
        summaries(&emu),
        ["Alice's"],
        "the refused insert did nothing"
    );

    // Bob's budget is his own; a patch costs 3 units (events.patch reference).
    assert_eq!(http.call(&bob, "GET", &one, None).await.0, 200);
    let (status, body) = http
        .call(&bob, "PATCH", &one, Some(json!({"summary": "Bob's"})))
        .await;
    assert_eq!((status, body), (403, user_rate_limit_exceeded()));
    assert_eq!(
        summaries(&emu),
        ["Alice's"],
        "the refused patch did nothing"
    );
    let (status, body) = http.call(&bob, "PUT", &one, Some(event("Bob's"))).await;
    assert_eq!(status, 200, "an update costs 1: {body}");
    assert_eq!(summaries(&emu), ["Bob's"]);

    // Faults answer Google's bodies for usage limits too.
    emu.emulator.schedule_fault(
        Some("get"),
        1,
        Fault::status(403).with_reason("quotaExceeded"),
    );
    let (status, body) = http.call(&bob, "GET", &one, None).await;
    assert_eq!(
        (status, body),
        (
            403,
            google_error(
                403,
                "usageLimits",
                "quotaExceeded",
                "Calendar usage limits exceeded."
            )
        )
    );

    let expected_calls = json!({"alice@example.com": 4, "bob@example.com": 4});
    assert_eq!(
        serde_json::to_value(emu.emulator.calls_by_principal()).unwrap(),
        expected_calls
    );
    assert_eq!(emu.emulator.quota_refusals(), 2);
    let stats = stats(&http, &emu).await;
    assert_eq!(stats["callsByPrincipal"], expected_calls, "{stats}");
    assert_eq!(stats["quotaRefusals"], 2);
    assert_eq!(
        emu.emulator.principals_for(CAL),
        BTreeSet::from(["alice@example.com".to_owned(), "bob@example.com".to_owned()])
    );
    assert_eq!(
        emu.emulator.last_writer(CAL).as_deref(),
        Some("bob@example.com")
    );
    assert!(emu.emulator.principals_for("other@example.com").is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_project_limit_spans_principals_and_the_window_slides() {
    let window = Duration::from_millis(400);
    let emu = Emulator::new(EmulatorConfig {
        per_principal_per_minute: Some(3),
        per_project_per_minute: Some(4),
        quota_window: window,
        ..EmulatorConfig::default()
    })
    .unwrap()
    .start("127.0.0.1:0")
    .await
    .unwrap();
    let http = Http::new();
    let list = events_url(&emu);
    // With open auth a bearer token the emulator did not issue is its own principal.
    for _ in 0..3 {
        assert_eq!(http.call("token-a", "GET", &list, None).await.0, 200);
    }
    assert_eq!(http.call("token-b", "GET", &list, None).await.0, 200);
    let rate_limit_exceeded = google_error(
        403,
        "usageLimits",
        "rateLimitExceeded",
        "Rate Limit Exceeded",
    );
    let (status, body) = http
        .call("token-b", "POST", &list, Some(event("Refused")))
        .await;
    assert_eq!((status, body), (403, rate_limit_exceeded.clone()));
    assert!(summaries(&emu).is_empty(), "the refused insert did nothing");
    let (status, body) = http.call("token-a", "GET", &list, None).await;
    assert_eq!(
        (status, body),
        (403, user_rate_limit_exceeded()),
        "the principal's own limit is checked first"
    );

    // Open auth still reads the principal out of an assertion it issues a token for.
    let unsigned = format!(
        "e30.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims(&emu.token_url(), Some("carol@example.com")).to_string())
    );
    let carol = http.access_token(&emu, &unsigned).await;
    let (status, body) = http.call(&carol, "GET", &list, None).await;
    assert_eq!((status, body), (403, rate_limit_exceeded));

    tokio::time::sleep(window + Duration::from_millis(50)).await;
    let (status, body) = http
        .call(&carol, "POST", &list, Some(event("Carol's")))
        .await;
    assert_eq!(status, 200, "the window slid: {body}");
    assert_eq!(
        emu.emulator.last_writer(CAL).as_deref(),
        Some("carol@example.com")
    );

    // Quotas change at run time, in process or through the admin API.
    emu.emulator.set_quotas(None, None);
    for _ in 0..5 {
        assert_eq!(http.call("token-a", "GET", &list, None).await.0, 200);
    }
    let url = format!("{}/emulator/quotas", emu.base_url);
    let (status, _) = http
        .call(
            "admin",
            "PUT",
            &url,
            Some(json!({"perPrincipalPerMinute": 1})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(http.call("token-c", "GET", &list, None).await.0, 200);
    assert_eq!(http.call("token-c", "GET", &list, None).await.0, 403);

    assert_eq!(emu.emulator.quota_refusals(), 4);
    let stats = stats(&http, &emu).await;
    assert_eq!(
        stats["callsByPrincipal"],
        json!({"token-a": 9, "token-b": 2, "token-c": 2, "carol@example.com": 2}),
        "{stats}"
    );
    assert_eq!(stats["quotaRefusals"], 4);
    assert_eq!(
        stats["calls"]["token"], 1,
        "the token endpoint is counted apart"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_accounts_without_a_subject_cannot_invite_attendees() {
    let (key, emu) = service_account_emulator(EmulatorConfig {
        forbid_service_account_attendees: true,
        ..EmulatorConfig::default()
    })
    .await;
    let http = Http::new();
    let audience = emu.token_url();
    let itself = http
        .access_token(&emu, &signed_jwt(&key, &claims(&audience, None)))
        .await;
    let delegated = http
        .access_token(
            &emu,
            &signed_jwt(&key, &claims(&audience, Some("dana@example.com"))),
        )
        .await;
    let forbidden = google_error(
        403,
        "calendar",
        "forbiddenForServiceAccounts",
        "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.",
    );
    let mut invite = event("Invite");
    invite["attendees"] = json!([{"email": "guest@example.com"}]);

    let (status, body) = http
        .call(&itself, "POST", &events_url(&emu), Some(invite.clone()))
        .await;
    assert_eq!((status, body), (403, forbidden.clone()));
    assert!(summaries(&emu).is_empty(), "nothing was inserted");

    let mut no_one = event("Alone");
    no_one["attendees"] = json!([]);
    let (status, created) = http
        .call(&itself, "POST", &events_url(&emu), Some(no_one))
        .await;
    assert_eq!(
        status, 200,
        "an empty attendee list invites no one: {created}"
    );
    let one = format!("{}/{}", events_url(&emu), created["id"].as_str().unwrap());
    let (status, body) = http
        .call(
            &itself,
            "PATCH",
            &one,
            Some(json!({"summary": "Invite", "attendees": [{"email": "guest@example.com"}]})),
        )
        .await;
    assert_eq!((status, body), (403, forbidden));
    assert_eq!(summaries(&emu), ["Alone"], "the refused patch did nothing");

    let (status, body) = http
        .call(&delegated, "POST", &events_url(&emu), Some(invite))
        .await;
    assert_eq!(status, 200, "an impersonated user may invite: {body}");
    assert_eq!(
        emu.emulator.principals_for(CAL),
        BTreeSet::from([SERVICE_ACCOUNT.to_owned(), "dana@example.com".to_owned()])
    );
    assert_eq!(
        emu.emulator.last_writer(CAL).as_deref(),
        Some("dana@example.com")
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_accounts_invite_by_default_and_faults_can_refuse_them() {
    let (key, emu) = service_account_emulator(EmulatorConfig::default()).await;
    let http = Http::new();
    let itself = http
        .access_token(&emu, &signed_jwt(&key, &claims(&emu.token_url(), None)))
        .await;
    let mut invite = event("Invite");
    invite["attendees"] = json!([{"email": "guest@example.com"}]);
    emu.emulator.schedule_fault(
        Some("insert"),
        1,
        Fault::status(403).with_reason("forbiddenForServiceAccounts"),
    );
    let (status, body) = http
        .call(&itself, "POST", &events_url(&emu), Some(invite.clone()))
        .await;
    assert_eq!(
        (status, &body["error"]["errors"][0]["reason"]),
        (403, &json!("forbiddenForServiceAccounts")),
        "{body}"
    );
    let (status, body) = http
        .call(&itself, "POST", &events_url(&emu), Some(invite))
        .await;
    assert_eq!(status, 200, "the refusal is off by default: {body}");
    emu.stop().await;
}
