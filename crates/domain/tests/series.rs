//! Recurring series through the services on the in-memory ports: window
//! expansion as Google's `singleEvents=true` does it, and writes to one
//! occurrence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;

use calsync_domain::Error;
use calsync_domain::event::{
    Event, EventChanges, EventStatus, EventTime, EventType, NewEvent, NewEventFields, PushState,
    TimeZoneName,
};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::ports::{EventQuery, EventStore};
use calsync_domain::services::{EventService, Listed, OccurrenceQuery, OccurrenceRef};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use chrono::{DateTime, TimeZone, Utc};
use futures_executor::block_on;

struct World {
    store: Arc<MemoryStore>,
    events: EventService,
    cal: CalendarId,
}

fn world() -> World {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let events = EventService::new(google, store.clone(), store.clone(), clock);
    World {
        store,
        events,
        cal: CalendarId::new("team@example.com").unwrap(),
    }
}

fn berlin(y: i32, m: u32, d: u32, h: u32) -> EventTime {
    let at = chrono_tz_berlin(y, m, d, h);
    EventTime::at(at, Some(TimeZoneName::new("Europe/Berlin").unwrap()))
}

fn chrono_tz_berlin(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    // Berlin is UTC+1 before 29 March 2026 and UTC+2 after.
    let offset = if (m, d) >= (3, 29) && m < 10 { 2 } else { 1 };
    Utc.with_ymd_and_hms(y, m, d, h - offset, 0, 0).unwrap()
}

impl World {
    /// A weekly Monday 09:00 Berlin series from 2 March 2026, for deal 42.
    fn weekly(&self, lines: &[&str]) -> Event {
        let new = NewEvent::new(
            self.cal.clone(),
            EntityRef::new("deal", "42").unwrap(),
            berlin(2026, 3, 2, 9),
            berlin(2026, 3, 2, 10),
            NewEventFields {
                summary: Some("Standup".into()),
                recurrence: lines.iter().map(|l| (*l).to_owned()).collect(),
                ..NewEventFields::default()
            },
        )
        .unwrap();
        block_on(self.events.create(new)).unwrap().0
    }

    fn window(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Listed> {
        block_on(self.events.list_occurrences(&OccurrenceQuery {
            filter: EventQuery {
                entity: Some(EntityRef::new("deal", "42").unwrap()),
                ..EventQuery::default()
            },
            from: Some(from),
            until,
            after: None,
            limit: 100,
        }))
        .unwrap()
    }
}

fn starts(listed: &[Listed]) -> Vec<DateTime<Utc>> {
    listed.iter().map(|l| l.event().start.sort_key()).collect()
}

#[test]
fn a_window_in_the_fifth_week_lists_that_weeks_occurrence_across_dst() {
    let w = world();
    let master = w.weekly(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
    // The fifth Monday, 30 March, is after Berlin's DST change.
    let listed = w.window(
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 4, 5, 0, 0, 0).unwrap(),
    );
    assert_eq!(starts(&listed), [chrono_tz_berlin(2026, 3, 30, 9)]);
    let Listed::Occurrence {
        master: id,
        suffix,
        event,
    } = &listed[0]
    else {
        panic!("an occurrence, not a row: {listed:?}");
    };
    assert_eq!(*id, master.id);
    assert_eq!(suffix, "20260330T070000Z");
    assert_eq!(listed[0].id(), format!("{}_{suffix}", master.id));
    assert_eq!(
        event.google_event_id.as_str(),
        format!("{}_{suffix}", master.google_event_id)
    );
    assert_eq!(
        event.recurring_event_id.as_ref(),
        Some(&master.google_event_id)
    );
    assert_eq!(
        event.entity, master.entity,
        "occurrences keep the entity link"
    );
    assert!(event.recurrence.is_empty());
}

#[test]
fn a_moved_and_a_cancelled_occurrence_replace_their_slots() {
    let w = world();
    let master = w.weekly(&["RRULE:FREQ=WEEKLY;COUNT=6"]);
    let second = OccurrenceRef {
        master: master.id,
        suffix: "20260309T080000Z".into(),
    };
    let third = OccurrenceRef {
        master: master.id,
        suffix: "20260316T080000Z".into(),
    };
    let moved = EventChanges {
        start: Some(berlin(2026, 3, 10, 15)),
        end: Some(berlin(2026, 3, 10, 16)),
        ..EventChanges::default()
    };
    let (exception, _) = block_on(w.events.update_occurrence(&second, &moved, None)).unwrap();
    assert_eq!(exception.push_state, PushState::Pending);
    assert!(exception.is_exception());
    let (cancelled, entry) = block_on(w.events.cancel_occurrence(&third, None)).unwrap();
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert!(entry.is_some());

    let listed = w.window(
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
    );
    assert_eq!(
        starts(&listed),
        [
            chrono_tz_berlin(2026, 3, 2, 9),
            chrono_tz_berlin(2026, 3, 10, 15),
            chrono_tz_berlin(2026, 3, 23, 9),
            chrono_tz_berlin(2026, 3, 30, 9),
        ]
    );
    assert!(matches!(&listed[1], Listed::Row(row) if row.id == exception.id));

    // A second change to the same occurrence edits the exception row.
    let renamed = EventChanges {
        summary: Some(Some("Moved standup".into())),
        ..EventChanges::default()
    };
    let (again, _) = block_on(w.events.update_occurrence(&second, &renamed, None)).unwrap();
    assert_eq!(again.id, exception.id);
    // Cancelling a cancelled occurrence again changes nothing.
    let (still, entry) = block_on(w.events.cancel_occurrence(&third, None)).unwrap();
    assert_eq!(still.id, cancelled.id);
    assert!(entry.is_none());
}

#[test]
fn pages_resume_after_the_cursor_across_rows_and_occurrences() {
    let w = world();
    w.weekly(&["RRULE:FREQ=DAILY"]);
    let single = NewEvent::new(
        w.cal.clone(),
        EntityRef::new("deal", "42").unwrap(),
        berlin(2026, 3, 3, 12),
        berlin(2026, 3, 3, 13),
        NewEventFields::default(),
    )
    .unwrap();
    block_on(w.events.create(single)).unwrap();
    let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2026, 3, 8, 0, 0, 0).unwrap();
    let all = w.window(from, until);
    assert_eq!(all.len(), 7, "six daily occurrences and one single event");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = block_on(w.events.list_occurrences(&OccurrenceQuery {
            filter: EventQuery::default(),
            from: Some(from),
            until,
            after: after.clone(),
            limit: 2,
        }))
        .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some((last.event().start.sort_key(), last.id()));
        paged.extend(page);
    }
    let ids = |list: &[Listed]| list.iter().map(Listed::id).collect::<Vec<_>>();
    assert_eq!(ids(&paged), ids(&all));
}

