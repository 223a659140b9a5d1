//! The application's webhook subscriptions: settings, the delivery lease
//! one replica holds at a time, progress that only the holder records, and
//! the log of attempts.

use super::*;
use calsync_domain::feed::subscription::{
    AttemptOutcome, DeliveryAttempt, DeliveryProgress, SealedSecret, WebhookId, WebhookSubscription,
};
use calsync_domain::feed::{ChangeType, Cursor};

fn subscription(n: u32) -> WebhookSubscription {
    let created = now() + Duration::seconds(i64::from(n));
    WebhookSubscription {
        id: WebhookId::random(),
        url: format!("https://app.example.com/hooks/{n}"),
        types: vec![ChangeType::EventCreated, ChangeType::AttendeeResponded],
        entity_type: Some("deal".into()),
        calendar_id: Some(cal()),
        description: Some(format!("hook {n}")),
        secret: SealedSecret(format!("sealed-{n}")),
        previous_secret: None,
        previous_secret_until: None,
        enabled: true,
        disabled_reason: None,
        cursor: Cursor::START,
        failures: 0,
        failing_since: None,
        next_attempt_at: now(),
        last_delivered_at: None,
        created_at: created,
        updated_at: created,
    }
}

fn attempt(id: &WebhookId, seq: Option<u64>, at: DateTime<Utc>) -> DeliveryAttempt {
    DeliveryAttempt {
        webhook_id: id.clone(),
        cursor: seq.map(Cursor::from_seq),
        kind: if seq.is_some() {
            ChangeType::EventCreated
        } else {
            ChangeType::WebhookTest
        },
        attempted_at: at,
        outcome: AttemptOutcome::Failed,
        status: Some(503),
        latency_ms: 120,
        error: Some("503 Service Unavailable".into()),
    }
}

