//! The series index answers every window exactly as reading the store
//! does: seeded series, then writes (exceptions moved into and out of
//! windows, cancelled occurrences, a changed rule, a cancelled series,
//! new series) replayed from the change feed between windows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::sync::Arc;

use calsync_domain::event::{EventChanges, EventTime, NewEvent, NewEventFields, TimeZoneName};
use calsync_domain::ids::{CalendarId, EntityRef};
use calsync_domain::ports::EventQuery;
use calsync_domain::services::{
    EventService, Listed, OccurrenceQuery, OccurrenceRef, SeriesIndex, list_occurrences,
    list_occurrences_indexed,
};
use calsync_domain::testing::{FakeCalendar, ManualClock, MemoryStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_executor::block_on;

/// A small deterministic PRNG (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct World {
    store: Arc<MemoryStore>,
    events: EventService,
    index: SeriesIndex,
    cal: CalendarId,
    base: DateTime<Utc>,
}

fn world() -> World {
    let base = Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap();
    let clock = ManualClock::new(base);
    let store = MemoryStore::new();
    let google = FakeCalendar::new(clock.clone());
    let events = EventService::new(google, store.clone(), store.clone(), clock.clone());
    let index = SeriesIndex::new(store.clone(), store.clone(), clock);
    World {
        store,
        events,
        index,
        cal: CalendarId::new("team@example.com").unwrap(),
        base,
    }
}

const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "Asia/Tokyo"];
const RULES: [&str; 5] = [
    "RRULE:FREQ=DAILY",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "RRULE:FREQ=DAILY;INTERVAL=3;COUNT=20",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15",
    "RRULE:FREQ=WEEKLY;UNTIL=20300501T000000Z",
];

impl World {
    fn series(&self, rng: &mut Rng) -> String {
        let all_day = rng.below(4) == 0;
        let start = self.base + Duration::hours(i64::try_from(rng.below(24 * 40)).unwrap())
            - Duration::days(20);
        let (start, end) = if all_day {
            let day = start.date_naive();
            (
                EventTime::date(day),
                EventTime::date(day + chrono::Days::new(1 + rng.below(2))),
            )
        } else {
            let zone = TimeZoneName::new(ZONES[rng.below(3) as usize]).unwrap();
            let length = Duration::minutes(15 * (1 + i64::try_from(rng.below(12)).unwrap()));
            (
                EventTime::at(start, Some(zone.clone())),
                EventTime::at(start + length, Some(zone)),
            )
        };
        let new = NewEvent::new(
            self.cal.clone(),
            EntityRef::new("deal", "42").unwrap(),
            start,
            end,
            NewEventFields {
                summary: Some("series".into()),
                recurrence: vec![RULES[rng.below(RULES.len() as u64) as usize].to_owned()],
                ..NewEventFields::default()
            },
        )
        .unwrap();
        block_on(self.events.create(new)).unwrap().0.id.to_string()
    }

