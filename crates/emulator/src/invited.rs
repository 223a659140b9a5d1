//! Invited copies and locked events: what the calendar of an attendee may
//! change.
//!
//! An event whose `organizer` is someone else (not `self`, not this
//! calendar) is the attendee's copy of it. Events reference
//! (<https://developers.google.com/workspace/calendar/api/v3/reference/events>):
//! `guestsCanModify` "Whether attendees other than the organizer can modify
//! the event"; `attendees[].responseStatus`, `comment` and
//! `additionalGuests` are the attendee's own answer; `reminders`,
//! `colorId`, `transparency` and `extendedProperties.private` ("Properties
//! that are private to the copy of the event that appears on this
//! calendar") belong to the copy. Anything else is refused with 403
//! `forbiddenForNonOrganizer`, "Shared properties can only be changed by the
//! organizer of the event." (Google's answer, see `error::google_message`).
//!
//! `locked`: "Whether this is a locked event copy where no changes can be
//! made to the main event fields "summary", "description", "location",
//! "start", "end" or "recurrence"." Refused the same way.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::event_types::GOOGLE_SET;
use crate::recurrence::{parse_when, zone_of};

/// The fields an attendee may change on their copy as a whole.
const ATTENDEE_FIELDS: [&str; 3] = ["reminders", "colorId", "transparency"];

/// The main fields a locked copy keeps.
const LOCKED_FIELDS: [&str; 6] = [
    "summary",
    "description",
    "location",
    "start",
    "end",
    "recurrence",
];

/// An attendee's own answer.
const ANSWER: [&str; 3] = ["responseStatus", "comment", "additionalGuests"];

/// Whether the event is an attendee's copy of an event organized by
/// someone else: an `organizer` neither `self` nor this calendar.
pub fn invited_copy(calendar_id: &str, body: &Map<String, Value>) -> bool {
    body.get("organizer").is_some_and(|organizer| {
        let own = organizer.get("self").and_then(Value::as_bool) == Some(true);
        let here = organizer
            .get("email")
            .and_then(Value::as_str)
            .is_some_and(|email| email.eq_ignore_ascii_case(calendar_id));
        !own && !here
    })
}

fn flag(body: &Map<String, Value>, key: &str) -> bool {
    body.get(key).and_then(Value::as_bool) == Some(true)
}

/// A field's value, an explicit `null` read as absent.
fn field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

/// Start and end compare as instants and zones, not as text: a client
/// echoing `…Z` for Google's `…+00:00` changes nothing.
fn same_time(old: Option<&Value>, new: Option<&Value>, name: &str) -> bool {
    match (old, new) {
        (Some(a), Some(b)) => {
            let parsed = |v: &Value| {
                parse_when(v, name)
                    .ok()
                    .zip(zone_of(v, name).ok().map(|z| z.map(|z| z.name())))
            };
            match (parsed(a), parsed(b)) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            }
        }
        (a, b) => a == b,
    }
}

fn is_self(calendar_id: &str, attendee: &Value) -> bool {
    attendee.get("self").and_then(Value::as_bool) == Some(true)
        || email_of(attendee).is_some_and(|email| email.eq_ignore_ascii_case(calendar_id))
}

fn email_of(attendee: &Value) -> Option<&str> {
    attendee.get("email").and_then(Value::as_str)
}

/// An attendee's keys a writer does not set: `organizer`, `self` and `id`
/// are "Read-only" (events reference, `attendees[]`), and `resource` "can
/// only be set when the attendee is added to the event for the first
/// time. Subsequent modifications are ignored." A client that leaves them
/// out, as calsync does, changes nothing.
const ATTENDEE_READ_ONLY: [&str; 4] = ["organizer", "self", "id", "resource"];

/// An attendee's entry as the writer states it: read-only keys left out,
/// the email without case, and absent values read as Google's defaults
/// (`responseStatus` `needsAction`, `optional` false, `additionalGuests`
/// 0), so that leaving out a default is no change.
fn stated(attendee: &Value) -> Map<String, Value> {
    let mut map = attendee.as_object().cloned().unwrap_or_default();
    for key in ATTENDEE_READ_ONLY {
        map.remove(key);
    }
    map.retain(|_, value| !value.is_null());
    if let Some(email) = email_of(attendee) {
        map.insert("email".into(), Value::String(email.to_ascii_lowercase()));
    }
    for (key, default) in [
        ("responseStatus", Value::from("needsAction")),
        ("optional", Value::from(false)),
        ("additionalGuests", Value::from(0)),
    ] {
        map.entry(key).or_insert(default);
    }
    map
}

