use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use super::*;
use crate::event::{Event, EventStatus, EventTime, PushState};
use crate::ids::{CalendarId, EntityRef, Etag, EventId};

fn cal() -> CalendarId {
    CalendarId::new("cal@example.com").unwrap()
}

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0).unwrap()
}

#[test]
fn a_new_change_needs_a_mark_only_when_no_later_sync_is_due() {
    let mut state = SyncState::new(cal());
    assert!(!state.covers_new_change(t(10)), "clean: mark");
    state.dirty_seq = 3;
    state.clean_seq = 2;
    assert!(
        state.covers_new_change(t(10)),
        "dirty, no sync running: covered"
    );

    // A sync runs, having seen seq 3.
    state.lease_owner = Some("w".into());
    state.lease_until = Some(t(11));
    state.lease_seen_seq = Some(3);
    assert!(
        !state.covers_new_change(t(10)),
        "nothing marked since it started"
    );
    state.dirty_seq = 4;
    assert!(state.covers_new_change(t(10)), "a follow-up is already due");
    assert!(
        !state.covers_new_change(t(12)),
        "an expired lease proves nothing: mark"
    );
    state.lease_seen_seq = None;
    assert!(!state.covers_new_change(t(10)), "unknown seen seq: mark");
}

fn remote(id: &str, etag: &str, updated: DateTime<Utc>) -> RemoteEvent {
    RemoteEvent {
        start: Some(EventTime::at(t(10), None)),
        end: Some(EventTime::at(t(11), None)),
        etag: Some(Etag::new(etag).unwrap()),
        updated: Some(updated),
        status: EventStatus::Confirmed,
        summary: Some("Call".into()),
        ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
    }
}

fn inserted(change: &RemoteEvent) -> Event {
    match decide(None, change, &cal(), None, t(12)) {
        ApplyDecision::Insert(event) => *event,
        other => panic!("expected insert, got {other:?}"),
    }
}

#[test]
fn new_events_are_inserted_as_synced() {
    let event = inserted(&remote("e1", "\"1\"", t(1)));
    assert_eq!(event.google_event_id.as_str(), "e1");
    assert_eq!(event.push_state, PushState::Synced);
    assert_eq!(event.summary.as_deref(), Some("Call"));
}

#[test]
fn same_etag_is_unchanged_so_replaying_a_page_changes_nothing() {
    let change = remote("e1", "\"1\"", t(1));
    let have = inserted(&change);
    assert_eq!(
        decide(Some(&have), &change, &cal(), None, t(13)),
        ApplyDecision::Unchanged
    );
}

#[test]
fn a_stale_change_never_overwrites_a_newer_one() {
    let have = inserted(&remote("e1", "\"2\"", t(5)));
    let older = remote("e1", "\"1\"", t(4));
    assert_eq!(
        decide(Some(&have), &older, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::Stale)
    );
    let mut older_cancel = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
    older_cancel.updated = Some(t(3));
    assert_eq!(
        decide(Some(&have), &older_cancel, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::Stale)
    );
    let newer = remote("e1", "\"3\"", t(6));
    assert!(
        matches!(decide(Some(&have), &newer, &cal(), None, t(13)), ApplyDecision::Update(e) if e.id == have.id)
    );
}

#[test]
fn cancelled_stubs_apply_without_dates_and_ignore_retention() {
    let have = inserted(&remote("e1", "\"1\"", t(1)));
    let stub = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
    let far_future_cutoff = t(0) + Duration::days(3650);
    match decide(Some(&have), &stub, &cal(), Some(far_future_cutoff), t(13)) {
        ApplyDecision::Cancel(event) => {
            assert_eq!(event.status, EventStatus::Cancelled);
            assert_eq!(event.start, have.start, "the row keeps its content");
        }
        other => panic!("expected cancel, got {other:?}"),
    }
    assert_eq!(
        decide(None, &stub, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::UnknownCancelled)
    );
}

