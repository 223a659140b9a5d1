//! Recurring series (RFC 5545 RRULE, EXRULE, RDATE and EXDATE lines, as
//! Google's `recurrence` holds them: "List of RRULE, EXRULE, RDATE and
//! EXDATE lines for a recurring event, as specified in RFC5545", events
//! reference: https://developers.google.com/workspace/calendar/api/v3/reference/events),
//! expanded with the `rrule` crate in the series' time zone, so wall-clock
//! times hold across DST as Google keeps them (recurring events guide:
//! https://developers.google.com/workspace/calendar/api/guides/recurringevents).
//!
//! Values without a `Z` are read in the series' zone, as Google expands
//! them: an `UNTIL` date is the end of that day there, a floating `UNTIL`,
//! `RDATE` or `EXDATE` that wall-clock time there (a `TZID` names another
//! zone). A wall-clock time a DST change skips is the hour after it; one it
//! repeats is the earlier. `tests/recurrence_corpus.rs` checks all of this
//! against Python's `dateutil.rrule` (docs/RECURRENCE.md).

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rrule::{Frequency, RRule, RRuleSet, Tz, Unvalidated};

use crate::error::{Error, Result};
use crate::event::{Event, EventTime, TimeZoneName};

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

impl Event {
    /// Why this master's `recurrence` cannot be expanded, or `None` when it
    /// can (or the row is not a master). Such a series is listed as its
    /// master row in `singleEvents` windows and never retired, never
    /// dropped; this says so to whoever reports on the mirror's health.
    pub fn series_unreadable(&self) -> Option<Error> {
        self.series().and_then(Result::err)
    }
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
    /// A rule finer than daily: the `rrule` crate gives up on a rule after
    /// 100 000 steps without an occurrence, which such a rule can reach
    /// within a series' life, so its end is not trusted for retention.
    sub_daily: bool,
}

/// Where a series is anchored: its start in its zone (UTC when it names
/// none; all-day series recur as dates, anchored at midnight UTC).
struct Anchor {
    start: DateTime<Tz>,
    zone: chrono_tz::Tz,
    all_day: bool,
    name: Option<TimeZoneName>,
}

impl Anchor {
    fn of(start: &EventTime) -> Result<Self> {
        match start {
            EventTime::AllDay { date } => Ok(Self {
                start: Tz::UTC.from_utc_datetime(&date.and_time(NaiveTime::MIN)),
                zone: chrono_tz::UTC,
                all_day: true,
                name: None,
            }),
            EventTime::At { at, time_zone } => {
                let zone = match time_zone {
                    None => chrono_tz::UTC,
                    Some(name) => name.as_str().parse::<chrono_tz::Tz>().map_err(|_| {
                        Error::unprocessable(
                            "timeZone",
                            format!("{} is not an IANA time zone", name.as_str()),
                        )
                    })?,
                };
                Ok(Self {
                    start: at.with_timezone(&Tz::Tz(zone)),
                    zone,
                    all_day: false,
                    name: time_zone.clone(),
                })
            }
        }
    }

    /// The series' start as wall-clock time in its zone.
    fn wall_time(&self) -> NaiveTime {
        self.start.with_timezone(&self.zone).time()
    }
}

/// One parsed `recurrence` line.
enum Line {
    Rule {
        exclude: bool,
        rule: Box<RRule>,
    },
    Dates {
        exclude: bool,
        at: Vec<DateTime<Utc>>,
    },
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

