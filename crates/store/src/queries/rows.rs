//! The row structs, one per table, and their conversions to and from the
//! domain's types.

use calsync_domain::channel::{ChannelStatus, WatchChannel};
use calsync_domain::event::{
    Attendee, Event, EventDetails, EventStatus, EventTime, EventType, Organizer, PushState,
    TimeZoneName,
};
use calsync_domain::freebusy::rule::BusyCandidate;
use calsync_domain::ids::{
    CalendarId, ChannelId, EntityRef, Etag, EventId, LocalEventId, ResourceId,
};
use calsync_domain::outbox::{OutboxEntry, OutboxOp, OutboxState, PatchIntent, PushFailure};
use calsync_domain::sync::SyncState;
use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};
use chrono::{DateTime, NaiveDate, Utc};

use super::schema::{
    calendar_events as ev, calendar_outbox as ob, calendar_sync_states as ss,
    calendar_watch_channels as wc, drive_notifications as dn,
};
use super::{Conn, DomainResult, corrupt, db, micros};

#[derive(
    Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable, diesel::AsChangeset,
)]
#[diesel(table_name = ev)]
#[diesel(treat_none_as_null = true)]
pub(crate) struct EventRow {
    pub(crate) id: String,
    pub(crate) calendar_id: String,
    pub(crate) google_event_id: String,
    pub(crate) ical_uid: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) start_at: DateTime<Utc>,
    pub(crate) end_at: DateTime<Utc>,
    pub(crate) start_date: Option<NaiveDate>,
    pub(crate) end_date: Option<NaiveDate>,
    pub(crate) start_time_zone: Option<String>,
    pub(crate) end_time_zone: Option<String>,
    pub(crate) status: String,
    pub(crate) attendees: String,
    pub(crate) organizer: Option<String>,
    pub(crate) recurrence: String,
    pub(crate) recurring_event_id: Option<String>,
    pub(crate) original_start: Option<String>,
    pub(crate) etag: Option<String>,
    pub(crate) google_updated: Option<DateTime<Utc>>,
    pub(crate) html_link: Option<String>,
    pub(crate) entity_type: Option<String>,
    pub(crate) entity_id: Option<String>,
    pub(crate) push_state: String,
    /// The full run that last saw the event at Google. Only a sync page
    /// writes it (its upsert names the column); a row rewritten as a
    /// changeset (a local write, a finished push) keeps it, so the run's
    /// sweep does not cancel an event it saw.
    #[diesel(skip_update)]
    pub(crate) sync_run_id: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) push_note: Option<String>,
    pub(crate) push_conflict: bool,
    pub(crate) pushed_at: Option<DateTime<Utc>>,
    pub(crate) event_type: String,
    /// `single`, `master` or `exception`: computed from the event on every
    /// write ([`Event::kind`]), for filters and retention; not read back.
    pub(crate) kind: String,
    pub(crate) details: serde_json::Value,
    /// Google's resource verbatim. On Postgres a `jsonb`: the value is kept,
    /// not its text (key order and whitespace normalise; `serde_json::Value`
    /// compares maps by key, so nothing a reader sees changes).
    pub(crate) google: Option<serde_json::Value>,
    /// When the row's last occurrence ends ([`Event::last_end`]): the end
    /// for singles and exceptions, the last occurrence's for a bounded
    /// series, `None` for an endless one. Computed on write; not read back.
    pub(crate) last_end_at: Option<DateTime<Utc>>,
    /// A master whose recurrence calsync cannot expand
    /// ([`Event::series_unreadable`]): computed on write, so health counts
    /// such series from an index without parsing rules; not read back.
    pub(crate) recurrence_unreadable: bool,
}

fn time_columns(time: &EventTime) -> (DateTime<Utc>, Option<NaiveDate>, Option<String>) {
    match time {
        EventTime::AllDay { date } => (time.sort_key(), Some(*date), None),
        EventTime::At { at, time_zone } => (
            micros(*at),
            None,
            time_zone.as_ref().map(|tz| tz.as_str().to_owned()),
        ),
    }
}

