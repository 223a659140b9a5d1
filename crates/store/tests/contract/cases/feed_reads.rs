//! The change feed's read side: filters, paging with `next_cursor`,
//! purging and expired cursors, and the ordering promise under concurrent
//! writers.

use std::sync::atomic::{AtomicBool, Ordering};

use super::feed::{changes_after, mark};
use super::*;
use calsync_domain::feed::{Change, ChangeBatch, ChangeQuery, ChangeType, Cursor};
use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};

async fn read(store: &Arc<dyn Store>, query: ChangeQuery) -> ChangeBatch {
    store.read_changes(&query).await.unwrap()
}

fn cursors(changes: &[Change]) -> Vec<Cursor> {
    changes.iter().map(|c| c.cursor).collect()
}

fn event_in(calendar: &CalendarId, kind: &str, id: &str) -> Event {
    let mut event = local_event(id, now());
    event.calendar_id = calendar.clone();
    event.entity = Some(EntityRef::new(kind, id).unwrap());
    event
}

pub async fn reads_filter_and_page_with_next_cursor(store: &Arc<dyn Store>) {
    let other = CalendarId::new("other@example.com").unwrap();
    let a = event_in(&cal(), "deal", "a");
    let b = event_in(&other, "deal", "b");
    let c = event_in(&cal(), "contact", "c");
    for event in [&a, &b, &c] {
        store
            .insert_with_outbox(event, OutboxOp::Insert)
            .await
            .unwrap();
    }
    let mut moved = a.clone();
    moved.summary = Some("moved".into());
    moved.updated_at = now() + Duration::seconds(1);
    store
        .update_with_outbox(
            &moved,
            a.updated_at,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    store
        .mark_reconnect_required(&cal(), "invalid_grant", now())
        .await
        .unwrap();
    let drive = DriveNotification {
        envelope: PushEnvelope {
            channel_id: ChannelId::new("drive-reads").unwrap(),
            token: None,
            message_number: 1,
            resource_id: ResourceId::new("res-1").unwrap(),
            resource_uri: "https://www.googleapis.com/drive/v3/files/1".into(),
            channel_expiration: None,
        },
        state: DriveResourceState::Change,
        changed: vec![],
    };
    store
        .record_drive_notification(&drive, now())
        .await
        .unwrap();

    // 1 a created, 2 b created, 3 c created, 4 a updated, 5 reconnect, 6 drive.
    let all = changes_after(store, None).await;
    assert_eq!(all.len(), 6);
    let at = |n: usize| all[n - 1].cursor;
    let latest = at(6);
    assert_eq!(mark(store).await, latest);
    let picked = |ns: &[usize]| ns.iter().map(|&n| at(n)).collect::<Vec<_>>();
    let query = |limit: u32| ChangeQuery {
        limit,
        ..ChangeQuery::default()
    };

    let by_calendar = read(
        store,
        ChangeQuery {
            calendar_id: Some(cal()),
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&by_calendar.items), picked(&[1, 3, 4, 5]));
    assert_eq!(by_calendar.next_cursor, latest);

    // Past what the filters left out: a reader resuming from here never
    // reads the other calendar's change again, nor misses one to come.
    let elsewhere = read(
        store,
        ChangeQuery {
            calendar_id: Some(other.clone()),
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&elsewhere.items), picked(&[2]));
    assert_eq!(elsewhere.next_cursor, latest);

    let deals = read(
        store,
        ChangeQuery {
            entity_type: Some("deal".into()),
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&deals.items), picked(&[1, 2, 4]));
    let deal_a = read(
        store,
        ChangeQuery {
            entity_type: Some("deal".into()),
            entity_id: Some("a".into()),
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&deal_a.items), picked(&[1, 4]));
    assert!(
        deal_a
            .items
            .iter()
            .all(|c| c.change.event_id() == Some(a.id))
    );

    let typed = read(
        store,
        ChangeQuery {
            types: vec![ChangeType::EventUpdated, ChangeType::DriveChanged],
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&typed.items), picked(&[4, 6]));
    let created_here = read(
        store,
        ChangeQuery {
            types: vec![ChangeType::EventCreated],
            calendar_id: Some(cal()),
            ..query(100)
        },
    )
    .await;
    assert_eq!(cursors(&created_here.items), picked(&[1, 3]));

    // Paging: a full page ends at its last change; the rest follow.
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let batch = read(store, ChangeQuery { after, ..query(2) }).await;
        if batch.items.is_empty() {
            assert_eq!(batch.next_cursor, latest, "an empty read stays put");
            break;
        }
        assert_eq!(batch.next_cursor, batch.items.last().unwrap().cursor);
        pages.push(cursors(&batch.items));
        after = Some(batch.next_cursor);
    }
    assert_eq!(pages, [picked(&[1, 2]), picked(&[3, 4]), picked(&[5, 6])]);

    // Filtered paging: a short page ends past everything it could see.
    let first = read(
        store,
        ChangeQuery {
            entity_type: Some("deal".into()),
            ..query(2)
        },
    )
    .await;
    assert_eq!(cursors(&first.items), picked(&[1, 2]));
    assert_eq!(first.next_cursor, at(2));
    let rest = read(
        store,
        ChangeQuery {
            after: Some(first.next_cursor),
            entity_type: Some("deal".into()),
            ..query(2)
        },
    )
    .await;
    assert_eq!(cursors(&rest.items), picked(&[4]));
    assert_eq!(rest.next_cursor, latest);
}

