//! The slots a set of participant groups can meet in, from each calendar's
//! busy intervals.
//!
//! - Periods: the request's periods are merged first (they may overlap,
//!   touch or come unsorted); a slot lies wholly inside one merged period.
//! - Grid: slots start on the interval grid of their local day in the
//!   request's zone: the day's local midnight plus a whole number of
//!   intervals. With a 30-minute interval slots start at :00 and :30 local
//!   time, and a period starting at 09:10 has its first slot at 09:30. The
//!   grid restarts at every local midnight; a day with a daylight-saving
//!   change is walked in real time from its midnight (on a 23-hour day an
//!   hourly grid reads 00:00, 01:00, 03:00 local). Midnights a zone skips
//!   or repeats are read as in [`super::intervals`]. A slot starting at `s`
//!   lasts `duration` and is offered when `s + duration` is no later than
//!   its period's end.
//! - Free: a calendar is free for a slot `[s, e)` when none of its busy
//!   intervals overlaps `[s - buffer, e + buffer)`. A calendar with no
//!   entry in the busy map has no busy time; busy intervals whose end is
//!   not after their start are ignored.
//! - Groups: a slot is offered when every group is satisfied. `All`: every
//!   calendar of the group is free. `AtLeast(n)`: at least `n` of the
//!   group's (distinct) calendars are free; never when `n` exceeds the
//!   group's size, always when `n` is 0. A group with no calendars is
//!   satisfied, and so is a request with no groups.
//! - Answer: the slots sorted by start, each start once, at most
//!   `max_slots`; each names every participant calendar (across all
//!   groups, each once, in order of first appearance) free for it.
//! - A duration or interval that is not positive offers no slots; a
//!   negative buffer counts as none.
//!
//! Each calendar's busy intervals are widened by the buffer and merged once;
//! slots are then visited in order with a moving position per calendar, so
//! the work is linear in slots plus busy intervals.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::Interval;
use super::intervals::{local_midnight, merge};
use crate::ids::CalendarId;

/// How many calendars of a group must be free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    All,
    AtLeast(usize),
}

/// Calendars that count together (the team, the rooms, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantGroup {
    pub calendar_ids: Vec<CalendarId>,
    pub required: Required,
}

/// What a slot search asks for (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityRequest {
    pub groups: Vec<ParticipantGroup>,
    /// How long a slot lasts.
    pub duration: Duration,
    /// The grid slot starts lie on, from each local midnight.
    pub interval: Duration,
    /// Free time a calendar needs before and after a slot.
    pub buffer: Duration,
    /// Where slots may lie.
    pub periods: Vec<Interval>,
    /// The zone whose local midnights anchor the grid.
    pub zone: Tz,
}

/// One slot and the participant calendars free for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub interval: Interval,
    pub calendar_ids: Vec<CalendarId>,
}

/// The slots `request` can meet in, given each calendar's busy intervals
/// (any order, may overlap); at most `max_slots`, earliest first.
pub fn slots(
    request: &AvailabilityRequest,
    busy: &HashMap<CalendarId, Vec<Interval>>,
    max_slots: usize,
) -> Vec<Slot> {
    let mut found = Vec::new();
    let zero = Duration::zero();
    if max_slots == 0 || request.duration <= zero || request.interval <= zero {
        return found;
    }
    let buffer = request.buffer.max(zero);

    let mut participants: Vec<&CalendarId> = Vec::new();
    let mut groups: Vec<(Vec<usize>, Required)> = Vec::with_capacity(request.groups.len());
    for group in &request.groups {
        let mut members = Vec::with_capacity(group.calendar_ids.len());
        for id in &group.calendar_ids {
            let index = match participants.iter().position(|known| *known == id) {
                Some(index) => index,
                None => {
                    participants.push(id);
                    participants.len() - 1
                }
            };
            members.push(index);
        }
        members.sort_unstable();
        members.dedup();
        groups.push((members, group.required));
    }
    let mut calendars: Vec<Sweep> = participants
        .iter()
        .map(|id| Sweep::new(busy.get(*id).map(Vec::as_slice).unwrap_or_default(), buffer))
        .collect();
    let mut free = vec![false; participants.len()];

    for period in merge(request.periods.clone()) {
        for slot in Grid::new(period, request.duration, request.interval, request.zone) {
            for (calendar, is_free) in calendars.iter_mut().zip(free.iter_mut()) {
                *is_free = calendar.free(slot);
            }
            let satisfied = groups.iter().all(|(members, required)| {
                let free_members = members.iter().filter(|&&member| free[member]).count();
                match required {
                    Required::All => free_members == members.len(),
                    Required::AtLeast(needed) => free_members >= *needed,
                }
            });
            if satisfied {
                found.push(Slot {
                    interval: slot,
                    calendar_ids: participants
                        .iter()
                        .zip(&free)
                        .filter(|(_, is_free)| **is_free)
                        .map(|(id, _)| (*id).clone())
                        .collect(),
                });
                if found.len() == max_slots {
                    return found;
                }
            }
        }
    }
    found
}

