//! Google's event shape <-> the domain's, without loss for what the domain models.

use std::collections::HashMap;

use calsync_domain::event::{
    Attendee, Conference, ConferenceStatus, EntryPoint, Event, EventChanges, EventDetails,
    EventStatus, EventTime, EventType, Organizer, ReminderOverride, Reminders, TimeZoneName,
};
use calsync_domain::ids::{EntityRef, Etag, EventId};
use calsync_domain::sync::RemoteEvent;
use calsync_domain::{Error as DomainError, ProviderErrorKind};
use google_calendar3::api;

/// The private extended-property keys carrying the entity link.
pub const ENTITY_TYPE_KEY: &str = "entity_type";
pub const ENTITY_ID_KEY: &str = "entity_id";

fn to_google_time(time: &EventTime) -> api::EventDateTime {
    match time {
        EventTime::AllDay { date } => api::EventDateTime {
            date: Some(*date),
            ..api::EventDateTime::default()
        },
        EventTime::At { at, time_zone } => api::EventDateTime {
            date_time: Some(*at),
            time_zone: time_zone.as_ref().map(|tz| tz.as_str().to_owned()),
            ..api::EventDateTime::default()
        },
    }
}

fn from_google_time(time: Option<&api::EventDateTime>) -> Option<EventTime> {
    let time = time?;
    if let Some(date) = time.date {
        return Some(EventTime::date(date));
    }
    // A zone name Google sends but calsync cannot represent is dropped; the
    // instant itself is exact either way.
    let zone = time
        .time_zone
        .clone()
        .and_then(|tz| TimeZoneName::new(tz).ok());
    time.date_time.map(|at| EventTime::at(at, zone))
}

/// The conference solution calsync asks Google for.
pub const MEET: &str = "hangoutsMeet";

/// The body for `events.insert` (or a whole-event patch). For a patch,
/// cleared text fields are sent as empty strings and an empty recurrence as
/// `[]`: the client drops `None`s, so sending nothing would leave Google's
/// old value in place.
///
/// Besides the core fields it carries the event's reminders, visibility,
/// transparency and colour, and, on an insert whose conference still needs
/// creating, `conferenceData.createRequest` (taken only with
/// `conferenceDataVersion=1`, which the insert call always passes).
/// `hangoutLink` and the conference's entry points are Google's to set and
/// are never sent. `eventType` is sent on an insert only when it is not
/// `default` (absent means default), so Google judges any other type rather
/// than calsync silently making a default event of it; never on a patch,
/// since Google refuses a change of type.
pub fn to_google(event: &Event, for_patch: bool) -> api::Event {
    let text = |value: &Option<String>| match value {
        Some(text) => Some(text.clone()),
        None if for_patch => Some(String::new()),
        None => None,
    };
    let private = event.entity.as_ref().map(|entity| {
        HashMap::from([
            (ENTITY_TYPE_KEY.to_owned(), entity.entity_type().to_owned()),
            (ENTITY_ID_KEY.to_owned(), entity.entity_id().to_owned()),
        ])
    });
    api::Event {
        id: (!for_patch).then(|| event.google_event_id.to_string()),
        summary: text(&event.summary),
        description: text(&event.description),
        location: text(&event.location),
        start: Some(to_google_time(&event.start)),
        end: Some(to_google_time(&event.end)),
        status: Some(event.status.as_str().to_owned()),
        attendees: Some(to_google_attendees(&event.attendees)),
        recurrence: (for_patch || !event.recurrence.is_empty()).then(|| event.recurrence.clone()),
        extended_properties: private.map(|private| api::EventExtendedProperties {
            private: Some(private),
            shared: None,
        }),
        event_type: (!for_patch && event.event_type != EventType::Default)
            .then(|| event.event_type.as_str().to_owned()),
        reminders: event.details.reminders.as_ref().map(to_google_reminders),
        visibility: event.details.visibility.clone(),
        transparency: event.details.transparency.clone(),
        color_id: event.details.color_id.clone(),
        conference_data: if for_patch {
            None
        } else {
            event
                .details
                .conference
                .as_ref()
                .and_then(conference_request)
        },
        ..api::Event::default()
    }
}

fn to_google_reminders(reminders: &Reminders) -> api::EventReminders {
    api::EventReminders {
        use_default: Some(reminders.use_default),
        // An empty list says no more than none, so it is left out (and
        // `useDefault: true` goes alone, as Google expects it).
        overrides: (!reminders.overrides.is_empty()).then(|| {
            reminders
                .overrides
                .iter()
                .map(|o| api::EventReminder {
                    method: Some(o.method.clone()),
                    minutes: Some(i32::try_from(o.minutes).unwrap_or(i32::MAX)),
                })
                .collect()
        }),
    }
}

