//! Event times and recurring series: `start`/`end` as Google takes them, and
//! `recurrence` lines (RRULE, EXRULE, RDATE, EXDATE) expanded with the
//! `rrule` crate in the series' time zone.
//!
//! Events resource (start, end, recurrence, originalStartTime):
//! https://developers.google.com/workspace/calendar/api/v3/reference/events
//! Recurring events guide:
//! https://developers.google.com/workspace/calendar/api/guides/recurringevents

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc,
};
use chrono_tz::Tz as Zone;
use rrule::{RRule, RRuleSet, Unvalidated};
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::error::ApiError;

/// At most this many occurrences of one series are listed in one window.
/// Bounds an unbounded series (no COUNT, no UNTIL) together with
/// [`HORIZON_DAYS`].
pub const MAX_OCCURRENCES: usize = 2000;

/// At most this many occurrences from the first are looked at (a daily
/// series: about 270 years), so no rule can make a call spin.
const MAX_SCAN: usize = 100_000;

/// Without `timeMax`, a series is expanded up to this many days past the
/// latest of now, `timeMin` and its first start (about two years; Google
/// documents no bound of its own).
pub const HORIZON_DAYS: i64 = 731;

/// An event's start or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An all-day date (`date`).
    Date(NaiveDate),
    /// A point in time (`dateTime`).
    Time(DateTime<Utc>),
}

impl When {
    /// The instant. All-day dates start at midnight in the calendar's time
    /// zone, which is UTC for every emulated calendar.
    pub fn instant(self) -> DateTime<Utc> {
        match self {
            Self::Date(date) => date.and_time(NaiveTime::MIN).and_utc(),
            Self::Time(at) => at,
        }
    }
}

/// Google's own rendering of instants it generates: seconds, UTC (the
/// calendar's zone), e.g. `2026-03-30T07:00:00Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid", message)
}

/// A wall-clock time in a zone; in a DST gap, the hour after it.
pub(crate) fn resolve(zone: Zone, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at.with_timezone(&Utc)),
        LocalResult::None => zone
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|at| at.with_timezone(&Utc)),
    }
}

/// The `timeZone` of a start or end, if set.
pub fn zone_of(value: &Value, field: &str) -> Result<Option<Zone>, ApiError> {
    match value.get("timeZone").and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(name) => name
            .parse::<Zone>()
            .map(Some)
            .map_err(|_| invalid(format!("Invalid time zone definition for {field} time."))),
    }
}

/// Parses `start`/`end`/`originalStartTime`. A `dateTime` may omit its
/// offset when `timeZone` is given: it is then wall-clock time in that zone.
pub fn parse_when(value: &Value, field: &str) -> Result<When, ApiError> {
    if let Some(date) = value.get("date").and_then(Value::as_str) {
        return NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map(When::Date)
            .map_err(|_| invalid(format!("Invalid {field} time.")));
    }
    let Some(text) = value.get("dateTime").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "required",
            format!("Missing {field} time."),
        ));
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(When::Time(at.with_timezone(&Utc)));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| invalid(format!("Invalid {field} time.")))?;
    let zone = zone_of(value, field)?.ok_or_else(|| {
        ApiError::bad_request(
            "required",
            format!("Missing time zone definition for {field} time."),
        )
    })?;
    resolve(zone, local)
        .map(When::Time)
        .ok_or_else(|| invalid(format!("Invalid {field} time.")))
}

