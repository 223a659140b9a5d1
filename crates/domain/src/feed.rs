//! The change feed: every change to the mirror, recorded in the transaction
//! that makes it, read back in cursor order ([`Change`], [`ChangeQuery`]);
//! and the application's webhook subscriptions that receive it, signed to
//! the Standard Webhooks specification ([`subscription`], [`signature`]).

mod derive;
pub mod signature;
pub mod subscription;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::{CalendarId, EntityRef, Etag, EventId, LocalEventId};

pub use derive::{
    calendar_change, cancellation, changed_fields, conflict, drive_change, event_changes,
    grant_change, push_discarded, push_failed, push_retried,
};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeType {
    EventCreated,
    EventUpdated,
    EventCancelled,
    /// A local write Google refused for good (dead-lettered).
    EventPushFailed,
    /// An operator put a failed write back in the queue, as it was.
    EventPushRetried,
    /// An operator gave up on a failed write: the mirror took Google's
    /// version (or, if Google never had the event, cancelled it).
    EventPushDiscarded,
    /// A local write that lost to a concurrent edit at Google; the mirror
    /// holds Google's version.
    EventConflict,
    /// An attendee's `responseStatus` changed.
    AttendeeResponded,
    CalendarReconnectRequired,
    CalendarRecovered,
    /// Google refused a connected account's refresh token (the user
    /// revoked access, or it expired): its calendars wait for reconnecting.
    GrantReconnectRequired,
    /// The same account connected again: its calendars resume.
    GrantRecovered,
    /// A Google Drive push notification was received.
    DriveChanged,
    /// Sent by `POST /calendar/webhooks/{id}/test`; never in the feed.
    WebhookTest,
}

impl ChangeType {
    /// Every type the feed records (`webhook.test` is only ever sent).
    pub const FEED: [ChangeType; 13] = [
        Self::EventCreated,
        Self::EventUpdated,
        Self::EventCancelled,
        Self::EventPushFailed,
        Self::EventPushRetried,
        Self::EventPushDiscarded,
        Self::EventConflict,
        Self::AttendeeResponded,
        Self::CalendarReconnectRequired,
        Self::CalendarRecovered,
        Self::GrantReconnectRequired,
        Self::GrantRecovered,
        Self::DriveChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventCreated => "event.created",
            Self::EventUpdated => "event.updated",
            Self::EventCancelled => "event.cancelled",
            Self::EventPushFailed => "event.push_failed",
            Self::EventPushRetried => "event.push_retried",
            Self::EventPushDiscarded => "event.push_discarded",
            Self::EventConflict => "event.conflict",
            Self::AttendeeResponded => "attendee.responded",
            Self::CalendarReconnectRequired => "calendar.reconnect_required",
            Self::CalendarRecovered => "calendar.recovered",
            Self::GrantReconnectRequired => "grant.reconnect_required",
            Self::GrantRecovered => "grant.recovered",
            Self::DriveChanged => "drive.changed",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// A feed type by name (`webhook.test` is not one).
    pub fn parse(value: &str) -> Result<Self> {
        Self::FEED
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| {
                Error::invalid(
                    "types",
                    format!(
                        "'{value}' is not a change type; the types are {}",
                        Self::FEED.map(Self::as_str).join(", ")
                    ),
                )
            })
    }

    /// Parses a comma-separated list; empty means every type.
    pub fn parse_list(value: &str) -> Result<Vec<Self>> {
        let mut types = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let kind = Self::parse(name)?;
            if !types.contains(&kind) {
                types.push(kind);
            }
        }
        Ok(types)
    }
}

impl std::fmt::Display for ChangeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Read from Google: an edit there, an RSVP, a deletion.
    Google,
    /// A write through calsync's API.
    Api,
    /// calsync itself: a push settling, a dead letter, retention, a
    /// calendar's state.
    Calsync,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Api => "api",
            Self::Calsync => "calsync",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "google" => Ok(Self::Google),
            "api" => Ok(Self::Api),
            "calsync" => Ok(Self::Calsync),
            _ => Err(Error::invalid("origin", "must be google, api or calsync")),
        }
    }
}

/// A position in the feed: the sequence number of the last change read.
/// Opaque to clients (`c` and the number in base 36), so its form can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor(u64);

impl Cursor {
    /// Before every change.
    pub const START: Cursor = Cursor(0);

    pub fn from_seq(seq: u64) -> Self {
        Self(seq)
    }

    pub fn seq(self) -> u64 {
        self.0
    }

