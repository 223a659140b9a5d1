//! `freebusy::slots` against a brute-force reference over random requests,
//! and its speed on a realistic load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::collections::HashMap;
use std::time::Instant;

use calsync_domain::freebusy::availability::free_in;
use calsync_domain::freebusy::{
    AvailabilityRequest, Interval, ParticipantGroup, Required, Slot, merge, slots,
};
use calsync_domain::ids::CalendarId;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// SplitMix64: small, deterministic, good enough to shuffle test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64 - 1) as usize]
    }
}

/// Inputs lie on a 5-minute lattice so the reference can walk it.
const STEP: i64 = 5;

fn calendar(index: usize) -> CalendarId {
    CalendarId::new(format!("cal{index}@example.com")).unwrap()
}

/// Zones and days with daylight-saving changes (and one without).
const DAYS: [(Tz, (i32, u32, u32)); 9] = [
    (Tz::UTC, (2030, 3, 4)),
    (Tz::Europe__Berlin, (2030, 3, 31)),
    (Tz::Europe__Berlin, (2030, 10, 27)),
    (Tz::America__New_York, (2030, 3, 10)),
    (Tz::Asia__Kolkata, (2030, 3, 4)),
    (Tz::Australia__Lord_Howe, (2030, 4, 7)),
    (Tz::America__Sao_Paulo, (2018, 11, 4)),
    (Tz::America__Havana, (2026, 3, 8)),
    (Tz::America__Havana, (2026, 11, 1)),
];

struct Case {
    request: AvailabilityRequest,
    busy: HashMap<CalendarId, Vec<Interval>>,
    max_slots: usize,
}

fn random_case(rng: &mut Rng) -> Case {
    let (zone, (y, m, d)) = *rng.pick(&DAYS);
    let origin = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_time(NaiveTime::MIN)
        .and_utc()
        - Duration::days(1);
    let minutes = |n: i64| Duration::minutes(n * STEP);
    // A random lattice span within three days of the origin.
    let span = |rng: &mut Rng, longest: i64| {
        let start = rng.range(0, 3 * 24 * 60 / STEP);
        let length = rng.range(1, longest);
        Interval::new(origin + minutes(start), origin + minutes(start + length)).unwrap()
    };
    let periods = (0..rng.range(1, 4))
        .map(|_| span(rng, 24 * 60 / STEP))
        .collect();
    let pool = 6;
    let groups = (0..rng.range(0, 3))
        .map(|_| ParticipantGroup {
            calendar_ids: (0..rng.range(0, 4))
                .map(|_| calendar(rng.range(0, pool - 1) as usize))
                .collect(),
            required: if rng.range(0, 1) == 0 {
                Required::All
            } else {
                Required::AtLeast(rng.range(0, 5) as usize)
            },
        })
        .collect();
    let mut busy = HashMap::new();
    for index in 0..pool {
        // Some calendars have no entry at all.
        if rng.range(0, 4) > 0 {
            let intervals = (0..rng.range(0, 15))
                .map(|_| span(rng, 4 * 60 / STEP))
                .collect();
            busy.insert(calendar(index as usize), intervals);
        }
    }
    let request = AvailabilityRequest {
        groups,
        duration: minutes(rng.range(1, 24)),
        interval: Duration::minutes(*rng.pick(&[5, 10, 15, 20, 25, 30, 45, 60, 90])),
        buffer: minutes(rng.range(0, 6)),
        periods,
        zone,
    };
    let max_slots = if rng.range(0, 3) == 0 {
        rng.range(1, 20) as usize
    } else {
        usize::MAX
    };
    Case {
        request,
        busy,
        max_slots,
    }
}

/// The instant `date` starts in `zone`, found by walking the lattice
/// (independent of the implementation's bisection): the first 5-minute
/// point whose local time is that midnight or later.
fn reference_midnight(
    date: NaiveDate,
    zone: Tz,
    cache: &mut HashMap<NaiveDate, DateTime<Utc>>,
) -> DateTime<Utc> {
    *cache.entry(date).or_insert_with(|| {
        let midnight = date.and_time(NaiveTime::MIN);
        if let Some(at) = zone.from_local_datetime(&midnight).earliest() {
            return at.to_utc();
        }
        let mut at = midnight.and_utc() - Duration::hours(30);
        while at.with_timezone(&zone).naive_local() < midnight {
            at += Duration::minutes(STEP);
        }
        at
    })
}