/// Checks `start` and `end` and writes an offset-less `dateTime` as an
/// RFC 3339 instant: the google-calendar3 client cannot decode one without
/// an offset, and Google never answers one.
pub fn normalize_times(body: &mut Map<String, Value>) -> Result<(When, When), ApiError> {
    let mut parsed = Vec::with_capacity(2);
    for field in ["start", "end"] {
        let Some(value) = body.get_mut(field).filter(|v| v.is_object()) else {
            return Err(ApiError::bad_request(
                "required",
                format!("Missing {field} time."),
            ));
        };
        // Patch semantics merge into `start`/`end` (see `state::writes::merge`), so
        // `{"start": {"dateTime": ..}}` on an all-day event keeps its
        // `date`: Google refuses the mix with 400 `invalid` "Invalid start
        // time." (our field notes; the events reference: "date ... if this
        // is an all-day event", "dateTime" otherwise, never both).
        let has = |key: &str| value.get(key).is_some_and(|v| !v.is_null());
        if has("date") && has("dateTime") {
            return Err(invalid(format!("Invalid {field} time.")));
        }
        let when = parse_when(value, field)?;
        zone_of(value, field)?;
        if let (When::Time(at), Some(text)) = (when, value.get("dateTime").and_then(Value::as_str))
            && DateTime::parse_from_rfc3339(text).is_err()
        {
            value["dateTime"] = json!(rfc3339(at));
        }
        parsed.push(when);
    }
    let (start, end) = (parsed[0], parsed[1]);
    match (start, end) {
        (When::Date(_), When::Time(_)) | (When::Time(_), When::Date(_)) => Err(invalid(
            "Start and end times must either both be date or both be dateTime.",
        )),
        _ if end.instant() < start.instant() => Err(ApiError::bad_request(
            "timeRangeEmpty",
            "The specified time range is empty.",
        )),
        _ => Ok((start, end)),
    }
}

/// A recurring timed event needs a zone on both ends: the events
/// reference says of `start.timeZone` and `end.timeZone` "For recurring
/// events this field is required and specifies the time zone in which the
/// recurrence is expanded", and Google answers its absence with 400
/// `required` "Missing time zone definition for start time." (or "end").
/// All-day series (`date`) need none. Checked on the event as written
/// (after a patch's merge), for API writes only.
pub fn require_zone(body: &Map<String, Value>) -> Result<(), ApiError> {
    let recurring = body
        .get("recurrence")
        .and_then(Value::as_array)
        .is_some_and(|lines| !lines.is_empty());
    if !recurring {
        return Ok(());
    }
    for field in ["start", "end"] {
        let Some(value) = body.get(field) else {
            continue;
        };
        let timed = value.get("dateTime").is_some_and(|v| !v.is_null());
        let zoned = value
            .get("timeZone")
            .and_then(Value::as_str)
            .is_some_and(|zone| !zone.is_empty());
        if timed && !zoned {
            return Err(ApiError::bad_request(
                "required",
                format!("Missing time zone definition for {field} time."),
            ));
        }
    }
    Ok(())
}

/// The span an event occupies, for `timeMin`/`timeMax` filtering.
pub fn span(body: &Map<String, Value>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = parse_when(body.get("start")?, "start").ok()?.instant();
    let end = parse_when(body.get("end")?, "end").ok()?.instant();
    Some((start, end))
}

/// Whether `[start, end)` meets the window: ends after `timeMin`, starts
/// before `timeMax` (events.list reference).
pub fn overlaps(
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
) -> bool {
    // A zero-length event at timeMin still counts as in the window.
    time_min.is_none_or(|min| end > min || (end == start && start >= min))
        && time_max.is_none_or(|max| start < max)
}

/// A recurring series: the master's first occurrence, its duration and its
/// rule set.
#[derive(Debug, Clone)]
pub struct Series {
    zone: Option<Zone>,
    all_day: bool,
    first: DateTime<Utc>,
    duration: Duration,
    set: RRuleSet,
}

/// `UNTIL` must be UTC when the series has a zone (RFC 5545 3.3.10, as
/// the rrule crate checks); Google also takes a date or floating time,
/// meaning the end of that day / that wall-clock time in the series' zone.
fn rewrite_until(rule: &str, zone: Zone) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in rule.split(';') {
        let Some(value) = part
            .strip_prefix("UNTIL=")
            .or_else(|| part.strip_prefix("until="))
        else {
            parts.push(part.to_owned());
            continue;
        };
        if value.ends_with(['Z', 'z']) {
            parts.push(part.to_owned());
            continue;
        }
        let local = if value.len() == 8 {
            NaiveDate::parse_from_str(value, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(23, 59, 59))
        } else {
            NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok()
        };
        let until = local
            .and_then(|local| resolve(zone, local))
            .ok_or_else(|| format!("`{value}` is not a valid UNTIL value."))?;
        parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
    }
    Ok(parts.join(";"))
}