/// `conferenceData.createRequest` for a conference Google has yet to make
/// (events guide, "Add video and phone conferences"): the request id, which
/// makes a retried insert ask for the same conference, and the solution.
fn conference_request(conference: &Conference) -> Option<api::ConferenceData> {
    if !conference.needs_creating() {
        return None;
    }
    let request_id = conference.request_id.clone()?;
    Some(api::ConferenceData {
        create_request: Some(api::CreateConferenceRequest {
            request_id: Some(request_id),
            conference_solution_key: Some(api::ConferenceSolutionKey {
                type_: Some(
                    conference
                        .solution
                        .clone()
                        .unwrap_or_else(|| MEET.to_owned()),
                ),
            }),
            status: None,
        }),
        ..api::ConferenceData::default()
    })
}

/// Google's attendee entries. An attendee without an answer goes as
/// `needsAction` (a new guest's); on a patch the domain has filled in the
/// answers the mirror knows first (`EventChanges::fill_attendees_from`), so
/// this never resets an answer Google holds.
fn to_google_attendees(attendees: &[Attendee]) -> Vec<api::EventAttendee> {
    attendees
        .iter()
        .map(|a| api::EventAttendee {
            email: Some(a.email.clone()),
            display_name: a.display_name.clone(),
            optional: a.optional.then_some(true),
            response_status: a
                .response_status
                .clone()
                .or_else(|| Some("needsAction".into())),
            ..api::EventAttendee::default()
        })
        .collect()
}

/// The body for `events.patch`: only the changed fields, so a field the
/// caller did not touch (attendees' RSVPs, a status set in Google) is left
/// as Google has it. Cleared text fields go as empty strings: the client
/// drops `None`s, and Google's patch leaves absent fields unchanged.
pub fn patch_body(changes: &EventChanges) -> api::Event {
    let text = |value: &Option<Option<String>>| {
        value.as_ref().map(|text| text.clone().unwrap_or_default())
    };
    api::Event {
        summary: text(&changes.summary),
        description: text(&changes.description),
        location: text(&changes.location),
        start: changes.start.as_ref().map(to_google_time),
        end: changes.end.as_ref().map(to_google_time),
        status: changes.status.map(|s| s.as_str().to_owned()),
        attendees: changes.attendees.as_deref().map(to_google_attendees),
        // `Some(vec![])` serializes as `[]` and survives the null stripping
        // (it removes only nulls), so an empty list ends the series at Google.
        recurrence: changes.recurrence.clone(),
        // Never `eventType` (Google refuses a change of type) and never
        // conference data: a patch carries only what `EventChanges` names.
        ..api::Event::default()
    }
}

/// The JSON of [`patch_body`] as the request carries it: nulls stripped as
/// the generated client strips them, so absent fields stay absent (a
/// `null` would clear them at Google) while `""` and `[]` clear.
///
/// Then the one place a `null` is sent on purpose: a `start` or `end` is
/// sent whole, every one of `date`, `dateTime` and `timeZone` it does not
/// hold as `null`, since calsync's PATCH replaces a time whole. Google's
/// patch merges into nested
/// objects ("patch semantics": only the fields in the body change, events
/// reference, `events.patch`,
/// <https://developers.google.com/workspace/calendar/api/v3/reference/events/patch>,
/// and the performance guide's "Patch (partial update)"), so
/// `{"start": {"dateTime": ..}}` on an all-day event keeps its
/// `start.date`, and Google refuses the result with 400 `invalid`
/// "Invalid start time"; and a zone-less `dateTime` would keep the old
/// `timeZone`, so Google's copy would differ from the mirror's. An explicit
/// `null` clears a field. Always, not only when calsync believes something
/// changes: what the mirror knows of Google's copy may be stale, a wrong
/// guess is a permanent 400 or a silent drift, and a `null` for a field
/// Google does not hold is no change.
pub fn patch_json(changes: &EventChanges) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(patch_body(changes))?;
    google_calendar3::common::remove_json_null_values(&mut value);
    for (field, new) in [("start", &changes.start), ("end", &changes.end)] {
        if new.is_none() {
            continue;
        }
        let Some(time) = value
            .get_mut(field)
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        for key in ["date", "dateTime", "timeZone"] {
            time.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    Ok(value)
}

fn malformed(what: &str) -> DomainError {
    DomainError::provider(
        ProviderErrorKind::Permanent,
        format!("Google sent an event {what}"),
    )
}

/// Google's text without NUL characters, which Postgres text cannot hold
/// (one such event must not stop a calendar's sync for good), and empty
/// text as absent: calsync clears a field by sending `""` (Google takes no
/// `null`), so what reads back empty was cleared.
fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| {
        if t.contains('\0') {
            t.replace('\0', "")
        } else {
            t
        }
    })
    .filter(|t| !t.is_empty())
}

