//! Recurring series (RFC 5545 RRULE, EXDATE and RDATE lines, as Google's
//! `recurrence` holds them), expanded with the `rrule` crate in the series'
//! time zone, so wall-clock times hold across DST as Google keeps them
//! (recurring events guide:
//! https://developers.google.com/workspace/calendar/api/guides/recurringevents).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use rrule::{RRuleSet, Tz};

use crate::error::{Error, Result};
use crate::event::{EventTime, TimeZoneName};

/// Most lines a `recurrence` may hold, and most occurrences walked to find
/// a bounded series' end; past it the series counts as endless (kept).
pub const MAX_LINES: usize = 50;
const MAX_WALK: usize = 100_000;

/// One occurrence of a series: when it was scheduled (`original_start`,
/// which names it) and when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub original_start: EventTime,
    pub start: EventTime,
    pub end: EventTime,
}

impl Occurrence {
    /// The suffix Google gives the occurrence's id: `{masterId}_{suffix}`.
    pub fn suffix(&self) -> String {
        instance_suffix(&self.original_start)
    }
}

/// `YYYYMMDDTHHMMSSZ` (the original start in UTC), or `YYYYMMDD` for an
/// all-day series: Google's instance id is `{masterId}_{suffix}` (field notes).
pub fn instance_suffix(original_start: &EventTime) -> String {
    match original_start {
        EventTime::AllDay { date } => date.format("%Y%m%d").to_string(),
        EventTime::At { at, .. } => at.format("%Y%m%dT%H%M%SZ").to_string(),
    }
}

/// Splits `{masterId}_{suffix}` into its parts if `suffix` has an
/// instance suffix's shape.
pub fn split_instance_id(id: &str) -> Option<(&str, &str)> {
    let (master, suffix) = id.rsplit_once('_')?;
    let shaped = match suffix.len() {
        8 => suffix.bytes().all(|b| b.is_ascii_digit()),
        16 => {
            let b = suffix.as_bytes();
            b[..8].iter().all(u8::is_ascii_digit)
                && b[8] == b'T'
                && b[9..15].iter().all(u8::is_ascii_digit)
                && b[15] == b'Z'
        }
        _ => false,
    };
    (shaped && !master.is_empty()).then_some((master, suffix))
}

/// A series: its rule set anchored at the master's start, and the length
/// of each occurrence.
#[derive(Debug, Clone)]
pub struct Series {
    set: RRuleSet,
    all_day: bool,
    zone: Option<TimeZoneName>,
    length: Duration,
    bounded: bool,
}

