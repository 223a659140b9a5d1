//! What Google lets this calendar change in its copy of an event: an
//! invitation organized elsewhere, or a locked copy, takes far fewer
//! changes than an event the calendar organizes. Checked before a write is
//! queued, so calsync never sends Google a change it refuses.
//!
//! From the events reference
//! (<https://developers.google.com/workspace/calendar/api/v3/reference/events>):
//! `organizer.self` says "whether the organizer corresponds to the calendar
//! on which this copy of the event appears"; `guestsCanModify`, "whether
//! attendees other than the organizer can modify the event" (default
//! false); `locked`, "whether this is a locked event copy where no changes
//! can be made to the main event fields summary, description, location,
//! start, end or recurrence". What stays the calendar's own is its copy's
//! `reminders` ("for the authenticated user"), `colorId`, `transparency`,
//! the private extended properties ("private to the copy of the event that
//! appears on this calendar") and its own attendee entry's
//! `responseStatus`. Anything else on an invitation Google refuses with 403
//! `forbiddenForNonOrganizer` ("Shared properties can only be changed by
//! the organizer of the event").

use serde_json::Value;

use crate::error::{Error, Result};

use super::changes::{EventChanges, answer_of};
use super::types::{Attendee, Event};

/// Who may change what in one calendar's copy of an event, as far as the
/// mirror knows (Google's resource as last read; nothing is known before
/// Google has answered for the event, and then it is calsync's own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyRights {
    /// The organizer's address when the event is an invitation organized
    /// from another calendar; `None` when this calendar organizes it.
    pub invited_by: Option<String>,
    /// Google's `guestsCanModify`: attendees may change the event itself.
    pub guests_can_modify: bool,
    /// Google's `locked`.
    pub locked: bool,
}

impl CopyRights {
    /// Read from the event's verbatim Google resource.
    pub fn of(event: &Event) -> Self {
        let Some(google) = event.google.as_ref() else {
            return Self::default();
        };
        let flag = |value: Option<&Value>| value.and_then(Value::as_bool).unwrap_or(false);
        let organizer = google.get("organizer");
        let organizer_email = organizer
            .and_then(|o| o.get("email"))
            .and_then(Value::as_str);
        let own = flag(organizer.and_then(|o| o.get("self")))
            || organizer_email
                .is_some_and(|email| email.eq_ignore_ascii_case(event.calendar_id.as_str()));
        let invited_by = match (organizer, own) {
            (Some(_), false) => Some(organizer_email.unwrap_or("another calendar").to_owned()),
            _ => None,
        };
        Self {
            invited_by,
            guests_can_modify: flag(google.get("guestsCanModify")),
            locked: flag(google.get("locked")),
        }
    }

    /// Whether this calendar may change only its own part of the event.
    fn attendee_only(&self) -> bool {
        self.invited_by.is_some() && !self.guests_can_modify
    }
}

/// The fields a locked copy keeps as they are (events reference, `locked`).
const LOCKED_FIELDS: &str = "summary, description, location, start, end or recurrence";

/// What Google lets an attendee change in an invitation's copy.
const ATTENDEE_MAY_CHANGE: &str = "its own attendee entry's responseStatus (attendees[].responseStatus), and its copy's reminders, colorId, transparency and private extended properties";

/// Refuses `changes` to `event` that Google would refuse (403
/// `forbiddenForNonOrganizer`): on an invitation without
/// `guestsCanModify`, anything but this calendar's own RSVP; on a locked
/// copy, its main fields. A field sent with the value it already has is no
/// change. The error names the first refused field and what Google allows.
pub fn check_copy_change(event: &Event, changes: &EventChanges) -> Result<()> {
    let rights = CopyRights::of(event);
    if !rights.locked && !rights.attendee_only() {
        return Ok(());
    }
    let main = main_fields_changed(event, changes);
    if rights.locked
        && let Some(first) = main.first()
    {
        return Err(Error::unprocessable(
            first,
            format!(
                "the event is a locked copy: Google allows no changes to its {LOCKED_FIELDS} (this change touches {}); only {ATTENDEE_MAY_CHANGE} can change",
                main.join(", ")
            ),
        ));
    }
    if !rights.attendee_only() {
        return Ok(());
    }
    let mut refused = main;
    if changes.status.is_some_and(|status| status != event.status) {
        refused.push("status");
    }
    if let Some(attendees) = &changes.attendees
        && !only_own_response_changed(event, &event.attendees, attendees)
    {
        refused.push("attendees");
    }
    let Some(first) = refused.first() else {
        return Ok(());
    };
    let organizer = rights.invited_by.as_deref().unwrap_or("another calendar");
    Err(Error::unprocessable(
        first,
        format!(
            "the event is an invitation organized by {organizer}, and this calendar holds an attendee's copy: Google lets an attendee change only {ATTENDEE_MAY_CHANGE}; {} can only be changed by the organizer (Google: 403 forbiddenForNonOrganizer)",
            refused.join(", ")
        ),
    ))
}

