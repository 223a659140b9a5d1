//! `eventType` rules: the types, what an API insert may create, and which
//! changes birthday and fromGmail events accept.
//!
//! Event types guide:
//! https://developers.google.com/workspace/calendar/api/guides/event-types
//! ("Event type cannot be changed after an event is created. Different
//! event types have different restrictions").

use serde_json::{Map, Value, json};

use crate::error::ApiError;

pub const TYPES: [&str; 6] = [
    "default",
    "birthday",
    "focusTime",
    "fromGmail",
    "outOfOffice",
    "workingLocation",
];

pub fn of(body: &Map<String, Value>) -> &str {
    body.get("eventType")
        .and_then(Value::as_str)
        .unwrap_or("default")
}

/// Google's answer to a write a type does not allow: reason
/// `eventTypeRestriction`, domain `calendar`, message "Attempt made to
/// modify 'birthday' event in a way that is not valid for this event type."
/// (as Google answered, quoted in kellylford/QuickMail issue 294).
pub fn restricted(event_type: &str) -> ApiError {
    ApiError::bad_request(
        "eventTypeRestriction",
        format!(
            "Attempt made to modify '{event_type}' event in a way that is not valid for this event type."
        ),
    )
}

/// Parses the repeated `eventTypes` parameter (list, watch).
pub fn filter(values: Vec<String>) -> Result<Vec<String>, ApiError> {
    for value in &values {
        if !TYPES.contains(&value.as_str()) {
            return Err(ApiError::bad_request(
                "invalid",
                format!("Invalid value for eventTypes: {value}"),
            ));
        }
    }
    Ok(values)
}

pub fn matches(filter: &[String], body: &Map<String, Value>) -> bool {
    filter.is_empty() || filter.iter().any(|t| t == of(body))
}

