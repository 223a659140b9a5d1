//! `freebusy.query`: busy intervals per calendar, computed from the
//! emulator's own events (series expanded as `singleEvents=true` lists
//! them), never from calsync's code, so a differential test of calsync's
//! mirror against this answer means something.
//!
//! Reference (<https://developers.google.com/workspace/calendar/api/v3/reference/freebusy/query>):
//! request `{timeMin, timeMax, timeZone, groupExpansionMax,
//! calendarExpansionMax, items: [{id}]}`; answer `{kind: "calendar#freeBusy",
//! timeMin, timeMax, calendars: {(id): {errors: [{domain, reason}], busy:
//! [{start, end}]}}}`. `calendarExpansionMax`: "Maximal number of calendars
//! for which FreeBusy information is to be provided. Optional. Maximum
//! value is 50."; `groupExpansionMax`: "Maximum value is 100.";
//! `timeZone`: "Time zone used in the response. Optional. The default is
//! UTC."; `errors[].reason` is per calendar, "groupTooBig",
//! "tooManyCalendarsRequested" ("The number of calendars requested is too
//! large for a single query."), "notFound" ("The requested resource was
//! not found."), "internalError".
//!
//! Where the reference is silent:
//! - More calendars than the expansion limit: the reference lists
//!   `tooManyCalendarsRequested` only as a per-calendar reason, and clients
//!   report Google answering such a query with empty busy lists rather than
//!   a failed request. So every requested calendar carries that error and
//!   no busy time (the harsh reading: a client that ignores `errors` sees
//!   everyone free).
//! - The window: Google refuses ranges longer than 90 days with 400, "The
//!   requested time range is too long." (calcom/cal.com pull requests 11696
//!   and 11962: "The Google /freeBusy endpoint has a maximum time span of 90
//!   days"; reason `timeRangeTooLong` as clients observe it). An empty
//!   range is 400 `timeRangeEmpty`, as events.list answers it.
//! - What is busy: events that are not cancelled and not `transparent`
//!   (the events reference, `transparency`: "opaque - ... the event does
//!   block time on the calendar", "transparent - The event does not block
//!   time"), except the calendar's own declined invitations, and
//!   `workingLocation` and `birthday` events, which Google makes free
//!   (event types guide); `outOfOffice` and `focusTime` events are busy
//!   whatever the attendees say. `needsAction` and `tentative` invitations
//!   count as busy. All-day events run from midnight to midnight in the
//!   request's `timeZone`.
//! - Busy intervals are merged (overlapping or touching), clipped to
//!   `[timeMin, timeMax)`, sorted, and written in UTC (`Z`).

use chrono::{DateTime, Duration, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz as Zone;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::recurrence::{Series, When, parse_when, resolve};
use crate::state::{Calendars, StoredEvent, timestamp};

/// Google's most calendars per query (`calendarExpansionMax`).
pub const MAX_CALENDARS: usize = 50;
/// The longest window Google answers (see the module docs).
pub const MAX_WINDOW_DAYS: i64 = 90;

/// A parsed `freebusy.query` body.
#[derive(Debug, Clone)]
pub struct Query {
    pub time_min: DateTime<Utc>,
    pub time_max: DateTime<Utc>,
    pub zone: Zone,
    /// `items[].id` in request order (duplicates kept).
    pub calendars: Vec<String>,
    /// `calendarExpansionMax`, capped at [`MAX_CALENDARS`].
    pub calendar_limit: usize,
}

fn required(name: &str) -> ApiError {
    ApiError::bad_request("required", format!("Missing {name} parameter."))
}

fn invalid(name: &str) -> ApiError {
    ApiError::bad_request("invalid", format!("Invalid value for {name}"))
}

fn time(body: &Map<String, Value>, name: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = body
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| required(name))?
        .as_str()
        .ok_or_else(|| invalid(name))?;
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| invalid(name))
}

/// An optional positive integer field, `None` when absent.
fn limit(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            // The generated clients send int32 fields as numbers; Google
            // also takes them as strings.
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| invalid(name)),
    }
}

impl Query {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let time_min = time(body, "timeMin")?;
        let time_max = time(body, "timeMax")?;
        if time_max <= time_min {
            return Err(ApiError::bad_request(
                "timeRangeEmpty",
                "The specified time range is empty.",
            ));
        }
        if time_max - time_min > Duration::days(MAX_WINDOW_DAYS) {
            return Err(ApiError::bad_request(
                "timeRangeTooLong",
                "The requested time range is too long.",
            ));
        }
        let zone = match body.get("timeZone") {
            None | Some(Value::Null) => Zone::UTC,
            Some(Value::String(name)) if name.is_empty() => Zone::UTC,
            Some(Value::String(name)) => name.parse::<Zone>().map_err(|_| invalid("timeZone"))?,
            Some(_) => return Err(invalid("timeZone")),
        };
        // "Maximum value is 50": a larger value is read as the maximum
        // (Google's answer to one is not documented).
        let calendar_limit = limit(body, "calendarExpansionMax")?.map_or(MAX_CALENDARS, |n| {
            usize::try_from(n)
                .unwrap_or(MAX_CALENDARS)
                .min(MAX_CALENDARS)
        });
        // No groups are emulated: `groupExpansionMax` is only checked.
        limit(body, "groupExpansionMax")?;
        let items = match body.get("items") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(invalid("items")),
        };
        let calendars = items
            .iter()
            .map(|item| {
                item.get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| required("items.id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            time_min,
            time_max,
            zone,
            calendars,
            calendar_limit,
        })
    }
}