pub async fn webhooks_are_stored_updated_and_deleted(store: &Arc<dyn Store>) {
    let (first, second) = (subscription(2), subscription(1));
    store.insert_webhook(&first).await.unwrap();
    store.insert_webhook(&second).await.unwrap();
    assert!(matches!(
        store.insert_webhook(&first).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(
        store.get_webhook(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    let listed: Vec<WebhookId> = store
        .list_webhooks()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [second.id.clone(), first.id.clone()], "by creation");

    // Every type, no filters, a rotated secret: the settings change; the
    // delivery state (cursor, failures, next attempt) is not theirs to set.
    let mut edited = first.clone();
    edited.url = "https://app.example.com/hooks/new".into();
    edited.types = Vec::new();
    edited.entity_type = None;
    edited.calendar_id = None;
    edited.description = None;
    edited.previous_secret = Some(first.secret.clone());
    edited.previous_secret_until = Some(now() + Duration::hours(24));
    edited.secret = SealedSecret("sealed-rotated".into());
    edited.updated_at = now() + Duration::minutes(5);
    edited.cursor = Cursor::from_seq(99);
    edited.failures = 7;
    assert!(store.update_webhook(&edited).await.unwrap());
    let stored = store.get_webhook(&first.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        WebhookSubscription {
            cursor: first.cursor,
            failures: first.failures,
            ..edited.clone()
        }
    );

    let at = now() + Duration::minutes(10);
    assert!(
        store
            .set_webhook_enabled(&first.id, false, Some("disabled by an operator"), at)
            .await
            .unwrap()
    );
    let disabled = store.get_webhook(&first.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("disabled by an operator")
    );
    assert_eq!(disabled.updated_at, at);

    // Failing for a while, then enabled again: a fresh start, due at once.
    let lease = now() + Duration::minutes(1);
    store
        .set_webhook_enabled(&first.id, true, None, now())
        .await
        .unwrap();
    let claimed = store
        .claim_webhooks("w", now(), lease, Cursor::from_seq(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let failing = DeliveryProgress {
        failures: 3,
        failing_since: Some(now()),
        next_attempt_at: now() + Duration::hours(1),
        ..DeliveryProgress::of(&claimed[0])
    };
    for s in &claimed {
        assert!(
            store
                .record_webhook_progress(&s.id, "w", &failing, None)
                .await
                .unwrap()
        );
    }
    let again = now() + Duration::minutes(20);
    store
        .set_webhook_enabled(&first.id, true, None, again)
        .await
        .unwrap();
    let enabled = store.get_webhook(&first.id).await.unwrap().unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!((enabled.failures, enabled.failing_since), (0, None));
    assert_eq!(enabled.next_attempt_at, again);

    store
        .record_webhook_attempt(&attempt(&first.id, None, now()))
        .await
        .unwrap();
    assert!(store.delete_webhook(&first.id).await.unwrap());
    assert!(!store.delete_webhook(&first.id).await.unwrap());
    assert_eq!(store.get_webhook(&first.id).await.unwrap(), None);
    assert!(
        store
            .list_webhook_attempts(&first.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "its attempts go with it"
    );
    assert!(!store.update_webhook(&edited).await.unwrap());
    assert!(
        !store
            .set_webhook_enabled(&first.id, true, None, now())
            .await
            .unwrap()
    );
    assert_eq!(store.list_webhooks().await.unwrap().len(), 1);
}

pub async fn a_webhook_is_claimed_by_one_owner_at_a_time(store: &Arc<dyn Store>) {
    let hook = subscription(1);
    store.insert_webhook(&hook).await.unwrap();
    let latest = Cursor::from_seq(3);
    let lease = now() + Duration::seconds(30);

    // Nothing waiting (its cursor is at the latest change): not claimed.
    assert!(
        store
            .claim_webhooks("a", now(), lease, Cursor::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Not due yet: not claimed.
    assert!(
        store
            .claim_webhooks("a", now() - Duration::seconds(1), lease, latest, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut racers = Vec::new();
    for owner in ["a", "b", "c", "d"] {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let claimed = store
                .claim_webhooks(owner, now(), lease, latest, 10)
                .await
                .unwrap();
            (owner, claimed)
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        let (owner, claimed) = racer.await.unwrap();
        if !claimed.is_empty() {
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0], hook);
            winners.push(owner);
        }
    }
    assert_eq!(winners.len(), 1, "one owner wins the lease: {winners:?}");
    let winner = winners[0];
    assert!(
        store
            .claim_webhooks("e", lease - Duration::seconds(1), lease, latest, 10)
            .await
            .unwrap()
            .is_empty(),
        "held until it expires"
    );

    // Extended by its holder's progress, then released.
    let later = lease + Duration::seconds(30);
    let progress = DeliveryProgress::of(&hook);
    assert!(
        store
            .record_webhook_progress(&hook.id, winner, &progress, Some(later))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_webhooks("e", lease + Duration::seconds(1), later, latest, 10)
            .await
            .unwrap()
            .is_empty(),
        "the extended lease holds"
    );
    assert!(
        store
            .record_webhook_progress(&hook.id, winner, &progress, None)
            .await
            .unwrap()
    );
    let free = store
        .claim_webhooks("e", now(), lease, latest, 10)
        .await
        .unwrap();
    assert_eq!(free.len(), 1, "a released lease is free at once");

    // A disabled subscription is never claimed.
    let expired = later + Duration::seconds(1);
    store
        .set_webhook_enabled(&hook.id, false, Some("gone"), now())
        .await
        .unwrap();
    assert!(
        store
            .claim_webhooks("f", expired, expired + Duration::seconds(30), latest, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn progress_with_a_lost_lease_writes_nothing(store: &Arc<dyn Store>) {
    let hook = subscription(1);
    store.insert_webhook(&hook).await.unwrap();
    let latest = Cursor::from_seq(10);
    let lease = now() + Duration::seconds(30);
    let mine = store
        .claim_webhooks("a", now(), lease, latest, 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    // The lease lapses; another replica takes it over.
    let later = lease + Duration::seconds(1);
    let theirs = store
        .claim_webhooks("b", later, later + Duration::seconds(30), latest, 10)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 1);

    let delivered_at = now() + Duration::seconds(5);
    let stale = DeliveryProgress {
        cursor: Cursor::from_seq(4),
        last_delivered_at: Some(delivered_at),
        disabled: Some("410 Gone".into()),
        attempts: vec![attempt(&hook.id, Some(4), delivered_at)],
        ..DeliveryProgress::of(&mine[0])
    };
    assert!(
        !store
            .record_webhook_progress(&hook.id, "a", &stale, None)
            .await
            .unwrap(),
        "the lease was lost"
    );
    assert_eq!(
        store.get_webhook(&hook.id).await.unwrap().unwrap(),
        hook,
        "nothing written"
    );
    assert!(
        store
            .list_webhook_attempts(&hook.id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The holder's progress is written whole, attempts with it.
    let failed_at = later + Duration::seconds(2);
    let progress = DeliveryProgress {
        cursor: Cursor::from_seq(6),
        failures: 1,
        failing_since: Some(failed_at),
        next_attempt_at: failed_at + Duration::seconds(5),
        last_delivered_at: Some(later),
        disabled: None,
        attempts: vec![
            DeliveryAttempt {
                outcome: AttemptOutcome::Delivered,
                status: Some(204),
                error: None,
                ..attempt(&hook.id, Some(6), later)
            },
            attempt(&hook.id, Some(7), failed_at),
        ],
    };
    assert!(
        store
            .record_webhook_progress(&hook.id, "b", &progress, None)
            .await
            .unwrap()
    );
    let stored = store.get_webhook(&hook.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        WebhookSubscription {
            cursor: progress.cursor,
            failures: 1,
            failing_since: progress.failing_since,
            next_attempt_at: progress.next_attempt_at,
            last_delivered_at: progress.last_delivered_at,
            ..hook.clone()
        }
    );
    let attempts = store.list_webhook_attempts(&hook.id, 10).await.unwrap();
    assert_eq!(
        attempts,
        [progress.attempts[1].clone(), progress.attempts[0].clone()]
    );
    // Released: "b" holds nothing now, so its next record is refused.
    assert!(
        !store
            .record_webhook_progress(&hook.id, "b", &progress, None)
            .await
            .unwrap()
    );

    // A receiver that answers 410: disabled with the reason.
    let due = progress.next_attempt_at;
    let again = store
        .claim_webhooks("c", due, due + Duration::seconds(30), latest, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    let gone = DeliveryProgress {
        disabled: Some("the receiver answered 410 Gone".into()),
        attempts: vec![DeliveryAttempt {
            outcome: AttemptOutcome::Gone,
            status: Some(410),
            ..attempt(&hook.id, Some(7), due)
        }],
        ..DeliveryProgress::of(&again[0])
    };
    assert!(
        store
            .record_webhook_progress(&hook.id, "c", &gone, None)
            .await
            .unwrap()
    );
    let stored = store.get_webhook(&hook.id).await.unwrap().unwrap();
    assert!(!stored.enabled);
    assert_eq!(
        stored.disabled_reason.as_deref(),
        Some("the receiver answered 410 Gone")
    );
    assert_eq!(
        store
            .list_webhook_attempts(&hook.id, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

pub async fn attempts_are_listed_newest_first_and_purged(store: &Arc<dyn Store>) {
    let (hook, other) = (subscription(1), subscription(2));
    store.insert_webhook(&hook).await.unwrap();
    store.insert_webhook(&other).await.unwrap();
    for minute in 0..5 {
        let at = now() + Duration::minutes(minute);
        let seq = (minute > 0).then_some(minute as u64);
        store
            .record_webhook_attempt(&attempt(&hook.id, seq, at))
            .await
            .unwrap();
        store
            .record_webhook_attempt(&attempt(&other.id, seq, at))
            .await
            .unwrap();
    }
    // A subscription deleted meanwhile takes no attempt, on every backend.
    let gone = subscription(3);
    assert!(matches!(
        store
            .record_webhook_attempt(&attempt(&gone.id, Some(1), now()))
            .await,
        Err(Error::NotFound { what: "webhook" })
    ));
    let newest = store.list_webhook_attempts(&hook.id, 3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert!(newest.iter().all(|a| a.webhook_id == hook.id));
    assert_eq!(
        newest.iter().map(|a| a.attempted_at).collect::<Vec<_>>(),
        [4, 3, 2].map(|m| now() + Duration::minutes(m))
    );
    assert_eq!(
        newest[0],
        attempt(&hook.id, Some(4), now() + Duration::minutes(4))
    );
    let all = store.list_webhook_attempts(&hook.id, 10).await.unwrap();
    assert_eq!(all.len(), 5);
    let test = all.last().unwrap();
    assert_eq!(
        (test.kind, test.cursor),
        (ChangeType::WebhookTest, None),
        "a test's attempt"
    );

    let purged = store
        .purge_webhook_attempts(now() + Duration::seconds(90))
        .await
        .unwrap();
    assert_eq!(purged, 4, "the first two minutes of both");
    assert_eq!(
        store
            .list_webhook_attempts(&hook.id, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_webhook_attempts(&other.id, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