/// An event as Google reports it, for the domain. A cancelled stub maps to a
/// `RemoteEvent` with only id and status (and the instance fields and the
/// verbatim copy if present).
///
/// `google` keeps the whole resource as JSON, nulls stripped. It is
/// re-encoded from the `api::Event` the generated client decoded, so a field
/// the client's schema does not know (one Google added after the client was
/// generated) cannot survive that decoding and is missing from it.
pub fn from_google(event: api::Event) -> Result<RemoteEvent, DomainError> {
    let google = serde_json::to_value(&event).ok().map(|mut value| {
        google_calendar3::common::remove_json_null_values(&mut value);
        value
    });
    let id = event.id.ok_or_else(|| malformed("without an id"))?;
    let id = EventId::new(id).map_err(|_| malformed("with an unusable id"))?;
    let status = match event.status.as_deref() {
        Some("cancelled") => EventStatus::Cancelled,
        Some("tentative") => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    };
    let entity = event
        .extended_properties
        .as_ref()
        .and_then(|props| props.private.as_ref())
        .and_then(
            |private| match (private.get(ENTITY_TYPE_KEY), private.get(ENTITY_ID_KEY)) {
                (Some(kind), Some(id)) => EntityRef::new(kind.clone(), id.clone()).ok(),
                _ => None,
            },
        );
    Ok(RemoteEvent {
        id,
        status,
        ical_uid: clean(event.i_cal_uid),
        summary: clean(event.summary),
        description: clean(event.description),
        location: clean(event.location),
        start: from_google_time(event.start.as_ref()),
        end: from_google_time(event.end.as_ref()),
        attendees: event
            .attendees
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| {
                Some(Attendee {
                    email: a.email?,
                    display_name: clean(a.display_name),
                    response_status: clean(a.response_status),
                    optional: a.optional.unwrap_or(false),
                })
            })
            .collect(),
        organizer: event.organizer.map(|o| Organizer {
            email: o.email,
            display_name: clean(o.display_name),
        }),
        recurrence: event.recurrence.unwrap_or_default(),
        recurring_event_id: event
            .recurring_event_id
            .and_then(|id| EventId::new(id).ok()),
        original_start: from_google_time(event.original_start_time.as_ref()),
        etag: event.etag.and_then(|etag| Etag::new(etag).ok()),
        updated: event.updated,
        html_link: event.html_link,
        event_type: event
            .event_type
            .as_deref()
            .map(EventType::parse)
            .unwrap_or_default(),
        details: EventDetails {
            reminders: event.reminders.map(from_google_reminders),
            visibility: clean(event.visibility),
            transparency: clean(event.transparency),
            color_id: clean(event.color_id),
            hangout_link: clean(event.hangout_link),
            conference: event.conference_data.and_then(from_google_conference),
        },
        google,
        entity,
    })
}

fn from_google_reminders(reminders: api::EventReminders) -> Reminders {
    Reminders {
        use_default: reminders.use_default.unwrap_or(false),
        overrides: reminders
            .overrides
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                Some(ReminderOverride {
                    method: clean(o.method)?,
                    minutes: u32::try_from(o.minutes?).ok()?,
                })
            })
            .collect(),
    }
}

/// Google's `conferenceData`. The status is `createRequest.status.statusCode`;
/// conference data without a request (added in Google's UI or by another
/// client as a finished conference) is a conference that exists: `Success`
/// when it names one, else `Pending`. Never `Requested`: that is calsync's
/// own "not yet asked", and what Google sends back has been asked.
fn from_google_conference(data: api::ConferenceData) -> Option<Conference> {
    let request = data.create_request;
    let conference_id = clean(data.conference_id);
    let entry_points: Vec<EntryPoint> = data
        .entry_points
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(EntryPoint {
                entry_point_type: clean(p.entry_point_type)?,
                uri: clean(p.uri)?,
                label: clean(p.label),
            })
        })
        .collect();
    let solution = data
        .conference_solution
        .and_then(|s| s.key)
        .and_then(|k| clean(k.type_))
        .or_else(|| {
            request
                .as_ref()
                .and_then(|r| r.conference_solution_key.as_ref())
                .and_then(|k| clean(k.type_.clone()))
        });
    let request_id = request.as_ref().and_then(|r| clean(r.request_id.clone()));
    let code = request.and_then(|r| r.status).and_then(|s| s.status_code);
    let exists = conference_id.is_some() || !entry_points.is_empty();
    let status = match code.as_deref() {
        Some("success") => ConferenceStatus::Success,
        Some("failure") => ConferenceStatus::Failure,
        Some("pending") => ConferenceStatus::Pending,
        _ if exists => ConferenceStatus::Success,
        _ => ConferenceStatus::Pending,
    };
    if request_id.is_none() && !exists && solution.is_none() {
        // `conferenceData: {}`: nothing to show.
        return None;
    }
    Some(Conference {
        request_id,
        status,
        conference_id,
        solution,
        entry_points,
    })
}

