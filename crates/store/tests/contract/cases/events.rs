//! Mirrored events: every field, local writes, listing, idempotency keys, cleanup.

use super::*;

pub async fn events_round_trip_every_field(store: &Arc<dyn Store>) {
    let mut rich = remote("rich0001", "\"7\"", 2);
    rich.ical_uid = Some("rich0001@google.com".into());
    rich.description = Some("Agenda: 1. ✓ unicode".into());
    rich.location = Some("Room 4".into());
    rich.start = Some(EventTime::at(
        now(),
        Some(TimeZoneName::new("Europe/Berlin").unwrap()),
    ));
    rich.end = Some(EventTime::at(
        now() + Duration::minutes(30),
        Some(TimeZoneName::new("America/New_York").unwrap()),
    ));
    rich.attendees = vec![Attendee {
        display_name: Some("Ann".into()),
        response_status: Some("accepted".into()),
        optional: true,
        ..Attendee::new("ann@example.com").unwrap()
    }];
    rich.organizer = Some(Organizer {
        email: Some("boss@example.com".into()),
        display_name: None,
    });
    rich.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=3".into()];
    rich.html_link = Some("https://calendar.google.com/event?eid=x".into());
    rich.entity = Some(EntityRef::new("deal", "4711").unwrap());
    let mut all_day = remote("allday01", "\"8\"", 0);
    all_day.start = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2026, 6, 3).unwrap(),
    ));
    all_day.end = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2026, 6, 4).unwrap(),
    ));
    let mut instance = remote("series01_20260601T120000Z", "\"9\"", 0);
    instance.recurring_event_id = Some(EventId::new("series01").unwrap());
    instance.original_start = Some(EventTime::at(now(), None));

    store
        .apply_sync_page(&page(
            vec![rich.clone(), all_day.clone(), instance.clone()],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();

    let got = mirrored(store, "rich0001").await.unwrap();
    assert_eq!(got.ical_uid, rich.ical_uid);
    assert_eq!(got.description, rich.description);
    assert_eq!(got.location, rich.location);
    assert_eq!(got.start, rich.start.unwrap());
    assert_eq!(got.end, rich.end.unwrap());
    assert_eq!(got.attendees, rich.attendees);
    assert_eq!(got.organizer, rich.organizer);
    assert_eq!(got.recurrence, rich.recurrence);
    assert_eq!(got.html_link, rich.html_link);
    assert_eq!(got.entity, rich.entity);
    assert_eq!(got.etag, rich.etag);
    assert_eq!(got.google_updated, rich.updated);
    assert_eq!(got.push_state, PushState::Synced);
    assert_eq!(store.get_event(got.id).await.unwrap().unwrap(), got);

    let day = mirrored(store, "allday01").await.unwrap();
    assert_eq!(
        day.start,
        EventTime::date(NaiveDate::from_ymd_opt(2026, 6, 3).unwrap()),
        "dates stay dates"
    );
    assert_eq!(
        day.end,
        EventTime::date(NaiveDate::from_ymd_opt(2026, 6, 4).unwrap())
    );
    let inst = mirrored(store, "series01_20260601T120000Z").await.unwrap();
    assert_eq!(inst.recurring_event_id, instance.recurring_event_id);
    assert_eq!(inst.original_start, instance.original_start);
}

pub async fn duplicate_google_ids_and_stale_updates_are_refused(store: &Arc<dyn Store>) {
    let event = local_event("1", now());
    let entry = store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!(entry.event_id, event.id);
    assert_eq!(entry.state, OutboxState::Pending);
    let mut twin = local_event("2", now());
    twin.google_event_id = event.google_event_id.clone();
    assert!(matches!(
        store.insert_with_outbox(&twin, OutboxOp::Insert).await,
        Err(Error::Duplicate { .. })
    ));

    let stored = store.get_event(event.id).await.unwrap().unwrap();
    let mut edited = stored.clone();
    edited.summary = Some("edited".into());
    edited.updated_at = stored.updated_at + Duration::seconds(1);
    store
        .update_with_outbox(
            &edited,
            stored.updated_at,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    // A second writer that read the same version loses.
    let mut late = stored.clone();
    late.summary = Some("late".into());
    assert!(matches!(
        store
            .update_with_outbox(
                &late,
                stored.updated_at,
                OutboxOp::Patch {
                    if_match: None,
                    intent: None,
                }
            )
            .await,
        Err(Error::PreconditionFailed { .. })
    ));
    let missing = local_event("3", now());
    assert!(matches!(
        store
            .update_with_outbox(&missing, missing.updated_at, OutboxOp::Delete)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store
            .get_event(event.id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .as_deref(),
        Some("edited")
    );
    assert_eq!(store.outbox_for_event(event.id).await.unwrap().len(), 2);
}

pub async fn listing_filters_and_pages(store: &Arc<dyn Store>) {
    for i in 0..7 {
        let mut event = local_event(
            if i % 2 == 0 { "even" } else { "odd" },
            now() + Duration::hours(i),
        );
        event.id = LocalEventId::new();
        event.google_event_id = EventId::for_local(event.id);
        store
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await
            .unwrap();
    }
    let even = EntityRef::new("deal", "even").unwrap();
    let mut query = EventQuery {
        entity: Some(even.clone()),
        limit: 2,
        ..EventQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list_events(&query).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        query.after = Some((last.start.sort_key(), last.id));
        seen.extend(page);
    }
    assert_eq!(seen.len(), 4);
    assert!(
        seen.windows(2)
            .all(|w| w[0].start.sort_key() <= w[1].start.sort_key()),
        "ordered by start"
    );
    assert!(seen.iter().all(|e| e.entity.as_ref() == Some(&even)));
    let windowed = store
        .list_events(&EventQuery {
            ends_after: Some(now() + Duration::hours(2)),
            starts_before: Some(now() + Duration::hours(4)),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    // Events start hourly from now and last an hour: those starting at +2h
    // and +3h overlap (+2h, +4h); the one ending exactly at +2h does not.
    let starts: Vec<_> = windowed
        .iter()
        .map(|e| e.start.sort_key() - now())
        .collect();
    assert_eq!(starts, vec![Duration::hours(2), Duration::hours(3)]);
    let none = store
        .list_events(&EventQuery {
            status: Some(EventStatus::Cancelled),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn concurrent_writers_lose_nothing(store: &Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for writer in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let mut event = local_event(&format!("w{writer}"), now() + Duration::minutes(i));
                event.id = LocalEventId::new();
                event.google_event_id = EventId::for_local(event.id);
                store
                    .insert_with_outbox(&event, OutboxOp::Insert)
                    .await
                    .unwrap();
                store.mark_dirty(&cal(), false).await.unwrap();
                let page = page(
                    vec![remote(&format!("x{writer}x{i}x"), "\"1\"", i)],
                    SyncRun::Incremental,
                    None,
                );
                store.apply_sync_page(&page).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = all_events(store).await;
    assert_eq!(events.len(), 24 * 10 * 2);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len());
    assert_eq!(
        store.sync_state(&cal()).await.unwrap().unwrap().dirty_seq,
        240,
        "no increment lost"
    );
    let claimed = store
        .claim_outbox(
            "w",
            now() + Duration::hours(1),
            now() + Duration::hours(2),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 240);
}

pub async fn idempotency_keys_admit_one_insert_even_when_racing(store: &Arc<dyn Store>) {
    let key = IdempotencyKey::new("create-deal-42", "fp-1").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut event = local_event("42", now());
            event.id = LocalEventId::new();
            event.google_event_id = EventId::for_local(event.id);
            store
                .insert_idempotent(&event, OutboxOp::Insert, &key)
                .await
                .map(|_| event.id)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(id) => winners.push(id),
            Err(Error::Duplicate {
                what: "idempotency key",
            }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one request wins the key");
    assert_eq!(all_events(store).await.len(), 1, "the losers wrote nothing");
    let record = store
        .find_idempotency_key("create-deal-42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.event_id, winners[0]);
    assert_eq!(record.fingerprint, "fp-1");
    assert!(store.find_idempotency_key("other").await.unwrap().is_none());

    assert_eq!(
        store
            .purge_idempotency_keys(now() - Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_idempotency_keys(now() + Duration::hours(1))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .find_idempotency_key("create-deal-42")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn cleanup_cancels_in_bounded_batches(store: &Arc<dyn Store>) {
    let cutoff = now() - Duration::days(180);
    let mut events = Vec::new();
    for i in 0..5 {
        let mut old = remote(&format!("old0{i}"), "\"1\"", 0);
        old.start = Some(EventTime::at(cutoff - Duration::days(10 + i), None));
        old.end = Some(EventTime::at(cutoff - Duration::days(9 + i), None));
        events.push(old);
    }
    // All-day, ending (exclusively) on the cutoff's date: over.
    let mut edge = remote("edge0001", "\"1\"", 0);
    edge.start = Some(EventTime::date(cutoff.date_naive() - Duration::days(1)));
    edge.end = Some(EventTime::date(cutoff.date_naive()));
    // All-day, ending the day after: not over.
    let mut spans = remote("spans001", "\"1\"", 0);
    spans.start = Some(EventTime::date(cutoff.date_naive()));
    spans.end = Some(EventTime::date(cutoff.date_naive() + Duration::days(1)));
    events.extend([edge, spans, remote("fresh001", "\"1\"", 1)]);
    store
        .apply_sync_page(&page(events, full("r1"), Some("t")))
        .await
        .unwrap();
    // A write not yet confirmed by Google is never touched.
    let mut pending = local_event("p", cutoff - Duration::days(30));
    pending.created_at = now();
    store
        .insert_with_outbox(&pending, OutboxOp::Insert)
        .await
        .unwrap();

    let first = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    let second = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    let third = store.cancel_ended_before(cutoff, 4, now()).await.unwrap();
    assert_eq!((first, second, third), (4, 2, 0));
    assert_eq!(
        mirrored(store, "edge0001").await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        mirrored(store, "spans001").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        mirrored(store, "fresh001").await.unwrap().status,
        EventStatus::Confirmed
    );
    assert_eq!(
        store.get_event(pending.id).await.unwrap().unwrap().status,
        EventStatus::Confirmed
    );
}

pub async fn timestamps_are_kept_to_the_microsecond(store: &Arc<dyn Store>) {
    // Both databases keep microseconds: what is read back is what was
    // written, rounded down to them, and comparisons round alike.
    let fine = now() + Duration::nanoseconds(123_456_789);
    let micro = now() + Duration::nanoseconds(123_456_000);
    let mut event = local_event("ns", fine);
    event.created_at = fine;
    event.updated_at = fine;
    let entry = store
        .insert_with_outbox(&event, OutboxOp::Insert)
        .await
        .unwrap();
    assert_eq!((entry.created_at, entry.next_attempt_at), (micro, micro));
    let stored = store.get_event(event.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.created_at,
            stored.updated_at,
            stored.start.sort_key()
        ),
        (micro, micro, micro)
    );
    // Optimistic locking accepts the unrounded time the writer read.
    let mut edited = stored.clone();
    edited.summary = Some("edited".into());
    edited.updated_at = fine + Duration::seconds(1);
    store
        .update_with_outbox(
            &edited,
            fine,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_event(event.id).await.unwrap().unwrap().updated_at,
        micro + Duration::seconds(1)
    );
    let channel = WatchChannel {
        id: ChannelId::new("chan-ns").unwrap(),
        calendar_id: cal(),
        resource_id: None,
        expiration: fine,
        status: ChannelStatus::Pending,
        created_at: fine,
        last_notification_at: None,
        last_message_number: None,
    };
    store.insert_channel(&channel).await.unwrap();
    let got = store.get_channel(&channel.id).await.unwrap().unwrap();
    assert_eq!((got.expiration, got.created_at), (micro, micro));
    store.mark_dirty(&cal(), false).await.unwrap();
    let lease = store.lease_dirty("w", now(), fine).await.unwrap().unwrap();
    assert_eq!(lease.until, micro);
    assert_eq!(
        store.sync_state(&cal()).await.unwrap().unwrap().lease_until,
        Some(micro)
    );
}
