//! The webhook delivery rules, on the in-memory store with a scripted
//! receiver: order, at-least-once with a stable `webhook-id`, the retry
//! schedule, disabling (410 at once, three days of failures), filters,
//! rotation's two signatures, and the feed recorded by writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use calsync_domain::event::{EventTime, NewEvent, NewEventFields};
use calsync_domain::feed::signature::{self, SigningSecret};
use calsync_domain::feed::subscription::{OutboundRequest, OutboundResponse, SealedSecret};
use calsync_domain::feed::{Change, ChangeType};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::outbox::OutboxOp;
use calsync_domain::ports::{
    ChangeRenderer, Clock, EventStore, SecretKeeper, WebhookSender, WebhookStore,
};
use calsync_domain::services::{NewWebhook, WebhookAdapters, WebhookPatch, WebhookService};
use calsync_domain::testing::{ManualClock, MemoryStore};
use calsync_domain::{Error, Result};

/// A receiver that answers from a script (then 200), recording requests.
#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Result<u16>>>,
    received: Mutex<Vec<OutboundRequest>>,
}

#[async_trait]
impl WebhookSender for Receiver {
    async fn check_url(&self, url: &str) -> Result<()> {
        if url.starts_with("https://") {
            Ok(())
        } else {
            Err(Error::invalid("url", "must be https"))
        }
    }
    async fn send(
        &self,
        request: &OutboundRequest,
        _timeout: Duration,
    ) -> Result<OutboundResponse> {
        self.received.lock().unwrap().push(request.clone());
        match self.script.lock().unwrap().pop_front() {
            Some(Ok(status)) => Ok(OutboundResponse { status }),
            Some(Err(error)) => Err(error),
            None => Ok(OutboundResponse { status: 200 }),
        }
    }
}

/// "Seals" by hex (the test needs opening, not secrecy).
struct PlainKeeper;

impl SecretKeeper for PlainKeeper {
    fn new_signing_secret(&self) -> Result<SigningSecret> {
        SigningSecret::from_bytes(uuid::Uuid::new_v4().as_bytes().repeat(2))
    }
    fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret> {
        Ok(SealedSecret(
            plain.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ))
    }
    fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>> {
        Ok((0..sealed.0.len())
            .step_by(2)
            .filter_map(|i| sealed.0.get(i..i + 2))
            .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
            .collect())
    }
}

struct CursorBody;

impl ChangeRenderer for CursorBody {
    fn render(&self, change: &Change) -> Result<Vec<u8>> {
        Ok(format!("{} {}", change.cursor, change.change.kind).into_bytes())
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    receiver: Arc<Receiver>,
    webhooks: WebhookService,
}

fn setup() -> Setup {
    let store = MemoryStore::new();
    let clock = ManualClock::fixed();
    let receiver = Arc::new(Receiver::default());
    let webhooks = WebhookService::new(
        store.clone(),
        store.clone(),
        WebhookAdapters {
            sender: receiver.clone(),
            keeper: Arc::new(PlainKeeper),
            renderer: Arc::new(CursorBody),
        },
        clock.clone(),
    );
    Setup {
        store,
        clock,
        receiver,
        webhooks,
    }
}

async fn create_event(setup: &Setup, entity_type: &str) {
    let now = setup.clock.now();
    let event = NewEvent::new(
        CalendarId::new("team@example.com").unwrap(),
        EntityRef::new(entity_type, "42").unwrap(),
        EventTime::at(now, None),
        EventTime::at(now + chrono::Duration::hours(1), None),
        NewEventFields::default(),
    )
    .unwrap()
    .into_event(now);
    setup
        .store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
}

fn ids_received(receiver: &Receiver) -> Vec<String> {
    receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(h, _)| *h == signature::HEADER_ID)
                .unwrap()
                .1
                .clone()
        })
        .collect()
}

