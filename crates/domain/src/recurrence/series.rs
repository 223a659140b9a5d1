//! A series: the rule set a master's `recurrence` lines make, anchored at
//! its start, and the occurrences it yields.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rrule::{Frequency, RRuleSet};

use super::lines::{Anchor, Line, read_line};
use super::occurrence::Occurrence;
use super::time::{EventTime, TimeZoneName};
use crate::error::{Error, Result};

/// Most lines a `recurrence` may hold.
pub const MAX_LINES: usize = 50;

/// Most occurrences walked to find a bounded series' end; past it the
/// series counts as endless (kept).
const MAX_WALK: usize = 100_000;

/// A series: its rule set anchored at the master's start, and the length
/// of each occurrence.
#[derive(Debug, Clone)]
pub struct Series {
    set: RRuleSet,
    all_day: bool,
    zone: Option<TimeZoneName>,
    length: Duration,
    bounded: bool,
    /// A rule finer than daily: the `rrule` crate gives up on a rule after
    /// 100 000 steps without an occurrence, which such a rule can reach
    /// within a series' life, so its end is not trusted for retention.
    sub_daily: bool,
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
        let anchor = Anchor::of(start)?;
        // RFC 5545 3.8.5.3: "The "DTSTART" property defines the first
        // instance in the recurrence set", whether or not a rule produces it
        // (a COUNT counts the rule's own occurrences). `limit` keeps a rule
        // that never matches from spinning a request.
        let mut set = RRuleSet::new(anchor.start).limit().rdate(anchor.start);
        let mut bounded = true;
        let mut sub_daily = false;
        let mut generates = false;
        for (index, line) in lines.iter().enumerate() {
            let parsed = read_line(line, &anchor).map_err(|why| {
                Error::unprocessable(
                    "recurrence",
                    format!("line {} ({line:?}): {why}", index + 1),
                )
            })?;
            set = match parsed {
                Line::Rule {
                    exclude: false,
                    rule,
                } => {
                    generates = true;
                    bounded &= rule.get_count().is_some() || rule.get_until().is_some();
                    sub_daily |= matches!(
                        rule.get_freq(),
                        Frequency::Hourly | Frequency::Minutely | Frequency::Secondly
                    );
                    set.rrule(*rule)
                }
                Line::Rule {
                    exclude: true,
                    rule,
                } => set.exrule(*rule),
                Line::Dates { exclude, at } => {
                    generates |= !exclude;
                    at.into_iter().fold(set, |set, at| {
                        let at = at.with_timezone(&anchor.start.timezone());
                        if exclude {
                            set.exdate(at)
                        } else {
                            set.rdate(at)
                        }
                    })
                }
            };
        }
        if !generates {
            return Err(Error::unprocessable(
                "recurrence",
                "needs an RRULE or RDATE line",
            ));
        }
        let length = match (start, end) {
            (EventTime::AllDay { date: s }, EventTime::AllDay { date: e }) => {
                Duration::days((*e - *s).num_days().max(1))
            }
            _ => (end.sort_key() - start.sort_key()).max(Duration::zero()),
        };
        Ok(Self {
            set,
            all_day: anchor.all_day,
            zone: anchor.name,
            length,
            bounded,
            sub_daily,
        })
    }

    /// How long each occurrence lasts (an all-day series' whole days).
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Whether the series ends (every RRULE has COUNT or UNTIL).
    pub fn is_bounded(&self) -> bool {
        self.bounded
    }

    /// Occurrences in order, from the first. An instant two lines produce
    /// (an RDATE on a rule's date, DTSTART, two rules) is one occurrence.
    pub fn occurrences(&self) -> impl Iterator<Item = Occurrence> + '_ {
        let mut last = None;
        (&self.set)
            .into_iter()
            .map(|at| at.with_timezone(&Utc))
            .filter(move |at| last.replace(*at) != Some(*at))
            .map(|at| self.occurrence(at))
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
            .find(|o| o.suffix() == suffix)
    }

    /// When the last occurrence ends, or `None` for an endless series (or
    /// one too long to walk, or with a rule finer than daily).
    pub fn last_end(&self) -> Option<DateTime<Utc>> {
        if !self.bounded || self.sub_daily {
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

    /// The occurrence starting at `utc` (an instant the rule set yields).
    pub(crate) fn occurrence(&self, utc: DateTime<Utc>) -> Occurrence {
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