/// The instants of an RDATE or EXDATE line (`NAME[;TZID=..][;VALUE=DATE]:v1,v2`).
/// A floating time is in the series' zone; a date in a timed series means
/// that date at the series' start time.
fn date_list(
    line: &str,
    zone: Zone,
    all_day: bool,
    start_time: NaiveTime,
) -> Result<Vec<DateTime<Utc>>, String> {
    let (head, values) = line
        .split_once(':')
        .ok_or_else(|| format!("`{line}` has no value."))?;
    let mut value_zone = zone;
    for param in head.split(';').skip(1) {
        let (key, value) = param
            .split_once('=')
            .ok_or_else(|| format!("`{param}` is a malformed parameter."))?;
        // RFC 5545 3.2: a parameter value may be a quoted string.
        let value = value.trim_matches('"');
        match key.to_ascii_uppercase().as_str() {
            "TZID" => {
                value_zone = value
                    .parse::<Zone>()
                    .map_err(|_| format!("`{value}` is not a valid time zone."))?;
            }
            "VALUE" if matches!(value.to_ascii_uppercase().as_str(), "DATE" | "DATE-TIME") => {}
            _ => return Err(format!("`{param}` is not a supported parameter.")),
        }
    }
    let mut out = Vec::new();
    for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let bad = || format!("`{value}` is not a valid date or date-time.");
        let at = if value.len() == 8 {
            let date = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| bad())?;
            if all_day {
                date.and_time(NaiveTime::MIN).and_utc()
            } else {
                resolve(value_zone, date.and_time(start_time)).ok_or_else(bad)?
            }
        } else {
            let (text, utc) = match value.strip_suffix(['Z', 'z']) {
                Some(text) => (text, true),
                None => (value, false),
            };
            let local = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
            let at = if utc {
                local.and_utc()
            } else {
                resolve(value_zone, local).ok_or_else(bad)?
            };
            if all_day {
                at.with_timezone(&value_zone)
                    .date_naive()
                    .and_time(NaiveTime::MIN)
                    .and_utc()
            } else {
                at
            }
        };
        out.push(at);
    }
    Ok(out)
}

