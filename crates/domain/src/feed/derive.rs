//! Which changes a row write makes: the one rule every store applies, so
//! the three stores record the same feed for the same writes.

use chrono::{DateTime, Utc};

use super::{ChangeDetail, ChangeType, NewChange, Origin, Respondent};
use crate::event::{Event, EventStatus};
use crate::ids::CalendarId;

/// The fields of the API's event resource that differ between `before` and
/// `after`, by their names there. Bookkeeping (`updated`, Google's
/// verbatim copy, sync runs, push times) is not a change: a row rewritten
/// with the same content changes nothing the application can see.
pub fn changed_fields(before: &Event, after: &Event) -> Vec<String> {
    let mut fields: Vec<&'static str> = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            fields.push(name);
        }
    };
    check("summary", before.summary != after.summary);
    check("description", before.description != after.description);
    check("location", before.location != after.location);
    check("start", before.start != after.start);
    check("end", before.end != after.end);
    check("status", before.status != after.status);
    check("attendees", before.attendees != after.attendees);
    check("organizer", before.organizer != after.organizer);
    check("recurrence", before.recurrence != after.recurrence);
    check(
        "recurringEventId",
        before.recurring_event_id != after.recurring_event_id,
    );
    check(
        "originalStartTime",
        before.original_start != after.original_start,
    );
    check("iCalUID", before.ical_uid != after.ical_uid);
    check("eventType", before.event_type != after.event_type);
    let (b, a) = (&before.details, &after.details);
    check("reminders", b.reminders != a.reminders);
    check("visibility", b.visibility != a.visibility);
    check("transparency", b.transparency != a.transparency);
    check("colorId", b.color_id != a.color_id);
    check("hangoutLink", b.hangout_link != a.hangout_link);
    check("conference", b.conference != a.conference);
    let entity = |e: &Event| {
        e.entity
            .as_ref()
            .map(|r| (r.entity_type().to_owned(), r.entity_id().to_owned()))
    };
    check("entity", entity(before) != entity(after));
    check("pushState", before.push_state != after.push_state);
    check("pushNote", before.push_note != after.push_note);
    check("etag", before.etag != after.etag);
    check("htmlLink", before.html_link != after.html_link);
    fields.into_iter().map(str::to_owned).collect()
}

/// An attendee's answer, with "none recorded" read as Google's
/// `needsAction` (Google fills it in on its copy of an invitation calsync
/// wrote without one: that is no answer).
fn answer(status: &Option<String>) -> &str {
    status.as_deref().unwrap_or("needsAction")
}

/// Attendees whose `responseStatus` differs, matched by email (case-insensitive).
fn respondents(before: &Event, after: &Event) -> Vec<Respondent> {
    after
        .attendees
        .iter()
        .filter_map(|now| {
            let previous = before
                .attendees
                .iter()
                .find(|was| was.email.eq_ignore_ascii_case(&now.email))?;
            (answer(&previous.response_status) != answer(&now.response_status)).then(|| {
                Respondent {
                    email: now.email.clone(),
                    previous: previous.response_status.clone(),
                    response_status: now.response_status.clone(),
                }
            })
        })
        .collect()
}

/// Whether the attendee lists differ only in answers (same people, same order).
fn only_answers_differ(before: &Event, after: &Event) -> bool {
    before.attendees.len() == after.attendees.len()
        && before.attendees.iter().zip(&after.attendees).all(|(b, a)| {
            b.email.eq_ignore_ascii_case(&a.email)
                && b.display_name == a.display_name
                && b.optional == a.optional
        })
}

