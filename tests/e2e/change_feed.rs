//! The change feed and the application's webhooks end to end: writes
//! through the API, edits, answers and deletions in Google, a conflict, a
//! dead letter and a reconnect spell each appear in the feed once, in
//! order, with the right type; a subscriber receives each, signed (checked
//! here with an HMAC of the test's own); a receiver that was down gets
//! everything afterwards, with the same `webhook-id` on every retry.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use calsync_emulator::{Change, Fault};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::events_api::Api;
use crate::helpers::eventually;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A bare HTTP/1.1 receiver on loopback, answering `status` (set by the test).
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(status));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (status.clone(), got.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let Some((headers, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let header = |name: &str| {
                        headers
                            .lines()
                            .find_map(|line| {
                                let (key, value) = line.split_once(':')?;
                                key.trim()
                                    .eq_ignore_ascii_case(name)
                                    .then(|| value.trim().to_owned())
                            })
                            .unwrap_or_default()
                    };
                    let status = answer.load(Ordering::SeqCst);
                    log.lock().unwrap().push(Delivery {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                        answered: status,
                    });
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { url, status, got }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// The ids answered 2xx.
    fn delivered(&self) -> Vec<String> {
        self.deliveries()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .map(|d| d.id)
            .collect()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let headers = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = headers
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some((headers, buffer[head_end..head_end + length].to_vec()))
}

/// The Standard Webhooks check, written here rather than borrowed from
/// calsync: HMAC-SHA256 keyed with the secret's base64-decoded bytes over
/// `{id}.{timestamp}.{body}`, one of the space-separated `v1,` signatures.
fn signed_by(secret: &str, delivery: &Delivery) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", delivery.id, delivery.timestamp).as_bytes());
    mac.update(&delivery.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    delivery.signature.split(' ').any(|s| s == expected)
}

impl Api {
    /// Every change in the feed, from the start.
    async fn feed(&self) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let path = if after.is_empty() {
                "/calendar/changes?limit=1000".to_owned()
            } else {
                format!("/calendar/changes?limit=1000&after={after}")
            };
            let (status, page) = self.call("GET", &path, None).await;
            assert_eq!(status, 200, "{page}");
            let got = page["items"].as_array().unwrap().clone();
            after = page["nextCursor"].as_str().unwrap().to_owned();
            if got.is_empty() {
                return items;
            }
            items.extend(got);
        }
    }

    /// Cursors of the feed after `start` (a subscription's starting cursor).
    async fn cursors_after(&self, start: &str) -> Vec<String> {
        let cursors: Vec<String> = self
            .feed()
            .await
            .iter()
            .map(|c| c["cursor"].as_str().unwrap().to_owned())
            .collect();
        match cursors.iter().position(|c| c == start) {
            Some(at) => cursors[at + 1..].to_vec(),
            None => cursors,
        }
    }

    async fn subscribe(&self, url: &str) -> (String, String, String) {
        let (status, created) = self
            .call(
                "POST",
                "/calendar/webhooks",
                Some(json!({"url": url, "description": "e2e"})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{created}");
        (
            created["id"].as_str().unwrap().to_owned(),
            secret,
            created["cursor"].as_str().unwrap().to_owned(),
        )
    }

    async fn sync_now(&self) {
        let (status, body) = self.call("POST", "/calendar/sync", Some(json!({}))).await;
        assert!(status < 500, "{status} {body}");
    }

    async fn google_edit(&self, google_id: &str, fields: Value) {
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
        self.sync_now().await;
    }

    /// Waits until the feed holds a change of `kind` for `event_id` (or,
    /// with `None`, for the calendar) after `from` changes.
    async fn await_change(&self, kind: &str, event_id: Option<&str>) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let feed = self.feed().await;
            let found = feed
                .iter()
                .find(|c| c["type"] == kind && event_id.is_none_or(|id| c["eventId"] == id));
            if let Some(found) = found {
                return found.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kind} for {event_id:?} in {feed:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn event_body(entity_id: &str) -> Value {
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    json!({
        "entityType": "deal", "entityId": entity_id, "summary": "Kick-off",
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
        "attendees": [{"email": "guest@example.com"}],
    })
}

async fn every_change_is_in_the_feed_once_in_order_and_delivered_signed(api: Api) {
    let receiver = Receiver::start(204).await;
    let (_, secret, start) = api.subscribe(&receiver.url).await;

    // A create through the API: created (api), then the push settling (calsync).
    let (status, created) = api
        .call("POST", "/calendar/events?wait=true", Some(event_body("42")))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let google_id = created["googleEventId"].as_str().unwrap().to_owned();
    let made = api.await_change("event.created", Some(&id)).await;
    assert_eq!(
        (made["origin"].as_str(), made["entityId"].as_str()),
        (Some("api"), Some("42"))
    );
    assert_eq!(made["event"]["summary"], "Kick-off", "{made}");

    // An edit in Google.
    api.google_edit(&google_id, json!({"summary": "Moved in Google"}))
        .await;
    let edited = eventually(Duration::from_secs(20), || async {
        api.feed().await.iter().any(|c| {
            c["type"] == "event.updated"
                && c["origin"] == "google"
                && c["eventId"] == id.as_str()
                && c["changedFields"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("summary"))
        })
    })
    .await;
    assert!(edited, "{:#?}", api.feed().await);

    // An answer in Google: attendee.responded naming whose.
    api.google_edit(
        &google_id,
        json!({"attendees": [{"email": "guest@example.com", "responseStatus": "declined"}]}),
    )
    .await;
    let answered = api.await_change("attendee.responded", Some(&id)).await;
    assert_eq!(
        answered["respondents"][0]["email"], "guest@example.com",
        "{answered}"
    );
    assert_eq!(
        answered["respondents"][0]["responseStatus"], "declined",
        "{answered}"
    );
    assert_eq!(
        answered["event"]["attendees"][0]["responseStatus"],
        "declined"
    );

    // A conflict: Google renamed it, then the API renames it too.
    api.emulator()
        .change(
            "primary",
            Change::Patch {
                id: google_id.clone(),
                fields: crate::helpers::object(json!({"summary": "Renamed in Google"})),
            },
        )
        .unwrap();
    let (status, answer) = api
        .call(
            "PATCH",
            &format!("/calendar/events/{id}?wait=true"),
            Some(json!({"summary": "Renamed here"})),
        )
        .await;
    assert_eq!(status, 412, "{answer}");
    let conflict = api.await_change("event.conflict", Some(&id)).await;
    assert_eq!(
        conflict["event"]["summary"], "Renamed in Google",
        "{conflict}"
    );
    assert!(conflict["error"].as_str().is_some(), "{conflict}");

    // A dead letter: Google refuses an insert for good.
    api.emulator()
        .schedule_fault(Some("insert"), 1, Fault::status(400).with_reason("invalid"));
    let (status, failed) = api
        .call("POST", "/calendar/events?wait=true", Some(event_body("43")))
        .await;
    assert_eq!(status, 502, "{failed}");
    let failed_id = failed["event"]["id"].as_str().unwrap().to_owned();
    let dead = api
        .await_change("event.push_failed", Some(&failed_id))
        .await;
    assert_eq!(dead["event"]["pushState"], "failed", "{dead}");

    // A deletion in Google.
    api.emulator()
        .change(
            "primary",
            Change::Delete {
                id: google_id.clone(),
            },
        )
        .unwrap();
    api.sync_now().await;
    let gone = api.await_change("event.cancelled", Some(&id)).await;
    assert_eq!(gone["origin"], "google", "{gone}");

    // A reconnect spell: access revoked, then given back and watched anew.
    api.emulator().set_calendar_revoked("primary", true);
    api.sync_now().await;
    let lost = api.await_change("calendar.reconnect_required", None).await;
    assert_eq!(lost["calendarId"], "primary", "{lost}");
    api.emulator().set_calendar_revoked("primary", false);
    let (status, body) = api
        .call("POST", "/calendar/channels", Some(json!({})))
        .await;
    assert!(status < 300, "{status} {body}");
    api.await_change("calendar.recovered", None).await;

    // Once each, in order.
    let feed = api.feed().await;
    let cursors = api.cursors_after(&start).await;
    let position = |kind: &str, event: Option<&str>| -> Vec<usize> {
        feed.iter()
            .enumerate()
            .filter(|(_, c)| c["type"] == kind && event.is_none_or(|e| c["eventId"] == e))
            .map(|(at, _)| at)
            .collect()
    };
    for (kind, event) in [
        ("event.created", Some(id.as_str())),
        ("attendee.responded", Some(id.as_str())),
        ("event.conflict", Some(id.as_str())),
        ("event.created", Some(failed_id.as_str())),
        ("event.push_failed", Some(failed_id.as_str())),
        ("event.cancelled", Some(id.as_str())),
        ("calendar.reconnect_required", None),
        ("calendar.recovered", None),
    ] {
        assert_eq!(position(kind, event).len(), 1, "{kind} once: {feed:#?}");
    }
    let order = [
        position("event.created", Some(&id))[0],
        position("attendee.responded", Some(&id))[0],
        position("event.conflict", Some(&id))[0],
        position("event.push_failed", Some(&failed_id))[0],
        position("event.cancelled", Some(&id))[0],
        position("calendar.reconnect_required", None)[0],
        position("calendar.recovered", None)[0],
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?} {feed:#?}");

    // The subscriber got every change, each signed, its body the change.
    let all_delivered = eventually(Duration::from_secs(20), || async {
        let delivered = receiver.delivered();
        cursors.iter().all(|c| delivered.iter().any(|d| d == c))
    })
    .await;
    assert!(
        all_delivered,
        "delivered {:?} of {cursors:?}",
        receiver.delivered()
    );
    for delivery in receiver.deliveries() {
        assert!(
            signed_by(&secret, &delivery),
            "bad signature on {}",
            delivery.id
        );
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        let listed = feed.iter().find(|c| c["cursor"] == delivery.id.as_str());
        assert_eq!(Some(&body), listed, "the delivery is the change as listed");
    }
    // In cursor order.
    assert_eq!(receiver.delivered(), cursors, "delivered in feed order");
    api.stop().await;
}

async fn a_receiver_that_was_down_gets_everything_with_the_same_ids(api: Api) {
    let receiver = Receiver::start(503).await;
    let (webhook, secret, start) = api.subscribe(&receiver.url).await;
    for entity in ["d1", "d2", "d3"] {
        let (status, body) = api
            .call("POST", "/calendar/events", Some(event_body(entity)))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    // Refused, then retried (the first retry within 10 s).
    let retried = eventually(Duration::from_secs(15), || async {
        receiver.deliveries().len() >= 2
    })
    .await;
    assert!(retried, "{:?}", receiver.deliveries());
    let (_, attempts) = api
        .call(
            "GET",
            &format!("/calendar/webhooks/{webhook}/attempts"),
            None,
        )
        .await;
    assert!(
        !attempts["items"].as_array().unwrap().is_empty(),
        "{attempts}"
    );
    receiver.status.store(200, Ordering::SeqCst);
    // Three creates and their three pushes settling, all delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let cursors = loop {
        let cursors = api.cursors_after(&start).await;
        let delivered = receiver.delivered();
        if cursors.len() >= 6 && cursors.iter().all(|c| delivered.contains(c)) {
            break cursors;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{cursors:?} {:?}",
            receiver.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deliveries = receiver.deliveries();
    // The refused attempts were all of the first change, resent as itself.
    let refused: Vec<&Delivery> = deliveries.iter().filter(|d| d.answered == 503).collect();
    assert!(refused.len() >= 2, "{refused:?}");
    assert!(refused.iter().all(|d| d.id == cursors[0]), "{refused:?}");
    assert!(deliveries.iter().all(|d| signed_by(&secret, d)));
    assert_eq!(
        receiver.delivered(),
        cursors,
        "in order, once each once accepted"
    );
    let (_, health) = api.call("GET", "/calendar/webhooks", None).await;
    assert_eq!(health["items"][0]["failures"], 0, "{health}");

    // A replay sends one change again, signed, under its own id, without
    // moving the subscription.
    let (status, replayed) = api
        .call(
            "POST",
            &format!("/calendar/webhooks/{webhook}/replay"),
            Some(json!({"cursor": cursors[1]})),
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["outcome"], "delivered", "{replayed}");
    let again: Vec<Delivery> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.id == cursors[1] && d.answered == 200)
        .collect();
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[0].body, again[1].body, "the same change, as it was");
    assert!(signed_by(&secret, &again[1]));
    let (_, after) = api.call("GET", "/calendar/webhooks", None).await;
    assert_eq!(
        after["items"][0]["cursor"], health["items"][0]["cursor"],
        "{after}"
    );
    for (cursor, expected) in [("c0", 404), ("czzzzzz", 404), ("nonsense", 400)] {
        let (status, body) = api
            .call(
                "POST",
                &format!("/calendar/webhooks/{webhook}/replay"),
                Some(json!({"cursor": cursor})),
            )
            .await;
        assert_eq!(status, expected, "{cursor}: {body}");
    }
    api.stop().await;
}

async fn a_long_poll_answers_when_a_change_arrives(api: Api) {
    let (_, latest) = api.call("GET", "/calendar/changes/latest", None).await;
    let cursor = latest["cursor"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let path = format!("/calendar/changes?after={cursor}&waitSecs=10");
    let poll = api.call("GET", &path, None);
    let write = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        api.call("POST", "/calendar/events", Some(event_body("lp")))
            .await
    };
    let ((status, page), (created, _)) = tokio::join!(poll, write);
    assert_eq!((status, created), (200, 202), "{page}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "answered before the change: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "answered late: {waited:?}");
    assert_eq!(page["items"][0]["type"], "event.created", "{page}");
    assert_eq!(page["items"][0]["entityId"], "lp", "{page}");
    let (status, bad) = api
        .call("GET", "/calendar/changes?after=nonsense", None)
        .await;
    assert_eq!(status, 400, "{bad}");
    api.stop().await;
}

both_backends!(
    every_change_is_in_the_feed_once_in_order_and_delivered_signed,
    a_receiver_that_was_down_gets_everything_with_the_same_ids,
    a_long_poll_answers_when_a_change_arrives,
);