impl Series {
    /// Parses a master's `recurrence` against its start and end. A bad line
    /// is `Unprocessable` on `recurrence`, naming the line.
    pub fn new(lines: &[String], start: &EventTime, end: &EventTime) -> Result<Self> {
        if lines.len() > MAX_LINES {
            return Err(Error::unprocessable(
                "recurrence",
                format!("at most {MAX_LINES} lines"),
            ));
        }
        let (anchor, all_day, zone) = anchor(start)?;
        let mut text = String::new();
        let mut bounded = true;
        let mut rules = 0;
        for (index, line) in lines.iter().enumerate() {
            let named = |why: String| {
                Error::unprocessable(
                    "recurrence",
                    format!("line {} ({line:?}): {why}", index + 1),
                )
            };
            let upper = line.trim_start().to_ascii_uppercase();
            let known = ["RRULE", "EXDATE", "RDATE", "EXRULE"]
                .iter()
                .any(|name| upper.starts_with(name));
            if !known {
                return Err(named("must be an RRULE, EXDATE or RDATE line".into()));
            }
            if upper.starts_with("EXRULE") {
                // Deprecated in RFC 5545 and not accepted by Google.
                return Err(named("EXRULE is not supported; use EXDATE".into()));
            }
            let normalized = normalize(line);
            if upper.starts_with("RRULE") {
                rules += 1;
                if !(upper.contains("COUNT=") || upper.contains("UNTIL=")) {
                    bounded = false;
                }
            }
            // `rrule` parses a text that generates occurrences, so an
            // EXDATE line is checked beside a one-off rule, to name it.
            let alone = if upper.starts_with("EXDATE") {
                format!("RRULE:FREQ=DAILY;COUNT=1\n{normalized}")
            } else {
                normalized.clone()
            };
            RRuleSet::new(anchor)
                .set_from_string(&alone)
                .map_err(|error| named(error.to_string()))?;
            text.push_str(&normalized);
            text.push('\n');
        }
        let has_rdate = lines
            .iter()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("RDATE"));
        if rules == 0 && !has_rdate {
            return Err(Error::unprocessable(
                "recurrence",
                "needs an RRULE or RDATE line",
            ));
        }
        let set = RRuleSet::new(anchor)
            .set_from_string(text.trim_end())
            .map_err(|error| Error::unprocessable("recurrence", error.to_string()))?;
        let length = match (start, end) {
            (EventTime::AllDay { date: s }, EventTime::AllDay { date: e }) => {
                Duration::days((*e - *s).num_days().max(1))
            }
            _ => (end.sort_key() - start.sort_key()).max(Duration::zero()),
        };
        Ok(Self {
            set,
            all_day,
            zone,
            length,
            bounded,
        })
    }

    /// Whether the series ends (every RRULE has COUNT or UNTIL).
    pub fn is_bounded(&self) -> bool {
        self.bounded
    }

    /// Occurrences in order, from the first.
    pub fn occurrences(&self) -> impl Iterator<Item = Occurrence> + '_ {
        (&self.set).into_iter().map(|at| self.occurrence(at))
    }

    /// Occurrences that end after `from` and start before `until`, in order.
    pub fn between(
        &self,
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> impl Iterator<Item = Occurrence> + '_ {
        self.occurrences()
            .skip_while(move |o| from.is_some_and(|from| !ends_after(&o.end, from)))
            .take_while(move |o| until.is_none_or(|until| o.start.sort_key() < until))
    }

    /// The occurrence `suffix` names, if the series has one.
    pub fn find(&self, suffix: &str) -> Option<Occurrence> {
        let target = parse_suffix(suffix)?;
        self.occurrences()
            .take_while(|o| o.original_start.sort_key() <= target)
            .find(|o| o.original_start.sort_key() == target)
    }

    /// When the last occurrence ends, or `None` for an endless series (or
    /// one too long to walk).
    pub fn last_end(&self) -> Option<DateTime<Utc>> {
        if !self.bounded {
            return None;
        }
        let mut last = None;
        for (walked, occurrence) in self.occurrences().enumerate() {
            if walked >= MAX_WALK {
                return None;
            }
            last = Some(occurrence.end.sort_key());
        }
        last
    }

    fn occurrence(&self, at: DateTime<Tz>) -> Occurrence {
        let utc = at.with_timezone(&Utc);
        if self.all_day {
            let date = utc.date_naive();
            let end = date
                .checked_add_signed(self.length)
                .unwrap_or(NaiveDate::MAX);
            return Occurrence {
                original_start: EventTime::date(date),
                start: EventTime::date(date),
                end: EventTime::date(end),
            };
        }
        let end = utc.checked_add_signed(self.length).unwrap_or(utc);
        Occurrence {
            original_start: EventTime::at(utc, self.zone.clone()),
            start: EventTime::at(utc, self.zone.clone()),
            end: EventTime::at(end, self.zone.clone()),
        }
    }
}

/// The series' anchor: the start in its zone (UTC when it names none), or
/// an all-day start as midnight UTC (dates recur as dates).
fn anchor(start: &EventTime) -> Result<(DateTime<Tz>, bool, Option<TimeZoneName>)> {
    match start {
        EventTime::AllDay { date } => Ok((
            Tz::UTC.from_utc_datetime(&date.and_time(NaiveTime::MIN)),
            true,
            None,
        )),
        EventTime::At { at, time_zone } => {
            let zone = match time_zone {
                None => Tz::UTC,
                Some(name) => name
                    .as_str()
                    .parse::<chrono_tz::Tz>()
                    .map(Tz::Tz)
                    .map_err(|_| {
                        Error::unprocessable(
                            "timeZone",
                            format!("{} is not an IANA time zone", name.as_str()),
                        )
                    })?,
            };
            Ok((at.with_timezone(&zone), false, time_zone.clone()))
        }
    }
}

/// Google writes `UNTIL` as a date for all-day series and sometimes without
/// a `Z`; RFC 5545 wants UTC when the start has a zone, as `rrule` checks.
/// A date-only or floating `UNTIL` is read as the end of that day in UTC.
fn normalize(line: &str) -> String {
    let Some(at) = line.find("UNTIL=") else {
        return line.to_owned();
    };
    let value_start = at + "UNTIL=".len();
    let value_end = line[value_start..]
        .find(';')
        .map_or(line.len(), |i| value_start + i);
    let value = &line[value_start..value_end];
    let fixed = match value.len() {
        8 if value.bytes().all(|b| b.is_ascii_digit()) => format!("{value}T235959Z"),
        15 if !value.ends_with('Z') => format!("{value}Z"),
        _ => return line.to_owned(),
    };
    format!("{}{fixed}{}", &line[..value_start], &line[value_end..])
}

