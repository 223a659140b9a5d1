//! Busy intervals: the span of time an event occupies, merged, clipped.
//!
//! A timed event occupies its start instant to its end instant. An all-day
//! event occupies its dates in the zone the question is asked in: from the
//! local midnight starting its first date to the local midnight starting
//! its (exclusive, as Google's) end date; one whose end date is not after
//! its start date occupies its start date. A day that has a daylight-saving
//! change is as long as it is locally (23 or 25 hours, say). Where a zone
//! skips midnight, a day starts at its first instant (the end of the gap);
//! where midnight happens twice, at the first.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::Interval;
use crate::event::EventTime;

/// `intervals` sorted by start, with overlapping and touching ones
/// (one's end is the next one's start) merged into one.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort_unstable_by_key(|interval| interval.start);
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match merged.last_mut() {
            Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
            _ => merged.push(next),
        }
    }
    merged
}

/// The parts of `intervals` inside `window`, in the same order; intervals
/// outside it are dropped.
pub fn clip(intervals: &[Interval], window: Interval) -> Vec<Interval> {
    intervals
        .iter()
        .filter_map(|interval| {
            Interval::new(
                interval.start.max(window.start),
                interval.end.min(window.end),
            )
        })
        .collect()
}

/// The span of time an event from `start` to `end` occupies, all-day
/// dates read in `zone` (see the module documentation); `None` when it is
/// empty (a zero-length timed event, an end before the start).
pub fn busy_interval(start: &EventTime, end: &EventTime, zone: Tz) -> Option<Interval> {
    let (from, to) = match (start, end) {
        (EventTime::AllDay { date: first }, EventTime::AllDay { date: after }) => {
            let after = if after > first {
                *after
            } else {
                first.succ_opt()?
            };
            (local_midnight(*first, zone)?, local_midnight(after, zone)?)
        }
        _ => (instant(start, zone)?, instant(end, zone)?),
    };
    Interval::new(from, to)
}

/// The instant `date` starts in `zone`: its local midnight, the earlier of
/// two, or the first instant after a gap that skips it. `None` only at the
/// ends of representable time.
pub fn local_midnight(date: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_time(NaiveTime::MIN);
    match zone.from_local_datetime(&midnight) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => first_at_or_after(midnight, zone),
    }
}

fn instant(time: &EventTime, zone: Tz) -> Option<DateTime<Utc>> {
    match time {
        EventTime::AllDay { date } => local_midnight(*date, zone),
        EventTime::At { at, .. } => Some(*at),
    }
}