impl Series {
    /// The series an event body describes, or `None` for a single event.
    /// An invalid `recurrence` is a 400 `invalid` naming the line.
    pub fn of(body: &Map<String, Value>) -> Result<Option<Self>, ApiError> {
        let lines = match body.get("recurrence") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(lines)) if lines.is_empty() => return Ok(None),
            Some(Value::Array(lines)) => lines,
            Some(_) => {
                return Err(invalid(
                    "Invalid recurrence: an array of strings is expected.",
                ));
            }
        };
        let (start_value, end_value) = match (body.get("start"), body.get("end")) {
            (Some(start), Some(end)) => (start, end),
            _ => return Err(ApiError::bad_request("required", "Missing start time.")),
        };
        let start = parse_when(start_value, "start")?;
        let end = parse_when(end_value, "end")?;
        let all_day = matches!(start, When::Date(_));
        let zone = if all_day {
            None
        } else {
            zone_of(start_value, "start")?
        };
        let rule_zone = zone.unwrap_or(Zone::UTC);
        let first = start.instant();
        let dt_start = first.with_timezone(&rrule::Tz::Tz(rule_zone));
        let start_time = first.with_timezone(&rule_zone).time();
        // RFC 5545 3.8.5.3: DTSTART is always the first instance.
        let mut set = RRuleSet::new(dt_start).limit().rdate(dt_start);
        for line in lines {
            let Some(line) = line.as_str().map(str::trim) else {
                return Err(invalid(
                    "Invalid recurrence: an array of strings is expected.",
                ));
            };
            let problem = |why: String| invalid(format!("Invalid recurrence rule `{line}`: {why}"));
            let upper = line.to_ascii_uppercase();
            if let Some(rule) = upper
                .strip_prefix("RRULE:")
                .or_else(|| upper.strip_prefix("EXRULE:"))
            {
                let rule = rewrite_until(rule, rule_zone).map_err(problem)?;
                let parsed = rule
                    .parse::<RRule<Unvalidated>>()
                    .and_then(|r| r.validate(dt_start))
                    .map_err(|e| problem(e.to_string()))?;
                set = if upper.starts_with("RRULE:") {
                    set.rrule(parsed)
                } else {
                    set.exrule(parsed)
                };
            } else if upper.starts_with("RDATE:") || upper.starts_with("RDATE;") {
                for at in date_list(line, rule_zone, all_day, start_time).map_err(problem)? {
                    set = set.rdate(at.with_timezone(&rrule::Tz::Tz(rule_zone)));
                }
            } else if upper.starts_with("EXDATE:") || upper.starts_with("EXDATE;") {
                for at in date_list(line, rule_zone, all_day, start_time).map_err(problem)? {
                    set = set.exdate(at.with_timezone(&rrule::Tz::Tz(rule_zone)));
                }
            } else {
                return Err(problem(
                    "only RRULE, EXRULE, RDATE and EXDATE lines are allowed".into(),
                ));
            }
        }
        Ok(Some(Self {
            zone,
            all_day,
            first,
            duration: end.instant() - first,
            set,
        }))
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Original starts of the occurrences in order, EXDATEs left out, at
    /// most [`MAX_SCAN`].
    fn starts(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut last = None;
        (&self.set)
            .into_iter()
            .map(|at| at.with_timezone(&Utc))
            .filter(move |at| {
                // An RDATE on a rule's date (DTSTART included) is one occurrence.
                let fresh = last != Some(*at);
                last = Some(*at);
                fresh
            })
            .take(MAX_SCAN)
    }

    /// Where expansion stops without `timeMax`: see [`HORIZON_DAYS`].
    pub fn horizon(&self, time_min: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let base = Utc::now().max(self.first);
        time_min.map_or(base, |min| base.max(min)) + Duration::days(HORIZON_DAYS)
    }

    /// Original starts of the occurrences meeting the window.
    pub fn window(
        &self,
        time_min: Option<DateTime<Utc>>,
        time_max: Option<DateTime<Utc>>,
    ) -> Vec<DateTime<Utc>> {
        let bound = time_max.unwrap_or_else(|| self.horizon(time_min));
        self.starts()
            .take_while(|start| *start < bound)
            .filter(|start| overlaps((*start, *start + self.duration), time_min, time_max))
            .take(MAX_OCCURRENCES)
            .collect()
    }

    /// Whether the series has an occurrence starting at `start`.
    pub fn occurs_at(&self, start: DateTime<Utc>) -> bool {
        self.starts()
            .take_while(|at| *at <= start)
            .any(|at| at == start)
    }

    /// The suffix of an occurrence's id: `YYYYMMDDTHHMMSSZ` (UTC), or
    /// `YYYYMMDD` for an all-day series.
    pub fn key(&self, start: DateTime<Utc>) -> String {
        if self.all_day {
            start.format("%Y%m%d").to_string()
        } else {
            start.format("%Y%m%dT%H%M%SZ").to_string()
        }
    }

    /// The original start an id suffix names, if it is an occurrence.
    pub fn parse_key(&self, key: &str) -> Option<DateTime<Utc>> {
        let start = if self.all_day {
            NaiveDate::parse_from_str(key, "%Y%m%d")
                .ok()?
                .and_time(NaiveTime::MIN)
                .and_utc()
        } else {
            NaiveDateTime::parse_from_str(key.strip_suffix('Z')?, "%Y%m%dT%H%M%S")
                .ok()?
                .and_utc()
        };
        self.occurs_at(start).then_some(start)
    }

    /// A start-shaped value for an instant of this series.
    pub fn when(&self, at: DateTime<Utc>) -> Value {
        if self.all_day {
            json!({"date": at.date_naive().format("%Y-%m-%d").to_string()})
        } else {
            match self.zone {
                Some(zone) => json!({"dateTime": rfc3339(at), "timeZone": zone.name()}),
                None => json!({"dateTime": rfc3339(at)}),
            }
        }
    }

    /// The occurrence starting at `start` as Google returns it: the
    /// master's fields, its own id, times and etag, and `recurringEventId`
    /// + `originalStartTime`.
    pub fn instance(
        &self,
        master: &Map<String, Value>,
        start: DateTime<Utc>,
    ) -> Map<String, Value> {
        let master_id = master.get("id").and_then(Value::as_str).unwrap_or_default();
        let id = format!("{master_id}_{}", self.key(start));
        let mut body = master.clone();
        body.remove("recurrence");
        let etag = master
            .get("etag")
            .and_then(Value::as_str)
            .unwrap_or_default();
        body.insert("etag".into(), json!(instance_etag(etag, &id)));
        body.insert("id".into(), json!(id));
        body.insert("recurringEventId".into(), json!(master_id));
        body.insert("originalStartTime".into(), self.when(start));
        body.insert("start".into(), self.when(start));
        body.insert("end".into(), self.when(start + self.duration));
        body
    }

    /// The original start of a stored exception, from its `originalStartTime`.
    pub fn original_start(body: &Map<String, Value>) -> Option<DateTime<Utc>> {
        parse_when(body.get("originalStartTime")?, "originalStartTime")
            .ok()
            .map(When::instant)
    }
}

