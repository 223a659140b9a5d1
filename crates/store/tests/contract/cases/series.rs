//! Recurring series and the whole Google event: the event's type, details
//! and verbatim copy, the window a series spans, the kind and series
//! filters, and retention of series and their exceptions.

use super::*;

/// A weekly series starting `days_from_now` days from now (negative: ago),
/// its occurrences an hour long.
pub fn series(id: &str, days_from_now: i64, rule: &str) -> RemoteEvent {
    let mut master = remote(id, "\"1\"", 0);
    let start = now() + Duration::days(days_from_now);
    master.start = Some(EventTime::at(start, None));
    master.end = Some(EventTime::at(start + Duration::hours(1), None));
    master.recurrence = vec![rule.into()];
    master
}

/// A changed occurrence of `master_id`, held at `start` for an hour.
pub fn exception(master_id: &str, start: DateTime<Utc>) -> RemoteEvent {
    let suffix = start.format("%Y%m%dT%H%M%SZ");
    let mut occurrence = remote(&format!("{master_id}_{suffix}"), "\"1\"", 0);
    occurrence.start = Some(EventTime::at(start, None));
    occurrence.end = Some(EventTime::at(start + Duration::hours(1), None));
    occurrence.recurring_event_id = Some(EventId::new(master_id).unwrap());
    occurrence.original_start = Some(EventTime::at(start, None));
    occurrence
}