#[test]
fn a_cancelled_recurring_instance_cancels_the_mirrored_instance() {
    let mut instance = remote("series_20260501T100000Z", "\"1\"", t(1));
    instance.recurring_event_id = Some(EventId::new("series").unwrap());
    instance.original_start = Some(EventTime::at(t(10), None));
    let have = inserted(&instance);
    let stub = RemoteEvent {
        recurring_event_id: Some(EventId::new("series").unwrap()),
        original_start: Some(EventTime::at(t(10), None)),
        ..RemoteEvent::cancelled_stub(EventId::new("series_20260501T100000Z").unwrap())
    };
    assert!(matches!(
        decide(Some(&have), &stub, &cal(), None, t(13)),
        ApplyDecision::Cancel(_)
    ));
}

#[test]
fn retention_filters_only_new_events_with_dates() {
    let mut old = remote("e1", "\"1\"", t(1));
    old.start = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
    ));
    old.end = Some(EventTime::date(
        NaiveDate::from_ymd_opt(2020, 1, 2).unwrap(),
    ));
    assert_eq!(
        decide(None, &old, &cal(), Some(t(0)), t(13)),
        ApplyDecision::Skip(SkipReason::BeyondRetention)
    );
    assert!(matches!(
        decide(None, &old, &cal(), None, t(13)),
        ApplyDecision::Insert(_)
    ));
}

#[test]
fn all_day_dates_stay_dates() {
    let mut all_day = remote("e1", "\"1\"", t(1));
    let start = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    let end = NaiveDate::from_ymd_opt(2026, 5, 2).unwrap();
    all_day.start = Some(EventTime::date(start));
    all_day.end = Some(EventTime::date(end));
    let event = inserted(&all_day);
    assert_eq!(event.start, EventTime::date(start));
    assert_eq!(
        event.end,
        EventTime::date(end),
        "exclusive end kept as given"
    );
}

#[test]
fn pending_local_writes_are_not_overwritten_but_cancellations_win() {
    let mut have = inserted(&remote("e1", "\"1\"", t(1)));
    have.push_state = PushState::Pending;
    have.summary = Some("local edit".into());
    let remote_edit = remote("e1", "\"2\"", t(2));
    assert_eq!(
        decide(Some(&have), &remote_edit, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::LocalWritePending)
    );
    let stub = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
    assert!(matches!(
        decide(Some(&have), &stub, &cal(), None, t(13)),
        ApplyDecision::Cancel(_)
    ));
}

#[test]
fn entity_link_survives_a_remote_edit_that_dropped_it() {
    let mut first = remote("e1", "\"1\"", t(1));
    first.entity = Some(EntityRef::new("deal", "7").unwrap());
    let have = inserted(&first);
    let edit = remote("e1", "\"2\"", t(2));
    match decide(Some(&have), &edit, &cal(), None, t(13)) {
        ApplyDecision::Update(event) => {
            assert_eq!(event.entity, Some(EntityRef::new("deal", "7").unwrap()));
        }
        other => panic!("expected update, got {other:?}"),
    }
}

#[test]
fn malformed_events_are_skipped_not_fatal() {
    let mut bad = remote("e1", "\"1\"", t(1));
    bad.end = Some(EventTime::at(t(9), None));
    assert_eq!(
        decide(None, &bad, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::Malformed)
    );
    let mut no_end = remote("e2", "\"1\"", t(1));
    no_end.end = None;
    assert_eq!(
        decide(None, &no_end, &cal(), None, t(13)),
        ApplyDecision::Skip(SkipReason::Malformed)
    );
}

#[test]
fn failing_calendars_back_off() {
    let secs: Vec<u64> = [1, 2, 3, 8, 50]
        .iter()
        .map(|n| SyncState::retry_delay(*n).as_secs())
        .collect();
    assert_eq!(secs, vec![5, 10, 20, 600, 600]);
}

#[test]
fn dirty_marks_survive_a_sync_that_started_before_them() {
    let mut state = SyncState::new(cal());
    state.dirty_seq = 3;
    assert!(state.is_dirty());
    let seen = state.dirty_seq;
    state.dirty_seq += 1; // a notification arrives mid-sync
    state.clean_seq = seen; // the sync finishes
    assert!(
        state.is_dirty(),
        "the mid-sync notification needs a follow-up sync"
    );
}