/// The attendee lists differ at most in this calendar's own answer: the
/// same guests (matched by email, without case, in any order) and every
/// other guest's entry as it was (their answer, `optional`, a display name
/// if one is sent), read-only keys aside. The attendee's own entry may
/// change only its answer (`responseStatus`, `comment`,
/// `additionalGuests`).
fn only_own_answer_differs(calendar_id: &str, old: Option<&Value>, new: Option<&Value>) -> bool {
    let empty = Vec::new();
    let old = old.and_then(Value::as_array).unwrap_or(&empty);
    let new = new.and_then(Value::as_array).unwrap_or(&empty);
    let listed = |list: &[Value], attendee: &Value| {
        email_of(attendee).is_some_and(|email| {
            list.iter()
                .any(|x| email_of(x).is_some_and(|e| e.eq_ignore_ascii_case(email)))
        })
    };
    // The same addresses both ways: no guest added, removed or doubled.
    old.len() == new.len()
        && old.iter().all(|a| listed(new, a))
        && new.iter().all(|b| {
            let Some(email) = email_of(b) else {
                return false;
            };
            let Some(a) = old
                .iter()
                .find(|a| email_of(a).is_some_and(|e| e.eq_ignore_ascii_case(email)))
            else {
                return false;
            };
            // Whose entry it is, as stored: a writer's `self` is ignored.
            let own = is_self(calendar_id, a);
            let (mut a, mut b) = (stated(a), stated(b));
            if !b.contains_key("displayName") {
                // A name left out is no change of it.
                a.remove("displayName");
            }
            if own {
                for key in ANSWER {
                    a.remove(key);
                    b.remove(key);
                }
            }
            a == b
        })
}

/// Carries the read-only keys of each attendee of `old` over to the same
/// attendee (by email, without case) in `body`: Google keeps them whatever
/// a write sends (see [`ATTENDEE_READ_ONLY`]); the patch replaced the list
/// whole.
pub fn keep_read_only_attendee_keys(old: &Map<String, Value>, body: &mut Map<String, Value>) {
    let Some(before) = old.get("attendees").and_then(Value::as_array) else {
        return;
    };
    let Some(after) = body.get_mut("attendees").and_then(Value::as_array_mut) else {
        return;
    };
    for attendee in after.iter_mut() {
        let Some(email) = email_of(attendee).map(str::to_owned) else {
            continue;
        };
        let Some(known) = before
            .iter()
            .find(|a| email_of(a).is_some_and(|e| e.eq_ignore_ascii_case(&email)))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let Some(entry) = attendee.as_object_mut() else {
            continue;
        };
        for key in ATTENDEE_READ_ONLY {
            match known.get(key) {
                Some(value) => entry.insert(key.to_owned(), value.clone()),
                None => entry.remove(key),
            };
        }
    }
}