    fn occurrence(&self, utc: DateTime<Utc>) -> Occurrence {
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

/// Reads one line: `RRULE:`/`EXRULE:` and a rule, or
/// `RDATE`/`EXDATE`, optional `TZID=`/`VALUE=` parameters, `:` and values.
fn read_line(line: &str, anchor: &Anchor) -> std::result::Result<Line, String> {
    let line = line.trim();
    let (head, value) = line
        .split_once(':')
        .ok_or_else(|| "must be an RRULE, EXRULE, RDATE or EXDATE line".to_owned())?;
    let mut params = head.split(';');
    let name = params
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    match name.as_str() {
        "RRULE" | "EXRULE" => {
            if params.next().is_some() {
                return Err(format!("{name} takes no parameters"));
            }
            let text = until_in_zone(value, anchor)?.to_ascii_uppercase();
            let rule = text
                .parse::<RRule<Unvalidated>>()
                .and_then(|rule| rule.validate(anchor.start))
                .map_err(|error| error.to_string())?;
            Ok(Line::Rule {
                exclude: name == "EXRULE",
                rule: Box::new(rule),
            })
        }
        "RDATE" | "EXDATE" => Ok(Line::Dates {
            exclude: name == "EXDATE",
            at: date_values(params, value, anchor)?,
        }),
        _ => Err("must be an RRULE, EXRULE, RDATE or EXDATE line".into()),
    }
}

/// Rewrites a rule's `UNTIL` as the UTC instant Google reads it as. RFC
/// 5545 3.3.10 wants UTC when the start has a zone (and the `rrule` crate
/// insists), but Google also takes a date (the end of that day in the
/// series' zone; all-day series write it so) or a floating time (that
/// wall-clock time in the series' zone).
fn until_in_zone(rule: &str, anchor: &Anchor) -> std::result::Result<String, String> {
    let mut parts = Vec::new();
    for part in rule.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            parts.push(part.to_owned());
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("UNTIL") {
            parts.push(part.to_owned());
            continue;
        }
        let value = value.trim();
        let until = parse_until(value, anchor.zone)
            .ok_or_else(|| format!("UNTIL={value} is not a date or date-time"))?;
        parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
    }
    Ok(parts.join(";"))
}

fn parse_until(value: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Some(text) = value.strip_suffix(['Z', 'z']) {
        return parse_local(text).map(|local| local.and_utc());
    }
    if value.len() == 8 {
        let day = NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
        return resolve(zone, day.and_hms_opt(23, 59, 59)?);
    }
    resolve(zone, parse_local(value)?)
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S").ok()
}

/// The instants of an RDATE or EXDATE line. A floating value is wall-clock
/// time in the `TZID` zone, else the series'; a UTC value (`Z`) is that
/// instant. A date in a timed series is that date at the series' start
/// time; in an all-day series every value is a date.
fn date_values<'a>(
    params: impl Iterator<Item = &'a str>,
    values: &str,
    anchor: &Anchor,
) -> std::result::Result<Vec<DateTime<Utc>>, String> {
    let mut zone = anchor.zone;
    for param in params {
        let (key, value) = param
            .split_once('=')
            .ok_or_else(|| format!("{param:?} is not a parameter"))?;
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_uppercase().as_str() {
            "TZID" => {
                zone = value
                    .parse::<chrono_tz::Tz>()
                    .map_err(|_| format!("{value} is not an IANA time zone"))?;
            }
            "VALUE"
                if ["DATE", "DATE-TIME"]
                    .iter()
                    .any(|v| value.eq_ignore_ascii_case(v)) => {}
            _ => return Err(format!("{param:?} is not supported")),
        }
    }
    let mut out = Vec::new();
    for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let bad = || format!("{value} is not a date or date-time");
        let at = if value.len() == 8 {
            let day = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| bad())?;
            if anchor.all_day {
                day.and_time(NaiveTime::MIN).and_utc()
            } else {
                resolve(zone, day.and_time(anchor.wall_time())).ok_or_else(bad)?
            }
        } else {
            let at = match value.strip_suffix(['Z', 'z']) {
                Some(text) => parse_local(text).ok_or_else(bad)?.and_utc(),
                None => resolve(zone, parse_local(value).ok_or_else(bad)?).ok_or_else(bad)?,
            };
            if anchor.all_day {
                at.with_timezone(&zone)
                    .date_naive()
                    .and_time(NaiveTime::MIN)
                    .and_utc()
            } else {
                at
            }
        };
        out.push(at);
    }
    if out.is_empty() {
        return Err("has no values".into());
    }
    Ok(out)
}