/// Every lattice point, checked against the stated rules one by one.
fn reference_slots(case: &Case) -> Vec<Slot> {
    let request = &case.request;
    let mut participants: Vec<CalendarId> = Vec::new();
    for group in &request.groups {
        for id in &group.calendar_ids {
            if !participants.contains(id) {
                participants.push(id.clone());
            }
        }
    }
    let first = request.periods.iter().map(|p| p.start).min().unwrap();
    let last = request.periods.iter().map(|p| p.end).max().unwrap();
    let mut midnights = HashMap::new();
    let mut found = Vec::new();
    let mut start = first;
    while start < last {
        let end = start + request.duration;
        let mut date = start.with_timezone(&request.zone).date_naive();
        if reference_midnight(date, request.zone, &mut midnights) > start {
            date = date.pred_opt().unwrap();
        }
        if reference_midnight(date.succ_opt().unwrap(), request.zone, &mut midnights) <= start {
            date = date.succ_opt().unwrap();
        }
        let since_midnight = start - reference_midnight(date, request.zone, &mut midnights);
        let on_grid = since_midnight.num_seconds() % request.interval.num_seconds() == 0;
        // Covered by the union of the periods, walked without merging.
        let mut reached = start;
        while reached < end {
            let Some(further) = request
                .periods
                .iter()
                .filter(|p| p.start <= reached && reached < p.end)
                .map(|p| p.end)
                .max()
            else {
                break;
            };
            reached = further;
        }
        let covered = reached >= end;
        if on_grid && covered {
            let buffered_from = start - request.buffer;
            let buffered_to = end + request.buffer;
            let is_free = |id: &CalendarId| {
                case.busy.get(id).is_none_or(|intervals| {
                    !intervals
                        .iter()
                        .any(|b| b.start < buffered_to && buffered_from < b.end)
                })
            };
            let satisfied = request.groups.iter().all(|group| {
                let mut members = group.calendar_ids.clone();
                members.sort();
                members.dedup();
                let free = members.iter().filter(|id| is_free(id)).count();
                match group.required {
                    Required::All => free == members.len(),
                    Required::AtLeast(n) => free >= n,
                }
            });
            if satisfied {
                found.push(Slot {
                    interval: Interval::new(start, end).unwrap(),
                    calendar_ids: participants
                        .iter()
                        .filter(|id| is_free(id))
                        .cloned()
                        .collect(),
                });
            }
        }
        start += Duration::minutes(STEP);
    }
    found.truncate(case.max_slots);
    found
}

/// 10 calendars, 14 days, a 15-minute grid, 3,000 busy intervals.
fn heavy_case() -> Case {
    let mut rng = Rng(7);
    let origin = Utc.with_ymd_and_hms(2030, 3, 25, 0, 0, 0).unwrap();
    let ids: Vec<CalendarId> = (0..10).map(calendar).collect();
    let busy = ids
        .iter()
        .map(|id| {
            let intervals = (0..300)
                .map(|_| {
                    let start = origin + Duration::minutes(rng.range(0, 14 * 24 * 60));
                    Interval::new(start, start + Duration::minutes(rng.range(15, 90))).unwrap()
                })
                .collect();
            (id.clone(), intervals)
        })
        .collect();
    let request = AvailabilityRequest {
        groups: vec![
            ParticipantGroup {
                calendar_ids: ids[..5].to_vec(),
                required: Required::AtLeast(3),
            },
            ParticipantGroup {
                calendar_ids: ids[5..].to_vec(),
                required: Required::AtLeast(1),
            },
        ],
        duration: Duration::minutes(30),
        interval: Duration::minutes(15),
        buffer: Duration::minutes(5),
        periods: vec![Interval::new(origin, origin + Duration::days(14)).unwrap()],
        zone: Tz::Europe__Berlin,
    };
    Case {
        request,
        busy,
        max_slots: usize::MAX,
    }
}

// Named so that `cargo test freebusy` selects these too.
mod freebusy {
    use super::*;

    #[test]
    fn slots_match_a_brute_force_reference() {
        let mut rng = Rng(0x5eed_f00d);
        let mut offered = 0;
        for round in 0..600 {
            let case = random_case(&mut rng);
            let expected = reference_slots(&case);
            let actual = slots(&case.request, &case.busy, case.max_slots);
            assert_eq!(
                actual, expected,
                "round {round}: request {:?}, busy {:?}, max {}",
                case.request, case.busy, case.max_slots
            );
            offered += actual.len();
        }
        // The random inputs must exercise both answers, not only empty ones.
        assert!(offered > 1000, "only {offered} slots offered in all rounds");
    }

    #[test]
    fn free_in_matches_a_scan() {
        let mut rng = Rng(42);
        let at = |n: i64| Utc.with_ymd_and_hms(2030, 3, 4, 0, 0, 0).unwrap() + Duration::minutes(n);
        for _ in 0..500 {
            let busy: Vec<Interval> = (0..rng.range(0, 20))
                .map(|_| {
                    let start = rng.range(0, 1000);
                    Interval::new(at(start), at(start + rng.range(1, 120))).unwrap()
                })
                .collect();
            let merged = merge(busy.clone());
            let start = rng.range(0, 1000);
            let slot = Interval::new(at(start), at(start + rng.range(1, 90))).unwrap();
            let buffer = Duration::minutes(rng.range(0, 30));
            let scanned = !busy
                .iter()
                .any(|b| b.start < slot.end + buffer && slot.start - buffer < b.end);
            assert_eq!(free_in(&merged, slot, buffer), scanned);
        }
    }

    #[test]
    fn heavy_load_matches_the_reference() {
        let case = heavy_case();
        let found = slots(&case.request, &case.busy, case.max_slots);
        assert!(!found.is_empty());
        assert_eq!(found, reference_slots(&case));
    }

    /// Timing needs an optimised build:
    /// `cargo test -p calsync-domain --release --test freebusy_rules -- --ignored`.
    #[test]
    #[ignore = "timing; run in release"]
    fn heavy_load_is_fast() {
        let case = heavy_case();
        let runs = 50;
        let began = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(slots(&case.request, &case.busy, case.max_slots));
        }
        let each = began.elapsed() / runs;
        println!("slots over 10 calendars x 14 days: {each:?} per run");
        assert!(each.as_micros() < 5_000, "{each:?} per run");
    }
}