    pub fn encode(self) -> String {
        let mut digits = Vec::new();
        let mut n = self.0;
        loop {
            digits.push(BASE36[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        digits.push(b'c');
        digits.reverse();
        String::from_utf8_lossy(&digits).into_owned()
    }

    pub fn decode(value: &str) -> Result<Self> {
        let bad = || Error::invalid("after", "is not a cursor this feed issued");
        let digits = value.strip_prefix('c').ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 13 {
            return Err(bad());
        }
        let mut n: u64 = 0;
        for byte in digits.bytes() {
            let digit = BASE36.iter().position(|b| *b == byte).ok_or_else(bad)? as u64;
            n = n
                .checked_mul(36)
                .and_then(|n| n.checked_add(digit))
                .ok_or_else(bad)?;
        }
        Ok(Self(n))
    }
}

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

/// An attendee whose answer changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Respondent {
    pub email: String,
    /// The answer before (`None`: the attendee was not listed or had none).
    #[serde(default)]
    pub previous: Option<String>,
    #[serde(default)]
    pub response_status: Option<String>,
}

/// What a change says beyond its event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeDetail {
    /// `attendee.responded`: whose answers changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub respondents: Vec<Respondent>,
    /// `event.push_failed`, `event.conflict`, `calendar.reconnect_required`:
    /// Google's error or calsync's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `drive.changed`: the notification's headers, as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive: Option<serde_json::Value>,
    /// `grant.*`: the grant's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

impl ChangeDetail {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A change about to be recorded (the store assigns its cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub kind: ChangeType,
    pub origin: Origin,
    pub occurred_at: DateTime<Utc>,
    pub calendar_id: Option<CalendarId>,
    /// The event after the change (its ids, entity and etag are read from it).
    pub event: Option<Box<Event>>,
    pub changed_fields: Vec<String>,
    pub detail: ChangeDetail,
}

impl NewChange {
    pub fn event_id(&self) -> Option<LocalEventId> {
        self.event.as_ref().map(|e| e.id)
    }

    pub fn google_event_id(&self) -> Option<&EventId> {
        self.event.as_ref().map(|e| &e.google_event_id)
    }

    pub fn entity(&self) -> Option<&EntityRef> {
        self.event.as_ref().and_then(|e| e.entity.as_ref())
    }

    pub fn etag(&self) -> Option<&Etag> {
        self.event.as_ref().and_then(|e| e.etag.as_ref())
    }
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub cursor: Cursor,
    pub change: NewChange,
}

/// What the stored payload of a change holds beside its indexed columns;
/// stores keep it as one JSON value.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<Event>>,
    #[serde(default)]
    pub changed_fields: Vec<String>,
    #[serde(default)]
    pub detail: ChangeDetail,
}

impl ChangePayload {
    pub fn of(change: &NewChange) -> Self {
        Self {
            event: change.event.clone(),
            changed_fields: change.changed_fields.clone(),
            detail: change.detail.clone(),
        }
    }
}

/// Most changes one read answers.
pub const MAX_READ: u32 = 1000;
/// Changes one read answers unless told.
pub const DEFAULT_READ: u32 = 100;

/// A read of the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// Changes after this one; `None`: from the oldest change kept.
    pub after: Option<Cursor>,
    pub limit: u32,
    pub calendar_id: Option<CalendarId>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Empty: every type.
    pub types: Vec<ChangeType>,
}

impl ChangeQuery {
    /// Whether `change` passes the query's filters (not its position).
    pub fn matches(&self, change: &NewChange) -> bool {
        (self.types.is_empty() || self.types.contains(&change.kind))
            && self
                .calendar_id
                .as_ref()
                .is_none_or(|id| change.calendar_id.as_ref() == Some(id))
            && self
                .entity_type
                .as_deref()
                .is_none_or(|t| change.entity().map(EntityRef::entity_type) == Some(t))
            && self
                .entity_id
                .as_deref()
                .is_none_or(|i| change.entity().map(EntityRef::entity_id) == Some(i))
    }
}

/// One read's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    pub items: Vec<Change>,
    /// Where to read on from: past every change this read could see, those
    /// its filters left out included (so it is never before a change that
    /// commits later: the store's ordering promise).
    pub next_cursor: Cursor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        for seq in [0, 1, 35, 36, 1_000_000, u64::MAX] {
            let cursor = Cursor::from_seq(seq);
            assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        }
        assert_eq!(Cursor::from_seq(36).encode(), "c10");
        for bad in ["", "c", "12", "cZ", "c-1", "c3w5e11264sgsga"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_lists_parse_and_name_the_bad_one() {
        let types = ChangeType::parse_list("event.created, attendee.responded,event.created")
            .unwrap_or_default();
        assert_eq!(
            types,
            vec![ChangeType::EventCreated, ChangeType::AttendeeResponded]
        );
        let error = ChangeType::parse_list("event.moved")
            .map(|_| ())
            .unwrap_err();
        assert!(error.to_string().contains("event.moved"), "{error}");
        assert!(ChangeType::parse("webhook.test").is_err());
    }
}