/// A wall-clock time in `zone`: a time a DST change skips is the hour
/// after it, one it repeats is the earlier, as the `rrule` crate resolves
/// the occurrences it generates.
fn resolve(zone: chrono_tz::Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        LocalResult::None => zone
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|at| at.with_timezone(&Utc)),
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

    fn tokyo_eight(y: i32, m: u32, d: u32) -> EventTime {
        let at = chrono_tz::Asia::Tokyo
            .with_ymd_and_hms(y, m, d, 8, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        EventTime::at(at, Some(TimeZoneName::new("Asia/Tokyo").unwrap()))
    }

    fn suffixes(series: &Series) -> Vec<String> {
        series.occurrences().take(100).map(|o| o.suffix()).collect()
    }

    #[test]
    fn until_dates_and_floating_times_are_read_in_the_series_zone() {
        let start = tokyo_eight(2030, 3, 1);
        let daily = |until: &str| {
            let line = format!("RRULE:FREQ=DAILY;UNTIL={until}");
            suffixes(&Series::new(&lines(&[&line]), &start, &start).unwrap())
        };
        // Google lists five: the end of 5 March in Tokyo is before 6 March 08:00.
        let five = [
            "20300228T230000Z",
            "20300301T230000Z",
            "20300302T230000Z",
            "20300303T230000Z",
            "20300304T230000Z",
        ];
        assert_eq!(daily("20300305"), five);
        // A floating time is wall-clock time in Tokyo, UTC only with a Z.
        assert_eq!(daily("20300305T080000"), five);
        assert_eq!(daily("20300305T075959"), five[..4]);
        assert_eq!(daily("20300304T230000Z"), five);
        assert_eq!(daily("20300304T225959Z"), five[..4]);
    }

    #[test]
    fn exrule_takes_its_occurrences_out() {
        let start = tokyo_eight(2030, 3, 1); // a Friday
        let series = Series::new(
            &lines(&["RRULE:FREQ=DAILY;COUNT=7", "EXRULE:FREQ=WEEKLY;BYDAY=SA,SU"]),
            &start,
            &start,
        )
        .unwrap();
        assert_eq!(
            suffixes(&series),
            [
                "20300228T230000Z",
                "20300303T230000Z",
                "20300304T230000Z",
                "20300305T230000Z",
                "20300306T230000Z"
            ]
        );
        assert_eq!(
            series.last_end(),
            Some(Utc.with_ymd_and_hms(2030, 3, 6, 23, 0, 0).unwrap())
        );
    }

    #[test]
    fn dtstart_is_the_first_instance_and_an_rdate_on_a_rule_date_counts_once() {
        let start = tokyo_eight(2030, 3, 1); // a Friday; the rule says Mondays
        let series = Series::new(
            &lines(&[
                "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2",
                "RDATE;TZID=Asia/Tokyo:20300304T080000,20300301T080000",
                "RDATE:20300320T120000Z",
            ]),
            &start,
            &start,
        )
        .unwrap();
        assert_eq!(
            suffixes(&series),
            [
                "20300228T230000Z",
                "20300303T230000Z",
                "20300310T230000Z",
                "20300320T120000Z"
            ]
        );
    }

    #[test]
    fn floating_exdates_and_rdates_are_wall_clock_in_the_series_zone() {
        // Not the machine's zone: these read the same wherever calsync runs.
        let start = berlin_nine(2030, 3, 25);
        let series = Series::new(
            &lines(&[
                "RRULE:FREQ=DAILY;COUNT=4",
                "EXDATE:20300326T090000",
                "EXDATE;TZID=America/New_York:20300327T040000",
                "RDATE:20300331T023000",
            ]),
            &start,
            &start,
        )
        .unwrap();
        // 31 March 2030 02:30 does not exist in Berlin: the hour after it.
        assert_eq!(
            suffixes(&series),
            ["20300325T080000Z", "20300328T080000Z", "20300331T013000Z"]
        );
    }

    #[test]
    fn a_date_on_a_timed_series_is_that_date_at_the_start_time() {
        // Not documented by Google; read as the emulator reads it.
        let start = tokyo_eight(2030, 3, 1);
        let series = Series::new(
            &lines(&[
                "RRULE:FREQ=DAILY;COUNT=3",
                "EXDATE;VALUE=DATE:20300302",
                "RDATE;VALUE=DATE:20300310",
            ]),
            &start,
            &start,
        )
        .unwrap();
        assert_eq!(
            suffixes(&series),
            ["20300228T230000Z", "20300302T230000Z", "20300309T230000Z"]
        );
    }

    #[test]
    fn lines_calsync_cannot_expand_are_refused() {
        let start = tokyo_eight(2030, 3, 1);
        for bad in [
            &["EXRULE:FREQ=WEEKLY;BYDAY=SA"][..],
            &[
                "RRULE:FREQ=DAILY",
                "RDATE;VALUE=PERIOD:20300301T000000Z/PT1H",
            ],
            &["RRULE:FREQ=DAILY;UNTIL=2030"],
            &["RRULE:FREQ=DAILY;UNTIL=20200101"],
            &["RRULE;X-FOO=1:FREQ=DAILY"],
            &["RDATE;TZID=Mars/Olympus:20300301T080000"],
        ] {
            let err = Series::new(&lines(bad), &start, &start).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Unprocessable {
                        field: "recurrence",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn a_rule_that_never_matches_ends_instead_of_spinning() {
        let start = tokyo_eight(2030, 3, 1);
        for (rule, last_end) in [
            (
                "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=2",
                Some(start.sort_key()),
            ),
            // Finer than daily: the walk's end is not trusted, kept as endless.
            ("RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2", None),
        ] {
            let series = Series::new(&lines(&[rule]), &start, &start).unwrap();
            assert_eq!(suffixes(&series), ["20300228T230000Z"], "{rule}");
            assert_eq!(series.last_end(), last_end, "{rule}");
        }
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
