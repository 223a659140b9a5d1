//! Which events block time on a calendar. Time itself is not considered
//! here: this decides whether an event (a single event, an exception, or an
//! occurrence computed from a series' master; all carry the same fields)
//! counts as busy on the calendar whose copy it is.
//!
//! The rule, applied in this order (the first that matches decides):
//!
//! 1. A cancelled event (`status` = `cancelled`) is free.
//! 2. An event marked transparent (`transparency` = `transparent`, Google's
//!    "Show as: Available") is free.
//! 3. By event type: `workingLocation` and `birthday` entries are free
//!    (Google makes them transparent); `outOfOffice` and `focusTime`
//!    entries are busy. `default`, `fromGmail` and any other type go on to
//!    the next rule.
//! 4. By the calendar's own response to the event. The calendar's own
//!    attendee entry is the one whose email equals the calendar id (ignoring
//!    ASCII case), or the one Google marks `self: true` in the event as last
//!    read from Google. If that entry has declined, the event is free. If
//!    it has not answered (`needsAction`) or answered `tentative`, the event
//!    is busy when unanswered and tentative invitations count as busy (the
//!    `invitations_busy` setting, on by default) and free otherwise. If it
//!    has accepted, if its answer is missing or unknown, or if the calendar
//!    is not among the attendees at all (its own events), the event is busy.
//!
//! The mirror's own attendee list is read before Google's copy, so an
//! answer written through calsync and not yet pushed already counts.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use crate::event::{Attendee, Event, EventStatus, EventTime, EventType};
use crate::ids::CalendarId;

/// Settings of the busy rule (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRule {
    /// Whether invitations the calendar has not answered (`needsAction`)
    /// or answered `tentative` block time.
    pub invitations_busy: bool,
}

impl Default for BusyRule {
    fn default() -> Self {
        Self {
            invitations_busy: true,
        }
    }
}

/// A single event as free/busy reads it from the store: its calendar, its
/// times, and only the fields [`BusyRule`] looks at. Google's copy is
/// reduced to its `attendees`, so a read never decodes the rest of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusyCandidate {
    pub calendar_id: CalendarId,
    pub start: EventTime,
    pub end: EventTime,
    pub status: EventStatus,
    pub event_type: EventType,
    /// `details.transparency`.
    pub transparency: Option<String>,
    /// The mirror's attendee list.
    pub attendees: Vec<Attendee>,
    /// `attendees` of Google's copy, as Google sent them (empty without one).
    pub google_attendees: Vec<Value>,
}

impl BusyCandidate {
    /// The candidate an event is (what the store's projection reads).
    pub fn of(event: &Event) -> Self {
        Self {
            calendar_id: event.calendar_id.clone(),
            start: event.start.clone(),
            end: event.end.clone(),
            status: event.status,
            event_type: event.event_type.clone(),
            transparency: event.details.transparency.clone(),
            attendees: event.attendees.clone(),
            google_attendees: google_attendees(event).to_vec(),
        }
    }
}

/// One calendar of a [`BusyQuery`] and where its single events are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyCalendar {
    pub calendar_id: CalendarId,
    /// Only events starting at or after this instant (the window's start
    /// less the calendar's longest single event: none starting earlier
    /// reaches the window); `None`: no lower bound.
    pub starts_from: Option<DateTime<Utc>>,
}

/// The live (not cancelled) single events of several calendars that
/// overlap a window (times compare as [`EventTime::sort_key`]), in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyQuery {
    pub calendars: Vec<BusyCalendar>,
    /// Events ending after this instant ...
    pub ends_after: DateTime<Utc>,
    /// ... and starting before this one.
    pub starts_before: DateTime<Utc>,
}

impl BusyQuery {
    /// Whether `event` is one the query reads (the stores' filter, for
    /// fakes and tests; the SQL adapters say it in SQL).
    pub fn matches(&self, event: &Event) -> bool {
        // Bounds compare at the stores' precision, microseconds.
        let micros = |at: DateTime<Utc>| at.trunc_subsecs(6);
        let (start, end) = (event.start.sort_key(), event.end.sort_key());
        event.kind() == crate::event::EventKind::Single
            && event.status != EventStatus::Cancelled
            && end > micros(self.ends_after)
            && start < micros(self.starts_before)
            && self.calendars.iter().any(|c| {
                c.calendar_id == event.calendar_id
                    && c.starts_from.is_none_or(|from| start >= micros(from))
            })
    }
}

/// What the rule reads of an event or a candidate.
struct Facts<'a> {
    status: EventStatus,
    transparency: Option<&'a str>,
    event_type: &'a EventType,
    attendees: &'a [Attendee],
    google_attendees: &'a [Value],
}

impl BusyRule {
    /// Whether `event` blocks time on `calendar` (the module's rule).
    pub fn blocks(&self, event: &Event, calendar: &CalendarId) -> bool {
        self.decide(
            &Facts {
                status: event.status,
                transparency: event.details.transparency.as_deref(),
                event_type: &event.event_type,
                attendees: &event.attendees,
                google_attendees: google_attendees(event),
            },
            calendar,
        )
    }

