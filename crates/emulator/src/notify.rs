//! Delivers push notifications to channel addresses, in order, over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::state::Notification;

#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

/// Starts the delivery task on the current Tokio runtime; returns the queue.
pub fn spawn_delivery(stats: Arc<DeliveryStats>) -> mpsc::UnboundedSender<Notification> {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Notification>();
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms a hop.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    tokio::spawn(async move {
        while let Some(notification) = receiver.recv().await {
            let ok = deliver(&client, &notification).await;
            let counter = if ok { &stats.delivered } else { &stats.failed };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    sender
}

/// Google retries 500, 502, 503 and 504 with backoff; so does the emulator
/// (a few times, briefly).
async fn deliver(client: &Client<HttpConnector, Empty<Bytes>>, n: &Notification) -> bool {
    if !n.address.starts_with("http://") {
        // The emulator speaks plain HTTP only (its receivers are local).
        return false;
    }
    for attempt in 0..4u32 {
        let request = hyper::Request::post(&n.address)
            .header("X-Goog-Channel-ID", &n.channel_id)
            .header(
                "X-Goog-Channel-Expiration",
                n.expiration.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            )
            .header("X-Goog-Resource-ID", &n.resource_id)
            .header("X-Goog-Resource-URI", &n.resource_uri)
            .header("X-Goog-Resource-State", n.state)
            .header("X-Goog-Message-Number", n.message_number.to_string());
        let request = match &n.token {
            Some(token) => request.header("X-Goog-Channel-Token", token),
            None => request,
        };
        let Ok(request) = request.body(Empty::new()) else {
            return false;
        };
        let status =
            match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
                Ok(Ok(response)) => response.status().as_u16(),
                _ => 0,
            };
        match status {
            200..=299 | 102 => return true,
            0 | 500 | 502 | 503 | 504 => {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            _ => return false,
        }
    }
    false
}