/// The changes writing `after` over `before` (`None`: a new row) records.
///
/// - A new row: `event.created`, or `event.cancelled` when it arrives
///   cancelled (an occurrence of a series cancelled at Google).
/// - A row that turns cancelled: `event.cancelled`.
/// - Answers that changed: `attendee.responded`, naming whose; beside it
///   `event.updated` when anything else changed too (an answer-only change
///   is one `attendee.responded`).
/// - Anything else that changed: `event.updated` with the fields.
/// - Nothing changed (the same etag and content, an echo of calsync's own
///   write): nothing.
pub fn event_changes(
    before: Option<&Event>,
    after: &Event,
    origin: Origin,
    at: DateTime<Utc>,
) -> Vec<NewChange> {
    let change = |kind: ChangeType, fields: Vec<String>, detail: ChangeDetail| NewChange {
        kind,
        origin,
        occurred_at: at,
        calendar_id: Some(after.calendar_id.clone()),
        event: Some(Box::new(after.clone())),
        changed_fields: fields,
        detail,
    };
    let Some(before) = before else {
        let kind = if after.status == EventStatus::Cancelled {
            ChangeType::EventCancelled
        } else {
            ChangeType::EventCreated
        };
        return vec![change(kind, Vec::new(), ChangeDetail::default())];
    };
    let fields = changed_fields(before, after);
    if fields.is_empty() {
        return Vec::new();
    }
    if after.status == EventStatus::Cancelled && before.status != EventStatus::Cancelled {
        return vec![change(
            ChangeType::EventCancelled,
            fields,
            ChangeDetail::default(),
        )];
    }
    let answered = respondents(before, after);
    let mut changes = Vec::new();
    let answers_only = !answered.is_empty() && only_answers_differ(before, after);
    // An answer moves the etag (and Google's `updated`); those alone do
    // not make it an update of the event as well.
    let others: Vec<String> = fields
        .iter()
        .filter(|f| !(answers_only && matches!(f.as_str(), "attendees" | "etag")))
        .cloned()
        .collect();
    if !others.is_empty() {
        changes.push(change(
            ChangeType::EventUpdated,
            fields.clone(),
            ChangeDetail::default(),
        ));
    }
    if !answered.is_empty() {
        changes.push(change(
            ChangeType::AttendeeResponded,
            fields,
            ChangeDetail {
                respondents: answered,
                ..ChangeDetail::default()
            },
        ));
    }
    changes
}

/// A row turned cancelled by a bulk write (a series' exceptions with
/// their master, a full sync's sweep, retention): only its status changed.
pub fn cancellation(after: &Event, origin: Origin, at: DateTime<Utc>) -> NewChange {
    NewChange {
        kind: ChangeType::EventCancelled,
        origin,
        occurred_at: at,
        calendar_id: Some(after.calendar_id.clone()),
        event: Some(Box::new(after.clone())),
        changed_fields: vec!["status".to_owned()],
        detail: ChangeDetail::default(),
    }
}

/// A change the outbox's fate made to one event: `kind`, the event after
/// it, the fields it changed and, if any, the error or note that says why.
fn push_change(
    kind: ChangeType,
    origin: Origin,
    (before, after): (&Event, &Event),
    error: Option<&str>,
    at: DateTime<Utc>,
) -> NewChange {
    NewChange {
        kind,
        origin,
        occurred_at: at,
        calendar_id: Some(after.calendar_id.clone()),
        event: Some(Box::new(after.clone())),
        changed_fields: changed_fields(before, after),
        detail: ChangeDetail {
            error: error.map(str::to_owned),
            ..ChangeDetail::default()
        },
    }
}

/// A write given up (dead-lettered): `event.push_failed` with Google's error.
pub fn push_failed(before: &Event, after: &Event, error: &str, at: DateTime<Utc>) -> NewChange {
    let kind = ChangeType::EventPushFailed;
    push_change(kind, Origin::Calsync, (before, after), Some(error), at)
}

/// An operator requeued a failed write: `event.push_retried`, the event
/// `pending` again.
pub fn push_retried(before: &Event, after: &Event, at: DateTime<Utc>) -> NewChange {
    push_change(
        ChangeType::EventPushRetried,
        Origin::Api,
        (before, after),
        None,
        at,
    )
}

/// An operator discarded a failed write: `event.push_discarded`, the event
/// as Google has it, and what was given up.
pub fn push_discarded(before: &Event, after: &Event, note: &str, at: DateTime<Utc>) -> NewChange {
    let kind = ChangeType::EventPushDiscarded;
    push_change(kind, Origin::Api, (before, after), Some(note), at)
}

/// A write that lost to a concurrent edit at Google: `event.conflict`, the
/// event as Google has it, and calsync's note.
pub fn conflict(before: &Event, after: &Event, note: &str, at: DateTime<Utc>) -> NewChange {
    let kind = ChangeType::EventConflict;
    push_change(kind, Origin::Google, (before, after), Some(note), at)
}

/// A Drive notification received (`detail` holds its headers).
pub fn drive_change(drive: serde_json::Value, at: DateTime<Utc>) -> NewChange {
    NewChange {
        kind: ChangeType::DriveChanged,
        origin: Origin::Google,
        occurred_at: at,
        calendar_id: None,
        event: None,
        changed_fields: Vec::new(),
        detail: ChangeDetail {
            drive: Some(drive),
            ..ChangeDetail::default()
        },
    }
}