fn parse_suffix(suffix: &str) -> Option<DateTime<Utc>> {
    if suffix.len() == 8 {
        let date = NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()?;
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    chrono::NaiveDateTime::parse_from_str(suffix, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

/// `timeMin` is exclusive of an event's end (events.list reference), as
/// the store's window filter reads it.
fn ends_after(end: &EventTime, from: DateTime<Utc>) -> bool {
    end.sort_key() > from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_nine(y: i32, m: u32, d: u32) -> EventTime {
        let at = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(y, m, d, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        EventTime::at(at, Some(TimeZoneName::new("Europe/Berlin").unwrap()))
    }

    fn lines(all: &[&str]) -> Vec<String> {
        all.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn weekly_series_keeps_wall_clock_across_dst() {
        let start = berlin_nine(2026, 3, 16);
        let end = berlin_nine(2026, 3, 16);
        let series = Series::new(&lines(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]), &start, &end).unwrap();
        let hours: Vec<u32> = series
            .occurrences()
            .take(3)
            .map(|o| {
                use chrono::Timelike;
                o.start
                    .sort_key()
                    .with_timezone(&chrono_tz::Europe::Berlin)
                    .hour()
            })
            .collect();
        assert_eq!(hours, [9, 9, 9]);
        let utc: Vec<u32> = series
            .occurrences()
            .take(3)
            .map(|o| {
                use chrono::Timelike;
                o.start.sort_key().hour()
            })
            .collect();
        // 29 March 2026 moves Berlin from UTC+1 to UTC+2.
        assert_eq!(utc, [8, 8, 7]);
        assert!(!series.is_bounded());
        assert_eq!(series.last_end(), None);
    }

    #[test]
    fn exdates_with_tzid_and_counts_bound_the_series() {
        let start = berlin_nine(2026, 3, 2);
        let series = Series::new(
            &lines(&[
                "RRULE:FREQ=WEEKLY;COUNT=3",
                "EXDATE;TZID=Europe/Berlin:20260309T090000",
            ]),
            &start,
            &start,
        )
        .unwrap();
        let suffixes: Vec<String> = series.occurrences().map(|o| o.suffix()).collect();
        assert_eq!(suffixes, ["20260302T080000Z", "20260316T080000Z"]);
        assert_eq!(series.last_end(), Some(berlin_nine(2026, 3, 16).sort_key()));
        assert!(series.find("20260316T080000Z").is_some());
        assert!(series.find("20260309T080000Z").is_none(), "excluded");
    }

    #[test]
    fn all_day_series_recur_as_dates_with_date_until() {
        let day = |y, m, d| EventTime::date(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let series = Series::new(
            &lines(&["RRULE:FREQ=YEARLY;UNTIL=20290512"]),
            &day(2026, 5, 12),
            &day(2026, 5, 13),
        )
        .unwrap();
        let all: Vec<Occurrence> = series.occurrences().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].start, day(2029, 5, 12));
        assert_eq!(all[3].end, day(2029, 5, 13));
        assert_eq!(all[0].suffix(), "20260512");
        let window: Vec<String> = series
            .between(
                Some(Utc.with_ymd_and_hms(2027, 5, 12, 12, 0, 0).unwrap()),
                Some(Utc.with_ymd_and_hms(2028, 6, 1, 0, 0, 0).unwrap()),
            )
            .map(|o| o.suffix())
            .collect();
        assert_eq!(window, ["20270512", "20280512"]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let start = berlin_nine(2026, 3, 2);
        let err = Series::new(
            &lines(&["RRULE:FREQ=WEEKLY", "RRULE:FREQ=SOMETIMES"]),
            &start,
            &start,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 2") && text.contains("SOMETIMES"),
            "{text}"
        );
        assert!(Series::new(&lines(&["FOO:BAR"]), &start, &start).is_err());
        assert!(Series::new(&lines(&["EXDATE:20260309T080000Z"]), &start, &start).is_err());
    }

    #[test]
    fn instance_ids_split_only_on_an_instance_suffix() {
        assert_eq!(
            split_instance_id("abc_20260302T080000Z"),
            Some(("abc", "20260302T080000Z"))
        );
        assert_eq!(split_instance_id("abc_20260302"), Some(("abc", "20260302")));
        assert_eq!(split_instance_id("abc_def"), None);
        assert_eq!(split_instance_id("_20260302"), None);
        assert_eq!(split_instance_id("abc"), None);
    }
}