/// A busy or free span, `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Whether an event (a single event, an exception, or a generated
/// occurrence) blocks the calendar's time (see the module docs).
fn blocks(calendar_id: &str, body: &Map<String, Value>) -> bool {
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    if text("status") == Some("cancelled") || text("transparency") == Some("transparent") {
        return false;
    }
    match text("eventType") {
        Some("workingLocation" | "birthday") => return false,
        // Out of office and focus time block time whoever is invited.
        Some("outOfOffice" | "focusTime") => return true,
        _ => {}
    }
    let declined = body
        .get("attendees")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|attendee| {
            attendee.get("self").and_then(Value::as_bool) == Some(true)
                || attendee
                    .get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|email| email.eq_ignore_ascii_case(calendar_id))
        })
        .any(|own| own.get("responseStatus").and_then(Value::as_str) == Some("declined"));
    !declined
}

/// An instant of an event's start or end: a date is midnight in `zone`
/// (in a DST gap at midnight, the hour after).
fn instant(when: When, zone: Zone) -> Option<DateTime<Utc>> {
    match when {
        When::Time(at) => Some(at),
        When::Date(date) => resolve(zone, date.and_time(NaiveTime::MIN)),
    }
}

/// The span an event occupies for free/busy, if readable and not empty.
/// An all-day event whose end date is not after its start date (inserts
/// take one) occupies its start date: Google documents nothing for it, and
/// this is how calsync's own rule reads it, so a differential test does not
/// trip on it.
fn busy_span(body: &Map<String, Value>, zone: Zone) -> Option<Span> {
    let start = parse_when(body.get("start")?, "start").ok()?;
    let mut end = parse_when(body.get("end")?, "end").ok()?;
    if let (When::Date(first), When::Date(last)) = (start, end)
        && last <= first
    {
        end = When::Date(first.succ_opt()?);
    }
    let (start, end) = (instant(start, zone)?, instant(end, zone)?);
    (start < end).then_some((start, end))
}

/// Sorts spans and joins those that overlap or touch.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Seconds unless the instant has a fraction (a clipped `timeMin` may).
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn errors(reason: &str) -> Value {
    json!([{"domain": "global", "reason": reason}])
}

impl Calendars {
    /// The calendar's busy spans in the query's window, merged.
    pub fn busy(&self, calendar_id: &str, query: &Query) -> Vec<Span> {
        let Some(events) = self.events.get(calendar_id) else {
            return Vec::new();
        };
        // All-day events are read in the query's zone, up to 14 hours off
        // the UTC midnights the expansion uses: widen its window by a day.
        let window = (
            Some(query.time_min - Duration::days(1)),
            Some(query.time_max + Duration::days(1)),
        );
        let mut bodies: Vec<Value> = Vec::new();
        let mut singles: Vec<&StoredEvent> = Vec::new();
        for event in events.values() {
            if self.expanded_with_series(calendar_id, event) {
                continue; // an exception, met in its series' expansion
            }
            match Series::of(&event.body).ok().flatten() {
                Some(series) if !event.cancelled() => {
                    bodies.extend(self.occurrence_bodies(calendar_id, event, &series, window));
                }
                _ => singles.push(event),
            }
        }
        let single_bodies = singles.iter().map(|event| &event.body);
        let expanded = bodies.iter().filter_map(Value::as_object);
        let spans = single_bodies
            .chain(expanded)
            .filter(|body| blocks(calendar_id, body))
            .filter_map(|body| busy_span(body, query.zone))
            .filter_map(|(start, end)| {
                let (start, end) = (start.max(query.time_min), end.min(query.time_max));
                (start < end).then_some((start, end))
            })
            .collect();
        merge(spans)
    }

    /// Whether a stored event is an exception of a live series, and so
    /// listed by its series' expansion rather than on its own (as
    /// `singleEvents=true` lists it).
    fn expanded_with_series(&self, calendar_id: &str, event: &StoredEvent) -> bool {
        event
            .body
            .get("recurringEventId")
            .and_then(Value::as_str)
            .and_then(|id| self.stored(calendar_id, id))
            .is_some_and(|master| {
                !master.cancelled() && matches!(Series::of(&master.body), Ok(Some(_)))
            })
    }

