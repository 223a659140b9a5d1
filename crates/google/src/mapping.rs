//! Google's event shape <-> the domain's, without loss for what the domain models.

use std::collections::HashMap;

use calsync_domain::event::{
    Attendee, Event, EventChanges, EventStatus, EventTime, Organizer, TimeZoneName,
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

/// The body for `events.insert` / `events.patch`. For a patch, cleared text
/// fields are sent as empty strings: the client drops `None`s, so sending
/// nothing would leave Google's old value in place.
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
        recurrence: (!event.recurrence.is_empty()).then(|| event.recurrence.clone()),
        extended_properties: private.map(|private| api::EventExtendedProperties {
            private: Some(private),
            shared: None,
        }),
        ..api::Event::default()
    }
}

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
        ..api::Event::default()
    }
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
/// `RemoteEvent` with only id and status (and the instance fields if present).
pub fn from_google(event: api::Event) -> Result<RemoteEvent, DomainError> {
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
        entity,
    })
}

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
