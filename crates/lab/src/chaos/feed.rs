//! The battery's side of the change feed: the webhook subscription made
//! at the start (pointing at the flaky [`Receiver`]), reading the whole
//! feed back, and waiting at the end for delivery to catch up.

use std::time::{Duration, Instant};

use calsync_domain::feed::Cursor;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::actors::Shared;
use super::receiver::{Receiver, Verdict};

/// How long delivery may take to catch up once the mirror converged: a
/// replica killed mid-delivery holds its subscription's lease for 25 s
/// (`calsync_domain::services::webhooks::DELIVERY_LEASE`), and the
/// receiver's last misbehaviour can leave a 30 s backoff (+20% jitter);
/// then the backlog goes out (some 100 a second from a debug build).
pub const CATCH_UP: Duration = Duration::from_secs(90);
/// The wait is stretched to a retry calsync has scheduled later than
/// that, by at most this much (a longer backoff is a finding).
const CATCH_UP_MAX: Duration = Duration::from_secs(240);
/// Changes per feed read (the API's maximum).
const PAGE: u32 = 1000;

/// The subscription the battery made.
pub struct Subscription {
    pub id: String,
    /// Its signing secret (`whsec_...`).
    pub secret: String,
    /// The feed's position when it was made: it receives what comes after.
    pub start: Cursor,
}

/// Subscribes the receiver to every change (the server must accept its
/// plain-http loopback URL: it runs in development).
pub async fn subscribe(shared: &Shared, receiver: &Receiver) -> Result<Subscription, String> {
    let body = json!({
        "url": receiver.url(),
        "description": format!("chaos battery receiver, run {}", shared.run_id),
    });
    let url = format!("{}/calendar/webhooks", shared.server);
    let auth = shared.auth();
    let reply = shared
        .http
        .send(
            "POST",
            &url,
            &[("authorization", auth.as_str())],
            Some(&body),
        )
        .await?;
    if reply.status != 201 {
        return Err(format!(
            "creating the webhook subscription: {}",
            reply.brief()
        ));
    }
    let text = |key: &str| reply.body[key].as_str().unwrap_or_default().to_owned();
    let secret = text("secret");
    if !secret.starts_with("whsec_") {
        return Err(format!(
            "the subscription's secret is not whsec_...: {}",
            reply.brief()
        ));
    }
    let start = Cursor::decode(&text("cursor"))
        .map_err(|e| format!("the subscription's cursor: {e}: {}", reply.brief()))?;
    Ok(Subscription {
        id: text("id"),
        secret,
        start,
    })
}

/// The newest change's cursor.
pub async fn latest(shared: &Shared) -> Result<Cursor, String> {
    let body = shared.get("/calendar/changes/latest").await?;
    Cursor::decode(body["cursor"].as_str().unwrap_or_default())
        .map_err(|e| format!("/calendar/changes/latest: {e}: {body}"))
}

/// The whole feed from its oldest change, read page by page until a
/// read answers nothing.
pub async fn read_all(shared: &Shared) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..100_000 {
        let mut path = format!("/calendar/changes?limit={PAGE}");
        if let Some(cursor) = &after {
            // Cursors are `c` and base-36 digits: nothing to escape.
            path.push_str("&after=");
            path.push_str(cursor);
        }
        let body = shared.get(&path).await?;
        let page = body["items"].as_array().cloned().unwrap_or_default();
        let next = body["nextCursor"].as_str().map(str::to_owned);
        if next.is_none() {
            return Err(format!("{path} answered no nextCursor"));
        }
        if page.is_empty() {
            return Ok(items);
        }
        items.extend(page);
        after = next;
    }
    Err("the feed did not end within 100,000 reads".into())
}

/// How delivery caught up at the end.
pub struct CatchUp {
    /// From the start of the wait until the receiver had accepted the
    /// newest change; `None`: it had not within the deadline.
    pub after: Option<Duration>,
    pub limit: Duration,
    /// The subscription as calsync last described it.
    pub state: Value,
}

fn seq_of(id: &str) -> Option<u64> {
    Cursor::decode(id).ok().map(Cursor::seq)
}

/// Waits until the receiver has accepted the feed's newest change (so
/// every change, calsync delivering in order), within [`CATCH_UP`],
/// stretched to a retry calsync scheduled later (up to [`CATCH_UP_MAX`]).
pub async fn catch_up(
    shared: &Shared,
    receiver: &Receiver,
    subscription: &Subscription,
) -> CatchUp {
    let began = Instant::now();
    let mut limit = CATCH_UP;
    let mut state = Value::Null;
    loop {
        let accepted = receiver
            .receipts()
            .iter()
            .filter(|r| r.verdict == Verdict::Accepted)
            .filter_map(|r| seq_of(&r.id))
            .max()
            .unwrap_or(0);
        match latest(shared).await {
            Ok(newest) if newest <= subscription.start || accepted >= newest.seq() => {
                if let Ok(now) = shared
                    .get(&format!("/calendar/webhooks/{}", subscription.id))
                    .await
                {
                    state = now;
                }
                return CatchUp {
                    after: Some(began.elapsed()),
                    limit,
                    state,
                };
            }
            Ok(_) => {}
            Err(error) => shared.mark(format!("reading the feed's latest cursor: {error}")),
        }
        if let Ok(now) = shared
            .get(&format!("/calendar/webhooks/{}", subscription.id))
            .await
        {
            // A retry calsync scheduled after the deadline: wait for it
            // (within CATCH_UP_MAX) and say so.
            if let Some(next) = now["nextAttemptAt"]
                .as_str()
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            {
                let wait = (next.with_timezone(&Utc) - Utc::now())
                    .to_std()
                    .unwrap_or_default();
                let needed = began.elapsed() + wait + Duration::from_secs(15);
                if needed > limit {
                    limit = needed.min(CATCH_UP_MAX);
                }
            }
            state = now;
        }
        // A delivery the receiver refused as unsigned comes back until it
        // is signed right: nothing to wait for (the verdict says why).
        let unsigned = receiver
            .receipts()
            .iter()
            .any(|r| matches!(r.verdict, Verdict::BadSignature(_)));
        if began.elapsed() >= limit || state["enabled"] == json!(false) || unsigned {
            return CatchUp {
                after: None,
                limit,
                state,
            };
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
