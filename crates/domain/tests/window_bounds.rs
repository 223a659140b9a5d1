//! Windows read from a lower bound on starts (the window's start less the
//! longest span the series index knows of) list exactly what reading
//! every earlier start lists: events that began weeks before the window
//! and still run, cancelled ones, series masters, in one calendar or all,
//! page by page, and after writes the index learns of from the feed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;

use calsync_domain::event::{Event, EventTime, NewEvent, NewEventFields, TimeZoneName};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::ports::EventQuery;
use calsync_domain::services::{
    EventService, OccurrenceQuery, SeriesIndex, list_occurrences, list_occurrences_indexed,
};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_executor::block_on;

struct World {
    store: Arc<MemoryStore>,
    /// Reads every start before the window's end.
    plain: EventService,
    /// Reads from the index's bound on.
    bounded: EventService,
    index: Arc<SeriesIndex>,
    base: DateTime<Utc>,
}

fn calendar(name: &str) -> CalendarId {
    CalendarId::new(format!("{name}@example.com")).unwrap()
}

fn world() -> World {
    let base = Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap();
    let clock = ManualClock::new(base);
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let plain = EventService::new(google.clone(), store.clone(), store.clone(), clock.clone());
    let index = Arc::new(SeriesIndex::new(
        store.clone(),
        store.clone(),
        clock.clone(),
    ));
    let bounded = EventService::new(google, store.clone(), store.clone(), clock)
        .with_series_index(index.clone());
    World {
        store,
        plain,
        bounded,
        index,
        base,
    }
}

impl World {
    fn create(&self, calendar: &CalendarId, start: DateTime<Utc>, length: Duration) -> Event {
        self.create_with(calendar, start, length, Vec::new())
    }

    fn create_with(
        &self,
        calendar: &CalendarId,
        start: DateTime<Utc>,
        length: Duration,
        recurrence: Vec<String>,
    ) -> Event {
        // A series repeats at a wall-clock time: Google wants its zone.
        let zone = (!recurrence.is_empty()).then(|| TimeZoneName::new("Europe/Berlin").unwrap());
        let new = NewEvent::new(
            calendar.clone(),
            EntityRef::new("deal", "42").unwrap(),
            EventTime::at(start, zone.clone()),
            EventTime::at(start + length, zone),
            NewEventFields {
                summary: Some("event".into()),
                recurrence,
                ..NewEventFields::default()
            },
        )
        .unwrap();
        block_on(self.bounded.create(new)).unwrap().0
    }

    /// Both services list `query` alike, whole and page by page.
    fn agree(&self, query: &EventQuery, what: &str) -> usize {
        let plain = block_on(self.plain.list(query)).unwrap();
        let bounded = block_on(self.bounded.list(query)).unwrap();
        let ids = |events: &[Event]| events.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(&bounded), ids(&plain), "{what}: {query:?}");
        let mut paged = Vec::new();
        let mut page = EventQuery {
            limit: 3,
            ..query.clone()
        };
        loop {
            let batch = block_on(self.bounded.list(&page)).unwrap();
            page.after = batch.last().map(|e| (e.start.sort_key(), e.id));
            let full = batch.len() == page.limit as usize;
            paged.extend(batch);
            if !full {
                break;
            }
        }
        assert_eq!(
            ids(&paged),
            ids(&block_on(self.plain.list(&EventQuery {
                limit: 10_000,
                ..query.clone()
            }))
            .unwrap()),
            "{what}: pages of {query:?}"
        );
        // The singleEvents listing too.
        let occurrences = OccurrenceQuery {
            filter: EventQuery {
                ends_after: None,
                starts_before: None,
                limit: 0,
                ..query.clone()
            },
            from: query.ends_after,
            until: query.starts_before.unwrap(),
            after: None,
            limit: 500,
        };
        let plain = block_on(list_occurrences(self.store.as_ref(), &occurrences)).unwrap();
        let indexed = block_on(list_occurrences_indexed(
            self.store.as_ref(),
            &self.index,
            &occurrences,
        ))
        .unwrap();
        assert_eq!(indexed, plain, "{what}: singleEvents {occurrences:?}");
        plain.len()
    }

    /// Windows a day to a week long over the month around `base`, in
    /// each calendar and in all, of every kind and of the single events.
    fn all_windows_agree(&self, what: &str) -> usize {
        let mut listed = 0;
        for calendar_id in [Some(calendar("a")), Some(calendar("b")), None] {
            for kind in [None, Some(calsync_domain::event::EventKind::Single)] {
                for day in (-10..20).step_by(3) {
                    for days in [1, 7] {
                        let from = self.base + Duration::days(day) + Duration::hours(5);
                        let query = EventQuery {
                            calendar_id: calendar_id.clone(),
                            kind,
                            ends_after: Some(from),
                            starts_before: Some(from + Duration::days(days)),
                            limit: 100,
                            ..EventQuery::default()
                        };
                        listed += self.agree(&query, what);
                    }
                }
            }
        }
        listed
    }
}

#[test]
fn a_window_lists_events_that_began_long_before_it() {
    let w = world();
    let (a, b) = (calendar("a"), calendar("b"));
    // Hour-long events every 13 hours over two months, in both calendars.
    for i in 0..110 {
        let start = w.base - Duration::days(30) + Duration::hours(13 * i);
        w.create(if i % 2 == 0 { &a } else { &b }, start, Duration::hours(1));
    }
    // A weekly series started long ago, in a.
    w.create_with(
        &a,
        w.base - Duration::days(200),
        Duration::hours(1),
        vec!["RRULE:FREQ=WEEKLY".into()],
    );
    // A seven-week event in b, begun six weeks before `base`: it overlaps
    // every window of b's first week, and only a bound that knows its
    // length reads it.
    let long = w.create(&b, w.base - Duration::weeks(6), Duration::weeks(7));
    let listed = w.all_windows_agree("seeded");
    assert!(listed > 100, "the windows must hold events: {listed}");
    let long_listed = block_on(w.bounded.list(&EventQuery {
        calendar_id: Some(b.clone()),
        ends_after: Some(w.base + Duration::days(3)),
        starts_before: Some(w.base + Duration::days(4)),
        limit: 100,
        ..EventQuery::default()
    }))
    .unwrap();
    assert_eq!(long_listed.first().map(|e| e.id), Some(long.id));
    // Learnt from the feed once the index is warm: a longer event in a,
    // then one cancelled (listed while no status is asked for).
    let longer = w.create(&a, w.base - Duration::weeks(10), Duration::weeks(11));
    w.all_windows_agree("a longer event written");
    let cancelled = w.create(&a, w.base - Duration::weeks(20), Duration::weeks(21));
    block_on(w.bounded.cancel(cancelled.id, None)).unwrap();
    w.all_windows_agree("a longer event cancelled");
    let in_a = block_on(w.bounded.list(&EventQuery {
        calendar_id: Some(a),
        ends_after: Some(w.base + Duration::days(5)),
        starts_before: Some(w.base + Duration::days(6)),
        limit: 100,
        ..EventQuery::default()
    }))
    .unwrap();
    let ids: Vec<_> = in_a.iter().map(|e| e.id).collect();
    assert!(
        ids.contains(&longer.id) && ids.contains(&cancelled.id),
        "{ids:?}"
    );
}
