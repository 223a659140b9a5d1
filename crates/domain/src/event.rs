//! Calendar events as the mirror holds them.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{CalendarId, EntityRef, Etag, EventId, LocalEventId};

/// Limits on what callers may write through calsync. Events read from Google
/// are mirrored as Google has them, so these apply to input, not to sync.
pub mod limits {
    pub const SUMMARY_CHARS: usize = 1024;
    pub const DESCRIPTION_CHARS: usize = 8192;
    pub const LOCATION_CHARS: usize = 1024;
    pub const ATTENDEES: usize = 500;
    pub const EMAIL_CHARS: usize = 254;
    pub const TIME_ZONE_CHARS: usize = 64;
    pub const DISPLAY_NAME_CHARS: usize = 256;
}

/// An IANA time zone name such as `Europe/Berlin` (shape-checked; the
/// provider is the authority on which names exist).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let well_formed = !value.is_empty()
            && value.len() <= limits::TIME_ZONE_CHARS
            && value.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
            });
        if !well_formed {
            return Err(Error::invalid(
                "timeZone",
                "must be an IANA time zone name such as Europe/Berlin",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TimeZoneName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<TimeZoneName> for String {
    fn from(value: TimeZoneName) -> String {
        value.0
    }
}

/// An event boundary: a whole day (Google's `date`) or an instant (`dateTime`)
/// with the time zone it was expressed in. All-day ends are *exclusive*: a
/// one-day event on 1 March ends on 2 March. Dates stay dates: they are never
/// turned into UTC midnights, which would shift them for anyone not on UTC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum EventTime {
    AllDay {
        date: NaiveDate,
    },
    At {
        #[serde(rename = "dateTime")]
        at: DateTime<Utc>,
        #[serde(rename = "timeZone", default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<TimeZoneName>,
    },
}

impl EventTime {
    pub fn date(date: NaiveDate) -> Self {
        Self::AllDay { date }
    }

    pub fn at(at: DateTime<Utc>, time_zone: Option<TimeZoneName>) -> Self {
        Self::At { at, time_zone }
    }

    pub fn is_all_day(&self) -> bool {
        matches!(self, Self::AllDay { .. })
    }

    /// An instant to sort and index by: the instant itself, or the date's
    /// start at UTC. Only for ordering and range indexes, never for display.
    pub fn sort_key(&self) -> DateTime<Utc> {
        match self {
            Self::AllDay { date } => date.and_time(NaiveTime::MIN).and_utc(),
            Self::At { at, .. } => *at,
        }
    }
}

/// Instants calsync stores: years 1 to 9999 in UTC. RFC 3339 has four-digit
/// years, and both databases order and store exactly this range.
pub fn in_supported_range(at: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&at.year())
}

/// The error for an instant outside [`in_supported_range`].
pub fn out_of_range(field: &'static str) -> Error {
    Error::invalid(field, "must fall in the years 0001 to 9999 (UTC)")
}

/// Checks that start and end are of one kind and in order. Timed events may
/// last zero minutes; all-day events last at least one day (exclusive end).
pub fn check_span(start: &EventTime, end: &EventTime) -> Result<()> {
    for (field, time) in [("start", start), ("end", end)] {
        let at = match time {
            EventTime::At { at, .. } => *at,
            EventTime::AllDay { .. } => time.sort_key(),
        };
        if !in_supported_range(at) {
            return Err(out_of_range(field));
        }
    }
    match (start, end) {
        (EventTime::AllDay { date: s }, EventTime::AllDay { date: e }) => {
            if e <= s {
                return Err(Error::invalid(
                    "end",
                    "an all-day end date is exclusive and must be after the start date",
                ));
            }
        }
        (EventTime::At { at: s, .. }, EventTime::At { at: e, .. }) => {
            if e < s {
                return Err(Error::invalid("end", "must not be before start"));
            }
        }
        _ => {
            return Err(Error::invalid(
                "end",
                "start and end must both be dates or both be dateTimes",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Confirmed,
    Tentative,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Tentative => "tentative",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "confirmed" => Ok(Self::Confirmed),
            "tentative" => Ok(Self::Tentative),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(Error::invalid(
                "status",
                "must be confirmed, tentative or cancelled",
            )),
        }
    }
}

/// Where a local write stands with Google.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushState {
    /// Written locally; an outbox row will push it.
    Pending,
    /// Google has it (or it came from Google).
    Synced,
    /// Google refused it for good; see the outbox row's last error.
    Failed,
    /// Google's copy changed the same fields since the write was based on
    /// it: Google's version is kept (the mirror shows it) and the write was
    /// not applied. See `push_note`.
    Conflict,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Conflict => "conflict",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "pending" => Ok(Self::Pending),
            "synced" => Ok(Self::Synced),
            "failed" => Ok(Self::Failed),
            "conflict" => Ok(Self::Conflict),
            _ => Err(Error::invalid(
                "pushState",
                "must be pending, synced, failed or conflict",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// needsAction | declined | tentative | accepted, as Google reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Attendee {
    pub fn new(email: impl Into<String>) -> Result<Self> {
        let email = email.into();
        check_email("attendees.email", &email)?;
        Ok(Self {
            email,
            display_name: None,
            response_status: None,
            optional: false,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organizer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A plausibility check, not RFC 5322: one `@`, something on both sides, no spaces.
pub fn check_email(field: &'static str, email: &str) -> Result<()> {
    let valid = email.len() <= limits::EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be an email address"))
    }
}

fn check_optional_text(field: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    match value {
        Some(text) if text.chars().count() > max => Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        // Postgres text cannot hold NUL; refusing it keeps both backends alike.
        Some(text) if text.contains('\0') => {
            Err(Error::invalid(field, "must not contain NUL characters"))
        }
        _ => Ok(()),
    }
}

/// An event in the local mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: LocalEventId,
    pub calendar_id: CalendarId,
    pub google_event_id: EventId,
    pub ical_uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub status: EventStatus,
    pub attendees: Vec<Attendee>,
    pub organizer: Option<Organizer>,
    /// RRULE/EXDATE lines of a recurring series' master event.
    pub recurrence: Vec<String>,
    /// Set on an instance of a recurring series.
    pub recurring_event_id: Option<EventId>,
    pub original_start: Option<EventTime>,
    pub etag: Option<Etag>,
    /// Google's `updated`: when Google last changed the event.
    pub google_updated: Option<DateTime<Utc>>,
    pub html_link: Option<String>,
    pub entity: Option<EntityRef>,
    pub push_state: PushState,
    /// Why the last local write did not apply as written: the event was
    /// deleted at Google, or Google's copy conflicted with it.
    pub push_note: Option<String>,
    /// When a local write last reached Google (a full sync's deletion
    /// sweep spares rows pushed after the sweep's run began).
    pub pushed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When the local row last changed.
    pub updated_at: DateTime<Utc>,
}

impl Event {
    /// Whether the event ended before `cutoff`. All-day ends are exclusive, so
    /// an all-day event ending (exclusively) on the cutoff's date has ended.
    pub fn ended_before(&self, cutoff: DateTime<Utc>) -> bool {
        ends_before(&self.end, cutoff)
    }
}

pub(crate) fn ends_before(end: &EventTime, cutoff: DateTime<Utc>) -> bool {
    match end {
        EventTime::AllDay { date } => *date <= cutoff.date_naive(),
        EventTime::At { at, .. } => *at < cutoff,
    }
}

/// What a caller supplies to create an event; validated on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    calendar_id: CalendarId,
    entity: EntityRef,
    summary: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start: EventTime,
    end: EventTime,
    attendees: Vec<Attendee>,
}

/// The unvalidated fields of a [`NewEvent`].
#[derive(Debug, Clone, Default)]
pub struct NewEventFields {
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub attendees: Vec<Attendee>,
}

impl NewEvent {
    pub fn new(
        calendar_id: CalendarId,
        entity: EntityRef,
        start: EventTime,
        end: EventTime,
        fields: NewEventFields,
    ) -> Result<Self> {
        check_span(&start, &end)?;
        check_optional_text("summary", fields.summary.as_deref(), limits::SUMMARY_CHARS)?;
        check_optional_text(
            "description",
            fields.description.as_deref(),
            limits::DESCRIPTION_CHARS,
        )?;
        check_optional_text(
            "location",
            fields.location.as_deref(),
            limits::LOCATION_CHARS,
        )?;
        check_attendees(&fields.attendees)?;
        Ok(Self {
            calendar_id,
            entity,
            summary: fields.summary,
            description: fields.description,
            location: fields.location,
            start,
            end,
            attendees: fields.attendees,
        })
    }

    pub fn calendar_id(&self) -> &CalendarId {
        &self.calendar_id
    }

    /// The mirror row for this new event: pending push, with a Google id
    /// derived from the fresh local id.
    pub fn into_event(self, now: DateTime<Utc>) -> Event {
        let id = LocalEventId::new();
        Event {
            id,
            calendar_id: self.calendar_id,
            google_event_id: EventId::for_local(id),
            ical_uid: None,
            summary: self.summary,
            description: self.description,
            location: self.location,
            start: self.start,
            end: self.end,
            status: EventStatus::Confirmed,
            attendees: self.attendees,
            organizer: None,
            recurrence: Vec::new(),
            recurring_event_id: None,
            original_start: None,
            etag: None,
            google_updated: None,
            html_link: None,
            entity: Some(self.entity),
            push_state: PushState::Pending,
            push_note: None,
            pushed_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

fn check_attendees(attendees: &[Attendee]) -> Result<()> {
    if attendees.len() > limits::ATTENDEES {
        return Err(Error::invalid(
            "attendees",
            format!("at most {} attendees", limits::ATTENDEES),
        ));
    }
    for attendee in attendees {
        check_email("attendees.email", &attendee.email)?;
        check_optional_text(
            "attendees.displayName",
            attendee.display_name.as_deref(),
            limits::DISPLAY_NAME_CHARS,
        )?;
    }
    Ok(())
}

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
        }
    }

    /// Whether every field named here has this value in `current` (fields
    /// not named are ignored). Attendees compare by guest list.
    pub fn holds_in(&self, current: &Self) -> bool {
        fn same<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
            want.is_none() || want == have
        }
        same(&self.summary, &current.summary)
            && same(&self.description, &current.description)
            && same(&self.location, &current.location)
            && same(&self.start, &current.start)
            && same(&self.end, &current.end)
            && same(&self.status, &current.status)
            && match (&self.attendees, &current.attendees) {
                (None, _) => true,
                (Some(want), Some(have)) => same_guests(want, have),
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
        }
    }

    /// Carries Google's RSVPs over to the attendees this change sends, for
    /// guests on both lists, so a guest-list edit does not reset answers.
    pub fn keep_responses_from(&mut self, current: &[Attendee]) {
        if let Some(attendees) = &mut self.attendees {
            for attendee in attendees.iter_mut() {
                if let Some(known) = current
                    .iter()
                    .find(|c| c.email.eq_ignore_ascii_case(&attendee.email))
                {
                    attendee.response_status.clone_from(&known.response_status);
                }
            }
        }
    }

    /// Applies the changes to a copy of `event`, validating the result as a whole
    /// (a new start must still precede the old end, and so on).
    pub fn apply_to(&self, event: &Event, now: DateTime<Utc>) -> Result<Event> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn new_event(start: EventTime, end: EventTime) -> Result<NewEvent> {
        NewEvent::new(
            CalendarId::new("cal@example.com").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            start,
            end,
            NewEventFields::default(),
        )
    }

    #[test]
    fn end_before_start_is_rejected() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let err = new_event(
            EventTime::at(t, None),
            EventTime::at(t - chrono::Duration::minutes(1), None),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "end", .. }));
        assert!(new_event(EventTime::at(t, None), EventTime::at(t, None)).is_ok());
    }

    #[test]
    fn all_day_end_is_exclusive() {
        let err = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 1)),
        );
        assert!(err.is_err(), "an all-day event must end on a later date");
        assert!(
            new_event(
                EventTime::date(day(2026, 3, 1)),
                EventTime::date(day(2026, 3, 2))
            )
            .is_ok()
        );
    }

    #[test]
    fn times_outside_years_1_to_9999_are_refused() {
        let far = "+10000-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let err = new_event(EventTime::at(t, None), EventTime::at(far, None)).unwrap_err();
        assert!(matches!(err, Error::Invalid { field: "end", .. }), "{err}");
        // 9999-12-31T23:30-01:00 is in the year 10000 in UTC.
        let late = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:30:00-01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!in_supported_range(late));
        let early = Utc.with_ymd_and_hms(0, 12, 31, 0, 0, 0).unwrap();
        assert!(!in_supported_range(early));
        assert!(
            new_event(
                EventTime::date(day(9999, 12, 30)),
                EventTime::date(day(9999, 12, 31))
            )
            .is_ok()
        );
    }

    #[test]
    fn text_with_nul_is_refused() {
        let fields = NewEventFields {
            description: Some("a\u{0}b".into()),
            ..NewEventFields::default()
        };
        let err = NewEvent::new(
            CalendarId::new("c@x.y").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            EventTime::date(day(2026, 1, 1)),
            EventTime::date(day(2026, 1, 2)),
            fields,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "description",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn mixed_kinds_are_rejected() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        assert!(new_event(EventTime::date(day(2026, 3, 1)), EventTime::at(t, None)).is_err());
    }

    #[test]
    fn lengths_are_bounded() {
        let fields = NewEventFields {
            summary: Some("x".repeat(limits::SUMMARY_CHARS + 1)),
            ..NewEventFields::default()
        };
        let err = NewEvent::new(
            CalendarId::new("c@x.y").unwrap(),
            EntityRef::new("deal", "1").unwrap(),
            EventTime::date(day(2026, 1, 1)),
            EventTime::date(day(2026, 1, 2)),
            fields,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::Invalid {
                field: "summary",
                ..
            }
        ));
        assert!(Attendee::new("not-an-email").is_err());
        assert!(Attendee::new("a@b.c").is_ok());
        assert!(TimeZoneName::new("Europe/Berlin").is_ok());
        assert!(TimeZoneName::new("America/Argentina/Buenos_Aires").is_ok());
        assert!(TimeZoneName::new("Etc/GMT+5").is_ok());
        assert!(TimeZoneName::new("../etc").is_err());
        assert!(TimeZoneName::new("").is_err());
    }

    #[test]
    fn new_events_get_a_derived_google_id_and_pending_state() {
        let now = Utc::now();
        let event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 2)),
        )
        .unwrap()
        .into_event(now);
        assert_eq!(event.google_event_id, EventId::for_local(event.id));
        assert_eq!(event.push_state, PushState::Pending);
        assert_eq!(event.entity, Some(EntityRef::new("deal", "1").unwrap()));
    }

    #[test]
    fn event_time_json_uses_googles_shape() {
        let date: EventTime = serde_json::from_str(r#"{"date":"2026-03-01"}"#).unwrap();
        assert_eq!(date, EventTime::date(day(2026, 3, 1)));
        let at: EventTime = serde_json::from_str(
            r#"{"dateTime":"2026-03-01T10:00:00+01:00","timeZone":"Europe/Berlin"}"#,
        )
        .unwrap();
        assert_eq!(
            at,
            EventTime::at(
                Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
                Some(TimeZoneName::new("Europe/Berlin").unwrap())
            )
        );
        assert_eq!(
            serde_json::to_string(&EventTime::date(day(2026, 3, 1))).unwrap(),
            r#"{"date":"2026-03-01"}"#
        );
    }

    #[test]
    fn changes_are_validated_against_the_whole_event() {
        let now = Utc::now();
        let event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 3)),
        )
        .unwrap()
        .into_event(now);
        let moved_past_end = EventChanges {
            start: Some(EventTime::date(day(2026, 3, 5))),
            ..EventChanges::default()
        };
        assert!(moved_past_end.apply_to(&event, now).is_err());
        let renamed = EventChanges {
            summary: Some(Some("Kick-off".into())),
            ..EventChanges::default()
        }
        .apply_to(&event, now)
        .unwrap();
        assert_eq!(renamed.summary.as_deref(), Some("Kick-off"));
        assert_eq!(renamed.push_state, PushState::Pending);
    }

    #[test]
    fn ended_before_treats_all_day_end_as_exclusive() {
        let now = Utc::now();
        let mut event = new_event(
            EventTime::date(day(2026, 3, 1)),
            EventTime::date(day(2026, 3, 2)),
        )
        .unwrap()
        .into_event(now);
        let cutoff = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        assert!(
            event.ended_before(cutoff),
            "a 1 March event is over on 2 March"
        );
        let cutoff_earlier = Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap();
        assert!(!event.ended_before(cutoff_earlier));
        event.end = EventTime::at(cutoff, None);
        assert!(
            !event.ended_before(cutoff),
            "an instant end equal to the cutoff is not before it"
        );
    }
}