/// Whether a calendar with these busy intervals (sorted by start and
/// merged, as [`merge`] leaves them) is free for `slot` with `buffer` on
/// both sides (a negative buffer counts as none). Logarithmic in the busy
/// intervals.
pub fn free_in(busy_sorted_merged: &[Interval], slot: Interval, buffer: Duration) -> bool {
    let buffer = buffer.max(Duration::zero());
    let from = earlier(slot.start, buffer);
    let to = later(slot.end, buffer);
    let first_not_before = busy_sorted_merged.partition_point(|busy| busy.end <= from);
    busy_sorted_merged
        .get(first_not_before)
        .is_none_or(|busy| busy.start >= to)
}

fn earlier(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(by)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    at.checked_add_signed(by)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// One calendar's busy time, widened by the buffer and merged, with the
/// position of the first interval that may still meet a later slot.
struct Sweep {
    busy: Vec<Interval>,
    next: usize,
}

impl Sweep {
    fn new(busy: &[Interval], buffer: Duration) -> Self {
        // A busy interval meets `[s - buffer, e + buffer)` exactly when the
        // interval widened by the buffer on both sides meets `[s, e)`.
        let widened = busy
            .iter()
            .filter(|interval| interval.start < interval.end)
            .map(|interval| Interval {
                start: earlier(interval.start, buffer),
                end: later(interval.end, buffer),
            })
            .collect();
        Self {
            busy: merge(widened),
            next: 0,
        }
    }

    /// Whether the calendar is free for `slot`; slots must come in order
    /// of start (and so of end, all lasting the same).
    fn free(&mut self, slot: Interval) -> bool {
        while self
            .busy
            .get(self.next)
            .is_some_and(|busy| busy.end <= slot.start)
        {
            self.next += 1;
        }
        self.busy
            .get(self.next)
            .is_none_or(|busy| busy.start >= slot.end)
    }
}

/// The slots of one period on the local-midnight grid, in order.
struct Grid {
    period: Interval,
    duration: Duration,
    interval: Duration,
    zone: Tz,
    /// The local day being walked, its midnight and the next midnight.
    day: Option<(NaiveDate, DateTime<Utc>, DateTime<Utc>)>,
    /// The next candidate start within the day.
    next: Option<DateTime<Utc>>,
}

impl Grid {
    fn new(period: Interval, duration: Duration, interval: Duration, zone: Tz) -> Self {
        // The day before the start's local date too: where a zone falls
        // back across midnight, an instant can read as the previous date
        // yet lie after this date's (first) midnight.
        let date = period.start.with_timezone(&zone).date_naive();
        let date = date.pred_opt().unwrap_or(date);
        let mut grid = Self {
            period,
            duration,
            interval,
            zone,
            day: None,
            next: None,
        };
        grid.enter(date);
        grid
    }

    /// Starts walking `date`: its first grid point at or after the period's
    /// start.
    fn enter(&mut self, date: NaiveDate) {
        self.day = None;
        self.next = None;
        let Some(midnight) = local_midnight(date, self.zone) else {
            return;
        };
        let Some(following) = date
            .succ_opt()
            .and_then(|next| local_midnight(next, self.zone))
        else {
            return;
        };
        self.day = Some((date, midnight, following));
        self.next = if self.period.start <= midnight {
            Some(midnight)
        } else {
            first_step_from(midnight, self.period.start, self.interval)
        };
    }
}

/// The first of `origin + k * step` (k a whole number) at or after `from`,
/// for `from` after `origin`.
fn first_step_from(
    origin: DateTime<Utc>,
    from: DateTime<Utc>,
    step: Duration,
) -> Option<DateTime<Utc>> {
    let elapsed = (from - origin).num_nanoseconds()?;
    let step_nanos = step.num_nanoseconds()?;
    let steps = elapsed.div_euclid(step_nanos) + i64::from(elapsed.rem_euclid(step_nanos) != 0);
    origin.checked_add_signed(Duration::nanoseconds(steps.checked_mul(step_nanos)?))
}

impl Iterator for Grid {
    type Item = Interval;

    fn next(&mut self) -> Option<Interval> {
        loop {
            let (date, midnight, following) = self.day?;
            // No slot of this day or any later one fits before the end.
            if later(midnight.max(self.period.start), self.duration) > self.period.end {
                self.day = None;
                return None;
            }
            if let Some(start) = self.next.filter(|start| *start < following) {
                let end = later(start, self.duration);
                if end > self.period.end {
                    self.day = None;
                    return None;
                }
                self.next = start.checked_add_signed(self.interval);
                return Interval::new(start, end);
            }
            match date.succ_opt() {
                Some(next_date) => self.enter(next_date),
                None => self.day = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};

    fn id(name: &str) -> CalendarId {
        CalendarId::new(format!("{name}@example.com")).unwrap()
    }

    fn utc(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 3, d, h, mi, 0).unwrap()
    }

    fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> Interval {
        Interval::new(from, to).unwrap()
    }

    fn minutes(n: i64) -> Duration {
        Duration::minutes(n)
    }

    fn request(groups: Vec<ParticipantGroup>, periods: Vec<Interval>) -> AvailabilityRequest {
        AvailabilityRequest {
            groups,
            duration: minutes(30),
            interval: minutes(30),
            buffer: Duration::zero(),
            periods,
            zone: Tz::UTC,
        }
    }

    fn all(names: &[&str]) -> ParticipantGroup {
        ParticipantGroup {
            calendar_ids: names.iter().map(|name| id(name)).collect(),
            required: Required::All,
        }
    }

    fn at_least(n: usize, names: &[&str]) -> ParticipantGroup {
        ParticipantGroup {
            required: Required::AtLeast(n),
            ..all(names)
        }
    }

    fn busy(entries: &[(&str, Vec<Interval>)]) -> HashMap<CalendarId, Vec<Interval>> {
        entries
            .iter()
            .map(|(name, intervals)| (id(name), intervals.clone()))
            .collect()
    }

    fn starts(found: &[Slot]) -> Vec<DateTime<Utc>> {
        found.iter().map(|slot| slot.interval.start).collect()
    }

    fn local(zone: Tz, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&zone).naive_local()
    }

    #[test]
    fn slots_start_on_the_grid_from_local_midnight() {
        let mut asked = request(vec![all(&["a"])], vec![span(utc(4, 9, 10), utc(4, 11, 0))]);
        let found = slots(&asked, &HashMap::new(), 100);
        assert_eq!(
            starts(&found),
            vec![utc(4, 9, 30), utc(4, 10, 0), utc(4, 10, 30)]
        );
        assert_eq!(found[0].interval.end, utc(4, 10, 0));
        assert_eq!(found[0].calendar_ids, vec![id("a")]);

        // Local midnight in Berlin (UTC+1 in March) is 23:00 UTC: an
        // hourly grid there lies on whole UTC hours, a 45-minute one too
        // only where 45-minute steps from 23:00 UTC land.
        asked.zone = Tz::Europe__Berlin;
        asked.interval = minutes(45);
        asked.duration = minutes(15);
        let found = slots(&asked, &HashMap::new(), 100);
        // Berlin midnight 3 March 23:00 UTC + 14 x 45 min = 09:30 UTC.
        assert_eq!(starts(&found), vec![utc(4, 9, 30), utc(4, 10, 15)]);
    }

    #[test]
    fn a_slot_must_end_inside_its_period() {
        let asked = AvailabilityRequest {
            duration: minutes(60),
            ..request(vec![all(&["a"])], vec![span(utc(4, 9, 0), utc(4, 9, 59))])
        };
        assert!(slots(&asked, &HashMap::new(), 10).is_empty());
        let asked = AvailabilityRequest {
            periods: vec![span(utc(4, 9, 0), utc(4, 11, 0))],
            ..asked
        };
        assert_eq!(
            starts(&slots(&asked, &HashMap::new(), 10)),
            vec![utc(4, 9, 0), utc(4, 9, 30), utc(4, 10, 0)]
        );
    }

    #[test]
    fn busy_time_and_buffer_exclude_slots() {
        let period = span(utc(4, 9, 0), utc(4, 12, 0));
        let taken = busy(&[("a", vec![span(utc(4, 10, 0), utc(4, 10, 30))])]);
        let mut asked = request(vec![all(&["a"])], vec![period]);
        assert_eq!(
            starts(&slots(&asked, &taken, 100)),
            vec![
                utc(4, 9, 0),
                utc(4, 9, 30),
                utc(4, 10, 30),
                utc(4, 11, 0),
                utc(4, 11, 30)
            ]
        );
        // Ten minutes either side: the slots touching the meeting now
        // reach into it.
        asked.buffer = minutes(10);
        assert_eq!(
            starts(&slots(&asked, &taken, 100)),
            vec![utc(4, 9, 0), utc(4, 11, 0), utc(4, 11, 30)]
        );
        // A buffer exactly filling the gap still leaves it free.
        let taken = busy(&[("a", vec![span(utc(4, 10, 0), utc(4, 10, 20))])]);
        let found = slots(&asked, &taken, 100);
        assert!(starts(&found).contains(&utc(4, 10, 30)));
        assert!(!starts(&found).contains(&utc(4, 9, 30)));
    }

    #[test]
    fn all_needs_everyone_and_at_least_needs_n() {
        let period = span(utc(4, 9, 0), utc(4, 11, 0));
        let taken = busy(&[
            ("a", vec![span(utc(4, 9, 0), utc(4, 9, 30))]),
            ("b", vec![span(utc(4, 9, 0), utc(4, 10, 0))]),
            ("c", vec![span(utc(4, 9, 0), utc(4, 10, 30))]),
        ]);
        let everyone = request(vec![all(&["a", "b", "c"])], vec![period]);
        assert_eq!(starts(&slots(&everyone, &taken, 100)), vec![utc(4, 10, 30)]);

        let two = request(vec![at_least(2, &["a", "b", "c"])], vec![period]);
        let found = slots(&two, &taken, 100);
        assert_eq!(starts(&found), vec![utc(4, 10, 0), utc(4, 10, 30)]);
        assert_eq!(found[0].calendar_ids, vec![id("a"), id("b")]);
        assert_eq!(found[1].calendar_ids, vec![id("a"), id("b"), id("c")]);

        let one = request(vec![at_least(1, &["a", "b", "c"])], vec![period]);
        assert_eq!(slots(&one, &taken, 100).len(), 3);
        let none_needed = request(vec![at_least(0, &["a", "b", "c"])], vec![period]);
        let found = slots(&none_needed, &taken, 100);
        assert_eq!(found.len(), 4);
        assert!(found[0].calendar_ids.is_empty());
        let too_many = request(vec![at_least(4, &["a", "b", "c"])], vec![period]);
        assert!(slots(&too_many, &HashMap::new(), 100).is_empty());
        // A calendar named twice in a group is still one calendar.
        let repeated = request(vec![at_least(2, &["c", "c"])], vec![period]);
        assert!(slots(&repeated, &HashMap::new(), 100).is_empty());
    }

    #[test]
    fn every_group_must_be_satisfied() {
        let period = span(utc(4, 9, 0), utc(4, 11, 0));
        let taken = busy(&[
            ("host", vec![span(utc(4, 9, 0), utc(4, 9, 30))]),
            ("room1", vec![span(utc(4, 9, 0), utc(4, 10, 30))]),
            ("room2", vec![span(utc(4, 9, 30), utc(4, 10, 0))]),
        ]);
        let asked = request(
            vec![all(&["host"]), at_least(1, &["room1", "room2"])],
            vec![period],
        );
        let found = slots(&asked, &taken, 100);
        assert_eq!(starts(&found), vec![utc(4, 10, 0), utc(4, 10, 30)]);
        assert_eq!(found[0].calendar_ids, vec![id("host"), id("room2")]);
        assert_eq!(
            found[1].calendar_ids,
            vec![id("host"), id("room1"), id("room2")]
        );
    }

    #[test]
    fn participants_are_listed_once_in_first_appearance_order() {
        let asked = request(
            vec![all(&["b", "a"]), at_least(1, &["a", "c", "b"])],
            vec![span(utc(4, 9, 0), utc(4, 9, 30))],
        );
        let found = slots(&asked, &HashMap::new(), 10);
        assert_eq!(found[0].calendar_ids, vec![id("b"), id("a"), id("c")]);
    }

    #[test]
    fn overlapping_periods_give_each_slot_once() {
        let asked = request(
            vec![all(&["a"])],
            vec![
                span(utc(4, 10, 0), utc(4, 11, 0)),
                span(utc(4, 9, 0), utc(4, 10, 30)),
                span(utc(4, 9, 0), utc(4, 10, 30)),
                span(utc(4, 13, 0), utc(4, 14, 0)),
                span(utc(4, 14, 0), utc(4, 14, 30)),
            ],
        );
        let asked = AvailabilityRequest {
            duration: minutes(60),
            ..asked
        };
        assert_eq!(
            starts(&slots(&asked, &HashMap::new(), 100)),
            vec![
                utc(4, 9, 0),
                utc(4, 9, 30),
                utc(4, 10, 0),
                utc(4, 13, 0),
                utc(4, 13, 30)
            ]
        );
    }

    #[test]
    fn max_slots_caps_the_answer_earliest_first() {
        let asked = request(vec![all(&["a"])], vec![span(utc(4, 0, 0), utc(6, 0, 0))]);
        assert_eq!(slots(&asked, &HashMap::new(), 1000).len(), 96);
        let capped = slots(&asked, &HashMap::new(), 3);
        assert_eq!(
            starts(&capped),
            vec![utc(4, 0, 0), utc(4, 0, 30), utc(4, 1, 0)]
        );
        assert!(slots(&asked, &HashMap::new(), 0).is_empty());
    }

    #[test]
    fn degenerate_requests_offer_nothing() {
        let period = span(utc(4, 9, 0), utc(4, 11, 0));
        let mut asked = request(vec![all(&["a"])], vec![period]);
        asked.interval = Duration::zero();
        assert!(slots(&asked, &HashMap::new(), 10).is_empty());
        asked.interval = minutes(30);
        asked.duration = minutes(-30);
        assert!(slots(&asked, &HashMap::new(), 10).is_empty());
        asked.duration = minutes(30);
        asked.buffer = minutes(-30);
        let taken = busy(&[("a", vec![span(utc(4, 9, 30), utc(4, 10, 0))])]);
        assert_eq!(
            starts(&slots(&asked, &taken, 10)),
            vec![utc(4, 9, 0), utc(4, 10, 0), utc(4, 10, 30)]
        );
        // No groups: every grid slot, naming nobody.
        let open = request(Vec::new(), vec![period]);
        let found = slots(&open, &HashMap::new(), 10);
        assert_eq!(found.len(), 4);
        assert!(found.iter().all(|slot| slot.calendar_ids.is_empty()));
    }

    #[test]
    fn grid_follows_local_time_across_spring_forward() {
        // Berlin, 31 March 2030: 02:00 CET jumps to 03:00 CEST; the day has
        // 23 hours. Hourly slots over local 00:00-06:00.
        let berlin = Tz::Europe__Berlin;
        let from = berlin
            .with_ymd_and_hms(2030, 3, 31, 0, 0, 0)
            .unwrap()
            .to_utc();
        let to = berlin
            .with_ymd_and_hms(2030, 3, 31, 6, 0, 0)
            .unwrap()
            .to_utc();
        let asked = AvailabilityRequest {
            duration: minutes(60),
            interval: minutes(60),
            zone: berlin,
            ..request(vec![all(&["a"])], vec![span(from, to)])
        };
        let found = slots(&asked, &HashMap::new(), 100);
        let hours: Vec<String> = found
            .iter()
            .map(|slot| {
                local(berlin, slot.interval.start)
                    .format("%H:%M")
                    .to_string()
            })
            .collect();
        assert_eq!(hours, ["00:00", "01:00", "03:00", "04:00", "05:00"]);
    }

    #[test]
    fn grid_restarts_at_each_local_midnight() {
        // A 90-minute grid on the 23-hour day: 16 steps fit (the last at
        // 23:30 local), then the next day's grid starts at its midnight,
        // not 90 minutes after 23:30.
        let berlin = Tz::Europe__Berlin;
        let from = berlin
            .with_ymd_and_hms(2030, 3, 31, 0, 0, 0)
            .unwrap()
            .to_utc();
        let to = berlin
            .with_ymd_and_hms(2030, 4, 1, 3, 0, 0)
            .unwrap()
            .to_utc();
        let asked = AvailabilityRequest {
            duration: minutes(30),
            interval: minutes(90),
            zone: berlin,
            ..request(vec![all(&["a"])], vec![span(from, to)])
        };
        let found = slots(&asked, &HashMap::new(), 100);
        let times: Vec<String> = found
            .iter()
            .map(|slot| {
                local(berlin, slot.interval.start)
                    .format("%d %H:%M")
                    .to_string()
            })
            .collect();
        assert_eq!(times.len(), 18, "{times:?}");
        assert_eq!(times[15], "31 23:30");
        assert_eq!(times[16], "01 00:00");
        assert_eq!(times[17], "01 01:30");
    }

    #[test]
    fn grid_counts_the_repeated_hour_on_fall_back() {
        // Berlin, 27 October 2030: 03:00 CEST falls back to 02:00 CET; the
        // day has 25 hourly slots.
        let berlin = Tz::Europe__Berlin;
        let from = berlin
            .with_ymd_and_hms(2030, 10, 27, 0, 0, 0)
            .unwrap()
            .to_utc();
        let to = berlin
            .with_ymd_and_hms(2030, 10, 28, 0, 0, 0)
            .unwrap()
            .to_utc();
        let asked = AvailabilityRequest {
            duration: minutes(60),
            interval: minutes(60),
            zone: berlin,
            ..request(vec![all(&["a"])], vec![span(from, to)])
        };
        let found = slots(&asked, &HashMap::new(), 100);
        assert_eq!(found.len(), 25);
        let hours: Vec<String> = found
            .iter()
            .map(|slot| local(berlin, slot.interval.start).format("%H").to_string())
            .collect();
        assert_eq!(&hours[..5], ["00", "01", "02", "02", "03"]);
    }

    #[test]
    fn free_in_checks_the_buffered_slot() {
        let taken = merge(vec![
            span(utc(4, 9, 0), utc(4, 10, 0)),
            span(utc(4, 12, 0), utc(4, 13, 0)),
        ]);
        let slot = span(utc(4, 10, 30), utc(4, 11, 0));
        assert!(free_in(&taken, slot, Duration::zero()));
        assert!(free_in(&taken, slot, minutes(30)));
        assert!(!free_in(&taken, slot, minutes(31)));
        assert!(!free_in(
            &taken,
            span(utc(4, 12, 59), utc(4, 13, 30)),
            Duration::zero()
        ));
        assert!(free_in(
            &taken,
            span(utc(4, 13, 0), utc(4, 13, 30)),
            Duration::zero()
        ));
        assert!(free_in(&[], slot, minutes(30)));
    }
}