    fn window(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> OccurrenceQuery {
        OccurrenceQuery {
            filter: EventQuery {
                calendar_id: Some(self.cal.clone()),
                ..EventQuery::default()
            },
            from: Some(from),
            until,
            after: None,
            limit: 500,
        }
    }

    /// Both paths over random windows must agree item for item, except
    /// that the index also lists exceptions moved into the window from
    /// outside their series' span (which reading the store misses: it
    /// reads only the series overlapping the window); and the index's
    /// pages, put together, are its whole window.
    fn agree(&self, rng: &mut Rng, round: &str) {
        for _ in 0..8 {
            let from = self.base + Duration::hours(i64::try_from(rng.below(24 * 60)).unwrap())
                - Duration::days(10);
            let until = from + Duration::hours(1 + i64::try_from(rng.below(24 * 14)).unwrap());
            let whole = self.window(from, until);
            let plain = block_on(list_occurrences(self.store.as_ref(), &whole)).unwrap();
            let indexed = block_on(list_occurrences_indexed(
                self.store.as_ref(),
                &self.index,
                &whole,
            ))
            .unwrap();
            let (extra, same): (Vec<Listed>, Vec<Listed>) =
                indexed.iter().cloned().partition(|l| !plain.contains(l));
            assert_eq!(same, plain, "{round}: {from}..{until}");
            for listed in &extra {
                let Listed::Row(row) = listed else {
                    panic!("{round}: only moved exceptions are extra: {listed:?}");
                };
                assert!(row.recurring_event_id.is_some(), "{round}: {row:?}");
            }
            // A window from the beginning of time (no timeMin).
            let open = OccurrenceQuery {
                from: None,
                ..whole.clone()
            };
            let plain_open = block_on(list_occurrences(self.store.as_ref(), &open)).unwrap();
            let indexed_open = block_on(list_occurrences_indexed(
                self.store.as_ref(),
                &self.index,
                &open,
            ))
            .unwrap();
            let kept: Vec<Listed> = indexed_open
                .iter()
                .filter(|l| plain_open.contains(l))
                .cloned()
                .collect();
            assert_eq!(kept, plain_open, "{round}: ..{until}");
            let mut paged = Vec::new();
            let mut query = whole.clone();
            query.limit = 1 + u32::try_from(rng.below(40)).unwrap();
            loop {
                let page = block_on(list_occurrences_indexed(
                    self.store.as_ref(),
                    &self.index,
                    &query,
                ))
                .unwrap();
                let full = page.len() == query.limit as usize;
                if let Some(last) = page.last() {
                    query.after = Some((last.event().start.sort_key(), last.id()));
                }
                paged.extend(page);
                if !full {
                    break;
                }
            }
            assert_eq!(paged, indexed, "{round}: pages of {from}..{until}");
        }
    }

    /// A random occurrence of `master` in the next weeks, if any.
    fn some_occurrence(&self, rng: &mut Rng, master: &str) -> Option<OccurrenceRef> {
        let from = self.base + Duration::days(i64::try_from(rng.below(30)).unwrap());
        let listed = block_on(list_occurrences(
            self.store.as_ref(),
            &self.window(from, from + Duration::days(10)),
        ))
        .unwrap();
        listed
            .iter()
            .filter_map(|l| match l {
                Listed::Occurrence {
                    master: m, suffix, ..
                } if m.to_string() == master => Some(OccurrenceRef {
                    master: *m,
                    suffix: suffix.clone(),
                }),
                _ => None,
            })
            .next()
    }
}

#[test]
fn the_index_lists_every_window_as_the_store_does_through_every_kind_of_write() {
    for seed in [7_u64, 1234, 99_991] {
        let mut rng = Rng(seed);
        let w = world();
        let mut masters: Vec<String> = (0..25).map(|_| w.series(&mut rng)).collect();
        w.agree(&mut rng, "seeded");

        for step in 0..30 {
            let master = masters[rng.below(masters.len() as u64) as usize].clone();
            match rng.below(5) {
                // Move an occurrence (possibly far out of the series' span).
                0 | 1 => {
                    if let Some(occurrence) = w.some_occurrence(&mut rng, &master) {
                        let shift = Duration::hours(i64::try_from(rng.below(24 * 20)).unwrap())
                            - Duration::days(10);
                        let listed = block_on(w.events.occurrence(&occurrence)).unwrap();
                        let event = listed.event();
                        let moved = |t: &EventTime| match t {
                            EventTime::AllDay { date } => EventTime::date(
                                *date
                                    + chrono::Days::new(
                                        u64::try_from(shift.num_days().abs()).unwrap(),
                                    ),
                            ),
                            EventTime::At { at, time_zone } => {
                                EventTime::at(*at + shift, time_zone.clone())
                            }
                        };
                        let changes = EventChanges {
                            summary: Some(Some(format!("moved {step}"))),
                            start: Some(moved(&event.start)),
                            end: Some(moved(&event.end)),
                            ..EventChanges::default()
                        };
                        block_on(w.events.update_occurrence(&occurrence, &changes, None)).unwrap();
                    }
                }
                // Cancel an occurrence.
                2 => {
                    if let Some(occurrence) = w.some_occurrence(&mut rng, &master) {
                        block_on(w.events.cancel_occurrence(&occurrence, None)).unwrap();
                    }
                }
                // Change the series' rule.
                3 => {
                    let id = calsync_domain::ids::LocalEventId::parse(&master).unwrap();
                    let changes = EventChanges {
                        recurrence: Some(vec![
                            RULES[rng.below(RULES.len() as u64) as usize].to_owned(),
                        ]),
                        ..EventChanges::default()
                    };
                    let _ = block_on(w.events.update(id, &changes, None));
                }
                // Cancel the series, and start a new one.
                _ => {
                    let id = calsync_domain::ids::LocalEventId::parse(&master).unwrap();
                    block_on(w.events.cancel(id, None)).unwrap();
                    masters.retain(|m| *m != master);
                    masters.push(w.series(&mut rng));
                }
            }
            w.agree(&mut rng, &format!("seed {seed} step {step}"));
        }
    }
}