/// Sets and checks `eventType` on an API insert. `fromGmail` events are
/// made by Gmail only; birthday events may be created with the guide's
/// specification: one all-day day, yearly recurrence, private visibility,
/// transparent, and no private extended properties (Google: "'birthday'
/// event type must not have private extended properties.", quoted in
/// phw198/OutlookGoogleCalendarSync issue 2103).
pub fn check_insert(body: &mut Map<String, Value>, admin: bool) -> Result<(), ApiError> {
    let event_type = of(body).to_owned();
    if !TYPES.contains(&event_type.as_str()) {
        return Err(ApiError::bad_request(
            "invalid",
            format!("Invalid event type: {event_type}"),
        ));
    }
    body.insert("eventType".into(), json!(event_type));
    if admin {
        return Ok(());
    }
    match event_type.as_str() {
        "fromGmail" => Err(ApiError::bad_request(
            "eventTypeRestriction",
            "Events of type 'fromGmail' cannot be created through the API.",
        )),
        "birthday" => {
            if body
                .get("extendedProperties")
                .and_then(|p| p.get("private"))
                .is_some()
            {
                return Err(ApiError::bad_request(
                    "eventTypeRestriction",
                    "'birthday' event type must not have private extended properties.",
                ));
            }
            let date = |field: &str| {
                body.get(field)
                    .and_then(|v| v.get("date"))
                    .and_then(Value::as_str)
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            };
            let one_day = matches!((date("start"), date("end")), (Some(s), Some(e)) if e == s + chrono::Duration::days(1));
            let yearly = body.get("recurrence") == Some(&json!(["RRULE:FREQ=YEARLY"]));
            let visibility_ok = body.get("visibility").is_none_or(|v| v == "private");
            let transparency_ok = body.get("transparency").is_none_or(|v| v == "transparent");
            if !(one_day && yearly && visibility_ok && transparency_ok) {
                return Err(restricted("birthday"));
            }
            body.insert("visibility".into(), json!("private"));
            body.insert("transparency".into(), json!("transparent"));
            body.entry("birthdayProperties")
                .or_insert(json!({"type": "birthday"}));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Fields Google sets on every event (or that only `import`/`move`
/// change): a difference there is not the writer's change. Shared with the
/// invited-copy rule (`invited.rs`).
pub(crate) const GOOGLE_SET: [&str; 13] = [
    "kind",
    "etag",
    "id",
    "htmlLink",
    "created",
    "updated",
    "iCalUID",
    "organizer",
    "creator",
    "sequence",
    "eventType",
    "recurringEventId",
    "originalStartTime",
];

/// Beyond [`GOOGLE_SET`], what a typed event's writer never sets here.
const TYPE_READ_ONLY: [&str; 4] = [
    "hangoutLink",
    "birthdayProperties",
    "status",
    "conferenceData",
];

/// Fields a write may change, per type (event types guide). Birthday:
/// colorId, summary, reminders, start and end (still one all-day day).
/// fromGmail: colorId, reminders, visibility, transparency, extended
/// properties, and attendees' response status.
fn allowed(event_type: &str) -> Option<&'static [&'static str]> {
    match event_type {
        "birthday" => Some(&["colorId", "summary", "reminders", "start", "end"]),
        "fromGmail" => Some(&[
            "colorId",
            "reminders",
            "visibility",
            "transparency",
            "extendedProperties",
            "attendees",
        ]),
        _ => None,
    }
}

/// Attendees differ only in their `responseStatus`.
fn only_responses_differ(old: Option<&Value>, new: Option<&Value>) -> bool {
    let strip = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|a| {
                        let mut a = a.clone();
                        if let Some(map) = a.as_object_mut() {
                            map.remove("responseStatus");
                        }
                        a
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(old) == strip(new)
}

/// Checks a patch (`changes` merged into `old`) or update (`changes`
/// replacing `old`) against the event's type: `eventType` cannot change
/// (400 `invalid`, "Event type cannot be changed."), and birthday and
/// fromGmail events take only their allowed fields.
pub fn check_change(
    old: &Map<String, Value>,
    changes: &Map<String, Value>,
    replace: bool,
) -> Result<(), ApiError> {
    let event_type = of(old);
    if let Some(new_type) = changes.get("eventType")
        && new_type.as_str() != Some(event_type)
    {
        return Err(ApiError::bad_request(
            "invalid",
            "Event type cannot be changed.",
        ));
    }
    let Some(allowed) = allowed(event_type) else {
        return Ok(());
    };
    let mut touched: Vec<&str> = changes
        .iter()
        .filter(|(k, v)| old.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if replace {
        touched.extend(
            old.keys()
                .filter(|k| !changes.contains_key(k.as_str()))
                .map(String::as_str),
        );
    }
    for field in touched {
        if GOOGLE_SET.contains(&field) || TYPE_READ_ONLY.contains(&field) {
            continue;
        }
        let ok = allowed.contains(&field)
            && (field != "attendees"
                || only_responses_differ(old.get("attendees"), changes.get("attendees")));
        if !ok {
            return Err(restricted(event_type));
        }
    }
    if event_type == "birthday" && (changes.contains_key("start") || changes.contains_key("end")) {
        let date = |field: &str| {
            changes
                .get(field)
                .or_else(|| old.get(field))
                .and_then(|v| v.get("date"))
                .and_then(Value::as_str)
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        if !matches!((date("start"), date("end")), (Some(s), Some(e)) if e == s + chrono::Duration::days(1))
        {
            return Err(restricted(event_type));
        }
    }
    Ok(())
}

/// Birthdays synced from Google Contacts (`birthdayProperties.contact`)
/// cannot be deleted through the API (Google's `eventTypeRestriction`
/// answer to such a delete is quoted in kellylford/QuickMail issue 294).
pub fn check_delete(body: &Map<String, Value>) -> Result<(), ApiError> {
    let from_contacts = body
        .get("birthdayProperties")
        .and_then(|p| p.get("contact"))
        .is_some();
    if of(body) == "birthday" && from_contacts {
        Err(restricted("birthday"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use crate::state::{Calendars, WriteOptions};

    #[test]
    fn a_watch_with_event_types_hears_only_those() {
        let mut calendars = Calendars::default();
        let now = chrono::Utc::now();
        let request =
            json!({"id": "ch1", "type": "web_hook", "address": "http://127.0.0.1:9/hook"});
        calendars
            .watch(
                "cal",
                "someone",
                &request,
                now,
                chrono::Duration::days(1),
                vec!["birthday".into()],
            )
            .unwrap();
        let insert = |calendars: &mut Calendars, body: serde_json::Value| {
            let serde_json::Value::Object(body) = body else {
                unreachable!()
            };
            calendars
                .insert("cal", body, now, WriteOptions::default())
                .unwrap()
                .1
        };
        let plain = insert(
            &mut calendars,
            json!({"start": {"date": "2026-01-01"}, "end": {"date": "2026-01-02"}}),
        );
        assert!(plain.is_empty());
        let birthday = insert(
            &mut calendars,
            json!({
                "eventType": "birthday",
                "start": {"date": "2026-01-01"},
                "end": {"date": "2026-01-02"},
                "recurrence": ["RRULE:FREQ=YEARLY"],
            }),
        );
        assert_eq!(birthday.len(), 1);
        assert_eq!(birthday[0].state, "exists");
    }
}