/// Splits an instance id into the master's id and the suffix.
pub fn split_instance_id(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('_')
        .filter(|(master, key)| !master.is_empty() && !key.is_empty())
}

/// An etag for an occurrence not stored as an exception: it changes
/// whenever the master's does.
fn instance_etag(master_etag: &str, id: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{master_etag}/{id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    format!("\"{}\"", u64::from_be_bytes(bytes) >> 12)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn berlin_series_keeps_wall_clock_across_dst() {
        let series = Series::of(&body(json!({
            "id": "abcdef",
            "start": {"dateTime": "2026-03-23T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-23T10:00:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        })))
        .unwrap()
        .unwrap();
        let starts: Vec<String> = series.window(None, None).into_iter().map(rfc3339).collect();
        assert_eq!(
            starts,
            [
                "2026-03-23T08:00:00Z",
                "2026-03-30T07:00:00Z",
                "2026-04-06T07:00:00Z"
            ]
        );
    }

    #[test]
    fn a_quoted_tzid_is_read_as_the_zone() {
        let series = Series::of(&body(json!({
            "start": {"dateTime": "2026-01-05T09:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-01-05T09:30:00+01:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;TZID=\"Europe/Berlin\":20260106T090000"],
        })))
        .unwrap()
        .unwrap();
        let keys: Vec<String> = series
            .window(None, None)
            .into_iter()
            .map(|s| series.key(s))
            .collect();
        assert_eq!(keys, ["20260105T080000Z", "20260107T080000Z"]);
    }

    #[test]
    fn exdate_floating_and_until_date() {
        let series = Series::of(&body(json!({
            "start": {"dateTime": "2026-01-05T09:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-01-05T09:30:00+01:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=DAILY;UNTIL=20260108", "EXDATE:20260106T090000"],
        })))
        .unwrap()
        .unwrap();
        let keys: Vec<String> = series
            .window(None, None)
            .into_iter()
            .map(|s| series.key(s))
            .collect();
        assert_eq!(
            keys,
            ["20260105T080000Z", "20260107T080000Z", "20260108T080000Z"]
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for rule in [
            "RRULE:FREQ=SOMETIMES",
            "RRULE:COUNT=3",
            "FOO:BAR",
            "EXDATE:2026",
        ] {
            let err = Series::of(&body(json!({
                "start": {"date": "2026-01-01"},
                "end": {"date": "2026-01-02"},
                "recurrence": [rule],
            })))
            .unwrap_err();
            assert_eq!(err.status, 400, "{rule}");
            assert_eq!(err.reason, "invalid", "{rule}");
        }
    }
}