#[test]
fn an_id_naming_no_occurrence_is_not_found() {
    let w = world();
    let master = w.weekly(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
    let tuesday = OccurrenceRef {
        master: master.id,
        suffix: "20260303T080000Z".into(),
    };
    let err = block_on(w.events.occurrence(&tuesday)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(OccurrenceRef::parse(&format!("{}_20260302T080000Z", master.id)).is_some());
    assert!(OccurrenceRef::parse("not-a-uuid_20260302T080000Z").is_none());
}

#[test]
fn events_of_restricted_types_are_not_changed() {
    let w = world();
    let mut birthday = w.weekly(&["RRULE:FREQ=YEARLY"]);
    birthday.event_type = EventType::Birthday;
    birthday.push_state = PushState::Synced;
    block_on(w.store.insert_with_outbox(
        &Event {
            id: calsync_domain::ids::LocalEventId::new(),
            google_event_id: calsync_domain::ids::EventId::new("birthday00001").unwrap(),
            ..birthday.clone()
        },
        calsync_domain::outbox::OutboxOp::Insert,
    ))
    .unwrap();
    let stored = block_on(w.store.list_events(&EventQuery {
        event_type: Some(EventType::Birthday),
        limit: 10,
        ..EventQuery::default()
    }))
    .unwrap();
    assert_eq!(stored.len(), 1, "the eventType filter finds it");
    let changes = EventChanges {
        summary: Some(Some("Party".into())),
        ..EventChanges::default()
    };
    let err = block_on(w.events.update(stored[0].id, &changes, None)).unwrap_err();
    assert!(
        matches!(&err, Error::Unprocessable { field: "eventType", reason } if reason.contains("birthday")),
        "{err}"
    );
    let err = block_on(w.events.cancel(stored[0].id, None)).unwrap_err();
    assert!(matches!(err, Error::Unprocessable { .. }), "{err}");
}

#[test]
fn a_bad_rule_is_refused_naming_its_line() {
    let w = world();
    let err = NewEvent::new(
        w.cal.clone(),
        EntityRef::new("deal", "42").unwrap(),
        berlin(2026, 3, 2, 9),
        berlin(2026, 3, 2, 10),
        NewEventFields {
            recurrence: vec!["RRULE:FREQ=WEEKLY".into(), "RRULE:FREQ=NEVER".into()],
            ..NewEventFields::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Unprocessable { field: "recurrence", reason } if reason.contains("line 2")),
        "{err}"
    );
}