/// The first instant whose local time in `zone` is `local` or later, for a
/// `local` time a gap skips. Found by bisection over whole seconds (every
/// offset and transition in the IANA data is whole seconds): chrono
/// reports only that the time does not exist.
fn first_at_or_after(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    // UTC offsets stay well within 30 hours, so the local time 30 hours
    // before `local` read as UTC is earlier, and 30 hours after is later.
    const SPAN: i64 = 30 * 3600;
    let target = local.and_utc().timestamp();
    let (mut before, mut after) = (target.checked_sub(SPAN)?, target.checked_add(SPAN)?);
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        let at = DateTime::from_timestamp(middle, 0)?;
        if at.with_timezone(&zone).naive_local() >= local {
            after = middle;
        } else {
            before = middle;
        }
    }
    DateTime::from_timestamp(after, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> Interval {
        Interval::new(from, to).unwrap()
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        utc(2030, 3, 4, hour, minute)
    }

    fn day(y: i32, m: u32, d: u32) -> EventTime {
        EventTime::date(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn merge_joins_touching_intervals() {
        let merged = merge(vec![span(at(9, 0), at(10, 0)), span(at(10, 0), at(11, 0))]);
        assert_eq!(merged, vec![span(at(9, 0), at(11, 0))]);
    }

    #[test]
    fn merge_keeps_gaps_apart() {
        let apart = vec![span(at(9, 0), at(10, 0)), span(at(10, 1), at(11, 0))];
        assert_eq!(merge(apart.clone()), apart);
    }

    #[test]
    fn merge_swallows_nested_intervals() {
        let merged = merge(vec![
            span(at(9, 0), at(17, 0)),
            span(at(10, 0), at(11, 0)),
            span(at(12, 0), at(13, 0)),
        ]);
        assert_eq!(merged, vec![span(at(9, 0), at(17, 0))]);
    }

    #[test]
    fn merge_sorts_unsorted_input() {
        let merged = merge(vec![
            span(at(15, 0), at(16, 0)),
            span(at(9, 0), at(10, 0)),
            span(at(9, 30), at(11, 0)),
            span(at(13, 0), at(14, 0)),
            span(at(15, 30), at(15, 45)),
        ]);
        assert_eq!(
            merged,
            vec![
                span(at(9, 0), at(11, 0)),
                span(at(13, 0), at(14, 0)),
                span(at(15, 0), at(16, 0)),
            ]
        );
        assert!(merge(Vec::new()).is_empty());
    }

    #[test]
    fn clip_keeps_the_parts_inside_the_window() {
        let window = span(at(10, 0), at(12, 0));
        let clipped = clip(
            &[
                span(at(8, 0), at(9, 0)),
                span(at(9, 0), at(10, 30)),
                span(at(10, 45), at(11, 0)),
                span(at(11, 30), at(13, 0)),
                span(at(12, 0), at(13, 0)),
            ],
            window,
        );
        assert_eq!(
            clipped,
            vec![
                span(at(10, 0), at(10, 30)),
                span(at(10, 45), at(11, 0)),
                span(at(11, 30), at(12, 0)),
            ]
        );
    }

    #[test]
    fn timed_event_occupies_its_instants() {
        let start = EventTime::at(at(9, 0), None);
        let end = EventTime::at(at(9, 45), None);
        assert_eq!(
            busy_interval(&start, &end, Tz::Europe__Berlin),
            Some(span(at(9, 0), at(9, 45)))
        );
        assert_eq!(busy_interval(&start, &start, Tz::UTC), None);
        assert_eq!(busy_interval(&end, &start, Tz::UTC), None);
    }

    #[test]
    fn all_day_event_occupies_local_days() {
        // 4 March 2030 in Berlin (UTC+1) starts at 23:00 UTC the day before.
        let busy = busy_interval(&day(2030, 3, 4), &day(2030, 3, 6), Tz::Europe__Berlin);
        assert_eq!(
            busy,
            Some(span(utc(2030, 3, 3, 23, 0), utc(2030, 3, 5, 23, 0)))
        );
        let busy = busy_interval(&day(2030, 3, 4), &day(2030, 3, 5), Tz::America__New_York);
        assert_eq!(
            busy,
            Some(span(utc(2030, 3, 4, 5, 0), utc(2030, 3, 5, 5, 0)))
        );
    }

    #[test]
    fn all_day_event_on_a_dst_day_lasts_that_long() {
        // Berlin springs forward on 31 March 2030: the day has 23 hours.
        let spring =
            busy_interval(&day(2030, 3, 31), &day(2030, 4, 1), Tz::Europe__Berlin).unwrap();
        assert_eq!(spring.start, utc(2030, 3, 30, 23, 0));
        assert_eq!(spring.end - spring.start, Duration::hours(23));
        // And falls back on 27 October 2030: 25 hours.
        let fall =
            busy_interval(&day(2030, 10, 27), &day(2030, 10, 28), Tz::Europe__Berlin).unwrap();
        assert_eq!(fall.start, utc(2030, 10, 26, 22, 0));
        assert_eq!(fall.end - fall.start, Duration::hours(25));
    }

    #[test]
    fn all_day_end_not_after_start_occupies_one_day() {
        let one = busy_interval(&day(2030, 3, 4), &day(2030, 3, 4), Tz::UTC);
        assert_eq!(
            one,
            Some(span(utc(2030, 3, 4, 0, 0), utc(2030, 3, 5, 0, 0)))
        );
        let backwards = busy_interval(&day(2030, 3, 4), &day(2030, 3, 1), Tz::UTC);
        assert_eq!(backwards, one);
    }

    #[test]
    fn skipped_midnight_starts_the_day_after_the_gap() {
        // São Paulo skipped 00:00-01:00 on 4 November 2018 (UTC-3 to UTC-2).
        let start = local_midnight(
            NaiveDate::from_ymd_opt(2018, 11, 4).unwrap(),
            Tz::America__Sao_Paulo,
        );
        assert_eq!(start, Some(utc(2018, 11, 4, 3, 0)));
        let busy =
            busy_interval(&day(2018, 11, 4), &day(2018, 11, 5), Tz::America__Sao_Paulo).unwrap();
        assert_eq!(busy.end - busy.start, Duration::hours(23));
        // Beirut skips midnight on its spring-forward Sunday (29 March 2026).
        let beirut = local_midnight(
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            Tz::Asia__Beirut,
        )
        .unwrap();
        assert_eq!(beirut, utc(2026, 3, 28, 22, 0));
        assert_eq!(
            beirut.with_timezone(&Tz::Asia__Beirut).naive_local(),
            NaiveDate::from_ymd_opt(2026, 3, 29)
                .unwrap()
                .and_hms_opt(1, 0, 0)
                .unwrap()
        );
    }

    #[test]
    fn ambiguous_midnight_is_the_earlier() {
        // Havana falls back from 01:00 to 00:00 on 1 November 2026
        // (UTC-4 to UTC-5): midnight happens at 04:00 and 05:00 UTC.
        let start = local_midnight(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            Tz::America__Havana,
        );
        assert_eq!(start, Some(utc(2026, 11, 1, 4, 0)));
    }

    #[test]
    fn mixed_times_read_the_date_at_local_midnight() {
        let end = EventTime::at(utc(2030, 3, 4, 12, 0), None);
        let busy = busy_interval(&day(2030, 3, 4), &end, Tz::Europe__Berlin);
        assert_eq!(
            busy,
            Some(span(utc(2030, 3, 3, 23, 0), utc(2030, 3, 4, 12, 0)))
        );
        let start = EventTime::at(utc(2030, 3, 4, 12, 0), None);
        let busy = busy_interval(&start, &day(2030, 3, 5), Tz::Europe__Berlin);
        assert_eq!(
            busy,
            Some(span(utc(2030, 3, 4, 12, 0), utc(2030, 3, 4, 23, 0)))
        );
        assert_eq!(
            busy_interval(&start, &day(2030, 3, 4), Tz::Europe__Berlin),
            None
        );
    }
}