async fn listed(store: &Arc<dyn Store>, query: EventQuery) -> Vec<String> {
    store
        .list_events(&EventQuery {
            limit: 1000,
            ..query
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.google_event_id.to_string())
        .collect()
}

fn google_resource() -> serde_json::Value {
    serde_json::json!({
        "kind": "calendar#event",
        "id": "typed001",
        "summary": "Fokuszeit ✓ 日本語 🎉 \"quoted\" \\ back\nslash\ttab",
        "zebra": {"ünïcødé kéy": ["a", {"deep": {"deeper": [1, 2, {"deepest": null}]}}]},
        "numbers": {
            "zero": 0,
            "negative": -42,
            "i64min": i64::MIN,
            "u64max": u64::MAX,
            "beyond_f64_precision": 9_007_199_254_740_993_u64,
            "fraction": 0.1,
            "small": 2.5e-3,
            "huge": 1e300,
            "one_point_oh": 1.0,
        },
        "flags": [true, false, null],
        "empty": {"object": {}, "array": [], "string": ""},
        "focusTimeProperties": {"autoDeclineMode": "declineOnlyNewConflictingInvitations"},
    })
}

pub async fn event_type_details_and_google_json_round_trip(store: &Arc<dyn Store>) {
    let mut typed = remote("typed001", "\"1\"", 3);
    typed.event_type = EventType::FocusTime;
    typed.details = EventDetails {
        reminders: Some(Reminders {
            use_default: false,
            overrides: vec![
                ReminderOverride {
                    method: "popup".into(),
                    minutes: 10,
                },
                ReminderOverride {
                    method: "email".into(),
                    minutes: 40_320,
                },
            ],
        }),
        visibility: Some("private".into()),
        transparency: Some("transparent".into()),
        color_id: Some("11".into()),
        hangout_link: Some("https://meet.google.com/abc-defg-hij".into()),
        conference: Some(Conference {
            request_id: Some("req-✓".into()),
            status: ConferenceStatus::Success,
            conference_id: Some("abc-defg-hij".into()),
            solution: Some("hangoutsMeet".into()),
            entry_points: vec![EntryPoint {
                entry_point_type: "video".into(),
                uri: "https://meet.google.com/abc-defg-hij".into(),
                label: Some("meet.google.com/abc-defg-hij".into()),
            }],
        }),
    };
    typed.google = Some(google_resource());
    // A type Google adds later is kept by name; a resource that is JSON null
    // is a value, not an absent one.
    let mut novel = remote("novel001", "\"1\"", 4);
    novel.event_type = EventType::parse("somethingNew");
    novel.google = Some(serde_json::Value::Null);
    let plain = remote("plain001", "\"1\"", 5);
    store
        .apply_sync_page(&page(
            vec![typed.clone(), novel.clone(), plain],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();

    let got = mirrored(store, "typed001").await.unwrap();
    assert_eq!(got.event_type, EventType::FocusTime);
    assert_eq!(got.details, typed.details);
    assert_eq!(got.google, typed.google);
    assert_eq!(store.get_event(got.id).await.unwrap().unwrap(), got);
    let got = mirrored(store, "novel001").await.unwrap();
    assert_eq!(got.event_type.as_str(), "somethingNew");
    assert_eq!(got.google, Some(serde_json::Value::Null));
    let got = mirrored(store, "plain001").await.unwrap();
    assert_eq!(
        (got.event_type, got.details, got.google),
        (EventType::Default, EventDetails::default(), None)
    );

    // A later page replaces all three (the sync upsert writes every column).
    let mut changed = typed.clone();
    changed.etag = Some(Etag::new("\"2\"").unwrap());
    changed.updated = Some(now());
    changed.event_type = EventType::OutOfOffice;
    changed.details = EventDetails {
        color_id: Some("3".into()),
        ..EventDetails::default()
    };
    changed.google = Some(serde_json::json!({"id": "typed001", "n": [1.5, -2]}));
    store
        .apply_sync_page(&page(vec![changed.clone()], SyncRun::Incremental, None))
        .await
        .unwrap();
    let got = mirrored(store, "typed001").await.unwrap();
    assert_eq!(got.event_type, EventType::OutOfOffice);
    assert_eq!(got.details, changed.details);
    assert_eq!(got.google, changed.google);

    // A local write keeps them too (insert and the optimistic update).
    let mut local = local_event("typed", now());
    local.details.visibility = Some("public".into());
    local.google = Some(serde_json::json!({"echo": "ünï"}));
    store
        .insert_with_outbox(&local, OutboxOp::Insert)
        .await
        .unwrap();
    let stored = store.get_event(local.id).await.unwrap().unwrap();
    assert_eq!(
        (&stored.details, &stored.google),
        (&local.details, &local.google)
    );
    let mut edited = stored.clone();
    edited.details.reminders = Some(Reminders {
        use_default: true,
        overrides: Vec::new(),
    });
    edited.google = None;
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
    let stored = store.get_event(local.id).await.unwrap().unwrap();
    assert_eq!((&stored.details, &stored.google), (&edited.details, &None));
}

pub async fn a_series_spans_to_its_last_occurrence(store: &Arc<dyn Store>) {
    // Endless, started 300 days ago; bounded, three weekly occurrences
    // from now (the last ends at +14 days +1 hour); bounded by UNTIL.
    let endless = series("endless1", -300, "RRULE:FREQ=WEEKLY");
    let counted = series("counted1", 0, "RRULE:FREQ=WEEKLY;COUNT=3");
    let until = series("until001", 0, "RRULE:FREQ=DAILY;UNTIL=20260605T235959Z");
    let later = series("later001", 30, "RRULE:FREQ=DAILY");
    store
        .apply_sync_page(&page(
            vec![endless, counted, until, later],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let window = |from: DateTime<Utc>, days: i64| EventQuery {
        ends_after: Some(from),
        starts_before: Some(from + Duration::days(days)),
        ..EventQuery::default()
    };
    // Ten years on, only the endless series still runs (and the one that
    // started later, also endless).
    let far = now() + Duration::days(3650);
    assert_eq!(
        listed(store, window(far, 7)).await,
        ["endless1", "later001"]
    );
    let last_counted = now() + Duration::days(14) + Duration::hours(1);
    assert_eq!(
        listed(store, window(last_counted - Duration::minutes(1), 1)).await,
        ["endless1", "counted1"],
        "the last occurrence is still running"
    );
    assert_eq!(
        listed(store, window(last_counted, 1)).await,
        ["endless1"],
        "ended exactly then: over"
    );
    // UNTIL 5 June 23:59:59: occurrences at noon up to 5 June, the last
    // ending 13:00 that day. (counted1 and until001 start together: their
    // order is their local ids'.)
    let until_end = Utc.with_ymd_and_hms(2026, 6, 5, 13, 0, 0).unwrap();
    let mut running = listed(store, window(until_end - Duration::seconds(1), 1)).await;
    running[1..].sort();
    assert_eq!(running, ["endless1", "counted1", "until001"]);
    assert_eq!(
        listed(store, window(until_end, 1)).await,
        ["endless1", "counted1"]
    );
    // Before a series starts it is not in the window: start still bounds.
    assert_eq!(
        listed(store, window(now() - Duration::days(400), 30)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        listed(store, window(now() + Duration::days(20), 20)).await,
        ["endless1", "later001"]
    );
}

pub async fn listing_filters_by_kind_type_and_series(store: &Arc<dyn Store>) {
    let mut focus = remote("focus001", "\"1\"", 1);
    focus.event_type = EventType::FocusTime;
    let first = now() + Duration::days(7);
    store
        .apply_sync_page(&page(
            vec![
                remote("single01", "\"1\"", 2),
                focus,
                series("seriesa1", 0, "RRULE:FREQ=WEEKLY"),
                series("seriesb1", 1, "RRULE:FREQ=DAILY;COUNT=5"),
                exception("seriesa1", first),
                exception("seriesa1", first + Duration::days(7)),
                exception("seriesb1", now() + Duration::days(2) + Duration::hours(3)),
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let kind = |kind| EventQuery {
        kind: Some(kind),
        ..EventQuery::default()
    };
    assert_eq!(
        listed(store, kind(EventKind::Master)).await,
        ["seriesa1", "seriesb1"]
    );
    assert_eq!(
        listed(store, kind(EventKind::Single)).await,
        ["focus001", "single01"]
    );
    let exceptions = listed(store, kind(EventKind::Exception)).await;
    assert_eq!(exceptions.len(), 3);
    assert!(exceptions.iter().all(|id| id.contains('_')));
    let of = |ids: &[&str]| EventQuery {
        of_series: ids.iter().map(|id| EventId::new(*id).unwrap()).collect(),
        ..EventQuery::default()
    };
    let of_a = listed(store, of(&["seriesa1"])).await;
    assert_eq!(of_a.len(), 2);
    assert!(of_a.iter().all(|id| id.starts_with("seriesa1_")));
    assert_eq!(listed(store, of(&["seriesa1", "seriesb1"])).await.len(), 3);
    assert!(listed(store, of(&["nosuch01"])).await.is_empty());
    // More ids than one statement binds: queried in chunks, merged in order
    // and limited.
    let mut many: Vec<String> = (0..2500).map(|i| format!("absent{i:05}")).collect();
    many.insert(1700, "seriesb1".into());
    many.push("seriesa1".into());
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let merged = listed(store, of(&many)).await;
    assert_eq!(merged.len(), 3);
    let earliest = store
        .list_events(&EventQuery {
            limit: 1,
            ..of(&many)
        })
        .await
        .unwrap();
    assert_eq!(
        earliest
            .iter()
            .map(|e| e.recurring_event_id.as_ref().unwrap().as_str())
            .collect::<Vec<_>>(),
        ["seriesb1"],
        "the earliest exception across chunks"
    );
    assert_eq!(
        listed(
            store,
            EventQuery {
                event_type: Some(EventType::FocusTime),
                ..EventQuery::default()
            }
        )
        .await,
        ["focus001"]
    );
    assert_eq!(
        listed(
            store,
            EventQuery {
                event_type: Some(EventType::Default),
                kind: Some(EventKind::Single),
                ..EventQuery::default()
            }
        )
        .await,
        ["single01"]
    );
    assert!(
        listed(
            store,
            EventQuery {
                event_type: Some(EventType::FocusTime),
                kind: Some(EventKind::Master),
                ..EventQuery::default()
            }
        )
        .await
        .is_empty()
    );
}

pub async fn retention_keeps_series_while_they_run(store: &Arc<dyn Store>) {
    let cutoff = now() - Duration::days(180);
    // Endless, started 300 days ago: runs on.
    let endless = series("endless1", -300, "RRULE:FREQ=WEEKLY");
    // Five weekly occurrences from 400 days ago: over 372 days ago.
    let bounded = series("bounded1", -400, "RRULE:FREQ=WEEKLY;COUNT=5");
    // Bounded, but its last occurrence ends after the cutoff.
    let running = series("running1", -200, "RRULE:FREQ=WEEKLY;COUNT=10");
    // Occurrences moved and over long ago, each of a series still running.
    let of_endless = exception("endless1", now() - Duration::days(290));
    let of_running = exception("running1", now() - Duration::days(199));
    let mut ended = remote("ended001", "\"1\"", 0);
    ended.start = Some(EventTime::at(cutoff - Duration::days(2), None));
    ended.end = Some(EventTime::at(cutoff - Duration::days(1), None));
    store
        .apply_sync_page(&page(
            vec![
                endless,
                bounded,
                running,
                of_endless.clone(),
                of_running.clone(),
                ended,
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let status = |id: &'static str| async move { mirrored(store, id).await.unwrap().status };

    // One at a time: the limit holds for all kinds together.
    assert_eq!(
        store.cancel_ended_before(cutoff, 1, now()).await.unwrap(),
        1
    );
    assert_eq!(
        store.cancel_ended_before(cutoff, 1, now()).await.unwrap(),
        1
    );
    assert_eq!(
        store.cancel_ended_before(cutoff, 1, now()).await.unwrap(),
        0
    );
    assert_eq!(status("bounded1").await, EventStatus::Cancelled);
    assert_eq!(status("ended001").await, EventStatus::Cancelled);
    assert_eq!(status("endless1").await, EventStatus::Confirmed);
    assert_eq!(status("running1").await, EventStatus::Confirmed);
    let of_endless_id = of_endless.id.as_str();
    assert_eq!(
        mirrored(store, of_endless_id).await.unwrap().status,
        EventStatus::Confirmed,
        "an exception stays while its master is active"
    );
    assert_eq!(
        mirrored(store, of_running.id.as_str())
            .await
            .unwrap()
            .status,
        EventStatus::Confirmed
    );

    // An exception of a series the mirror no longer has runs out alone.
    let orphan = exception("vanished", now() - Duration::days(250));
    store
        .apply_sync_page(&page(vec![orphan.clone()], SyncRun::Incremental, None))
        .await
        .unwrap();
    // Google cancels the endless series: its old exception goes with it,
    // at once (a cancelled master cancels its exceptions).
    let mut gone = RemoteEvent::cancelled_stub(EventId::new("endless1").unwrap());
    gone.updated = Some(now());
    store
        .apply_sync_page(&page(vec![gone], SyncRun::Incremental, None))
        .await
        .unwrap();
    assert_eq!(
        mirrored(store, of_endless_id).await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(
        store.cancel_ended_before(cutoff, 10, now()).await.unwrap(),
        1
    );
    assert_eq!(
        mirrored(store, orphan.id.as_str()).await.unwrap().status,
        EventStatus::Cancelled
    );
    assert_eq!(status("running1").await, EventStatus::Confirmed);
    assert_eq!(
        store.cancel_ended_before(cutoff, 10, now()).await.unwrap(),
        0
    );
}

pub async fn an_exception_whose_master_is_retired_follows_it(store: &Arc<dyn Store>) {
    let cutoff = now() - Duration::days(180);
    let bounded = series("bounded1", -400, "RRULE:FREQ=WEEKLY;COUNT=5");
    let moved = exception("bounded1", now() - Duration::days(390));
    store
        .apply_sync_page(&page(vec![bounded, moved.clone()], full("r1"), Some("t1")))
        .await
        .unwrap();
    // Within a call the master may still count as active; a later call
    // (the next cleanup run at the latest) retires the exception too.
    let mut total = 0;
    for _ in 0..3 {
        total += store.cancel_ended_before(cutoff, 10, now()).await.unwrap();
    }
    assert_eq!(total, 2);
    for id in ["bounded1", moved.id.as_str()] {
        assert_eq!(
            mirrored(store, id).await.unwrap().status,
            EventStatus::Cancelled
        );
    }
}

pub async fn a_cancelled_occurrence_is_stored_from_a_page(store: &Arc<dyn Store>) {
    store
        .apply_sync_page(&page(
            vec![series("seriesc1", 0, "RRULE:FREQ=DAILY")],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    // Google's stub for a cancelled occurrence: id, status, the series and
    // the occurrence's original start, nothing else.
    let original = now() + Duration::days(3);
    let mut stub = RemoteEvent::cancelled_stub(EventId::new("seriesc1_20260604T120000Z").unwrap());
    stub.recurring_event_id = Some(EventId::new("seriesc1").unwrap());
    stub.original_start = Some(EventTime::at(original, None));
    let outcome = store
        .apply_sync_page(&page(vec![stub], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    let got = mirrored(store, "seriesc1_20260604T120000Z").await.unwrap();
    assert_eq!(got.status, EventStatus::Cancelled);
    assert_eq!(got.recurring_event_id.unwrap().as_str(), "seriesc1");
    assert_eq!(got.original_start, Some(EventTime::at(original, None)));
    assert_eq!(got.start.sort_key(), original);
    let cancelled = store
        .list_events(&EventQuery {
            kind: Some(EventKind::Exception),
            status: Some(EventStatus::Cancelled),
            of_series: vec![EventId::new("seriesc1").unwrap()],
            calendar_id: Some(cal()),
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].id, got.id);
}

/// Google cancels a series' exceptions with their master; so does the
/// mirror, whether the master's cancellation comes from a sync page or
/// from a local write (an API delete, pushed later).
pub async fn a_cancelled_master_cancels_its_exceptions(store: &Arc<dyn Store>) {
    let moved = exception("seriesd1", now() + Duration::days(2));
    let other = exception("seriesd2", now() + Duration::days(2));
    store
        .apply_sync_page(&page(
            vec![
                series("seriesd1", 0, "RRULE:FREQ=DAILY"),
                moved.clone(),
                series("seriesd2", 0, "RRULE:FREQ=DAILY"),
                other.clone(),
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    let stub = RemoteEvent::cancelled_stub(EventId::new("seriesd1").unwrap());
    store
        .apply_sync_page(&page(vec![stub], SyncRun::Incremental, Some("t2")))
        .await
        .unwrap();
    let status = |id: &str| {
        let id = id.to_owned();
        async move { mirrored(store, &id).await.unwrap().status }
    };
    assert_eq!(status(moved.id.as_str()).await, EventStatus::Cancelled);
    assert_eq!(
        status(other.id.as_str()).await,
        EventStatus::Confirmed,
        "another series' exception"
    );

    // A local cancellation of the other master takes its exception along.
    let mut master = mirrored(store, "seriesd2").await.unwrap();
    let base = master.updated_at;
    master.status = EventStatus::Cancelled;
    master.updated_at = now() + Duration::seconds(1);
    store
        .update_with_outbox(&master, base, OutboxOp::Delete)
        .await
        .unwrap();
    assert_eq!(status(other.id.as_str()).await, EventStatus::Cancelled);

    // A write that finds the series deleted at Google settles it cancelled,
    // its exceptions with it.
    let third = exception("seriesd3", now() + Duration::days(2));
    store
        .apply_sync_page(&page(
            vec![series("seriesd3", 0, "RRULE:FREQ=DAILY"), third.clone()],
            SyncRun::Incremental,
            Some("t3"),
        ))
        .await
        .unwrap();
    let mut master = mirrored(store, "seriesd3").await.unwrap();
    let base = master.updated_at;
    master.summary = Some("renamed".into());
    master.push_state = PushState::Pending;
    master.updated_at = now() + Duration::seconds(2);
    store
        .update_with_outbox(
            &master,
            base,
            OutboxOp::Patch {
                if_match: None,
                intent: None,
            },
        )
        .await
        .unwrap();
    let rows = store
        .claim_outbox(
            "w",
            now() + Duration::seconds(3),
            now() + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    let entry = rows
        .iter()
        .find(|row| row.event_id == master.id)
        .expect("the master's row is due");
    let mut gone = master.clone();
    gone.status = EventStatus::Cancelled;
    gone.push_state = PushState::Synced;
    gone.updated_at = now() + Duration::seconds(4);
    store
        .settle_outbox(entry, &gone, PushFailure::Gone, "deleted at Google")
        .await
        .unwrap();
    assert_eq!(status(third.id.as_str()).await, EventStatus::Cancelled);
}
