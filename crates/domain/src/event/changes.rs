//! A partial update of an event's content, as the API takes it and the
//! outbox keeps it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;

use super::new::check_attendees;
use super::types::{
    Attendee, Event, EventStatus, EventTime, PushState, check_optional_text, check_series_zones,
    check_span, limits,
};

/// Reads a present JSON `null` as `Some(None)` ("clear it") and leaves an
/// absent field `None` ("leave it"), with `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A partial update of an event's content; `None` leaves a field as it is,
/// `Some(None)` clears an optional field. Serialized with the outbox row, so
/// a queued patch sends exactly the fields its caller changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventChanges {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub summary: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub location: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<Attendee>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
    /// A series' rule lines (a master's whole series changes); empty ends
    /// the recurrence, making the master a single event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Vec<String>>,
}

/// Attendees compared as who is invited, not how they answered: an RSVP
/// made in Google is not a change of the guest list.
fn same_guests(a: &[Attendee], b: &[Attendee]) -> bool {
    let key = |list: &[Attendee]| {
        let mut keys: Vec<(String, bool)> = list
            .iter()
            .map(|x| (x.email.to_ascii_lowercase(), x.optional))
            .collect();
        keys.sort();
        keys
    };
    key(a) == key(b)
}

/// The attendee with this address (Google compares addresses without case).
fn find<'a>(list: &'a [Attendee], email: &str) -> Option<&'a Attendee> {
    list.iter().find(|a| a.email.eq_ignore_ascii_case(email))
}

/// An attendee's answer as Google holds it: none given is `needsAction`,
/// which is what the adapter sends for it and Google's answer for a guest
/// who has not replied (events reference, `attendees[].responseStatus`).
pub(crate) fn answer_of(attendee: Option<&Attendee>) -> &str {
    attendee
        .and_then(|a| a.response_status.as_deref())
        .unwrap_or("needsAction")
}

/// The answers of `answered` (addresses) are the same in both lists.
fn same_answers(a: &[Attendee], b: &[Attendee], answered: &[String]) -> bool {
    answered
        .iter()
        .all(|email| answer_of(find(a, email)) == answer_of(find(b, email)))
}