#[tokio::test]
async fn changes_arrive_in_order_signed_and_only_from_creation_on() {
    let s = setup();
    create_event(&s, "deal").await; // before the subscription: not sent
    let (subscription, secret) = s
        .webhooks
        .create(NewWebhook {
            url: "https://app.example.com/hooks".into(),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    for _ in 0..3 {
        create_event(&s, "deal").await;
    }
    let report = s.webhooks.deliver_due("a", 8).await.unwrap();
    assert_eq!(report.delivered, 3);
    let ids = ids_received(&s.receiver);
    assert_eq!(ids, ["c2", "c3", "c4"]);
    // Each is signed with the subscription's secret over id.timestamp.body.
    for request in s.receiver.received.lock().unwrap().iter() {
        let header = |name| {
            request
                .headers
                .iter()
                .find(|(h, _)| *h == name)
                .unwrap()
                .1
                .clone()
        };
        signature::verify(
            &secret.expose(),
            &header(signature::HEADER_ID),
            &header(signature::HEADER_TIMESTAMP),
            &header(signature::HEADER_SIGNATURE),
            &request.body,
            s.clock.now().timestamp(),
            300,
        )
        .unwrap();
    }
    let stored = s.webhooks.get(&subscription.id).await.unwrap();
    assert_eq!(stored.cursor.encode(), "c4");
    // Nothing new: nothing claimed, nothing sent.
    assert_eq!(
        s.webhooks.deliver_due("a", 8).await.unwrap().subscriptions,
        0
    );
}

#[tokio::test]
async fn a_failure_is_retried_later_with_the_same_id_and_order_holds() {
    let s = setup();
    s.webhooks
        .create(NewWebhook {
            url: "https://app.example.com/hooks".into(),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    create_event(&s, "deal").await;
    create_event(&s, "deal").await;
    s.receiver.script.lock().unwrap().extend([
        Ok(200),
        Ok(503),
        Err(Error::provider(
            calsync_domain::ProviderErrorKind::Transient,
            "timed out",
        )),
    ]);
    let first = s.webhooks.deliver_due("a", 8).await.unwrap();
    assert_eq!((first.delivered, first.failed), (1, 1));
    // Not due again until the backoff (5 s +-20%) has passed.
    assert_eq!(
        s.webhooks.deliver_due("a", 8).await.unwrap().subscriptions,
        0
    );
    s.clock.advance(Duration::from_secs(7));
    let second = s.webhooks.deliver_due("a", 8).await.unwrap();
    assert_eq!(second.failed, 1);
    s.clock.advance(Duration::from_secs(40));
    let third = s.webhooks.deliver_due("a", 8).await.unwrap();
    assert_eq!(third.delivered, 1);
    assert_eq!(ids_received(&s.receiver), ["c1", "c2", "c2", "c2"]);
    let attempts = s
        .webhooks
        .attempts(&s.webhooks.list().await.unwrap()[0].id, 10)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(
        attempts[1]
            .error
            .as_deref()
            .map(|e| e.contains("timed out")),
        Some(true)
    );
}

#[tokio::test]
async fn a_410_disables_at_once_and_three_days_of_failures_disable() {
    let s = setup();
    let (gone, _) = s
        .webhooks
        .create(NewWebhook {
            url: "https://gone.example.com/".into(),
            entity_type: Some("deal".into()),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    create_event(&s, "deal").await;
    s.receiver.script.lock().unwrap().push_back(Ok(410));
    assert_eq!(s.webhooks.deliver_due("a", 8).await.unwrap().disabled, 1);
    let stored = s.webhooks.get(&gone.id).await.unwrap();
    assert!(!stored.enabled);
    assert!(stored.disabled_reason.unwrap().contains("410"));

    // Re-enabled, then failing for good.
    s.webhooks
        .update(
            &gone.id,
            WebhookPatch {
                enabled: Some(true),
                ..WebhookPatch::default()
            },
        )
        .await
        .unwrap();
    let mut rounds = 0;
    loop {
        s.receiver.script.lock().unwrap().push_back(Ok(500));
        let report = s.webhooks.deliver_due("a", 8).await.unwrap();
        if report.disabled > 0 {
            break;
        }
        rounds += 1;
        assert!(rounds < 100, "never disabled");
        s.clock.advance(Duration::from_secs(8 * 3600));
    }
    let stored = s.webhooks.get(&gone.id).await.unwrap();
    assert!(!stored.enabled);
    let failing_for = s.clock.now() - stored.failing_since.unwrap();
    assert!(failing_for >= chrono::Duration::days(3), "{failing_for}");
}

#[tokio::test]
async fn filters_pass_over_other_changes_and_rotation_signs_twice() {
    let s = setup();
    let (subscription, old) = s
        .webhooks
        .create(NewWebhook {
            url: "https://app.example.com/hooks".into(),
            entity_type: Some("deal".into()),
            types: vec![ChangeType::EventCreated],
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    create_event(&s, "invoice").await;
    create_event(&s, "invoice").await;
    assert_eq!(s.webhooks.deliver_due("a", 8).await.unwrap().delivered, 0);
    // The filtered-out changes are passed for good.
    assert_eq!(
        s.webhooks
            .get(&subscription.id)
            .await
            .unwrap()
            .cursor
            .encode(),
        "c2"
    );
    let (_, new) = s.webhooks.rotate_secret(&subscription.id).await.unwrap();
    create_event(&s, "deal").await;
    assert_eq!(s.webhooks.deliver_due("a", 8).await.unwrap().delivered, 1);
    let request = s.receiver.received.lock().unwrap()[0].clone();
    let header = |name| {
        request
            .headers
            .iter()
            .find(|(h, _)| *h == name)
            .unwrap()
            .1
            .clone()
    };
    for secret in [&old, &new] {
        signature::verify(
            &secret.expose(),
            &header(signature::HEADER_ID),
            &header(signature::HEADER_TIMESTAMP),
            &header(signature::HEADER_SIGNATURE),
            &request.body,
            s.clock.now().timestamp(),
            300,
        )
        .unwrap();
    }
    // After the overlap only the new one signs.
    s.clock.advance(Duration::from_secs(25 * 3600));
    create_event(&s, "deal").await;
    s.webhooks.deliver_due("a", 8).await.unwrap();
    let last = s.receiver.received.lock().unwrap()[1].clone();
    let signatures = last
        .headers
        .iter()
        .find(|(h, _)| *h == signature::HEADER_SIGNATURE)
        .unwrap()
        .1
        .clone();
    assert_eq!(signatures.split(' ').count(), 1);
}

#[tokio::test]
async fn one_owner_at_a_time_and_bad_urls_are_refused() {
    let s = setup();
    let created = s
        .webhooks
        .create(NewWebhook {
            url: "http://app.example.com/hooks".into(),
            ..NewWebhook::default()
        })
        .await;
    assert!(matches!(created, Err(Error::Invalid { field: "url", .. })));
    let (subscription, _) = s
        .webhooks
        .create(NewWebhook {
            url: "https://app.example.com/hooks".into(),
            ..NewWebhook::default()
        })
        .await
        .unwrap();
    create_event(&s, "deal").await;
    let now = s.clock.now();
    let latest = calsync_domain::feed::Cursor::from_seq(10);
    let first = s
        .store
        .claim_webhooks("a", now, now + chrono::Duration::seconds(60), latest, 8)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        s.store
            .claim_webhooks("b", now, now + chrono::Duration::seconds(60), latest, 8)
            .await
            .unwrap()
            .is_empty()
    );
    // b's progress on a's lease writes nothing.
    let progress = calsync_domain::feed::subscription::DeliveryProgress::of(&subscription);
    assert!(
        !s.store
            .record_webhook_progress(&subscription.id, "b", &progress, None)
            .await
            .unwrap()
    );
}