/// A calendar-level change (`calendar.reconnect_required`,
/// `calendar.recovered`), from calsync.
pub fn calendar_change(
    kind: ChangeType,
    calendar_id: &CalendarId,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> NewChange {
    calsync_change(kind, Some(calendar_id.clone()), error, None, at)
}

/// A change to a connected account: `grant.reconnect_required` (with
/// Google's refusal) or `grant.recovered`.
pub fn grant_change(
    kind: ChangeType,
    grant: &crate::grant::GrantId,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> NewChange {
    calsync_change(kind, None, error, Some(grant.as_str().to_owned()), at)
}

/// A change calsync itself makes, of no event.
fn calsync_change(
    kind: ChangeType,
    calendar_id: Option<CalendarId>,
    error: Option<&str>,
    grant: Option<String>,
    at: DateTime<Utc>,
) -> NewChange {
    NewChange {
        kind,
        origin: Origin::Calsync,
        occurred_at: at,
        calendar_id,
        event: None,
        changed_fields: Vec::new(),
        detail: ChangeDetail {
            error: error.map(str::to_owned),
            grant,
            ..ChangeDetail::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Attendee, EventTime, NewEvent, NewEventFields};
    use crate::ids::{EntityRef, Etag};
    use chrono::TimeZone;

    fn event() -> Event {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let fields = NewEventFields {
            summary: Some("Kick-off".into()),
            attendees: vec![Attendee::new("ana@example.com").unwrap()],
            ..NewEventFields::default()
        };
        NewEvent::new(
            CalendarId::new("cal@example.com").unwrap(),
            EntityRef::new("deal", "42").unwrap(),
            EventTime::at(at, None),
            EventTime::at(at + chrono::Duration::hours(1), None),
            fields,
        )
        .unwrap()
        .into_event(at)
    }

    fn kinds(changes: &[NewChange]) -> Vec<ChangeType> {
        changes.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn a_new_row_is_created_or_a_cancelled_occurrence() {
        let at = Utc::now();
        let new = event();
        assert_eq!(
            kinds(&event_changes(None, &new, Origin::Api, at)),
            [ChangeType::EventCreated]
        );
        let mut cancelled = new.clone();
        cancelled.status = EventStatus::Cancelled;
        assert_eq!(
            kinds(&event_changes(None, &cancelled, Origin::Google, at)),
            [ChangeType::EventCancelled]
        );
    }

    #[test]
    fn the_same_content_records_nothing() {
        let before = event();
        let mut after = before.clone();
        after.updated_at += chrono::Duration::seconds(5);
        after.google = Some(serde_json::json!({"sequence": 3}));
        after.pushed_at = Some(Utc::now());
        assert!(event_changes(Some(&before), &after, Origin::Google, Utc::now()).is_empty());
    }

    #[test]
    fn an_answer_alone_is_one_attendee_responded_naming_whose() {
        let before = event();
        let mut after = before.clone();
        after.attendees[0].response_status = Some("declined".into());
        after.etag = Some(Etag::new("\"2\"").unwrap());
        let changes = event_changes(Some(&before), &after, Origin::Google, Utc::now());
        assert_eq!(kinds(&changes), [ChangeType::AttendeeResponded]);
        let who = &changes[0].detail.respondents;
        assert_eq!(who.len(), 1);
        assert_eq!(who[0].email, "ana@example.com");
        assert_eq!(who[0].response_status.as_deref(), Some("declined"));
        assert_eq!(who[0].previous, None);
    }

    #[test]
    fn google_filling_in_needs_action_is_no_answer() {
        let before = event();
        let mut after = before.clone();
        after.attendees[0].response_status = Some("needsAction".into());
        after.etag = Some(Etag::new("\"2\"").unwrap());
        let changes = event_changes(Some(&before), &after, Origin::Calsync, Utc::now());
        assert_eq!(kinds(&changes), [ChangeType::EventUpdated]);
    }

    #[test]
    fn an_answer_with_a_move_is_an_update_and_a_response() {
        let before = event();
        let mut after = before.clone();
        after.attendees[0].response_status = Some("accepted".into());
        after.summary = Some("Moved".into());
        let changes = event_changes(Some(&before), &after, Origin::Google, Utc::now());
        assert_eq!(
            kinds(&changes),
            [ChangeType::EventUpdated, ChangeType::AttendeeResponded]
        );
        assert_eq!(changes[0].changed_fields, ["summary", "attendees"]);
    }

    #[test]
    fn cancelling_is_cancelled_and_restoring_is_an_update() {
        let before = event();
        let mut after = before.clone();
        after.status = EventStatus::Cancelled;
        let changes = event_changes(Some(&before), &after, Origin::Google, Utc::now());
        assert_eq!(kinds(&changes), [ChangeType::EventCancelled]);
        assert_eq!(changes[0].changed_fields, ["status"]);
        let restored = event_changes(Some(&after), &before, Origin::Google, Utc::now());
        assert_eq!(kinds(&restored), [ChangeType::EventUpdated]);
    }
}