/// The main fields (the ones a locked copy keeps) that `changes` sets to
/// something other than what `event` has, in a fixed order.
fn main_fields_changed(event: &Event, changes: &EventChanges) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |field: &'static str, differs: bool| {
        if differs {
            changed.push(field);
        }
    };
    check(
        "summary",
        changes
            .summary
            .as_ref()
            .is_some_and(|v| *v != event.summary),
    );
    check(
        "description",
        changes
            .description
            .as_ref()
            .is_some_and(|v| *v != event.description),
    );
    check(
        "location",
        changes
            .location
            .as_ref()
            .is_some_and(|v| *v != event.location),
    );
    check(
        "start",
        changes.start.as_ref().is_some_and(|v| *v != event.start),
    );
    check("end", changes.end.as_ref().is_some_and(|v| *v != event.end));
    check(
        "recurrence",
        changes
            .recurrence
            .as_ref()
            .is_some_and(|v| *v != event.recurrence),
    );
    changed
}

/// Whether `next` is `current` with at most this calendar's own entry's
/// `responseStatus` changed: the same guests (by address, without case),
/// each as optional as it was, and every other guest's answer as it was.
/// An answer left out counts as `needsAction`, as the adapter sends it
/// (the update path fills in what the caller leaves out from the mirror
/// first, [`EventChanges::fill_attendees_from`]). Display names are not
/// compared: one a client leaves out or spells otherwise changes no
/// guest's answer.
fn only_own_response_changed(event: &Event, current: &[Attendee], next: &[Attendee]) -> bool {
    if current.len() != next.len() {
        return false;
    }
    let own = own_address(event);
    next.iter().all(|wanted| {
        let Some(known) = current
            .iter()
            .find(|c| c.email.eq_ignore_ascii_case(&wanted.email))
        else {
            return false;
        };
        let is_own = own
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(&wanted.email));
        known.optional == wanted.optional
            && (is_own || answer_of(Some(wanted)) == answer_of(Some(known)))
    })
}