    /// `freebusy.query`'s answer. Calendars the principal cannot reach
    /// (see [`Calendars::reachable`]) carry `notFound`; every calendar
    /// exists here otherwise.
    pub fn free_busy(&self, query: &Query) -> Value {
        let too_many = query.calendars.len() > query.calendar_limit;
        let mut calendars = Map::new();
        for calendar_id in &query.calendars {
            let answer = if too_many {
                json!({"busy": [], "errors": errors("tooManyCalendarsRequested")})
            } else if self.reachable(calendar_id).is_err() {
                json!({"busy": [], "errors": errors("notFound")})
            } else {
                let busy: Vec<Value> = self
                    .busy(calendar_id, query)
                    .into_iter()
                    .map(|(start, end)| json!({"start": rfc3339(start), "end": rfc3339(end)}))
                    .collect();
                json!({"busy": busy})
            };
            calendars.insert(calendar_id.clone(), answer);
        }
        json!({
            "kind": "calendar#freeBusy",
            "timeMin": timestamp(query.time_min),
            "timeMax": timestamp(query.time_max),
            "calendars": calendars,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn touching_and_overlapping_spans_merge() {
        let spans = vec![
            (at("2026-03-02T11:00:00Z"), at("2026-03-02T12:00:00Z")),
            (at("2026-03-02T09:00:00Z"), at("2026-03-02T10:00:00Z")),
            (at("2026-03-02T10:00:00Z"), at("2026-03-02T10:30:00Z")),
            (at("2026-03-02T11:30:00Z"), at("2026-03-02T11:45:00Z")),
        ];
        assert_eq!(
            merge(spans),
            vec![
                (at("2026-03-02T09:00:00Z"), at("2026-03-02T10:30:00Z")),
                (at("2026-03-02T11:00:00Z"), at("2026-03-02T12:00:00Z")),
            ]
        );
    }

    #[test]
    fn own_declines_free_and_other_responses_block() {
        let cal = "Ann@Example.com";
        let with = |status: &str| {
            body(json!({"attendees": [
                {"email": "bob@example.com", "responseStatus": "declined"},
                {"email": "ann@example.com", "responseStatus": status},
            ]}))
        };
        assert!(!blocks(cal, &with("declined")));
        for status in ["needsAction", "tentative", "accepted"] {
            assert!(blocks(cal, &with(status)), "{status}");
        }
        let own = body(
            json!({"attendees": [{"email": "x@example.com", "self": true,
            "responseStatus": "declined"}]}),
        );
        assert!(!blocks(cal, &own));
        for (key, value) in [
            ("transparency", "transparent"),
            ("status", "cancelled"),
            ("eventType", "workingLocation"),
            ("eventType", "birthday"),
        ] {
            assert!(!blocks(cal, &body(json!({key: value}))), "{key}={value}");
        }
        for kind in ["outOfOffice", "focusTime", "fromGmail", "default"] {
            assert!(blocks(cal, &body(json!({"eventType": kind}))), "{kind}");
        }
        let mut away = with("declined");
        away.insert("eventType".into(), json!("outOfOffice"));
        assert!(blocks(cal, &away), "out of office blocks whoever declined");
    }

    #[test]
    fn limits_and_windows_are_checked() {
        let query = |extra: Value| {
            let mut request = body(json!({
                "timeMin": "2026-03-01T00:00:00Z",
                "timeMax": "2026-03-02T00:00:00+01:00",
            }));
            request.extend(body(extra));
            Query::parse(&request)
        };
        let parsed = query(json!({"items": [{"id": "a"}, {"id": "b"}]})).unwrap();
        assert_eq!(parsed.calendars, ["a", "b"]);
        assert_eq!(parsed.time_max, at("2026-03-01T23:00:00Z"));
        assert_eq!(parsed.calendar_limit, 50);
        assert_eq!(
            query(json!({"calendarExpansionMax": 500}))
                .unwrap()
                .calendar_limit,
            50
        );
        let reason = |extra: Value| query(extra).unwrap_err().reason;
        assert_eq!(
            reason(json!({"timeMax": "2026-03-01T00:00:00Z"})),
            "timeRangeEmpty"
        );
        assert_eq!(
            reason(json!({"timeMax": "2026-05-30T00:00:01Z"})),
            "timeRangeTooLong"
        );
        assert!(
            query(json!({"timeMax": "2026-05-30T00:00:00Z"})).is_ok(),
            "90 days"
        );
        assert_eq!(reason(json!({"timeMin": null})), "required");
        assert_eq!(reason(json!({"timeMin": "yesterday"})), "invalid");
        assert_eq!(reason(json!({"timeZone": "Mars/Olympus"})), "invalid");
        assert_eq!(reason(json!({"calendarExpansionMax": 0})), "invalid");
        assert_eq!(reason(json!({"items": [{"name": "a"}]})), "required");
    }
}