pub async fn purged_cursors_expire_and_the_purge_point_still_reads(store: &Arc<dyn Store>) {
    for i in 0..5 {
        let mut event = local_event(&format!("p{i}"), now());
        event.created_at = now() + Duration::minutes(i);
        event.updated_at = event.created_at;
        store
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await
            .unwrap();
    }
    let all = cursors(&changes_after(store, None).await);
    assert_eq!(all.len(), 5);
    assert_eq!(
        store
            .purge_changes(now() - Duration::minutes(1), 100)
            .await
            .unwrap(),
        0,
        "nothing old enough"
    );
    let purged = store
        .purge_changes(now() + Duration::seconds(150), 100)
        .await
        .unwrap();
    assert_eq!(purged, 3, "the three before 2.5 minutes");
    let expired = |after: Cursor| {
        let query = ChangeQuery {
            after: Some(after),
            limit: 100,
            ..ChangeQuery::default()
        };
        async move {
            match store.read_changes(&query).await {
                Err(Error::CursorExpired { reason }) => assert!(!reason.is_empty()),
                other => panic!("{after} should have expired: {other:?}"),
            }
        }
    };
    expired(all[0]).await;
    expired(all[1]).await;
    expired(Cursor::START).await;
    // The last change purged is where the kept ones begin: it still reads.
    let kept = changes_after(store, Some(all[2])).await;
    assert_eq!(cursors(&kept), all[3..]);
    assert_eq!(
        cursors(&changes_after(store, None).await),
        all[3..],
        "without a cursor, from the oldest kept"
    );

    // At most `limit`, oldest first.
    let far = now() + Duration::days(1);
    assert_eq!(store.purge_changes(far, 1).await.unwrap(), 1);
    expired(all[2]).await;
    assert_eq!(cursors(&changes_after(store, Some(all[3])).await), all[4..]);

    // A feed purged empty keeps its latest cursor, which reads (nothing).
    assert_eq!(store.purge_changes(far, 100).await.unwrap(), 1);
    assert_eq!(mark(store).await, all[4]);
    let empty = store
        .read_changes(&ChangeQuery {
            after: Some(all[4]),
            limit: 100,
            ..ChangeQuery::default()
        })
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.next_cursor, all[4]);
    let from_oldest = store
        .read_changes(&ChangeQuery {
            limit: 100,
            ..ChangeQuery::default()
        })
        .await
        .unwrap();
    assert!(from_oldest.items.is_empty());
    assert_eq!(from_oldest.next_cursor, all[4]);
    expired(all[3]).await;

    // Seqs are never handed out again.
    store
        .insert_with_outbox(&local_event("p9", now()), OutboxOp::Insert)
        .await
        .unwrap();
    let next = changes_after(store, Some(all[4])).await;
    assert_eq!(next.len(), 1);
    assert!(next[0].cursor > all[4]);
}

/// Eight writers commit concurrently while a reader follows the feed with
/// `next_cursor`: it sees every change exactly once, in increasing cursor
/// order. On Postgres this is the advisory lock's promise (without it, a
/// change could commit after a reader had passed its seq).
pub async fn concurrent_writers_are_read_in_order_exactly_once(store: &Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const EACH: usize = 30;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<LocalEventId> = Vec::new();
            let mut after = Cursor::START;
            loop {
                // Read the flag first: a read that starts after every
                // writer finished and finds nothing means the end.
                let finished = done.load(Ordering::SeqCst);
                let batch = store
                    .read_changes(&ChangeQuery {
                        after: Some(after),
                        limit: 7,
                        ..ChangeQuery::default()
                    })
                    .await
                    .unwrap();
                assert!(batch.next_cursor >= after, "the cursor never goes back");
                for item in &batch.items {
                    assert!(item.cursor > after, "in increasing cursor order");
                    after = item.cursor;
                    seen.push(item.change.event_id().unwrap());
                }
                after = after.max(batch.next_cursor);
                if finished && batch.items.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let event = local_event(&format!("w{w}-{i}"), now());
                store
                    .insert_with_outbox(&event, OutboxOp::Insert)
                    .await
                    .unwrap();
                ids.push(event.id);
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let unique: HashSet<LocalEventId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "each change once");
    assert_eq!(unique, written, "every change");
    assert_eq!(seen.len(), WRITERS * EACH);
}