fn time_from_columns(
    at: DateTime<Utc>,
    date: Option<NaiveDate>,
    time_zone: Option<String>,
) -> DomainResult<EventTime> {
    Ok(match date {
        Some(date) => EventTime::date(date),
        None => EventTime::at(at, time_zone.map(TimeZoneName::new).transpose()?),
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data structs to JSON cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn to_json_value<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // As above: plain data with string keys always serializes.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl EventRow {
    pub(crate) fn new(event: &Event, sync_run_id: Option<String>) -> Self {
        Self::from_event(event.clone(), sync_run_id)
    }

    /// As [`EventRow::new`], moving the event's text and Google's resource
    /// into the row (a sync page's rows are built this way, so a page is
    /// not held twice).
    pub(crate) fn from_event(event: Event, sync_run_id: Option<String>) -> Self {
        let (start_at, start_date, start_time_zone) = time_columns(&event.start);
        let (end_at, end_date, end_time_zone) = time_columns(&event.end);
        let kind = event.kind().as_str().to_owned();
        let last_end_at = event.last_end().map(micros);
        // An unreadable series has no last end: only a row without one can
        // be unreadable, so most rows skip parsing their rules twice.
        let recurrence_unreadable = last_end_at.is_none() && event.series_unreadable().is_some();
        Self {
            id: event.id.to_string(),
            calendar_id: event.calendar_id.to_string(),
            google_event_id: event.google_event_id.to_string(),
            ical_uid: event.ical_uid,
            summary: event.summary,
            description: event.description,
            location: event.location,
            start_at,
            end_at,
            start_date,
            end_date,
            start_time_zone,
            end_time_zone,
            status: event.status.as_str().to_owned(),
            attendees: to_json(&event.attendees),
            organizer: event.organizer.as_ref().map(to_json),
            recurrence: to_json(&event.recurrence),
            recurring_event_id: event.recurring_event_id.as_ref().map(ToString::to_string),
            original_start: event.original_start.as_ref().map(to_json),
            etag: event.etag.as_ref().map(ToString::to_string),
            google_updated: event.google_updated.map(micros),
            html_link: event.html_link,
            entity_type: event.entity.as_ref().map(|e| e.entity_type().to_owned()),
            entity_id: event.entity.as_ref().map(|e| e.entity_id().to_owned()),
            // A conflict is stored as `synced` + the flag (see migration 5).
            push_state: match event.push_state {
                PushState::Conflict => PushState::Synced,
                other => other,
            }
            .as_str()
            .to_owned(),
            sync_run_id,
            created_at: micros(event.created_at),
            updated_at: micros(event.updated_at),
            push_note: event.push_note,
            push_conflict: event.push_state == PushState::Conflict,
            pushed_at: event.pushed_at.map(micros),
            event_type: event.event_type.as_str().to_owned(),
            kind,
            details: to_json_value(&event.details),
            google: event.google,
            last_end_at,
            recurrence_unreadable,
        }
    }

    pub(crate) fn into_event(self) -> DomainResult<Event> {
        let entity = match (self.entity_type, self.entity_id) {
            (Some(kind), Some(id)) => Some(EntityRef::new(kind, id)?),
            _ => None,
        };
        Ok(Event {
            id: LocalEventId::parse(&self.id)?,
            calendar_id: CalendarId::new(self.calendar_id)?,
            google_event_id: EventId::new(self.google_event_id)?,
            ical_uid: self.ical_uid,
            summary: self.summary,
            description: self.description,
            location: self.location,
            start: time_from_columns(self.start_at, self.start_date, self.start_time_zone)?,
            end: time_from_columns(self.end_at, self.end_date, self.end_time_zone)?,
            status: EventStatus::parse(&self.status)?,
            attendees: serde_json::from_str::<Vec<Attendee>>(&self.attendees)
                .map_err(|e| corrupt("attendees", e))?,
            organizer: self
                .organizer
                .map(|json| serde_json::from_str::<Organizer>(&json))
                .transpose()
                .map_err(|e| corrupt("organizer", e))?,
            recurrence: serde_json::from_str(&self.recurrence)
                .map_err(|e| corrupt("recurrence", e))?,
            recurring_event_id: self.recurring_event_id.map(EventId::new).transpose()?,
            original_start: self
                .original_start
                .map(|json| serde_json::from_str::<EventTime>(&json))
                .transpose()
                .map_err(|e| corrupt("original_start", e))?,
            etag: self.etag.map(Etag::new).transpose()?,
            google_updated: self.google_updated,
            html_link: self.html_link,
            event_type: EventType::parse(&self.event_type),
            details: serde_json::from_value::<EventDetails>(self.details)
                .map_err(|e| corrupt("details", e))?,
            google: self.google,
            entity,
            push_state: match PushState::parse(&self.push_state)? {
                PushState::Synced if self.push_conflict => PushState::Conflict,
                other => other,
            },
            push_note: self.push_note,
            pushed_at: self.pushed_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A single event as free/busy reads it (`EventStore::busy_candidates`):
/// its calendar, times and the columns the busy rule reads, with
/// `details` and Google's copy reduced in SQL to the two parts it needs.
#[derive(Debug, Clone, diesel::Queryable)]
pub(crate) struct BusyRow {
    pub(crate) calendar_id: String,
    pub(crate) start_at: DateTime<Utc>,
    pub(crate) end_at: DateTime<Utc>,
    pub(crate) start_date: Option<NaiveDate>,
    pub(crate) end_date: Option<NaiveDate>,
    pub(crate) start_time_zone: Option<String>,
    pub(crate) end_time_zone: Option<String>,
    pub(crate) status: String,
    pub(crate) event_type: String,
    pub(crate) attendees: String,
    /// `details`' `transparency`.
    pub(crate) transparency: Option<String>,
    /// `google`'s `attendees`.
    pub(crate) google_attendees: Option<serde_json::Value>,
}

impl BusyRow {
    pub(crate) fn into_candidate(self) -> DomainResult<BusyCandidate> {
        Ok(BusyCandidate {
            calendar_id: CalendarId::new(self.calendar_id)?,
            start: time_from_columns(self.start_at, self.start_date, self.start_time_zone)?,
            end: time_from_columns(self.end_at, self.end_date, self.end_time_zone)?,
            status: EventStatus::parse(&self.status)?,
            event_type: EventType::parse(&self.event_type),
            transparency: self.transparency,
            attendees: serde_json::from_str::<Vec<Attendee>>(&self.attendees)
                .map_err(|e| corrupt("attendees", e))?,
            google_attendees: match self.google_attendees {
                Some(serde_json::Value::Array(attendees)) => attendees,
                _ => Vec::new(),
            },
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = ss)]
pub(crate) struct SyncStateRow {
    calendar_id: String,
    sync_token: Option<String>,
    last_full_sync_at: Option<DateTime<Utc>>,
    last_incremental_sync_at: Option<DateTime<Utc>>,
    last_status: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    error_count: i32,
    dirty_seq: i64,
    clean_seq: i64,
    full_sync_requested: bool,
    reconnect_required: bool,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    lease_seen_seq: Option<i64>,
    read_only_since: Option<DateTime<Utc>>,
    read_only_reason: Option<String>,
}

impl SyncStateRow {
    pub(crate) fn into_state(self) -> DomainResult<SyncState> {
        Ok(SyncState {
            calendar_id: CalendarId::new(self.calendar_id)?,
            sync_token: self.sync_token,
            last_full_sync_at: self.last_full_sync_at,
            last_incremental_sync_at: self.last_incremental_sync_at,
            last_status: self.last_status,
            last_error: self.last_error,
            last_error_at: self.last_error_at,
            error_count: u32::try_from(self.error_count).unwrap_or(0),
            dirty_seq: self.dirty_seq,
            clean_seq: self.clean_seq,
            full_sync_requested: self.full_sync_requested,
            reconnect_required: self.reconnect_required,
            lease_owner: self.lease_owner,
            lease_seen_seq: self.lease_seen_seq,
            lease_until: self.lease_until,
            read_only_since: self.read_only_since,
            read_only_reason: self.read_only_reason,
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = wc)]
pub(crate) struct ChannelRow {
    id: String,
    calendar_id: String,
    resource_id: Option<String>,
    expiration: DateTime<Utc>,
    status: String,
    created_at: DateTime<Utc>,
    last_notification_at: Option<DateTime<Utc>>,
    last_message_number: Option<i64>,
}

impl ChannelRow {
    pub(crate) fn new(channel: &WatchChannel) -> Self {
        Self {
            id: channel.id.to_string(),
            calendar_id: channel.calendar_id.to_string(),
            resource_id: channel.resource_id.as_ref().map(ToString::to_string),
            expiration: micros(channel.expiration),
            status: channel.status.as_str().to_owned(),
            created_at: micros(channel.created_at),
            last_notification_at: channel.last_notification_at.map(micros),
            last_message_number: channel
                .last_message_number
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        }
    }

    pub(crate) fn into_channel(self) -> DomainResult<WatchChannel> {
        Ok(WatchChannel {
            id: ChannelId::new(self.id)?,
            calendar_id: CalendarId::new(self.calendar_id)?,
            resource_id: self.resource_id.map(ResourceId::new).transpose()?,
            expiration: self.expiration,
            status: ChannelStatus::parse(&self.status)?,
            created_at: self.created_at,
            last_notification_at: self.last_notification_at,
            last_message_number: self.last_message_number.and_then(|n| u64::try_from(n).ok()),
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = ob)]
pub(crate) struct OutboxRow {
    id: i64,
    event_id: String,
    calendar_id: String,
    google_event_id: String,
    op: String,
    if_match: Option<String>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    payload: Option<String>,
    last_failure: Option<String>,
}

#[derive(diesel::Insertable)]
#[diesel(table_name = ob)]
pub(crate) struct NewOutboxRow {
    pub(crate) event_id: String,
    pub(crate) calendar_id: String,
    pub(crate) google_event_id: String,
    pub(crate) op: String,
    pub(crate) if_match: Option<String>,
    pub(crate) state: String,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: DateTime<Utc>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) payload: Option<String>,
}

impl OutboxRow {
    pub(crate) fn into_entry(self) -> DomainResult<OutboxEntry> {
        let intent = self
            .payload
            .map(|json| serde_json::from_str::<PatchIntent>(&json))
            .transpose()
            .map_err(|e| corrupt("outbox payload", e))?;
        Ok(OutboxEntry {
            id: self.id,
            event_id: LocalEventId::parse(&self.event_id)?,
            calendar_id: CalendarId::new(self.calendar_id)?,
            google_event_id: EventId::new(self.google_event_id)?,
            op: OutboxOp::from_parts(&self.op, self.if_match.map(Etag::new).transpose()?, intent)?,
            state: OutboxState::parse(&self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            last_failure: self
                .last_failure
                .as_deref()
                .map(PushFailure::parse)
                .transpose()?,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = dn)]
pub(crate) struct DriveRow {
    channel_id: String,
    resource_id: String,
    resource_uri: String,
    resource_state: String,
    message_number: i64,
    changed: String,
    received_at: DateTime<Utc>,
}

impl DriveRow {
    pub(crate) fn into_notification(self) -> DomainResult<(DriveNotification, DateTime<Utc>)> {
        let notification = DriveNotification {
            envelope: PushEnvelope {
                channel_id: ChannelId::new(self.channel_id)?,
                token: None,
                message_number: u64::try_from(self.message_number).unwrap_or(0),
                resource_id: ResourceId::new(self.resource_id)?,
                resource_uri: self.resource_uri,
                channel_expiration: None,
            },
            state: DriveResourceState::parse(&self.resource_state)?,
            changed: self
                .changed
                .split(',')
                .filter(|part| !part.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Ok((notification, self.received_at))
    }
}

/// One event's row, if it is there.
pub(super) async fn load_event(conn: &mut Conn, id: &str) -> DomainResult<Option<EventRow>> {
    use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
    use diesel_async::RunQueryDsl;
    ev::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(db)
}