impl EventChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The current values, in `event`, of the fields these changes touch:
    /// what the caller's edit was based on.
    pub fn base_in(&self, event: &Event) -> Self {
        Self {
            summary: self.summary.as_ref().map(|_| event.summary.clone()),
            description: self.description.as_ref().map(|_| event.description.clone()),
            location: self.location.as_ref().map(|_| event.location.clone()),
            start: self.start.as_ref().map(|_| event.start.clone()),
            end: self.end.as_ref().map(|_| event.end.clone()),
            attendees: self.attendees.as_ref().map(|_| event.attendees.clone()),
            status: self.status.map(|_| event.status),
            recurrence: self.recurrence.as_ref().map(|_| event.recurrence.clone()),
        }
    }

    /// Fills in, for each attendee this change sends, what it leaves out
    /// and `current` (the event as the mirror holds it) knows: the answer
    /// (`responseStatus`) and the display name. Google's patch replaces the
    /// attendee list whole and the adapter sends a missing answer as
    /// `needsAction`, so an answer left out would reset it: on an
    /// invitation that changes another attendee's answer, which Google
    /// refuses (403 `forbiddenForNonOrganizer`), and on any event it drops
    /// RSVPs made in Google.
    pub fn fill_attendees_from(&mut self, current: &[Attendee]) {
        let Some(attendees) = &mut self.attendees else {
            return;
        };
        for attendee in attendees.iter_mut() {
            let Some(known) = find(current, &attendee.email) else {
                continue;
            };
            if attendee.response_status.is_none() {
                attendee.response_status.clone_from(&known.response_status);
            }
            if attendee.display_name.is_none() {
                attendee.display_name.clone_from(&known.display_name);
            }
        }
    }

    /// The attendees (lowercased addresses) whose answer this change gives:
    /// those whose `responseStatus` differs from the one in `base`, the
    /// values the change was made on. An answer equal to the base one was
    /// carried over ([`EventChanges::fill_attendees_from`]), not given, and
    /// Google's may replace it.
    pub fn answered(&self, base: &Self) -> Vec<String> {
        let Some(attendees) = &self.attendees else {
            return Vec::new();
        };
        let before = base.attendees.as_deref().unwrap_or_default();
        attendees
            .iter()
            .filter(|a| {
                a.response_status.is_some()
                    && answer_of(Some(a)) != answer_of(find(before, &a.email))
            })
            .map(|a| a.email.to_ascii_lowercase())
            .collect()
    }

    /// Whether every field named here has this value in `current` (fields
    /// not named are ignored). Attendees compare by guest list, and by
    /// answer for the attendees in `answered` (see
    /// [`EventChanges::answered`]): an RSVP-only change has not landed
    /// while the answer it gives is not Google's.
    pub fn holds_in(&self, current: &Self, answered: &[String]) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
            want.is_none() || want == have
        }
        same(&self.summary, &current.summary)
            && same(&self.description, &current.description)
            && same(&self.location, &current.location)
            && same(&self.start, &current.start)
            && same(&self.end, &current.end)
            && same(&self.status, &current.status)
            && same(&self.recurrence, &current.recurrence)
            && match (&self.attendees, &current.attendees) {
                (None, _) => true,
                (Some(want), Some(have)) => {
                    same_guests(want, have) && same_answers(want, have, answered)
                }
                (Some(_), None) => false,
            }
    }

    /// The content fields of a whole event (no status, no attendees): what a
    /// patch queued before changes were recorded per row sends.
    pub fn content_of(event: &Event) -> Self {
        Self {
            summary: Some(event.summary.clone()),
            description: Some(event.description.clone()),
            location: Some(event.location.clone()),
            start: Some(event.start.clone()),
            end: Some(event.end.clone()),
            attendees: None,
            status: None,
            recurrence: None,
        }
    }

    /// Carries Google's RSVPs over to the attendees this change sends, for
    /// guests on both lists, so a guest-list edit does not reset answers;
    /// except the answers this change gives (`answered`, see
    /// [`EventChanges::answered`]), which are what it is sending.
    pub fn keep_responses_from(&mut self, current: &[Attendee], answered: &[String]) {
        if let Some(attendees) = &mut self.attendees {
            for attendee in attendees.iter_mut() {
                if answered
                    .iter()
                    .any(|email| email.eq_ignore_ascii_case(&attendee.email))
                {
                    continue;
                }
                if let Some(known) = find(current, &attendee.email) {
                    attendee.response_status.clone_from(&known.response_status);
                }
            }
        }
    }

    /// The changes applied to a copy of `event`, the result validated as a
    /// whole (a new start must still precede the old end, and so on). Who
    /// may make the change is judged apart: see `apply_to`.
    pub(super) fn merged_into(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
        let mut next = event.clone();
        if let Some(summary) = &self.summary {
            check_optional_text("summary", summary.as_deref(), limits::SUMMARY_CHARS)?;
            next.summary = summary.clone();
        }
        if let Some(description) = &self.description {
            check_optional_text(
                "description",
                description.as_deref(),
                limits::DESCRIPTION_CHARS,
            )?;
            next.description = description.clone();
        }
        if let Some(location) = &self.location {
            check_optional_text("location", location.as_deref(), limits::LOCATION_CHARS)?;
            next.location = location.clone();
        }
        if let Some(start) = &self.start {
            next.start = start.clone();
        }
        if let Some(end) = &self.end {
            next.end = end.clone();
        }
        check_span(&next.start, &next.end)?;
        if let Some(recurrence) = &self.recurrence {
            if event.is_exception() {
                return Err(crate::error::Error::unprocessable(
                    "recurrence",
                    "an occurrence of a series has no recurrence of its own; change the series",
                ));
            }
            next.recurrence = recurrence.clone();
        }
        if next.is_master() && (self.recurrence.is_some() || self.start.is_some()) {
            // The rule is anchored at the start: both must still agree.
            crate::recurrence::Series::new(&next.recurrence, &next.start, &next.end)?;
        }
        if next.is_master()
            && (self.recurrence.is_some() || self.start.is_some() || self.end.is_some())
        {
            // Judged on the series as it will be: a rule added to a
            // zone-less event, or a series moved to a zone-less time.
            check_series_zones(&next.start, &next.end)?;
        }
        if let Some(attendees) = &self.attendees {
            check_attendees(attendees)?;
            next.attendees = attendees.clone();
        }
        if let Some(status) = self.status {
            next.status = status;
        }
        next.push_state = PushState::Pending;
        next.push_note = None;
        next.updated_at = now;
        Ok(next)
    }
}
