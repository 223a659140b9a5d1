use std::time::Duration;

use calsync_domain::event::EventStatus;
use calsync_domain::ids::{CalendarId, ChannelId, EventId};
use calsync_domain::webhook::WebhookSecret;
use calsync_emulator::Change;
use serde_json::json;

use crate::helpers::{SECRET, bearer, eventually, http, mirrored, server, settled};

fn primary() -> CalendarId {
    CalendarId::new("primary").unwrap()
}

fn insert(summary: &str) -> Change {
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let serde_json::Value::Object(body) = json!({
        "summary": summary,
        "start": {"dateTime": start.to_rfc3339()},
        "end": {"dateTime": (start + chrono::Duration::hours(1)).to_rfc3339()},
    }) else {
        unreachable!()
    };
    Change::Insert(body)
}

/// Watches the default calendar over HTTP: the channel as answered.
async fn watch(base: &str) -> serde_json::Value {
    let (name, value) = bearer();
    let (status, channel) = http(
        "POST",
        &format!("{base}/calendar/channels"),
        &[(name, &value)],
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{channel}");
    channel
}

/// The token Google would carry for `channel` (the one calsync issued).
fn token_of(channel: &serde_json::Value) -> String {
    WebhookSecret::new(SECRET)
        .unwrap()
        .channel_token(&ChannelId::new(channel["id"].as_str().unwrap()).unwrap())
}

/// Delivers an `exists` push for `channel`, as Google sends it.
async fn push(
    base: &str,
    channel: &serde_json::Value,
    token: &str,
    number: u64,
) -> (u16, serde_json::Value) {
    let number = number.to_string();
    let headers = [
        ("X-Goog-Channel-ID", channel["id"].as_str().unwrap()),
        ("X-Goog-Channel-Token", token),
        ("X-Goog-Message-Number", number.as_str()),
        (
            "X-Goog-Resource-ID",
            channel["resourceId"].as_str().unwrap(),
        ),
        (
            "X-Goog-Resource-URI",
            "https://www.googleapis.com/calendar/v3/calendars/primary/events",
        ),
        ("X-Goog-Resource-State", "exists"),
    ];
    http("POST", &format!("{base}/webhooks/calendar"), &headers, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_in_google_reaches_the_mirror_through_a_real_webhook() {
    let (running, _dir) = server(None, &[]).await;
    let base = format!("http://{}", running.address);
    watch(&base).await;
    let emulator = &running.emulator.as_ref().unwrap().emulator;
    let created = emulator
        .change("primary", insert("Made in Google"))
        .unwrap();
    let id = EventId::new(created["id"].as_str().unwrap()).unwrap();
    let store = running.store.clone();
    let arrived = mirrored(&store, &primary(), &id, |_| true).await;
    assert!(arrived, "the event never reached the mirror");
    // The channel's first full sync may already have fetched the event, so
    // the mirror can show it before the emulator has finished delivering.
    let both_delivered = eventually(Duration::from_secs(10), || async {
        emulator.deliveries().0 >= 2
    })
    .await;
    let (delivered, failed) = emulator.deliveries();
    assert!(
        both_delivered && failed == 0,
        "sync + exists delivered over HTTP ({delivered}, {failed})"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_is_refused_and_changes_nothing() {
    let (running, _dir) = server(None, &[]).await;
    let base = format!("http://{}", running.address);
    let channel = watch(&base).await;
    // Let the initial sync settle.
    let store = running.store.clone();
    assert!(settled(&store, &primary()).await);
    let before = running.store.sync_state(&primary()).await.unwrap().unwrap();
    let (status, body) = push(&base, &channel, "forged-token", 9).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let after = running.store.sync_state(&primary()).await.unwrap().unwrap();
    assert_eq!(
        after.dirty_seq, before.dirty_seq,
        "a forged notification marks nothing"
    );

    assert_eq!(push(&base, &channel, &token_of(&channel), 9).await.0, 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_sync_token_leads_to_a_full_resync_that_catches_deletions() {
    let (running, _dir) = server(None, &[]).await;
    let base = format!("http://{}", running.address);
    let emulator = &running.emulator.as_ref().unwrap().emulator;
    let doomed = emulator.change("primary", insert("to be deleted")).unwrap();
    let kept = emulator.change("primary", insert("to be kept")).unwrap();
    watch(&base).await;
    let store = running.store.clone();
    let doomed_id = EventId::new(doomed["id"].as_str().unwrap()).unwrap();
    assert!(mirrored(&store, &primary(), &doomed_id, |_| true).await);
    assert!(settled(&store, &primary()).await);
    let full_before = store
        .sync_state(&primary())
        .await
        .unwrap()
        .unwrap()
        .last_full_sync_at;
    // Google forgets our token, then the event is deleted.
    emulator.invalidate_sync_tokens();
    emulator
        .change(
            "primary",
            Change::Delete {
                id: doomed_id.to_string(),
            },
        )
        .unwrap();
    let cancelled = mirrored(&store, &primary(), &doomed_id, |e| {
        e.status == EventStatus::Cancelled
    })
    .await;
    assert!(cancelled, "the deletion was not caught by the full resync");
    let kept = store
        .find_by_google_id(
            &primary(),
            &EventId::new(kept["id"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.status, EventStatus::Confirmed);
    let state = store.sync_state(&primary()).await.unwrap().unwrap();
    assert!(
        state.last_full_sync_at > full_before,
        "a full resync ran after the 410"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_replaces_an_expiring_channel_without_missing_a_change() {
    // Four-second channels are renewed after two; the renewal job runs every second.
    let args = [
        "--channel-ttl-secs",
        "4",
        "--renewal-interval-secs",
        "1",
        "--scheduler-tick-secs",
        "1",
    ];
    let (running, _dir) = server(None, &args).await;
    let base = format!("http://{}", running.address);
    let first = watch(&base).await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let emulator = &running.emulator.as_ref().unwrap().emulator;
    // Changes keep coming while the channel is replaced.
    let mut ids = Vec::new();
    for i in 0..25 {
        let created = emulator
            .change("primary", insert(&format!("change {i}")))
            .unwrap();
        ids.push(EventId::new(created["id"].as_str().unwrap()).unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let store = running.store.clone();
    let all_arrived = eventually(Duration::from_secs(15), || {
        let (store, ids) = (store.clone(), ids.clone());
        async move {
            for id in &ids {
                if store
                    .find_by_google_id(&primary(), id)
                    .await
                    .unwrap()
                    .is_none()
                {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(
        all_arrived,
        "a change made during renewal never reached the mirror"
    );
    let channels = running.store.list_channels(None).await.unwrap();
    let old = channels.iter().find(|c| c.id.as_str() == first_id).unwrap();
    assert_eq!(
        old.status,
        calsync_domain::channel::ChannelStatus::Stopped,
        "the expiring channel was replaced"
    );
    let active: Vec<_> = channels
        .iter()
        .filter(|c| c.status == calsync_domain::channel::ChannelStatus::Active)
        .collect();
    assert!(!active.is_empty(), "a new channel is active");
    assert!(active.iter().all(|c| c.id.as_str() != first_id));
    // The last change can only have been announced by a renewed channel.
    let last = emulator.change("primary", insert("after renewal")).unwrap();
    let last = EventId::new(last["id"].as_str().unwrap()).unwrap();
    assert!(mirrored(&store, &primary(), &last, |_| true).await);
    running.stop().await;
}

/// Google announcing changes faster than they happen (here: a flood of
/// valid notifications with nothing behind them) costs a sync per rest,
/// not one after another; and a change announced during a rest reaches
/// the mirror when the rest ends, not at the next poll (here a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_storm_costs_a_sync_per_rest_and_loses_no_change() {
    let (running, _dir) = server(
        None,
        &[
            "--sync-poll-secs",
            "60",
            "--sync-rest-ms",
            "300",
            // One source sends the whole storm.
            "--webhook-rate-per-minute",
            "1000000",
        ],
    )
    .await;
    let base = format!("http://{}", running.address);
    let channel = watch(&base).await;
    let store = running.store.clone();
    assert!(settled(&store, &primary()).await);
    let token = token_of(&channel);
    let emulator = &running.emulator.as_ref().unwrap().emulator;
    let notify = |number: u64| {
        let (base, channel, token) = (base.clone(), channel.clone(), token.clone());
        async move { push(&base, &channel, &token, number).await.0 }
    };

    let lists_before = emulator.calls("list");
    let storm = Duration::from_millis(1500);
    let started = std::time::Instant::now();
    let mut number = 1000;
    while started.elapsed() < storm {
        // Eight at a time, as concurrent deliveries would come.
        let batch: Vec<_> = (0..8).map(|i| tokio::spawn(notify(number + i))).collect();
        number += 8;
        for status in batch {
            assert_eq!(status.await.unwrap(), 200);
        }
    }
    let lists = emulator.calls("list") - lists_before;
    // 1.5 s of storm with a 0.3 s rest: the first sync, one per rest, and
    // one whose rest had not begun. Without the rest it is one per few ms.
    assert!(
        (1..=8).contains(&lists),
        "{lists} events.list calls during a 1.5 s storm"
    );

    // A real change announced during a rest still arrives, at its end.
    let created = emulator
        .change("primary", insert("During the rest"))
        .unwrap();
    assert_eq!(notify(number).await, 200);
    let id = EventId::new(created["id"].as_str().unwrap()).unwrap();
    let arrived = tokio::time::timeout(
        Duration::from_secs(10),
        mirrored(&store, &primary(), &id, |_| true),
    )
    .await;
    assert!(
        matches!(arrived, Ok(true)),
        "the change never reached the mirror"
    );
    running.stop().await;
}

/// A calendar marked dirty by a caller that woke no worker (an embedder's
/// own service call here; another replica in production) is synced when a
/// notification for it arrives, although that notification marks nothing
/// new: it wakes this replica's worker, not the next poll (here a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_covered_notification_still_wakes_a_worker_when_nobody_is_syncing() {
    let (running, _dir) = server(None, &["--sync-poll-secs", "60"]).await;
    // The worker's first round finds nothing; it then waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Through the service, not the route: the calendar is marked, no one woken.
    running.channels.create(&primary()).await.unwrap();
    let emulator = &running.emulator.as_ref().unwrap().emulator;
    let created = emulator.change("primary", insert("Announced")).unwrap();
    let id = EventId::new(created["id"].as_str().unwrap()).unwrap();
    let arrived = tokio::time::timeout(
        Duration::from_secs(10),
        mirrored(&running.store, &primary(), &id, |_| true),
    )
    .await;
    assert!(
        matches!(arrived, Ok(true)),
        "the change waited for the poll"
    );
    running.stop().await;
}
