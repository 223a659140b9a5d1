//! Reading one `recurrence` line (RRULE, EXRULE, RDATE, EXDATE) against
//! the series' anchor: values without a `Z` are wall-clock times in the
//! series' zone (or the `TZID` one), resolved across DST as Google does.

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rrule::{RRule, Tz, Unvalidated};

use super::time::{EventTime, TimeZoneName};
use crate::error::{Error, Result};

/// Where a series is anchored: its start in its zone (UTC when it names
/// none; all-day series recur as dates, anchored at midnight UTC).
pub(super) struct Anchor {
    pub(super) start: DateTime<Tz>,
    pub(super) zone: chrono_tz::Tz,
    pub(super) all_day: bool,
    pub(super) name: Option<TimeZoneName>,
}

impl Anchor {
    pub(super) fn of(start: &EventTime) -> Result<Self> {
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
pub(super) enum Line {
    Rule {
        exclude: bool,
        rule: Box<RRule>,
    },
    Dates {
        exclude: bool,
        at: Vec<DateTime<Utc>>,
    },
}

/// Reads one line: `RRULE:`/`EXRULE:` and a rule, or
/// `RDATE`/`EXDATE`, optional `TZID=`/`VALUE=` parameters, `:` and values.
pub(super) fn read_line(line: &str, anchor: &Anchor) -> std::result::Result<Line, String> {
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