    /// [`BusyRule::blocks`] for a candidate read by a [`BusyQuery`]: the
    /// same answer as for the event it was read from.
    pub fn blocks_candidate(&self, candidate: &BusyCandidate) -> bool {
        self.decide(
            &Facts {
                status: candidate.status,
                transparency: candidate.transparency.as_deref(),
                event_type: &candidate.event_type,
                attendees: &candidate.attendees,
                google_attendees: &candidate.google_attendees,
            },
            &candidate.calendar_id,
        )
    }

    fn decide(&self, facts: &Facts<'_>, calendar: &CalendarId) -> bool {
        if facts.status == EventStatus::Cancelled {
            return false;
        }
        if facts.transparency == Some("transparent") {
            return false;
        }
        match facts.event_type {
            EventType::WorkingLocation | EventType::Birthday => return false,
            EventType::OutOfOffice | EventType::FocusTime => return true,
            EventType::Default | EventType::FromGmail | EventType::Other(_) => {}
        }
        match response(facts.attendees, facts.google_attendees, calendar) {
            Some("declined") => false,
            Some("needsAction" | "tentative") => self.invitations_busy,
            _ => true,
        }
    }
}

/// The `attendees` of Google's copy of `event` (none without a copy).
fn google_attendees(event: &Event) -> &[Value] {
    event
        .google
        .as_ref()
        .and_then(|google| google.get("attendees"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The response status of `calendar`'s own attendee entry in `event`
/// (`needsAction`, `declined`, `tentative` or `accepted` as Google spells
/// them), or `None` when the calendar is not an attendee or its entry has
/// no answer. Its own entry is the attendee whose email equals the
/// calendar id (ignoring ASCII case) or the one Google marks `self: true`;
/// the mirror's attendee list is read first, then Google's copy.
pub fn self_response<'a>(event: &'a Event, calendar: &CalendarId) -> Option<&'a str> {
    response(&event.attendees, google_attendees(event), calendar)
}

fn response<'a>(
    attendees: &'a [Attendee],
    google_attendees: &'a [Value],
    calendar: &CalendarId,
) -> Option<&'a str> {
    let marked_self = google_attendees
        .iter()
        .find(|attendee| attendee.get("self").and_then(Value::as_bool) == Some(true));
    let marked_email = marked_self
        .and_then(|attendee| attendee.get("email"))
        .and_then(Value::as_str);
    let is_own = |email: &str| {
        email.eq_ignore_ascii_case(calendar.as_str())
            || marked_email.is_some_and(|marked| marked.eq_ignore_ascii_case(email))
    };
    let mirrored = attendees
        .iter()
        .find(|attendee| is_own(&attendee.email))
        .and_then(|attendee| attendee.response_status.as_deref());
    mirrored.or_else(|| {
        marked_self
            .or_else(|| {
                google_attendees.iter().find(|attendee| {
                    attendee
                        .get("email")
                        .and_then(Value::as_str)
                        .is_some_and(&is_own)
                })
            })
            .and_then(|attendee| attendee.get("responseStatus"))
            .and_then(Value::as_str)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attendee, EventTime, NewEvent, NewEventFields};
    use crate::ids::EntityRef;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    const ME: &str = "me@example.com";

    fn calendar() -> CalendarId {
        CalendarId::new(ME).unwrap()
    }

    fn attendee(email: &str, response: Option<&str>) -> Attendee {
        Attendee {
            response_status: response.map(str::to_owned),
            ..Attendee::new(email).unwrap()
        }
    }

    fn event(attendees: Vec<Attendee>) -> Event {
        let at = |h| EventTime::at(Utc.with_ymd_and_hms(2030, 3, 4, h, 0, 0).unwrap(), None);
        NewEvent::new(
            calendar(),
            EntityRef::new("deal", "1").unwrap(),
            at(9),
            at(10),
            NewEventFields {
                attendees,
                ..NewEventFields::default()
            },
        )
        .unwrap()
        .into_event(Utc::now())
    }

    fn invitation(my_answer: &str) -> Event {
        event(vec![
            attendee("boss@example.org", Some("accepted")),
            attendee(ME, Some(my_answer)),
        ])
    }

    /// The rule's answer, checked equal on the event and on the candidate
    /// the store's narrow read makes of it.
    fn decided(rule: BusyRule, event: &Event) -> bool {
        let answer = rule.blocks(event, &calendar());
        assert_eq!(
            rule.blocks_candidate(&BusyCandidate::of(event)),
            answer,
            "the candidate of {event:?}"
        );
        answer
    }

    fn blocks(event: &Event) -> bool {
        decided(BusyRule::default(), event)
    }

    fn blocks_when_invitations_free(event: &Event) -> bool {
        decided(
            BusyRule {
                invitations_busy: false,
            },
            event,
        )
    }

    #[test]
    fn own_event_without_attendees_is_busy() {
        let own = event(Vec::new());
        assert!(blocks(&own));
        assert!(blocks_when_invitations_free(&own));
        assert_eq!(self_response(&own, &calendar()), None);
    }

    #[test]
    fn invitations_count_as_busy_by_default() {
        assert!(BusyRule::default().invitations_busy);
    }

    #[test]
    fn cancelled_is_free() {
        let mut cancelled = invitation("accepted");
        cancelled.status = EventStatus::Cancelled;
        assert!(!blocks(&cancelled));
        cancelled.event_type = EventType::OutOfOffice;
        assert!(!blocks(&cancelled));
    }

    #[test]
    fn tentative_event_status_is_busy() {
        let mut tentative = event(Vec::new());
        tentative.status = EventStatus::Tentative;
        assert!(blocks(&tentative));
    }

    #[test]
    fn transparent_is_free_and_opaque_busy() {
        let mut shown_free = invitation("accepted");
        shown_free.details.transparency = Some("transparent".into());
        assert!(!blocks(&shown_free));
        shown_free.details.transparency = Some("opaque".into());
        assert!(blocks(&shown_free));
    }

    #[test]
    fn event_types_decide_before_responses() {
        let mut entry = invitation("declined");
        for (kind, busy) in [
            (EventType::WorkingLocation, false),
            (EventType::Birthday, false),
            (EventType::OutOfOffice, true),
            (EventType::FocusTime, true),
            (EventType::Default, false),
            (EventType::FromGmail, false),
            (EventType::Other("somethingNew".into()), false),
        ] {
            entry.event_type = kind.clone();
            assert_eq!(blocks(&entry), busy, "{kind:?}");
        }
        let mut own = event(Vec::new());
        own.event_type = EventType::WorkingLocation;
        assert!(!blocks(&own));
        own.event_type = EventType::Birthday;
        assert!(!blocks(&own));
        own.event_type = EventType::FromGmail;
        assert!(blocks(&own));
        own.event_type = EventType::Other("somethingNew".into());
        assert!(blocks(&own));
    }

    #[test]
    fn declined_by_email_match_is_free_ignoring_case() {
        let declined = event(vec![attendee("Me@Example.COM", Some("declined"))]);
        assert_eq!(self_response(&declined, &calendar()), Some("declined"));
        assert!(!blocks(&declined));
        assert!(!blocks_when_invitations_free(&declined));
    }

    #[test]
    fn others_declining_does_not_free_the_calendar() {
        let theirs = event(vec![
            attendee("boss@example.org", Some("declined")),
            attendee(ME, Some("accepted")),
        ]);
        assert!(blocks(&theirs));
    }

    #[test]
    fn declined_via_googles_self_flag_is_free() {
        // The calendar answers under an alias: only Google's `self` says so.
        let mut declined = event(vec![
            attendee("boss@example.org", Some("accepted")),
            attendee("alias@example.net", Some("declined")),
        ]);
        declined.google = Some(json!({"attendees": [
            {"email": "boss@example.org", "responseStatus": "accepted"},
            {"email": "alias@example.net", "self": true, "responseStatus": "declined"},
        ]}));
        assert_eq!(self_response(&declined, &calendar()), Some("declined"));
        assert!(!blocks(&declined));
        declined.google = None;
        assert!(blocks(&declined));
    }

    #[test]
    fn googles_copy_answers_when_the_mirror_has_no_entry() {
        let mut declined = event(Vec::new());
        declined.google = Some(json!({"attendees": [
            {"email": "alias@example.net", "self": true, "responseStatus": "declined"},
        ]}));
        assert!(!blocks(&declined));
        declined.google = Some(json!({"attendees": [
            {"email": "ME@example.com", "responseStatus": "declined"},
        ]}));
        assert!(!blocks(&declined));
        declined.google = Some(json!({"attendees": [
            {"email": "alias@example.net", "responseStatus": "declined"},
        ]}));
        assert!(blocks(&declined));
    }

    #[test]
    fn the_mirrors_answer_wins_over_googles_copy() {
        // Declined through calsync, not yet pushed: Google still says accepted.
        let mut answered = invitation("declined");
        answered.google = Some(json!({"attendees": [
            {"email": ME, "self": true, "responseStatus": "accepted"},
        ]}));
        assert!(!blocks(&answered));
    }

    #[test]
    fn needs_action_follows_the_setting() {
        let pending = invitation("needsAction");
        assert!(blocks(&pending));
        assert!(!blocks_when_invitations_free(&pending));
    }

    #[test]
    fn tentative_answer_follows_the_setting() {
        let maybe = invitation("tentative");
        assert!(blocks(&maybe));
        assert!(!blocks_when_invitations_free(&maybe));
    }

    #[test]
    fn accepted_missing_or_unknown_answers_are_busy() {
        for answer in [Some("accepted"), None, Some("somethingElse")] {
            let invited = event(vec![attendee(ME, answer)]);
            assert!(blocks_when_invitations_free(&invited), "{answer:?}");
        }
    }
}
