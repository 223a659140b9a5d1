//! The emulator's own semantics, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use calsync_emulator::{Emulator, EmulatorAuth, EmulatorConfig, Fault, RunningEmulator};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CAL: &str = "team@example.com";
const CAL_PATH: &str = "team%40example.com";

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    token: Option<String>,
}

impl Http {
    fn new(token: Option<&str>) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            token: token.map(str::to_owned),
        }
    }

    async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value, hyper::HeaderMap), String> {
        let mut request = hyper::Request::builder().method(method).uri(url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let request = request
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .unwrap();
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        Ok((status, json, headers))
    }
}

async fn start() -> RunningEmulator {
    Emulator::new(EmulatorConfig::default())
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

fn events_url(emu: &RunningEmulator) -> String {
    format!("{}/calendar/v3/calendars/{CAL_PATH}/events", emu.base_url)
}

fn event(id: Option<&str>) -> Value {
    let mut body = json!({
        "summary": "Meeting",
        "start": {"dateTime": "2026-05-01T10:00:00Z"},
        "end": {"dateTime": "2026-05-01T11:00:00Z"},
        "extendedProperties": {"private": {"entity_type": "deal", "entity_id": "7"}},
    });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_tokens_page_and_expire() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    emu.emulator.seed(CAL, 7).unwrap();
    let mut url = format!("{}?maxResults=3", events_url(&emu));
    let mut pages = Vec::new();
    loop {
        let (status, body, _) = http.call("GET", &url, None, &[]).await.unwrap();
        assert_eq!(status, 200, "{body}");
        pages.push(body.clone());
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(token) => {
                assert!(
                    body.get("nextSyncToken").is_none(),
                    "sync token only on the last page"
                );
                url = format!("{}?maxResults=3&pageToken={token}", events_url(&emu));
            }
            None => break,
        }
    }
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["items"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    let sync_token = pages[2]["nextSyncToken"].as_str().unwrap().to_owned();

    // Nothing changed: same token, no items.
    let (_, body, _) = http
        .call(
            "GET",
            &format!("{}?syncToken={sync_token}", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 0);
    assert_eq!(body["nextSyncToken"], sync_token.as_str());

    let (status, _, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("abcde12345"))),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (_, body, _) = http
        .call(
            "GET",
            &format!("{}?syncToken={sync_token}", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(body["items"][0]["id"], "abcde12345");

    // Parameters Google refuses with a sync token.
    for extra in [
        "timeMin=2026-01-01T00:00:00Z",
        "q=x",
        "orderBy=startTime",
        "showDeleted=false",
    ] {
        let (status, body, _) = http
            .call(
                "GET",
                &format!("{}?syncToken={sync_token}&{extra}", events_url(&emu)),
                None,
                &[],
            )
            .await
            .unwrap();
        assert_eq!(status, 400, "{extra}: {body}");
    }

    emu.emulator.invalidate_sync_tokens();
    let (status, body, _) = http
        .call(
            "GET",
            &format!("{}?syncToken={sync_token}", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 410);
    assert_eq!(body["error"]["errors"][0]["reason"], "fullSyncRequired");
    assert_eq!(body["error"]["code"], 410);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inserts_honour_client_ids_and_deleted_ids_stay_reserved() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (_, first, _) = http
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    let token = first["nextSyncToken"].as_str().unwrap().to_owned();
    let (status, created, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("ours00001"))),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(created["id"], "ours00001");
    assert_eq!(created["extendedProperties"]["private"]["entity_id"], "7");
    assert!(created["etag"].is_string() && created["updated"].is_string());
    let (status, body, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("ours00001"))),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (409, Some("duplicate"))
    );
    let (status, _, _) = http
        .call("POST", &events_url(&emu), Some(event(Some("UPPER"))), &[])
        .await
        .unwrap();
    assert_eq!(status, 400, "ids must be base32hex");

    let url = format!("{}/ours00001", events_url(&emu));
    assert_eq!(http.call("DELETE", &url, None, &[]).await.unwrap().0, 204);
    assert_eq!(
        http.call("DELETE", &url, None, &[]).await.unwrap().0,
        410,
        "already deleted"
    );
    let (_, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!(got["status"], "cancelled");
    assert_eq!(
        http.call(
            "POST",
            &events_url(&emu),
            Some(event(Some("ours00001"))),
            &[]
        )
        .await
        .unwrap()
        .0,
        409
    );

    // Incremental sync shows the deletion as a bare stub; a full listing hides it.
    let (_, changes, _) = http
        .call(
            "GET",
            &format!("{}?syncToken={token}", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    let stub = &changes["items"][0];
    assert_eq!(stub["status"], "cancelled");
    assert!(
        stub.get("summary").is_none() && stub.get("start").is_none(),
        "{stub}"
    );
    let (_, full, _) = http
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    assert!(full["items"].as_array().unwrap().is_empty());
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patches_merge_and_check_if_match() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (_, created, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("patch0001"))),
            &[],
        )
        .await
        .unwrap();
    let url = format!("{}/patch0001", events_url(&emu));
    let etag = created["etag"].as_str().unwrap().to_owned();
    let (status, body, _) = http
        .call(
            "PATCH",
            &url,
            Some(json!({"summary": "x"})),
            &[("If-Match", "\"stale\"")],
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (412, Some("conditionNotMet"))
    );
    let changes = json!({"location": "Room 1", "extendedProperties": {"private": {"note": "n"}}});
    let (status, patched, _) = http
        .call("PATCH", &url, Some(changes), &[("If-Match", &etag)])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(patched["summary"], "Meeting", "unsent fields are kept");
    assert_eq!(patched["location"], "Room 1");
    assert_eq!(
        patched["extendedProperties"]["private"]["entity_id"], "7",
        "private properties merge"
    );
    assert_eq!(patched["extendedProperties"]["private"]["note"], "n");
    assert_ne!(patched["etag"], created["etag"]);
    assert_ne!(patched["updated"], Value::Null);
    let (status, replaced, _) = http.call("PUT", &url, Some(json!({"summary": "new", "start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}})), &[]).await.unwrap();
    assert_eq!(status, 200);
    assert!(replaced.get("location").is_none(), "update replaces");
    emu.stop().await;
}

type Received = mpsc::UnboundedReceiver<(String, String, String, String, String, String, String)>;

/// A local webhook receiver recording every notification's headers.
async fn receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    let (sender, received) = mpsc::unbounded_channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let sender = web::Data::new(sender);
    let server = HttpServer::new(move || {
        App::new().app_data(sender.clone()).route(
            "/hook",
            web::post().to(
                |request: HttpRequest, sender: web::Data<mpsc::UnboundedSender<_>>| async move {
                    let h = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let _ = sender.send((
                        h("X-Goog-Channel-ID"),
                        h("X-Goog-Channel-Token"),
                        h("X-Goog-Resource-State"),
                        h("X-Goog-Message-Number"),
                        h("X-Goog-Resource-ID"),
                        h("X-Goog-Resource-URI"),
                        h("X-Goog-Channel-Expiration"),
                    ));
                    HttpResponse::Ok().finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, received, handle)
}

async fn next(received: &mut Received) -> (String, String, String, String, String, String, String) {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a notification")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_sends_sync_then_numbered_changes_until_stopped() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (hook, mut received, hook_server) = receiver().await;
    let watch = json!({"id": "chan-1", "type": "web_hook", "address": hook, "token": "secret-token", "params": {"ttl": "3600"}});
    let (status, channel, _) = http
        .call(
            "POST",
            &format!("{}/watch", events_url(&emu)),
            Some(watch),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{channel}");
    // Unix milliseconds as a JSON string.
    let expiration = channel["expiration"]
        .as_str()
        .expect("expiration is a string")
        .parse::<i64>()
        .unwrap();
    let expected = chrono::Utc::now().timestamp_millis() + 3_600_000;
    assert!(
        (expiration - expected).abs() < 10_000,
        "{expiration} vs {expected}"
    );
    let resource_id = channel["resourceId"].as_str().unwrap().to_owned();

    let sync = next(&mut received).await;
    assert_eq!(
        (
            sync.0.as_str(),
            sync.1.as_str(),
            sync.2.as_str(),
            sync.3.as_str()
        ),
        ("chan-1", "secret-token", "sync", "1")
    );
    assert_eq!(sync.4, resource_id);
    assert!(
        sync.5.contains("/calendars/team%40example.com/events"),
        "{}",
        sync.5
    );
    // The expiration header is an HTTP date, not milliseconds.
    assert!(
        chrono::DateTime::parse_from_rfc2822(&sync.6).is_ok(),
        "{}",
        sync.6
    );

    http.call("POST", &events_url(&emu), Some(event(None)), &[])
        .await
        .unwrap();
    http.call("POST", &events_url(&emu), Some(event(None)), &[])
        .await
        .unwrap();
    let first = next(&mut received).await;
    let second = next(&mut received).await;
    assert_eq!((first.2.as_str(), first.3.as_str()), ("exists", "2"));
    assert_eq!(
        (second.2.as_str(), second.3.as_str()),
        ("exists", "3"),
        "numbers increase in order"
    );

    let stop = json!({"id": "chan-1", "resourceId": resource_id});
    assert_eq!(
        http.call(
            "POST",
            &format!("{}/calendar/v3/channels/stop", emu.base_url),
            Some(stop.clone()),
            &[]
        )
        .await
        .unwrap()
        .0,
        204
    );
    assert_eq!(
        http.call(
            "POST",
            &format!("{}/calendar/v3/channels/stop", emu.base_url),
            Some(stop),
            &[]
        )
        .await
        .unwrap()
        .0,
        404
    );
    http.call("POST", &events_url(&emu), Some(event(None)), &[])
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), received.recv())
            .await
            .is_err(),
        "nothing after stop"
    );
    hook_server.stop(true).await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_injected_and_counted() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    emu.emulator.schedule_fault(
        Some("list"),
        1,
        Fault {
            retry_after: Some(7),
            ..Fault::status(429)
        },
    );
    emu.emulator.schedule_fault(
        Some("list"),
        1,
        Fault::status(403).with_reason("userRateLimitExceeded"),
    );
    emu.emulator
        .schedule_fault(Some("list"), 1, Fault::dropped());
    let (status, body, headers) = http
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    assert_eq!(
        (
            status,
            headers.get("Retry-After").unwrap().to_str().unwrap()
        ),
        (429, "7")
    );
    assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    let (status, body, _) = http
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["errors"][0]["domain"].as_str()),
        (403, Some("usageLimits"))
    );
    assert!(
        http.call("GET", &events_url(&emu), None, &[])
            .await
            .is_err(),
        "the connection was dropped"
    );
    assert_eq!(
        http.call("GET", &events_url(&emu), None, &[])
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(emu.emulator.calls("list"), 4);

    // The same through the admin API, as benchmarks use it.
    let plan = json!({"schedule": [{"op": "insert", "status": 500, "count": 2}]});
    assert_eq!(
        http.call(
            "PUT",
            &format!("{}/emulator/faults", emu.base_url),
            Some(plan),
            &[]
        )
        .await
        .unwrap()
        .0,
        204
    );
    assert_eq!(
        http.call("POST", &events_url(&emu), Some(event(None)), &[])
            .await
            .unwrap()
            .0,
        500
    );
    assert_eq!(
        http.call("POST", &events_url(&emu), Some(event(None)), &[])
            .await
            .unwrap()
            .0,
        500
    );
    assert_eq!(
        http.call("POST", &events_url(&emu), Some(event(None)), &[])
            .await
            .unwrap()
            .0,
        200
    );
    let (_, stats, _) = http
        .call(
            "GET",
            &format!("{}/emulator/stats", emu.base_url),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(stats["calls"]["insert"], 3);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_valid_bearer_are_refused() {
    let emu = start().await;
    let (status, body, _) = Http::new(None)
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].as_str()),
        (401, Some("authError"))
    );
    emu.stop().await;
}

fn signed_jwt(key: &rsa::RsaPrivateKey, audience: &str) -> String {
    use rsa::pkcs1v15::SigningKey;
    use rsa::sha2::Sha256;
    use rsa::signature::{SignatureEncoding, Signer};
    let now = chrono::Utc::now().timestamp();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "svc@project.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/calendar", "aud": audience, "iat": now, "exp": now + 3600})
            .to_string(),
    );
    let input = format!("{header}.{claims}");
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_checks_service_account_signatures() {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public_key_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let config = EmulatorConfig {
        auth: EmulatorAuth::ServiceAccount { public_key_pem },
        ..EmulatorConfig::default()
    };
    let emu = Emulator::new(config)
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let exchange = |jwt: String| {
        let request = hyper::Request::post(emu.token_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            ))))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let body: Value =
                serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            (status, body)
        }
    };
    let (status, body) = exchange(signed_jwt(&other, &emu.token_url())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "OAuth's error shape"
    );
    let (status, _) = exchange(signed_jwt(&key, "https://oauth2.googleapis.com/token")).await;
    assert_eq!(status, 400, "wrong audience");
    let (status, body) = exchange(signed_jwt(&key, &emu.token_url())).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(
        Http::new(Some(token))
            .call("GET", &events_url(&emu), None, &[])
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        Http::new(Some("made-up"))
            .call("GET", &events_url(&emu), None, &[])
            .await
            .unwrap()
            .0,
        401
    );
    emu.stop().await;
}
