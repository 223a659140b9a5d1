//! Micro-benchmarks of the pure logic on calsync's hot paths: what every
//! webhook pays before touching the database (header parsing, channel token
//! verification) and what every synced event pays (the apply rule).
//! `cargo bench -p calsync-domain`; figures are nanoseconds per call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench setup fails loudly

use std::hint::black_box;
use std::time::Instant;

use calsync_domain::event::{EventStatus, EventTime};
use calsync_domain::ids::{CalendarId, ChannelId, EntityRef, Etag, EventId};
use calsync_domain::sync::{RemoteEvent, decide};
use calsync_domain::webhook::{WebhookSecret, parse_calendar_notification};
use chrono::{Duration, Utc};

fn measure(name: &str, iterations: u32, mut call: impl FnMut()) {
    for _ in 0..iterations / 10 {
        call();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        call();
    }
    let per_call = started.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("{name}: {per_call:.0} ns/call ({iterations} calls)");
}

fn remote(etag: &str) -> RemoteEvent {
    let start = Utc::now() + Duration::days(1);
    let mut event = RemoteEvent::cancelled_stub(EventId::new("bench0001").unwrap());
    event.status = EventStatus::Confirmed;
    event.summary = Some("Customer meeting".into());
    event.start = Some(EventTime::at(start, None));
    event.end = Some(EventTime::at(start + Duration::minutes(30), None));
    event.etag = Some(Etag::new(etag).unwrap());
    event.updated = Some(Utc::now());
    event.entity = Some(EntityRef::new("deal", "42").unwrap());
    event
}

fn main() {
    let secret = WebhookSecret::new("bench-webhook-secret-0123456789").unwrap();
    let channel = ChannelId::new("5f0c8a3e-bench-channel").unwrap();
    let token = secret.channel_token(&channel);
    let headers = [
        ("x-goog-channel-id", channel.as_str().to_owned()),
        ("x-goog-channel-token", token.clone()),
        ("x-goog-resource-id", "resource-123".to_owned()),
        ("x-goog-resource-state", "exists".to_owned()),
        ("x-goog-message-number", "42".to_owned()),
        (
            "x-goog-resource-uri",
            "https://www.googleapis.com/calendar/v3/calendars/primary/events".to_owned(),
        ),
    ];
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    measure("webhook: parse_calendar_notification", 500_000, || {
        black_box(parse_calendar_notification(lookup).unwrap());
    });
    measure(
        "webhook: verify channel token (HMAC-SHA256)",
        500_000,
        || {
            assert!(black_box(secret.verify(&channel, black_box(&token))));
        },
    );

    let calendar = CalendarId::new("primary").unwrap();
    let now = Utc::now();
    let first = remote("\"1\"");
    let decision = decide(None, &first, &calendar, None, now);
    let calsync_domain::sync::ApplyDecision::Insert(existing) = decision else {
        panic!("a new event is inserted");
    };
    let changed = remote("\"2\"");
    measure("sync: decide (new event)", 500_000, || {
        black_box(decide(None, black_box(&first), &calendar, None, now));
    });
    measure("sync: decide (changed event)", 500_000, || {
        black_box(decide(
            Some(&existing),
            black_box(&changed),
            &calendar,
            None,
            now,
        ));
    });
}
