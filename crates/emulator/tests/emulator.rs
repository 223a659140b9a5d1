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

/// An event changed while a listing pages leaves the listing (it is in the
/// next sync instead) without shifting what the later pages hold: every
/// other event is listed once.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_between_pages_skips_no_other_event() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    emu.emulator.seed(CAL, 6).unwrap();
    let page_url = |token: Option<&str>| match token {
        Some(token) => format!("{}?maxResults=2&pageToken={token}", events_url(&emu)),
        None => format!("{}?maxResults=2", events_url(&emu)),
    };
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first, _) = http.call("GET", &page_url(None), None, &[]).await.unwrap();
    let mut listed = ids(&first);
    assert_eq!(listed.len(), 2);
    // The first event listed changes: it moves past the listing's snapshot.
    emu.emulator
        .change(
            CAL,
            calsync_emulator::Change::Patch {
                id: listed[0].clone(),
                fields: json!({"summary": "changed meanwhile"})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
        )
        .unwrap();
    let mut token = first["nextPageToken"].as_str().map(str::to_owned);
    while let Some(current) = token {
        let (status, page, _) = http
            .call("GET", &page_url(Some(&current)), None, &[])
            .await
            .unwrap();
        assert_eq!(status, 200, "{page}");
        listed.extend(ids(&page));
        token = page["nextPageToken"].as_str().map(str::to_owned);
    }
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        6,
        "every seeded event listed once: {listed:?}"
    );
    assert_eq!(listed.len(), 6, "{listed:?}");
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
    assert_eq!((first.2.as_str(), second.2.as_str()), ("exists", "exists"));
    // Google's numbers increase but are not sequential: only the order holds.
    let (first, second) = (
        first.3.parse::<u64>().unwrap(),
        second.3.parse::<u64>().unwrap(),
    );
    assert!(1 < first && first < second, "{first} then {second}");

    let stop = json!({"id": "chan-1", "resourceId": resource_id});
    // Only the principal that watched may stop it; another is told there is
    // no such channel.
    let (status, refusal, _) = Http::new(Some("someone-else"))
        .call(
            "POST",
            &format!("{}/calendar/v3/channels/stop", emu.base_url),
            Some(stop.clone()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (status, refusal["error"]["errors"][0]["reason"].as_str()),
        (404, Some("notFound")),
        "{refusal}"
    );
    assert_eq!(
        refusal["error"]["message"].as_str(),
        Some("Channel 'chan-1' not found for project.")
    );
    assert_eq!(emu.emulator.channel_count(), 1, "still live");
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

fn reason(body: &Value) -> Option<&str> {
    body["error"]["errors"][0]["reason"].as_str()
}

async fn watch_with(http: &Http, emu: &RunningEmulator, id: &str, address: &str) -> (u16, Value) {
    let watch = json!({"id": id, "type": "web_hook", "address": address});
    let (status, body, _) = http
        .call(
            "POST",
            &format!("{}/watch", events_url(emu)),
            Some(watch),
            &[],
        )
        .await
        .unwrap();
    (status, body)
}

async fn stats(http: &Http, emu: &RunningEmulator) -> Value {
    let (status, body, _) = http
        .call(
            "GET",
            &format!("{}/emulator/stats", emu.base_url),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_events_answer_410_until_a_write_restores_their_status() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (hook, mut received, hook_server) = receiver().await;
    assert_eq!(watch_with(&http, &emu, "restore-1", &hook).await.0, 200);
    assert_eq!(next(&mut received).await.2, "sync");
    http.call(
        "POST",
        &events_url(&emu),
        Some(event(Some("restore001"))),
        &[],
    )
    .await
    .unwrap();
    let url = format!("{}/restore001", events_url(&emu));
    assert_eq!(http.call("DELETE", &url, None, &[]).await.unwrap().0, 204);
    let (_, first, _) = http
        .call("GET", &events_url(&emu), None, &[])
        .await
        .unwrap();
    let token = first["nextSyncToken"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(next(&mut received).await.2, "exists");
    }

    // Without a status that brings it back, a deleted event refuses writes.
    let (status, body, _) = http
        .call("PATCH", &url, Some(json!({"summary": "x"})), &[])
        .await
        .unwrap();
    assert_eq!((status, reason(&body)), (410, Some("deleted")), "{body}");
    let (status, body, _) = http
        .call("PUT", &url, Some(event(None)), &[])
        .await
        .unwrap();
    assert_eq!((status, reason(&body)), (410, Some("deleted")), "{body}");
    let mut cancelled_update = event(None);
    cancelled_update["status"] = json!("cancelled");
    let (status, _, _) = http
        .call("PUT", &url, Some(cancelled_update), &[])
        .await
        .unwrap();
    assert_eq!(status, 410, "cancelled is not a restoring status");
    let (status, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!((status, got["status"].as_str()), (200, Some("cancelled")));

    // A patch setting status restores it: merged, re-stamped, notified.
    let (status, restored, _) = http
        .call(
            "PATCH",
            &url,
            Some(json!({"status": "confirmed", "summary": "Back"})),
            &[("If-Match", got["etag"].as_str().unwrap())],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["status"], "confirmed");
    assert_eq!(restored["summary"], "Back");
    assert_eq!(
        restored["extendedProperties"]["private"]["entity_id"], "7",
        "a restoring patch merges like any patch"
    );
    assert_ne!(restored["etag"], got["etag"]);
    assert_ne!(restored["updated"], got["updated"]);
    assert_eq!(next(&mut received).await.2, "exists");
    let (_, changes, _) = http
        .call(
            "GET",
            &format!("{}?syncToken={token}", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(changes["items"][0]["status"], "confirmed", "{changes}");
    assert_eq!(changes["items"][0]["summary"], "Back");

    // An update with status tentative restores too, replacing the body.
    assert_eq!(http.call("DELETE", &url, None, &[]).await.unwrap().0, 204);
    let tentative = json!({"summary": "Again", "status": "tentative", "start": {"date": "2026-05-01"}, "end": {"date": "2026-05-02"}});
    let (status, replaced, _) = http.call("PUT", &url, Some(tentative), &[]).await.unwrap();
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        (replaced["status"].as_str(), replaced["summary"].as_str()),
        (Some("tentative"), Some("Again"))
    );
    assert!(
        replaced.get("extendedProperties").is_none(),
        "update replaces"
    );
    hook_server.stop(true).await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_check_if_match() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (_, created, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("delmatch01"))),
            &[],
        )
        .await
        .unwrap();
    let url = format!("{}/delmatch01", events_url(&emu));
    let (status, body, _) = http
        .call("DELETE", &url, None, &[("If-Match", "\"stale\"")])
        .await
        .unwrap();
    assert_eq!((status, reason(&body)), (412, Some("conditionNotMet")));
    let (_, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!(
        got["status"], "confirmed",
        "a refused delete changes nothing"
    );
    let etag = created["etag"].as_str().unwrap();
    assert_eq!(
        http.call("DELETE", &url, None, &[("If-Match", etag)])
            .await
            .unwrap()
            .0,
        204
    );
    let (status, body, _) = http
        .call("DELETE", &url, None, &[("If-Match", "*")])
        .await
        .unwrap();
    assert_eq!(
        (status, reason(&body)),
        (410, Some("deleted")),
        "already deleted"
    );

    http.call(
        "POST",
        &events_url(&emu),
        Some(event(Some("delmatch02"))),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        http.call(
            "DELETE",
            &format!("{}/delmatch02", events_url(&emu)),
            None,
            &[("If-Match", "*")]
        )
        .await
        .unwrap()
        .0,
        204,
        "* matches any etag"
    );
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_calendars_answer_not_found_to_every_call() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let calendar_url = format!("{}/calendar/v3/calendars/{CAL_PATH}", emu.base_url);
    let (status, calendar, _) = http.call("GET", &calendar_url, None, &[]).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(calendar["kind"], "calendar#calendar");
    assert_eq!(calendar["id"], CAL);
    assert_eq!(calendar["summary"], CAL);
    assert_eq!(calendar["timeZone"], "UTC");
    assert!(calendar["etag"].is_string());
    http.call(
        "POST",
        &events_url(&emu),
        Some(event(Some("revoked01"))),
        &[],
    )
    .await
    .unwrap();

    let access = format!("{}/emulator/calendars/{CAL_PATH}/access", emu.base_url);
    let (status, _, _) = http
        .call("POST", &access, Some(json!({"revoked": true})), &[])
        .await
        .unwrap();
    assert_eq!(status, 204);
    let event_url = format!("{}/revoked01", events_url(&emu));
    let watch =
        json!({"id": "revoked-chan", "type": "web_hook", "address": "http://127.0.0.1:9/hook"});
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", events_url(&emu), None),
        ("POST", events_url(&emu), Some(event(Some("revoked02")))),
        ("GET", event_url.clone(), None),
        ("PATCH", event_url.clone(), Some(json!({"summary": "x"}))),
        ("PUT", event_url.clone(), Some(event(None))),
        ("DELETE", event_url.clone(), None),
        ("POST", format!("{}/watch", events_url(&emu)), Some(watch)),
        ("GET", calendar_url.clone(), None),
    ];
    for (method, url, body) in calls {
        let (status, answer, _) = http.call(method, &url, body, &[]).await.unwrap();
        assert_eq!(
            (status, reason(&answer), answer["error"]["message"].as_str()),
            (404, Some("notFound"), Some("Not Found")),
            "{method} {url}"
        );
    }
    // Other calendars are unaffected, and nothing was written meanwhile.
    let other = format!("{}/calendar/v3/calendars/other%40example.com", emu.base_url);
    assert_eq!(http.call("GET", &other, None, &[]).await.unwrap().0, 200);
    let ground_truth = emu.emulator.events(CAL);
    assert_eq!(ground_truth.len(), 1);
    assert_eq!(ground_truth[0]["status"], "confirmed");

    emu.emulator.set_calendar_revoked(CAL, false);
    let (status, got, _) = http.call("GET", &event_url, None, &[]).await.unwrap();
    assert_eq!((status, got["summary"].as_str()), (200, Some("Meeting")));
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_refuses_plain_http_except_to_loopback() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    for (n, address) in [
        "http://example.com/hook",
        "http://10.0.0.1/hook",
        "http://127.0.0.1.example.com/hook",
        "http://127.0.0.1@example.com/hook",
        "http://localhost.example.com/hook",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = watch_with(&http, &emu, &format!("plain-{n}"), address).await;
        assert_eq!(
            (status, reason(&body)),
            (400, Some("push.webhookUrlNotHttps")),
            "{address}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("WebHook callback must be HTTPS"),
            "{body}"
        );
    }
    for (n, address) in [
        "http://127.0.0.1:9/hook",
        "http://127.8.0.1:9/hook",
        "http://localhost:9/hook",
        "http://LOCALHOST/hook",
        "http://[::1]:9/hook",
        "https://example.com/hook",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = watch_with(&http, &emu, &format!("allowed-{n}"), address).await;
        assert_eq!(status, 200, "{address}: {body}");
    }
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_then_drop_applies_the_write_and_loses_the_answer() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (hook, mut received, hook_server) = receiver().await;
    assert_eq!(watch_with(&http, &emu, "atd-1", &hook).await.0, 200);
    assert_eq!(next(&mut received).await.2, "sync");
    let url = format!("{}/applied01", events_url(&emu));

    emu.emulator
        .schedule_fault(Some("insert"), 1, Fault::apply_then_drop());
    assert!(
        http.call(
            "POST",
            &events_url(&emu),
            Some(event(Some("applied01"))),
            &[]
        )
        .await
        .is_err(),
        "the insert's answer was dropped"
    );
    assert_eq!(next(&mut received).await.2, "exists", "and it was notified");
    let (status, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!((status, got["status"].as_str()), (200, Some("confirmed")));
    // The client's retry meets the applied insert.
    let (status, body, _) = http
        .call(
            "POST",
            &events_url(&emu),
            Some(event(Some("applied01"))),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((status, reason(&body)), (409, Some("duplicate")));

    emu.emulator
        .schedule_fault(Some("patch"), 1, Fault::apply_then_drop());
    assert!(
        http.call("PATCH", &url, Some(json!({"summary": "Patched"})), &[])
            .await
            .is_err()
    );
    assert_eq!(next(&mut received).await.2, "exists");
    let (_, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!(got["summary"], "Patched");

    emu.emulator
        .schedule_fault(Some("update"), 1, Fault::apply_then_drop());
    let mut replacement = event(None);
    replacement["summary"] = json!("Updated");
    assert!(
        http.call("PUT", &url, Some(replacement), &[])
            .await
            .is_err()
    );
    assert_eq!(next(&mut received).await.2, "exists");
    let (_, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!(got["summary"], "Updated");

    // From a random plan, through the admin API.
    let plan = json!({"probability": 1.0, "random": [{"applyThenDrop": true}]});
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
    assert!(http.call("DELETE", &url, None, &[]).await.is_err());
    assert!(
        http.call("GET", &url, None, &[]).await.is_err(),
        "a read is only dropped"
    );
    emu.emulator.set_faults(Default::default());
    assert_eq!(next(&mut received).await.2, "exists");
    let (_, got, _) = http.call("GET", &url, None, &[]).await.unwrap();
    assert_eq!(got["status"], "cancelled", "the delete was applied");

    let fired = emu.emulator.faults_fired();
    assert_eq!(fired.get("applyThenDrop"), Some(&4), "{fired:?}");
    assert_eq!(fired.get("drop"), Some(&1), "{fired:?}");
    hook_server.stop(true).await;
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_fired_faults_latency_and_invalidations() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    for fault in [
        Fault::status(503),
        Fault::status(429),
        Fault::status(403),
        Fault::status(403).with_reason("userRateLimitExceeded"),
        Fault::status(503),
        Fault::dropped(),
    ] {
        emu.emulator.schedule_fault(Some("list"), 1, fault);
    }
    for _ in 0..6 {
        let _ = http.call("GET", &events_url(&emu), None, &[]).await;
    }
    // A fault taken by a call that fails authentication never fired.
    emu.emulator
        .schedule_fault(Some("get"), 1, Fault::status(500));
    let (status, _, _) = Http::new(None)
        .call(
            "GET",
            &format!("{}/abcde12345", events_url(&emu)),
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 401);

    let plan = json!({"latencyMs": 5});
    http.call(
        "PUT",
        &format!("{}/emulator/faults", emu.base_url),
        Some(plan),
        &[],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        assert_eq!(
            http.call("GET", &events_url(&emu), None, &[])
                .await
                .unwrap()
                .0,
            200
        );
    }
    emu.emulator.set_faults(Default::default());
    http.call(
        "POST",
        &format!("{}/emulator/sync-tokens/invalidate", emu.base_url),
        None,
        &[],
    )
    .await
    .unwrap();
    emu.emulator.invalidate_sync_tokens();

    let stats = stats(&http, &emu).await;
    assert_eq!(
        stats["faultsFired"],
        json!({
            "503:backendError": 2,
            "429:rateLimitExceeded": 1,
            "403:rateLimitExceeded": 1,
            "403:userRateLimitExceeded": 1,
            "drop": 1,
        }),
        "{stats}"
    );
    assert_eq!(stats["latencyApplied"], 2);
    assert_eq!(stats["syncTokenInvalidations"], 2);
    let in_process = emu.emulator.faults_fired();
    assert_eq!(
        serde_json::to_value(&in_process).unwrap(),
        stats["faultsFired"]
    );
    assert_eq!(emu.emulator.latency_applied(), 2);
    assert_eq!(emu.emulator.sync_token_invalidations(), 2);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn message_numbers_increase_by_uneven_steps() {
    let emu = start().await;
    let http = Http::new(Some("any"));
    let (hook, mut received, hook_server) = receiver().await;
    assert_eq!(watch_with(&http, &emu, "numbers-1", &hook).await.0, 200);
    let sync = next(&mut received).await;
    assert_eq!((sync.2.as_str(), sync.3.as_str()), ("sync", "1"));
    for _ in 0..30 {
        http.call("POST", &events_url(&emu), Some(event(None)), &[])
            .await
            .unwrap();
    }
    let mut previous = 1;
    let mut steps = Vec::new();
    for _ in 0..30 {
        let number = next(&mut received).await.3.parse::<u64>().unwrap();
        steps.push(number - previous);
        previous = number;
    }
    assert!(steps.iter().all(|s| (1..=3).contains(s)), "{steps:?}");
    // 30 steps all of 1 would happen once in 3^30 runs.
    assert!(steps.iter().any(|s| *s > 1), "{steps:?}");
    hook_server.stop(true).await;
    emu.stop().await;
}

#[tokio::test]
async fn admin_changes_edit_delete_and_insert_only_live_events() {
    let emu = start().await;
    let http = Http::new(Some("t"));
    let admin = format!("{}/emulator/calendars/{CAL_PATH}", emu.base_url);
    let (status, _, _) = http
        .call(
            "POST",
            &format!("{admin}/seed"),
            Some(json!({"count": 20})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Many more changes than events: deletions use up the seed, so a
    // change to an id already deleted would show as a second deletion.
    let (status, body, _) = http
        .call(
            "POST",
            &format!("{admin}/changes"),
            Some(json!({"count": 400})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let changed = body["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 400);
    let mut deleted = std::collections::HashSet::new();
    for event in changed {
        let id = event["id"].as_str().unwrap().to_owned();
        if event["status"] == "cancelled" {
            assert!(deleted.insert(id.clone()), "{id} deleted twice");
        } else {
            assert!(!deleted.contains(&id), "{id} changed after its deletion");
        }
    }
    assert!(!deleted.is_empty());
    emu.stop().await;
}