#[cfg(test)]
mod decoding_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use calsync_domain::event::{NewEvent, NewEventFields};
    use calsync_domain::ids::CalendarId;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn sample(start: EventTime, end: EventTime) -> Event {
        NewEvent::new(
            CalendarId::new("c@example.com").unwrap(),
            EntityRef::new("deal", "42").unwrap(),
            start,
            end,
            NewEventFields {
                summary: Some("Kick-off".into()),
                attendees: vec![Attendee::new("ann@example.com").unwrap()],
                ..NewEventFields::default()
            },
        )
        .unwrap()
        .into_event(Utc::now())
    }

    #[test]
    fn all_day_dates_stay_dates_both_ways() {
        let start = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let google = to_google(&sample(EventTime::date(start), EventTime::date(end)), false);
        let start_json = serde_json::to_value(&google.start).unwrap();
        assert_eq!(start_json["date"], "2026-03-01");
        assert!(
            start_json["dateTime"].is_null(),
            "no dateTime, no UTC midnight"
        );
        let back = from_google(google).unwrap();
        assert_eq!(back.start, Some(EventTime::date(start)));
        assert_eq!(back.end, Some(EventTime::date(end)), "exclusive end kept");
    }

    #[test]
    fn instants_time_zones_and_the_entity_link_round_trip() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let zone = TimeZoneName::new("Europe/Berlin").unwrap();
        let event = sample(
            EventTime::at(at, Some(zone.clone())),
            EventTime::at(at + chrono::Duration::hours(1), Some(zone)),
        );
        let google = to_google(&event, false);
        assert_eq!(
            google.id.as_deref(),
            Some(event.google_event_id.as_str()),
            "the client-chosen id is sent"
        );
        let back = from_google(google).unwrap();
        assert_eq!(back.start, Some(event.start.clone()));
        assert_eq!(back.entity, event.entity);
        assert_eq!(back.attendees[0].email, "ann@example.com");
        assert_eq!(back.summary.as_deref(), Some("Kick-off"));
    }

    #[test]
    fn patches_clear_text_explicitly_and_omit_the_id() {
        let at = Utc::now();
        let mut event = sample(EventTime::at(at, None), EventTime::at(at, None));
        event.location = None;
        let google = to_google(&event, true);
        assert_eq!(google.location.as_deref(), Some(""));
        assert_eq!(google.id, None);
    }

    #[test]
    fn cancelled_stubs_and_instances_map() {
        let stub: api::Event = serde_json::from_value(serde_json::json!({
            "kind": "calendar#event", "etag": "\"5\"", "id": "abc_20260301T090000Z", "status": "cancelled",
            "recurringEventId": "abc", "originalStartTime": {"dateTime": "2026-03-01T09:00:00Z"}
        }))
        .unwrap();
        let remote = from_google(stub).unwrap();
        assert_eq!(remote.status, EventStatus::Cancelled);
        assert_eq!((remote.start, remote.end), (None, None));
        assert_eq!(remote.recurring_event_id.unwrap().as_str(), "abc");
        assert!(remote.original_start.is_some());
        let no_id: api::Event =
            serde_json::from_value(serde_json::json!({"status": "confirmed"})).unwrap();
        assert!(from_google(no_id).is_err());
    }

    #[test]
    fn nul_characters_from_google_are_dropped() {
        let event: api::Event = serde_json::from_value(serde_json::json!({
            "id": "abcde", "status": "confirmed", "summary": "a\u{0}b",
            "description": "\u{0}", "attendees": [{"email": "x@y.z", "displayName": "n\u{0}"}]
        }))
        .unwrap();
        let remote = from_google(event).unwrap();
        assert_eq!(remote.summary.as_deref(), Some("ab"));
        assert_eq!(remote.description, None, "nothing but NUL is empty: absent");
        assert_eq!(remote.attendees[0].display_name.as_deref(), Some("n"));
    }
}
