//! From bodies and query values to domain values, naming the offending
//! field (`start.dateTime`, `attendees[0].email`) in every refusal. The
//! handlers and the `cargo fuzz` targets in `fuzz/` share these.

use calsync_domain::Error as DomainError;
use calsync_domain::event::{
    Attendee, Event, EventChanges, EventDetails, EventStatus, EventTime, NewEvent, NewEventFields,
    ReminderOverride, Reminders, TimeZoneName,
};
use calsync_domain::ids::{CalendarId, EntityRef, LocalEventId};
use calsync_domain::services::Listed;
use chrono::{DateTime, NaiveDate, Utc};

use crate::HttpError;

use super::body::*;
use crate::request::{parse_body, rules};

fn invalid_at(field: &str, message: impl Into<String>) -> HttpError {
    HttpError::InvalidBody {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The message for an instant that is not RFC 3339 as the document states it.
const DATE_TIME_FORM: &str =
    "must be an RFC 3339 date-time with an offset, such as 2026-12-01T10:00:00Z";

/// Reads an RFC 3339 instant: the documented shape (a `T`, no leap
/// second), in the years 0001 to 9999 in UTC. `Err` is the refusal's text.
fn read_instant(value: &str) -> Result<DateTime<Utc>, &'static str> {
    let at = DateTime::parse_from_rfc3339(value)
        .map_err(|_| DATE_TIME_FORM)?
        .with_timezone(&Utc);
    // chrono keeps a `:60` second as a leap second, which it then writes
    // back as `:60`: not a time Google or RFC 3339 readers take.
    if chrono::Timelike::nanosecond(&at) >= 1_000_000_000 {
        return Err("must not name a leap second (:60)");
    }
    // chrono also takes a space for the `T`, which `format: date-time` does not.
    if !rules::is_date_time_shaped(value) {
        return Err(DATE_TIME_FORM);
    }
    if !calsync_domain::event::in_supported_range(at) {
        return Err("must fall in the years 0001 to 9999 (UTC)");
    }
    Ok(at)
}

pub(crate) fn event_time(field: &str, body: &EventTimeBody) -> Result<EventTime, HttpError> {
    // A zone is checked with a date too: ignored, but still a zone name.
    let time_zone = body
        .time_zone
        .as_deref()
        .map(TimeZoneName::new)
        .transpose()
        .map_err(|error| invalid_at(&format!("{field}.timeZone"), error.to_string()))?;
    match (&body.date_time, &body.date) {
        (Some(at), None) => {
            let at = read_instant(at)
                .map_err(|message| invalid_at(&format!("{field}.dateTime"), message))?;
            Ok(EventTime::at(at, time_zone))
        }
        (None, Some(date)) => {
            // chrono alone also takes `2030-1-5` and `+2030-01-05`.
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .ok()
                .filter(|_| rules::is_date_shaped(date))
                .ok_or_else(|| {
                    invalid_at(
                        &format!("{field}.date"),
                        "must be a date such as 2026-12-01",
                    )
                })?;
            if !(1..=9999).contains(&chrono::Datelike::year(&date)) {
                return Err(invalid_at(
                    &format!("{field}.date"),
                    "must fall in the years 0001 to 9999",
                ));
            }
            Ok(EventTime::date(date))
        }
        _ => Err(invalid_at(
            field,
            "must have exactly one of dateTime and date",
        )),
    }
}

/// Google's attendee answers.
const RESPONSE_STATUSES: [&str; 4] = ["needsAction", "declined", "tentative", "accepted"];

pub(crate) fn attendees(list: &[AttendeeBody]) -> Result<Vec<Attendee>, HttpError> {
    list.iter()
        .enumerate()
        .map(|(i, body)| {
            let mut attendee = Attendee::new(body.email.clone())
                .map_err(|error| invalid_at(&format!("attendees[{i}].email"), error.to_string()))?;
            if body.display_name.as_ref().is_some_and(|name| {
                name.chars().count() > calsync_domain::event::limits::DISPLAY_NAME_CHARS
            }) {
                return Err(invalid_at(
                    &format!("attendees[{i}].displayName"),
                    format!(
                        "must be at most {} characters",
                        calsync_domain::event::limits::DISPLAY_NAME_CHARS
                    ),
                ));
            }
            if body
                .display_name
                .as_ref()
                .is_some_and(|name| name.contains('\0'))
            {
                return Err(invalid_at(
                    &format!("attendees[{i}].displayName"),
                    "must not contain NUL characters",
                ));
            }
            attendee.display_name = body.display_name.clone();
            attendee.optional = body.optional.unwrap_or(false);
            // An answer (an RSVP, on an invitation only this calendar's
            // own): one of Google's values (events reference,
            // `attendees[].responseStatus`).
            if let Some(answer) = &body.response_status {
                if !RESPONSE_STATUSES.contains(&answer.as_str()) {
                    return Err(invalid_at(
                        &format!("attendees[{i}].responseStatus"),
                        format!("must be one of {}", RESPONSE_STATUSES.join(", ")),
                    ));
                }
                attendee.response_status = Some(answer.clone());
            }
            Ok(attendee)
        })
        .collect()
}

/// Decodes a create body into the domain's `NewEvent`, `default_calendar`
/// standing in when the body names none. The handler and the fuzz targets
/// in `fuzz/` share it.
pub fn decode_create_body(
    body: &[u8],
    default_calendar: Option<&CalendarId>,
) -> Result<NewEvent, HttpError> {
    let input: CreateEventBody = parse_body(body)?;
    let calendar_id = match (input.calendar_id.as_deref(), default_calendar) {
        (Some(id), _) => CalendarId::new(id)?,
        (None, Some(default)) => default.clone(),
        (None, None) => {
            return Err(DomainError::invalid(
                "calendarId",
                "is required (no default calendar is configured)",
            )
            .into());
        }
    };
    let entity = EntityRef::new(input.entity_type, input.entity_id)?;
    let start = event_time("start", &input.start)?;
    let end = event_time("end", &input.end)?;
    let meet = match input.conference.as_ref().map(|c| c.create.as_str()) {
        None => false,
        Some("meet") => true,
        Some(_) => {
            return Err(invalid_at(
                "conference.create",
                "must be \"meet\" (Google Meet)",
            ));
        }
    };
    if let Some(color) = &input.color_id
        && !rules::COLOR_IDS.contains(&color.as_str())
    {
        return Err(DomainError::invalid(
            "colorId",
            "must be one of Google's event colour ids, \"1\" to \"11\"",
        )
        .into());
    }
    let fields = NewEventFields {
        summary: input.summary,
        description: input.description,
        location: input.location,
        attendees: attendees(&input.attendees)?,
        recurrence: input.recurrence,
        details: EventDetails {
            reminders: input.reminders.map(|r| Reminders {
                use_default: r.use_default,
                overrides: r
                    .overrides
                    .into_iter()
                    .map(|o| ReminderOverride {
                        method: o.method,
                        minutes: o.minutes,
                    })
                    .collect(),
            }),
            visibility: input.visibility,
            transparency: input.transparency,
            color_id: input.color_id,
            ..EventDetails::default()
        },
        meet,
    };
    Ok(NewEvent::new(calendar_id, entity, start, end, fields)?)
}

/// Decodes a patch body into the domain's `EventChanges`. The handler and
/// the fuzz targets in `fuzz/` share it.
pub fn decode_patch_body(body: &[u8]) -> Result<EventChanges, HttpError> {
    use calsync_domain::event::limits;
    let input: PatchEventBody = parse_body(body)?;
    // The body's own rules, checked before the event is read: a malformed
    // change is a 400 whatever `If-Match` says (RFC 9110, section 13.2.1:
    // preconditions apply to a request the server would otherwise accept).
    for (field, value, max) in [
        ("summary", &input.summary, limits::SUMMARY_CHARS),
        ("description", &input.description, limits::DESCRIPTION_CHARS),
        ("location", &input.location, limits::LOCATION_CHARS),
    ] {
        if let Some(Some(text)) = value {
            if text.chars().count() > max {
                return Err(invalid_at(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
            if text.contains('\0') {
                return Err(invalid_at(field, "must not contain NUL characters"));
            }
        }
    }
    if let Some(lines) = &input.recurrence {
        let max = calsync_domain::recurrence::MAX_LINES;
        if lines.len() > max {
            return Err(
                DomainError::unprocessable("recurrence", format!("at most {max} lines")).into(),
            );
        }
        if let Some((index, line)) = lines
            .iter()
            .enumerate()
            .find(|(_, line)| !rules::is_recurrence_line(line))
        {
            return Err(DomainError::unprocessable(
                "recurrence",
                format!(
                    "line {} ({line:?}): must be an RRULE, EXRULE, RDATE or EXDATE line",
                    index + 1
                ),
            )
            .into());
        }
    }
    if input
        .attendees
        .as_ref()
        .is_some_and(|list| list.len() > limits::ATTENDEES)
    {
        return Err(invalid_at(
            "attendees",
            format!("at most {} attendees", limits::ATTENDEES),
        ));
    }
    let status = match input
        .status
        .as_deref()
        .map(EventStatus::parse)
        .transpose()?
    {
        Some(EventStatus::Cancelled) => {
            return Err(DomainError::invalid("status", "cancel an event with DELETE").into());
        }
        other => other,
    };
    let changes = EventChanges {
        summary: input.summary,
        description: input.description,
        location: input.location,
        start: input
            .start
            .as_ref()
            .map(|t| event_time("start", t))
            .transpose()?,
        end: input
            .end
            .as_ref()
            .map(|t| event_time("end", t))
            .transpose()?,
        attendees: input.attendees.as_deref().map(attendees).transpose()?,
        status,
        recurrence: input.recurrence,
    };
    if changes.is_empty() {
        return Err(DomainError::invalid("body", "names no field to change").into());
    }
    Ok(changes)
}

pub(crate) fn instant(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, HttpError> {
    value
        .map(|v| read_instant(v).map_err(|message| DomainError::invalid(field, message).into()))
        .transpose()
}

pub(crate) fn page_token(event: &Event) -> String {
    format!("{}.{}", event.start.sort_key().timestamp_micros(), event.id)
}

/// Decodes a `pageToken`. Only what [`page_token`] writes is accepted (it
/// must read back as the same text) and only a start an event can have: a
/// cursor beyond the stored range would reach the database as a timestamp
/// Postgres cannot hold (a 503 instead of this 400).
pub fn parse_page_token(token: &str) -> Result<(DateTime<Utc>, LocalEventId), HttpError> {
    let invalid = || DomainError::invalid("pageToken", "is not a token this API returned");
    let (micros, id) = token.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let id = LocalEventId::parse(id).map_err(|_| invalid())?;
    if format!("{micros}.{id}") != token {
        return Err(invalid().into());
    }
    let start = DateTime::from_timestamp_micros(micros)
        .filter(|start| calsync_domain::event::in_supported_range(*start))
        .ok_or_else(invalid)?;
    Ok((start, id))
}

/// A window listing's `pageToken`: `{start micros}.{id}`, where the id is
/// a row's or an occurrence's (`{masterId}_{suffix}`).
pub(crate) fn listed_page_token(listed: &Listed) -> String {
    format!(
        "{}.{}",
        listed.event().start.sort_key().timestamp_micros(),
        listed.id()
    )
}

/// Decodes what [`listed_page_token`] writes.
pub(crate) fn parse_listed_page_token(token: &str) -> Result<(DateTime<Utc>, String), HttpError> {
    let invalid = || DomainError::invalid("pageToken", "is not a token this API returned");
    let (micros, id) = token.split_once('.').ok_or_else(invalid)?;
    // As written: a lower-case hyphenated UUID, with an occurrence suffix.
    let well_formed =
        rules::is_event_id(id) && !id.bytes().take(36).any(|b| b.is_ascii_uppercase());
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    if !well_formed || format!("{micros}.{id}") != token {
        return Err(invalid().into());
    }
    let start = DateTime::from_timestamp_micros(micros)
        .filter(|start| calsync_domain::event::in_supported_range(*start))
        .ok_or_else(invalid)?;
    Ok((start, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_bad_field() {
        let error = parse_body::<CreateEventBody>(
            br#"{"entityType":"deal","entityId":"1","start":{"dateTime":5},"end":{}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&error, HttpError::InvalidBody { field, .. } if field == "start.dateTime"),
            "{error:?}"
        );
        let error = parse_body::<CreateEventBody>(br#"{"entityType":"deal"}"#).unwrap_err();
        assert!(
            matches!(&error, HttpError::InvalidBody { message, .. } if message.contains("entityId")),
            "{error:?}"
        );
        assert!(parse_body::<CreateEventBody>(b"  ").is_err());
    }

    #[test]
    fn times_are_dates_or_instants_never_both() {
        let both = EventTimeBody {
            date_time: Some("2026-12-01T10:00:00Z".into()),
            date: Some("2026-12-01".into()),
            time_zone: None,
        };
        assert!(event_time("start", &both).is_err());
        let bad_zone = EventTimeBody {
            date_time: Some("2026-12-01T10:00:00+01:00".into()),
            time_zone: Some("not a zone".into()),
            date: None,
        };
        assert!(
            matches!(event_time("end", &bad_zone), Err(HttpError::InvalidBody { field, .. }) if field == "end.timeZone")
        );
        let at = event_time(
            "start",
            &EventTimeBody {
                date_time: Some("2026-12-01T10:00:00+01:00".into()),
                ..EventTimeBody::default()
            },
        )
        .unwrap();
        assert_eq!(at.sort_key().to_rfc3339(), "2026-12-01T09:00:00+00:00");
    }

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let id = LocalEventId::new();
        let start = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        let token = format!("{}.{}", start.timestamp_micros(), id);
        assert_eq!(parse_page_token(&token).unwrap(), (start, id));
        for bad in ["", "x", "1.2", "abc.def"] {
            assert!(parse_page_token(bad).is_err(), "{bad}");
        }
    }
}