/// Only `extendedProperties.private` differs.
fn only_private_differs(old: Option<&Value>, new: Option<&Value>) -> bool {
    fn shared(v: Option<&Value>) -> Option<&Value> {
        v.and_then(|p| p.get("shared")).filter(|s| !s.is_null())
    }
    let others = |v: Option<&Value>| -> Map<String, Value> {
        v.and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "private" | "shared"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    shared(old) == shared(new) && others(old) == others(new)
}

/// Refuses a write (the event `old` becoming `new`) that an attendee may
/// not make to an invited copy, or that touches a locked event's main
/// fields. `ignored` fields are not compared (conference data the write
/// does not apply).
pub fn check_change(
    calendar_id: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    ignored: &[&str],
) -> Result<(), ApiError> {
    let locked = flag(old, "locked");
    let invited = invited_copy(calendar_id, old) && !flag(old, "guestsCanModify");
    if !locked && !invited {
        return Ok(());
    }
    let cancelled = old.get("status").and_then(Value::as_str) == Some("cancelled");
    let keys = old.keys().chain(new.keys()).map(String::as_str);
    for key in keys {
        // `locked` itself is Google's to set (events reference: read-only).
        if GOOGLE_SET.contains(&key) || key == "locked" || ignored.contains(&key) {
            continue;
        }
        // Deleting is allowed (it removes the copy from this calendar), and
        // so is the write that restores what was deleted.
        if key == "status" && cancelled {
            continue;
        }
        let (before, after) = (field(old, key), field(new, key));
        let same = match key {
            "start" | "end" => same_time(before, after, key),
            _ => before == after,
        };
        if same {
            continue;
        }
        if locked && LOCKED_FIELDS.contains(&key) {
            return Err(ApiError::forbidden_for_non_organizer());
        }
        if !invited {
            continue;
        }
        let allowed = ATTENDEE_FIELDS.contains(&key)
            || (key == "attendees" && only_own_answer_differs(calendar_id, before, after))
            || (key == "extendedProperties" && only_private_differs(before, after));
        if !allowed {
            return Err(ApiError::forbidden_for_non_organizer());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn copy() -> Map<String, Value> {
        map(json!({
            "id": "abcde",
            "summary": "Review",
            "organizer": {"email": "boss@example.com"},
            "start": {"dateTime": "2026-05-01T10:00:00Z"},
            "end": {"dateTime": "2026-05-01T11:00:00Z"},
            "attendees": [
                {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
                {"email": "cal@example.com", "self": true, "responseStatus": "needsAction"},
            ],
            "extendedProperties": {"shared": {"k": "v"}},
        }))
    }

    #[test]
    fn invited_copies_take_only_the_attendees_own_changes() {
        let old = copy();
        assert!(invited_copy("cal@example.com", &old));
        let mut answer = old.clone();
        answer["attendees"][1]["responseStatus"] = json!("accepted");
        answer.insert("colorId".into(), json!("3"));
        answer.insert(
            "extendedProperties".into(),
            json!({"shared": {"k": "v"}, "private": {"mine": "1"}}),
        );
        answer["start"] = json!({"dateTime": "2026-05-01T10:00:00+00:00"});
        assert_eq!(check_change("cal@example.com", &old, &answer, &[]), Ok(()));
        for (key, value) in [
            ("summary", json!("Renamed")),
            ("extendedProperties", json!({"shared": {"k": "w"}})),
            ("start", json!({"dateTime": "2026-05-01T09:00:00Z"})),
        ] {
            let mut changed = old.clone();
            changed.insert(key.into(), value);
            assert_eq!(
                check_change("cal@example.com", &old, &changed, &[])
                    .unwrap_err()
                    .reason,
                "forbiddenForNonOrganizer",
                "{key}"
            );
        }
        let mut other_answer = old.clone();
        other_answer["attendees"][0]["responseStatus"] = json!("declined");
        assert!(check_change("cal@example.com", &old, &other_answer, &[]).is_err());
    }

    #[test]
    fn attendees_match_by_email_and_read_only_keys_are_no_change() {
        let old = copy();
        let mut body = old.clone();
        // As calsync sends an RSVP: another order, no read-only keys, the
        // address in another case.
        body.insert(
            "attendees".into(),
            json!([
                {"email": "CAL@example.com", "responseStatus": "accepted"},
                {"email": "boss@example.com", "responseStatus": "accepted", "id": "x", "self": true},
            ]),
        );
        assert_eq!(check_change("cal@example.com", &old, &body, &[]), Ok(()));
        keep_read_only_attendee_keys(&old, &mut body);
        assert_eq!(
            body["attendees"],
            json!([
                {"email": "CAL@example.com", "self": true, "responseStatus": "accepted"},
                {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
            ]),
            "Google keeps its own keys"
        );
        for (what, attendees) in [
            (
                "the organizer's answer left out (needsAction)",
                json!([{"email": "cal@example.com", "responseStatus": "accepted"}, {"email": "boss@example.com"}]),
            ),
            (
                "another made optional",
                json!([{"email": "cal@example.com"}, {"email": "boss@example.com", "responseStatus": "accepted", "optional": true}]),
            ),
            (
                "a guest added",
                json!([{"email": "cal@example.com"}, {"email": "boss@example.com", "responseStatus": "accepted"}, {"email": "friend@example.com"}]),
            ),
            (
                "a guest removed",
                json!([{"email": "cal@example.com", "responseStatus": "accepted"}]),
            ),
            (
                "a guest doubled in place of another",
                json!([{"email": "cal@example.com"}, {"email": "CAL@example.com"}]),
            ),
            (
                "a guest replaced",
                json!([{"email": "cal@example.com"}, {"email": "other@example.com", "responseStatus": "accepted"}]),
            ),
            (
                "another renamed",
                json!([{"email": "cal@example.com"}, {"email": "boss@example.com", "responseStatus": "accepted", "displayName": "B"}]),
            ),
        ] {
            let mut changed = old.clone();
            changed.insert("attendees".into(), attendees);
            assert!(
                check_change("cal@example.com", &old, &changed, &[]).is_err(),
                "{what}"
            );
        }
    }

    #[test]
    fn own_events_are_free_unless_locked() {
        let mut own = copy();
        own.insert("organizer".into(), json!({"email": "cal@example.com"}));
        let mut renamed = own.clone();
        renamed.insert("summary".into(), json!("Renamed"));
        assert_eq!(check_change("cal@example.com", &own, &renamed, &[]), Ok(()));
        own.insert("locked".into(), json!(true));
        assert!(check_change("cal@example.com", &own, &renamed, &[]).is_err());
        let mut coloured = own.clone();
        coloured.insert("visibility".into(), json!("private"));
        assert_eq!(
            check_change("cal@example.com", &own, &coloured, &[]),
            Ok(())
        );
    }
}