/// This calendar's attendee address: the entry Google marks `self`, else
/// the calendar id.
fn own_address(event: &Event) -> Option<String> {
    let marked = event
        .google
        .as_ref()
        .and_then(|g| g.get("attendees"))
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|a| a.get("self").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|a| a.get("email"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    marked.or_else(|| Some(event.calendar_id.as_str().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventTime, NewEvent, NewEventFields};
    use crate::ids::{CalendarId, EntityRef};
    use chrono::{NaiveDate, Utc};
    use serde_json::json;

    fn event(google: Option<Value>) -> Event {
        let day = |d| EventTime::date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
        let mut event = NewEvent::new(
            CalendarId::new("me@example.com").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            day(1),
            day(2),
            NewEventFields {
                summary: Some("Review".into()),
                attendees: vec![
                    Attendee::new("me@example.com").unwrap(),
                    Attendee::new("boss@example.org").unwrap(),
                ],
                ..NewEventFields::default()
            },
        )
        .unwrap()
        .into_event(Utc::now());
        event.google = google;
        event
    }

    fn invitation() -> Value {
        json!({"organizer": {"email": "boss@example.org"},
               "attendees": [{"email": "me@example.com", "self": true}, {"email": "boss@example.org", "organizer": true}]})
    }

    fn rename() -> EventChanges {
        EventChanges {
            summary: Some(Some("Mine now".into())),
            ..EventChanges::default()
        }
    }

    #[test]
    fn own_events_take_any_change() {
        for google in [
            None,
            Some(json!({"organizer": {"email": "x@y.z", "self": true}})),
            Some(json!({"organizer": {"email": "ME@example.com"}})),
            Some(json!({"summary": "no organizer"})),
        ] {
            let event = event(google);
            assert_eq!(CopyRights::of(&event).invited_by, None);
            assert!(check_copy_change(&event, &rename()).is_ok());
        }
    }

    #[test]
    fn an_invitation_refuses_shared_fields_and_names_what_google_allows() {
        let event = event(Some(invitation()));
        let err = check_copy_change(&event, &rename()).unwrap_err();
        let Error::Unprocessable { field, reason } = err else {
            panic!("{err:?}")
        };
        assert_eq!(field, "summary");
        for allowed in [
            "responseStatus",
            "reminders",
            "colorId",
            "transparency",
            "private extended properties",
        ] {
            assert!(reason.contains(allowed), "{reason}");
        }
        assert!(reason.contains("boss@example.org"), "{reason}");
        let status = EventChanges {
            status: Some(crate::event::EventStatus::Tentative),
            ..EventChanges::default()
        };
        assert!(check_copy_change(&event, &status).is_err());
        // Sending a field unchanged is no change.
        let same = EventChanges {
            summary: Some(Some("Review".into())),
            ..EventChanges::default()
        };
        assert!(check_copy_change(&event, &same).is_ok());
    }

    #[test]
    fn an_attendee_may_answer_for_itself_only() {
        let event = event(Some(invitation()));
        let mut answered = event.attendees.clone();
        answered[0].response_status = Some("accepted".into());
        let rsvp = EventChanges {
            attendees: Some(answered.clone()),
            ..EventChanges::default()
        };
        assert!(check_copy_change(&event, &rsvp).is_ok());
        answered[1].response_status = Some("declined".into());
        let for_the_boss = EventChanges {
            attendees: Some(answered),
            ..EventChanges::default()
        };
        let err = check_copy_change(&event, &for_the_boss).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unprocessable {
                    field: "attendees",
                    ..
                }
            ),
            "{err}"
        );
        let mut more = event.attendees.clone();
        more.push(Attendee::new("friend@example.net").unwrap());
        let invite = EventChanges {
            attendees: Some(more),
            ..EventChanges::default()
        };
        assert!(check_copy_change(&event, &invite).is_err());
    }

    #[test]
    fn others_compare_by_address_optional_and_answer_only() {
        let mut event = event(Some(invitation()));
        event.attendees[1].response_status = Some("accepted".into());
        event.attendees[1].display_name = Some("The Boss".into());
        let rsvp = |boss_answer: Option<&str>| {
            let mut me = Attendee::new("ME@example.com").unwrap();
            me.response_status = Some("accepted".into());
            let mut boss = Attendee::new("boss@example.org").unwrap();
            boss.response_status = boss_answer.map(str::to_owned);
            EventChanges {
                // Another order, no display names.
                attendees: Some(vec![boss, me]),
                ..EventChanges::default()
            }
        };
        assert!(
            check_copy_change(&event, &rsvp(Some("accepted"))).is_ok(),
            "a display name left out is no change"
        );
        // Left out, the organizer's answer would be sent as needsAction.
        assert!(check_copy_change(&event, &rsvp(None)).is_err());
        assert!(check_copy_change(&event, &rsvp(Some("declined"))).is_err());
    }

    #[test]
    fn guests_who_may_modify_may_change_the_event_unless_it_is_locked() {
        let mut google = invitation();
        google["guestsCanModify"] = json!(true);
        assert!(check_copy_change(&event(Some(google.clone())), &rename()).is_ok());
        google["locked"] = json!(true);
        let err = check_copy_change(&event(Some(google)), &rename()).unwrap_err();
        let Error::Unprocessable { field, reason } = err else {
            panic!("{err:?}")
        };
        assert_eq!(field, "summary");
        assert!(reason.contains("locked"), "{reason}");
        let locked_own = event(Some(json!({"organizer": {"self": true}, "locked": true})));
        let moved = EventChanges {
            end: Some(EventTime::date(
                NaiveDate::from_ymd_opt(2026, 3, 4).unwrap(),
            )),
            ..EventChanges::default()
        };
        assert!(matches!(
            check_copy_change(&locked_own, &moved),
            Err(Error::Unprocessable { field: "end", .. })
        ));
        let attendees = EventChanges {
            attendees: Some(vec![]),
            ..EventChanges::default()
        };
        assert!(
            check_copy_change(&locked_own, &attendees).is_ok(),
            "a locked copy keeps only its main fields"
        );
    }
}
