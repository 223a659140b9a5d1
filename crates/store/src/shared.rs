// The storage ports over Diesel, written once and included into `pg` and
// `sqlite`. Each includer defines `Conn`, `Ts`, `schema`, `SERIALIZE_WRITES`
// and `begin_write`, and imports `AsyncConnection`, `Pool` and `Error`.

use std::collections::HashMap;

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::channel::{ChannelStatus, WatchChannel, WatchGrant};
use calsync_domain::event::{
    Attendee, Event, EventStatus, EventTime, Organizer, PushState, TimeZoneName,
};
use calsync_domain::health::{CalendarHealth, HealthStats};
use calsync_domain::ids::{
    CalendarId, ChannelId, EntityRef, Etag, EventId, LocalEventId, ResourceId,
};
use calsync_domain::outbox::{
    IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp, OutboxState, PatchIntent,
};
use calsync_domain::ports::{
    ChannelStore, DriveNotificationStore, EventQuery, EventStore, HealthStore, JobTickStore,
    OutboxStore, PushReceipt, SyncStateStore,
};
use calsync_domain::sync::{
    ApplyDecision, PageOutcome, SyncLease, SyncOutcome, SyncPage, SyncRun, SyncState, decide,
};
use calsync_domain::webhook::{DriveNotification, DriveResourceState, PushEnvelope};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, OptionalExtension,
    QueryDsl, SelectableHelper,
};
use diesel_async::{RunQueryDsl, TransactionManager as _};

use schema::{
    calendar_event_counts as ec, calendar_events as ev, calendar_idempotency_keys as ik,
    calendar_outbox as ob, calendar_sync_states as ss, calendar_watch_channels as wc,
    drive_notifications as dn, job_ticks as jt,
};

type DomainResult<T> = Result<T, DomainError>;
type Pooled<'a> =
    bb8::PooledConnection<'a, diesel_async::pooled_connection::AsyncDieselConnectionManager<Conn>>;

fn db(error: diesel::result::Error) -> DomainError {
    Error::Query(error).into()
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> DomainError {
    Error::Corrupt(format!("{what}: {error}")).into()
}

/// Both databases keep microseconds; rounding before writing makes what is
/// read back equal to what was written (optimistic locking compares them).
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Runs `$body` (an async block's contents using `$conn`) in a write
/// transaction, committing on `Ok` and rolling back on `Err`.
macro_rules! write_tx {
    ($store:expr, |$conn:ident| $body:block) => {{
        let _gate = if SERIALIZE_WRITES {
            Some($store.write_gate.lock().await)
        } else {
            None
        };
        let mut pooled = $store.conn().await?;
        let $conn: &mut Conn = &mut pooled;
        begin_write($conn).await.map_err(db)?;
        let result: DomainResult<_> = async { $body }.await;
        match result {
            Ok(value) => {
                <Conn as AsyncConnection>::TransactionManager::commit_transaction($conn)
                    .await
                    .map_err(db)?;
                Ok(value)
            }
            Err(error) => {
                // The rollback's own failure is secondary; the pool discards broken connections.
                let _ = <Conn as AsyncConnection>::TransactionManager::rollback_transaction($conn)
                    .await;
                Err(error)
            }
        }
    }};
}

pub(crate) struct DieselStore {
    pool: Pool<Conn>,
    write_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DieselStore")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

impl DieselStore {
    fn from_pool(pool: Pool<Conn>) -> Self {
        Self {
            pool,
            write_gate: tokio::sync::Mutex::new(()),
        }
    }

    async fn conn(&self) -> DomainResult<Pooled<'_>> {
        self.pool
            .get()
            .await
            .map_err(|error| Error::Pool(error.to_string()).into())
    }
}

// ---------------------------------------------------------------------------
// Rows and their conversions.
// ---------------------------------------------------------------------------

#[derive(
    Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable, diesel::AsChangeset,
)]
#[diesel(table_name = ev)]
#[diesel(treat_none_as_null = true)]
struct EventRow {
    id: String,
    calendar_id: String,
    google_event_id: String,
    ical_uid: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start_at: DateTime<Utc>,
    end_at: DateTime<Utc>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    start_time_zone: Option<String>,
    end_time_zone: Option<String>,
    status: String,
    attendees: String,
    organizer: Option<String>,
    recurrence: String,
    recurring_event_id: Option<String>,
    original_start: Option<String>,
    etag: Option<String>,
    google_updated: Option<DateTime<Utc>>,
    html_link: Option<String>,
    entity_type: Option<String>,
    entity_id: Option<String>,
    push_state: String,
    sync_run_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    push_note: Option<String>,
    push_conflict: bool,
    pushed_at: Option<DateTime<Utc>>,
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

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data structs to JSON cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

impl EventRow {
    fn new(event: &Event, sync_run_id: Option<String>) -> Self {
        let (start_at, start_date, start_time_zone) = time_columns(&event.start);
        let (end_at, end_date, end_time_zone) = time_columns(&event.end);
        Self {
            id: event.id.to_string(),
            calendar_id: event.calendar_id.to_string(),
            google_event_id: event.google_event_id.to_string(),
            ical_uid: event.ical_uid.clone(),
            summary: event.summary.clone(),
            description: event.description.clone(),
            location: event.location.clone(),
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
            html_link: event.html_link.clone(),
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
            push_note: event.push_note.clone(),
            push_conflict: event.push_state == PushState::Conflict,
            pushed_at: event.pushed_at.map(micros),
        }
    }

    fn into_event(self) -> DomainResult<Event> {
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

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = ss)]
struct SyncStateRow {
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
}

impl SyncStateRow {
    fn into_state(self) -> DomainResult<SyncState> {
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
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = wc)]
struct ChannelRow {
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
    fn new(channel: &WatchChannel) -> Self {
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

    fn into_channel(self) -> DomainResult<WatchChannel> {
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
struct OutboxRow {
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
}

#[derive(diesel::Insertable)]
#[diesel(table_name = ob)]
struct NewOutboxRow {
    event_id: String,
    calendar_id: String,
    google_event_id: String,
    op: String,
    if_match: Option<String>,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    payload: Option<String>,
}

impl OutboxRow {
    fn into_entry(self) -> DomainResult<OutboxEntry> {
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
            created_at: self.created_at,
        })
    }
}

async fn enqueue(conn: &mut Conn, event: &Event, op: &OutboxOp) -> DomainResult<OutboxEntry> {
    let now = micros(event.updated_at);
    let row = NewOutboxRow {
        event_id: event.id.to_string(),
        calendar_id: event.calendar_id.to_string(),
        google_event_id: event.google_event_id.to_string(),
        op: op.kind().to_owned(),
        if_match: op.if_match().map(ToString::to_string),
        state: OutboxState::Pending.as_str().to_owned(),
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
        payload: op.intent().map(to_json),
    };
    diesel::insert_into(ob::table)
        .values(&row)
        .returning(OutboxRow::as_returning())
        .get_result(conn)
        .await
        .map_err(db)?
        .into_entry()
}

/// Marks a pushed (or settled) outbox row done and releases its lease,
/// keeping `note` as its last error if given; answers how many rows of the
/// same event are still pending.
async fn finish_outbox_row(
    conn: &mut Conn,
    entry: &OutboxEntry,
    note: Option<&str>,
) -> DomainResult<i64> {
    let no_owner: Option<&str> = None;
    let done = (
        ob::state.eq(OutboxState::Done.as_str()),
        ob::attempts.eq(ob::attempts + 1),
        ob::lease_owner.eq(no_owner),
        ob::lease_until.eq(None::<DateTime<Utc>>),
        ob::updated_at.eq(micros(Utc::now())),
    );
    let row = diesel::update(ob::table.find(entry.id));
    match note {
        Some(note) => row.set((done, ob::last_error.eq(note))).execute(conn).await,
        None => row.set(done).execute(conn).await,
    }
    .map_err(db)?;
    ob::table
        .filter(ob::event_id.eq(entry.event_id.to_string()))
        .filter(ob::state.eq(OutboxState::Pending.as_str()))
        .count()
        .get_result(conn)
        .await
        .map_err(db)
}

/// Inserts a new event row; a Google id already mirrored is `Duplicate`.
async fn insert_event(conn: &mut Conn, row: &EventRow) -> DomainResult<()> {
    diesel::insert_into(ev::table)
        .values(row)
        .execute(conn)
        .await
        .map_err(|error| match db(error) {
            DomainError::Duplicate { .. } => DomainError::Duplicate { what: "event" },
            other => other,
        })?;
    Ok(())
}

async fn load_event(conn: &mut Conn, id: &str) -> DomainResult<Option<EventRow>> {
    ev::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(db)
}

async fn ensure_sync_state(conn: &mut Conn, calendar_id: &CalendarId) -> DomainResult<()> {
    diesel::insert_into(ss::table)
        .values(ss::calendar_id.eq(calendar_id.as_str()))
        .on_conflict(ss::calendar_id)
        .do_nothing()
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

async fn load_sync_state(conn: &mut Conn, calendar_id: &str) -> DomainResult<Option<SyncState>> {
    ss::table
        .find(calendar_id)
        .select(SyncStateRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(db)?
        .map(SyncStateRow::into_state)
        .transpose()
}

/// Takes the calendar's lease if it is free or expired; the condition in the
/// UPDATE makes this safe against concurrent takers on any backend.
async fn try_lease(
    conn: &mut Conn,
    calendar_id: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DomainResult<Option<SyncLease>> {
    let taken = diesel::update(ss::table.find(calendar_id))
        .filter(
            ss::lease_until
                .is_null()
                .or(ss::lease_until.le(micros(now))),
        )
        .set((
            ss::lease_owner.eq(owner),
            ss::lease_until.eq(micros(until)),
            ss::lease_seen_seq.eq(ss::dirty_seq.nullable()),
        ))
        .execute(conn)
        .await
        .map_err(db)?;
    if taken == 0 {
        return Ok(None);
    }
    let state = load_sync_state(conn, calendar_id)
        .await?
        .ok_or(DomainError::NotFound { what: "sync state" })?;
    Ok(Some(SyncLease {
        calendar_id: state.calendar_id,
        owner: owner.to_owned(),
        until: micros(until),
        seen_seq: state.dirty_seq,
        full_sync_requested: state.full_sync_requested,
    }))
}

// ---------------------------------------------------------------------------
// Ports.
// ---------------------------------------------------------------------------

#[async_trait]
impl EventStore for DieselStore {
    async fn get_event(&self, id: LocalEventId) -> DomainResult<Option<Event>> {
        let mut conn = self.conn().await?;
        load_event(&mut conn, &id.to_string())
            .await?
            .map(EventRow::into_event)
            .transpose()
    }

    async fn find_by_google_id(
        &self,
        calendar_id: &CalendarId,
        google_event_id: &EventId,
    ) -> DomainResult<Option<Event>> {
        let mut conn = self.conn().await?;
        ev::table
            .filter(ev::calendar_id.eq(calendar_id.as_str()))
            .filter(ev::google_event_id.eq(google_event_id.as_str()))
            .select(EventRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(EventRow::into_event)
            .transpose()
    }

    async fn list_events(&self, query: &EventQuery) -> DomainResult<Vec<Event>> {
        let mut conn = self.conn().await?;
        let mut select = ev::table.select(EventRow::as_select()).into_boxed();
        if let Some(calendar_id) = &query.calendar_id {
            select = select.filter(ev::calendar_id.eq(calendar_id.as_str().to_owned()));
        }
        if let Some(entity) = &query.entity {
            select = select
                .filter(ev::entity_type.eq(entity.entity_type().to_owned()))
                .filter(ev::entity_id.eq(entity.entity_id().to_owned()));
        }
        if let Some(status) = query.status {
            select = select.filter(ev::status.eq(status.as_str()));
        }
        if let Some(after) = query.ends_after {
            select = select.filter(ev::end_at.gt(micros(after)));
        }
        if let Some(before) = query.starts_before {
            select = select.filter(ev::start_at.lt(micros(before)));
        }
        if let Some((start, id)) = query.after {
            let start = micros(start);
            select = select.filter(
                ev::start_at
                    .gt(start)
                    .or(ev::start_at.eq(start).and(ev::id.gt(id.to_string()))),
            );
        }
        select
            .order((ev::start_at.asc(), ev::id.asc()))
            .limit(i64::from(query.limit))
            .load::<EventRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(EventRow::into_event)
            .collect()
    }

    async fn insert_with_outbox(&self, event: &Event, op: OutboxOp) -> DomainResult<OutboxEntry> {
        let row = EventRow::new(event, None);
        write_tx!(self, |conn| {
            insert_event(conn, &row).await?;
            enqueue(conn, event, &op).await
        })
    }

    async fn insert_idempotent(
        &self,
        event: &Event,
        op: OutboxOp,
        key: &IdempotencyKey,
    ) -> DomainResult<OutboxEntry> {
        let row = EventRow::new(event, None);
        write_tx!(self, |conn| {
            // The key goes first: a concurrent request with the same key
            // waits on it and then fails, writing nothing.
            diesel::insert_into(ik::table)
                .values((
                    ik::key.eq(key.key()),
                    ik::fingerprint.eq(key.fingerprint()),
                    ik::event_id.eq(&row.id),
                    ik::created_at.eq(micros(event.created_at)),
                ))
                .execute(conn)
                .await
                .map_err(|error| match db(error) {
                    DomainError::Duplicate { .. } => DomainError::Duplicate {
                        what: "idempotency key",
                    },
                    other => other,
                })?;
            insert_event(conn, &row).await?;
            enqueue(conn, event, &op).await
        })
    }

    async fn find_idempotency_key(&self, key: &str) -> DomainResult<Option<IdempotencyRecord>> {
        let mut conn = self.conn().await?;
        let found: Option<(String, String, DateTime<Utc>)> = ik::table
            .find(key)
            .select((ik::fingerprint, ik::event_id, ik::created_at))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        found
            .map(|(fingerprint, event_id, created_at)| {
                Ok(IdempotencyRecord {
                    fingerprint,
                    event_id: LocalEventId::parse(&event_id)?,
                    created_at,
                })
            })
            .transpose()
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        let purged = write_tx!(self, |conn| {
            diesel::delete(ik::table.filter(ik::created_at.lt(micros(before))))
                .execute(conn)
                .await
                .map_err(db)
        })?;
        Ok(purged as u64)
    }

    async fn update_with_outbox(
        &self,
        event: &Event,
        expected_updated_at: DateTime<Utc>,
        op: OutboxOp,
    ) -> DomainResult<OutboxEntry> {
        let row = EventRow::new(event, None);
        write_tx!(self, |conn| {
            let updated = diesel::update(ev::table.find(&row.id))
                .filter(ev::updated_at.eq(micros(expected_updated_at)))
                .set(&row)
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Err(match load_event(conn, &row.id).await? {
                    None => DomainError::NotFound { what: "event" },
                    Some(_) => DomainError::PreconditionFailed {
                        reason: "the event was changed concurrently".into(),
                    },
                });
            }
            enqueue(conn, event, &op).await
        })
    }

    async fn apply_sync_page(&self, page: &SyncPage) -> DomainResult<PageOutcome> {
        let calendar = page.calendar_id.as_str();
        let (run_id, run_started) = match &page.run {
            SyncRun::Full { run_id, started_at } => {
                (Some(run_id.clone()), Some(micros(*started_at)))
            }
            SyncRun::Incremental => (None, None),
        };
        let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
        write_tx!(self, |conn| {
            let mut known: HashMap<String, Event> = HashMap::new();
            if !ids.is_empty() {
                let rows = ev::table
                    .filter(ev::calendar_id.eq(calendar))
                    .filter(ev::google_event_id.eq_any(&ids))
                    .select(EventRow::as_select())
                    .load::<EventRow>(conn)
                    .await
                    .map_err(db)?;
                for row in rows {
                    let event = row.into_event()?;
                    known.insert(event.google_event_id.to_string(), event);
                }
            }
            let mut outcome = PageOutcome::default();
            // Google id -> position in `changed`, so a page naming an event
            // twice writes its final state once.
            let mut changed: Vec<Event> = Vec::new();
            let mut position: HashMap<String, usize> = HashMap::new();
            for incoming in &page.events {
                let decision = decide(
                    known.get(incoming.id.as_str()),
                    incoming,
                    &page.calendar_id,
                    page.retention_cutoff,
                    page.now,
                );
                outcome.count(&decision);
                if let ApplyDecision::Insert(event)
                | ApplyDecision::Update(event)
                | ApplyDecision::Cancel(event) = decision
                {
                    let key = event.google_event_id.to_string();
                    match position.get(&key) {
                        Some(&at) => changed[at] = (*event).clone(),
                        None => {
                            position.insert(key.clone(), changed.len());
                            changed.push((*event).clone());
                        }
                    }
                    known.insert(key, *event);
                }
            }
            let rows: Vec<EventRow> = changed
                .iter()
                .map(|e| EventRow::new(e, run_id.clone()))
                .collect();
            upsert_events(conn, &rows).await?;
            // Rows rewritten above already carry the run id; stamp the rest.
            let unstamped: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| !position.contains_key(*id))
                .collect();
            if let Some(run_id) = &run_id
                && !unstamped.is_empty()
            {
                diesel::update(ev::table)
                    .filter(ev::calendar_id.eq(calendar))
                    .filter(ev::google_event_id.eq_any(&unstamped))
                    .set(ev::sync_run_id.eq(run_id))
                    .execute(conn)
                    .await
                    .map_err(db)?;
            }
            if let Some(completion) = &page.completion {
                let now = micros(page.now);
                if let (Some(run_id), Some(started)) = (&run_id, run_started) {
                    // Every row the run did not see, except writes still
                    // pending and rows created or pushed after the run began
                    // (its listing may have passed them before Google had them).
                    let swept = diesel::update(ev::table)
                        .filter(ev::calendar_id.eq(calendar))
                        .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
                        .filter(ev::push_state.ne(PushState::Pending.as_str()))
                        .filter(ev::created_at.le(started))
                        .filter(ev::pushed_at.is_null().or(ev::pushed_at.le(started)))
                        .filter(ev::sync_run_id.is_null().or(ev::sync_run_id.ne(run_id)))
                        .set((
                            ev::status.eq(EventStatus::Cancelled.as_str()),
                            ev::updated_at.eq(now),
                        ))
                        .execute(conn)
                        .await
                        .map_err(db)?;
                    outcome.swept = swept as u64;
                }
                ensure_sync_state(conn, &page.calendar_id).await?;
                let token = ss::sync_token.eq(Some(completion.next_sync_token.as_str()));
                let query = diesel::update(ss::table.find(calendar));
                match run_id {
                    Some(_) => {
                        query
                            .set((token, ss::last_full_sync_at.eq(now)))
                            .execute(conn)
                            .await
                    }
                    None => {
                        query
                            .set((token, ss::last_incremental_sync_at.eq(now)))
                            .execute(conn)
                            .await
                    }
                }
                .map_err(db)?;
            }
            Ok(outcome)
        })
    }

    async fn cancel_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> DomainResult<u64> {
        let cutoff = micros(cutoff);
        let cutoff_date = cutoff.date_naive();
        write_tx!(self, |conn| {
            // All-day ends are exclusive dates; instants compare as instants.
            let ended = ev::end_date
                .is_null()
                .and(ev::end_at.lt(cutoff))
                .or(ev::end_date.is_not_null().and(ev::end_date.le(cutoff_date)));
            let ids: Vec<String> = ev::table
                .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
                .filter(ev::push_state.ne(PushState::Pending.as_str()))
                .filter(ended)
                .order(ev::end_at.asc())
                .limit(i64::from(limit))
                .select(ev::id)
                .load(conn)
                .await
                .map_err(db)?;
            if ids.is_empty() {
                return Ok(0);
            }
            let cancelled = diesel::update(ev::table)
                .filter(ev::id.eq_any(&ids))
                .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
                .filter(ev::push_state.ne(PushState::Pending.as_str()))
                .set((
                    ev::status.eq(EventStatus::Cancelled.as_str()),
                    ev::updated_at.eq(micros(now)),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(cancelled as u64)
        })
    }
}

#[async_trait]
impl SyncStateStore for DieselStore {
    async fn sync_state(&self, calendar_id: &CalendarId) -> DomainResult<Option<SyncState>> {
        let mut conn = self.conn().await?;
        load_sync_state(&mut conn, calendar_id.as_str()).await
    }

    async fn list_sync_states(&self) -> DomainResult<Vec<SyncState>> {
        let mut conn = self.conn().await?;
        ss::table
            .order(ss::calendar_id.asc())
            .select(SyncStateRow::as_select())
            .load::<SyncStateRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(SyncStateRow::into_state)
            .collect()
    }

    async fn mark_dirty(&self, calendar_id: &CalendarId, full: bool) -> DomainResult<()> {
        write_tx!(self, |conn| {
            diesel::insert_into(ss::table)
                .values((
                    ss::calendar_id.eq(calendar_id.as_str()),
                    ss::dirty_seq.eq(1i64),
                    ss::full_sync_requested.eq(full),
                ))
                .on_conflict(ss::calendar_id)
                .do_update()
                .set((
                    ss::dirty_seq.eq(ss::dirty_seq + 1i64),
                    ss::full_sync_requested
                        .eq(ss::full_sync_requested.or(excluded(ss::full_sync_requested))),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn lease_dirty(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<Option<SyncLease>> {
        let now = micros(now);
        write_tx!(self, |conn| {
            let candidates: Vec<String> = ss::table
                .filter(
                    ss::dirty_seq
                        .gt(ss::clean_seq)
                        .or(ss::full_sync_requested.eq(true)),
                )
                .filter(ss::reconnect_required.eq(false))
                .filter(ss::lease_until.is_null().or(ss::lease_until.le(now)))
                .order(ss::lease_until.asc())
                .limit(8)
                .select(ss::calendar_id)
                .load(conn)
                .await
                .map_err(db)?;
            for calendar_id in candidates {
                if let Some(lease) = try_lease(conn, &calendar_id, owner, now, until).await? {
                    return Ok(Some(lease));
                }
            }
            Ok(None)
        })
    }

    async fn lease_calendar(
        &self,
        calendar_id: &CalendarId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<Option<SyncLease>> {
        write_tx!(self, |conn| {
            ensure_sync_state(conn, calendar_id).await?;
            try_lease(conn, calendar_id.as_str(), owner, now, until).await
        })
    }

    async fn extend_lease(&self, lease: &SyncLease, until: DateTime<Utc>) -> DomainResult<bool> {
        write_tx!(self, |conn| {
            let extended = diesel::update(ss::table.find(lease.calendar_id.as_str()))
                .filter(ss::lease_owner.eq(&lease.owner))
                .set(ss::lease_until.eq(micros(until)))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(extended == 1)
        })
    }

    async fn release_lease(
        &self,
        lease: &SyncLease,
        outcome: &SyncOutcome,
        now: DateTime<Utc>,
    ) -> DomainResult<()> {
        let now = micros(now);
        write_tx!(self, |conn| {
            let Some(state) = load_sync_state(conn, lease.calendar_id.as_str()).await? else {
                return Ok(());
            };
            if state.lease_owner.as_deref() != Some(lease.owner.as_str()) {
                return Ok(());
            }
            let target = diesel::update(ss::table.find(lease.calendar_id.as_str()))
                .filter(ss::lease_owner.eq(&lease.owner));
            let no_owner: Option<&str> = None;
            match outcome {
                SyncOutcome::Succeeded { full } => {
                    target
                        .set((
                            ss::clean_seq.eq(state.clean_seq.max(lease.seen_seq)),
                            ss::full_sync_requested.eq(state.full_sync_requested && !full),
                            ss::last_status.eq("ok"),
                            ss::error_count.eq(0),
                            ss::lease_owner.eq(no_owner),
                            ss::lease_seen_seq.eq(None::<i64>),
                            ss::lease_until.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)
                        .await
                }
                SyncOutcome::Failed {
                    error,
                    reconnect_required,
                } => {
                    let errors = state.error_count.saturating_add(1);
                    let rest = calsync_domain::later(now, SyncState::retry_delay(errors));
                    target
                        .set((
                            ss::last_status.eq("error"),
                            ss::last_error.eq(error.as_str()),
                            ss::last_error_at.eq(now),
                            ss::error_count.eq(i32::try_from(errors).unwrap_or(i32::MAX)),
                            ss::reconnect_required
                                .eq(state.reconnect_required || *reconnect_required),
                            ss::lease_owner.eq(no_owner),
                            ss::lease_seen_seq.eq(None::<i64>),
                            ss::lease_until.eq(micros(rest)),
                        ))
                        .execute(conn)
                        .await
                }
                SyncOutcome::Abandoned => {
                    target
                        .set((
                            ss::lease_owner.eq(no_owner),
                            ss::lease_seen_seq.eq(None::<i64>),
                            ss::lease_until.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)
                        .await
                }
            }
            .map_err(db)?;
            Ok(())
        })
    }

    async fn mark_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        error: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            ensure_sync_state(conn, calendar_id).await?;
            diesel::update(ss::table.find(calendar_id.as_str()))
                .set((
                    ss::reconnect_required.eq(true),
                    ss::last_status.eq("error"),
                    ss::last_error.eq(error),
                    ss::last_error_at.eq(micros(now)),
                    ss::error_count.eq(ss::error_count + 1),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn clear_reconnect_required(&self, calendar_id: &CalendarId) -> DomainResult<()> {
        write_tx!(self, |conn| {
            ensure_sync_state(conn, calendar_id).await?;
            diesel::update(ss::table.find(calendar_id.as_str()))
                .set((
                    ss::reconnect_required.eq(false),
                    ss::error_count.eq(0),
                    ss::full_sync_requested.eq(true),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }
}

#[async_trait]
impl ChannelStore for DieselStore {
    async fn insert_channel(&self, channel: &WatchChannel) -> DomainResult<()> {
        let row = ChannelRow::new(channel);
        write_tx!(self, |conn| {
            diesel::insert_into(wc::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(|error| match db(error) {
                    DomainError::Duplicate { .. } => DomainError::Duplicate { what: "channel" },
                    other => other,
                })?;
            Ok(())
        })
    }

    async fn get_channel(&self, id: &ChannelId) -> DomainResult<Option<WatchChannel>> {
        let mut conn = self.conn().await?;
        wc::table
            .find(id.as_str())
            .select(ChannelRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .map(ChannelRow::into_channel)
            .transpose()
    }

    async fn list_channels(
        &self,
        status: Option<ChannelStatus>,
    ) -> DomainResult<Vec<WatchChannel>> {
        let mut conn = self.conn().await?;
        let mut query = wc::table.select(ChannelRow::as_select()).into_boxed();
        if let Some(status) = status {
            query = query.filter(wc::status.eq(status.as_str()));
        }
        query
            .order((wc::created_at.asc(), wc::id.asc()))
            .load::<ChannelRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(ChannelRow::into_channel)
            .collect()
    }

    async fn activate_channel(&self, id: &ChannelId, grant: &WatchGrant) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let updated = diesel::update(wc::table.find(id.as_str()))
                .set((
                    wc::resource_id.eq(grant.resource_id.as_str()),
                    wc::expiration.eq(micros(grant.expiration)),
                    wc::status.eq(ChannelStatus::Active.as_str()),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Err(DomainError::NotFound { what: "channel" });
            }
            Ok(())
        })
    }

    async fn set_channel_status(&self, id: &ChannelId, status: ChannelStatus) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let updated = diesel::update(wc::table.find(id.as_str()))
                .set(wc::status.eq(status.as_str()))
                .execute(conn)
                .await
                .map_err(db)?;
            if updated == 0 {
                return Err(DomainError::NotFound { what: "channel" });
            }
            Ok(())
        })
    }

    async fn record_notification(
        &self,
        id: &ChannelId,
        message_number: u64,
        at: DateTime<Utc>,
    ) -> DomainResult<()> {
        let number = i64::try_from(message_number).unwrap_or(i64::MAX);
        write_tx!(self, |conn| {
            // Keep the highest message number; notifications may arrive out of order.
            let raised = diesel::update(wc::table.find(id.as_str()))
                .filter(
                    wc::last_message_number
                        .is_null()
                        .or(wc::last_message_number.lt(number)),
                )
                .set((
                    wc::last_message_number.eq(number),
                    wc::last_notification_at.eq(micros(at)),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if raised == 0 {
                let touched = diesel::update(wc::table.find(id.as_str()))
                    .set(wc::last_notification_at.eq(micros(at)))
                    .execute(conn)
                    .await
                    .map_err(db)?;
                if touched == 0 {
                    return Err(DomainError::NotFound { what: "channel" });
                }
            }
            Ok(())
        })
    }
}

#[async_trait]
impl OutboxStore for DieselStore {
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> DomainResult<Vec<OutboxEntry>> {
        let now = micros(now);
        let lease_until = micros(lease_until);
        write_tx!(self, |conn| {
            let earlier = diesel::alias!(schema::calendar_outbox as earlier);
            let pending = OutboxState::Pending.as_str();
            // Only the oldest pending row of each event is eligible, so the
            // writes to one event go out in order.
            let candidates: Vec<i64> = ob::table
                .filter(ob::state.eq(pending))
                .filter(ob::next_attempt_at.le(now))
                .filter(ob::lease_until.is_null().or(ob::lease_until.le(now)))
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    earlier
                        .filter(earlier.field(ob::event_id).eq(ob::event_id))
                        .filter(earlier.field(ob::state).eq(pending))
                        .filter(earlier.field(ob::id).lt(ob::id)),
                )))
                .order(ob::id.asc())
                .limit(i64::from(limit))
                .select(ob::id)
                .load(conn)
                .await
                .map_err(db)?;
            let mut claimed = Vec::with_capacity(candidates.len());
            for id in candidates {
                let rows = diesel::update(ob::table.find(id))
                    .filter(ob::state.eq(pending))
                    .filter(ob::lease_until.is_null().or(ob::lease_until.le(now)))
                    .set((ob::lease_owner.eq(owner), ob::lease_until.eq(lease_until)))
                    .returning(OutboxRow::as_returning())
                    .get_results::<OutboxRow>(conn)
                    .await
                    .map_err(db)?;
                for row in rows {
                    claimed.push(row.into_entry()?);
                }
            }
            Ok(claimed)
        })
    }

    async fn complete_outbox(
        &self,
        entry: &OutboxEntry,
        receipt: &PushReceipt,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let more_pending = finish_outbox_row(conn, entry, None).await?;
            let Some(mut row) = load_event(conn, &entry.event_id.to_string()).await? else {
                return Ok(());
            };
            // The mirror takes Google's whole copy (see `PushReceipt::remote`).
            if more_pending == 0
                && let Some(remote) = &receipt.remote
            {
                let current = row.clone().into_event()?;
                // `updated_at` stays: a local writer racing this push is
                // not told the event changed under it.
                if let Some(taken) = remote.onto(&current, current.updated_at) {
                    row = EventRow::new(&taken, row.sync_run_id.clone());
                }
            }
            if let Some(etag) = &receipt.etag {
                row.etag = Some(etag.to_string());
            }
            if let Some(updated) = receipt.updated {
                row.google_updated = Some(micros(updated));
            }
            if let Some(link) = &receipt.html_link {
                row.html_link = Some(link.clone());
            }
            row.pushed_at = Some(micros(receipt.pushed_at));
            row.push_note = None;
            row.push_conflict = false;
            if more_pending == 0 {
                row.push_state = PushState::Synced.as_str().to_owned();
            }
            diesel::update(ev::table.find(&row.id))
                .set(&row)
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn retry_outbox(
        &self,
        entry: &OutboxEntry,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let no_owner: Option<&str> = None;
            diesel::update(ob::table.find(entry.id))
                .set((
                    ob::attempts.eq(ob::attempts + 1),
                    ob::last_error.eq(error),
                    ob::next_attempt_at.eq(micros(next_attempt_at)),
                    ob::lease_owner.eq(no_owner),
                    ob::lease_until.eq(None::<DateTime<Utc>>),
                    ob::updated_at.eq(micros(Utc::now())),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn dead_letter_outbox(&self, entry: &OutboxEntry, error: &str) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let no_owner: Option<&str> = None;
            diesel::update(ob::table.find(entry.id))
                .set((
                    ob::state.eq(OutboxState::DeadLetter.as_str()),
                    ob::attempts.eq(ob::attempts + 1),
                    ob::last_error.eq(error),
                    ob::lease_owner.eq(no_owner),
                    ob::lease_until.eq(None::<DateTime<Utc>>),
                    ob::updated_at.eq(micros(Utc::now())),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            diesel::update(ev::table.find(entry.event_id.to_string()))
                .set(ev::push_state.eq(PushState::Failed.as_str()))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn settle_outbox(
        &self,
        entry: &OutboxEntry,
        event: &Event,
        note: &str,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let more_pending = finish_outbox_row(conn, entry, Some(note)).await?;
            let mut row = EventRow::new(event, None);
            if more_pending > 0 {
                row.push_state = PushState::Pending.as_str().to_owned();
                row.push_conflict = false;
            }
            diesel::update(ev::table.find(&row.id))
                .set(&row)
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn extend_outbox_leases(
        &self,
        owner: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> DomainResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        write_tx!(self, |conn| {
            let held = diesel::update(ob::table)
                .filter(ob::id.eq_any(ids))
                .filter(ob::state.eq(OutboxState::Pending.as_str()))
                .filter(ob::lease_owner.eq(owner))
                .set(ob::lease_until.eq(micros(until)))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(held as u64)
        })
    }

    async fn outbox_for_event(&self, event_id: LocalEventId) -> DomainResult<Vec<OutboxEntry>> {
        let mut conn = self.conn().await?;
        ob::table
            .filter(ob::event_id.eq(event_id.to_string()))
            .order(ob::id.asc())
            .select(OutboxRow::as_select())
            .load::<OutboxRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(OutboxRow::into_entry)
            .collect()
    }
}

#[async_trait]
impl JobTickStore for DieselStore {
    async fn claim_tick(
        &self,
        job: &str,
        scheduled_for: DateTime<Utc>,
        owner: &str,
    ) -> DomainResult<bool> {
        write_tx!(self, |conn| {
            let inserted = diesel::insert_into(jt::table)
                .values((
                    jt::job.eq(job),
                    jt::scheduled_for.eq(micros(scheduled_for)),
                    jt::claimed_by.eq(owner),
                    jt::claimed_at.eq(micros(Utc::now())),
                ))
                .on_conflict((jt::job, jt::scheduled_for))
                .do_nothing()
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(inserted == 1)
        })
    }
}

#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = dn)]
struct DriveRow {
    channel_id: String,
    resource_id: String,
    resource_uri: String,
    resource_state: String,
    message_number: i64,
    changed: String,
    received_at: DateTime<Utc>,
}

impl DriveRow {
    fn into_notification(self) -> DomainResult<(DriveNotification, DateTime<Utc>)> {
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

#[async_trait]
impl DriveNotificationStore for DieselStore {
    async fn record_drive_notification(
        &self,
        notification: &DriveNotification,
        received_at: DateTime<Utc>,
    ) -> DomainResult<bool> {
        let envelope = &notification.envelope;
        write_tx!(self, |conn| {
            let inserted = diesel::insert_into(dn::table)
                .values((
                    dn::channel_id.eq(envelope.channel_id.as_str()),
                    dn::resource_id.eq(envelope.resource_id.as_str()),
                    dn::resource_uri.eq(&envelope.resource_uri),
                    dn::resource_state.eq(notification.state.as_str()),
                    dn::message_number
                        .eq(i64::try_from(envelope.message_number).unwrap_or(i64::MAX)),
                    dn::changed.eq(notification.changed.join(",")),
                    dn::received_at.eq(micros(received_at)),
                ))
                .on_conflict((dn::channel_id, dn::message_number))
                .do_nothing()
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(inserted == 1)
        })
    }

    async fn purge_drive_notifications(&self, before: DateTime<Utc>) -> DomainResult<u64> {
        write_tx!(self, |conn| {
            let purged = diesel::delete(dn::table.filter(dn::received_at.lt(micros(before))))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(purged as u64)
        })
    }

    async fn recent_drive_notifications(
        &self,
        limit: u32,
    ) -> DomainResult<Vec<(DriveNotification, DateTime<Utc>)>> {
        let mut conn = self.conn().await?;
        dn::table
            .order(dn::id.desc())
            .limit(i64::from(limit))
            .select(DriveRow::as_select())
            .load::<DriveRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(DriveRow::into_notification)
            .collect()
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The newest migration embedded in this build, as Diesel records it.
fn latest_migration() -> DomainResult<String> {
    use diesel::migration::MigrationSource;
    let migrations = MigrationSource::<Backend>::migrations(&MIGRATIONS)
        .map_err(|error| Error::Migration(error.to_string()))?;
    migrations
        .iter()
        .map(|migration| migration.name().version().to_string())
        .max()
        .ok_or_else(|| Error::Migration("no migrations are embedded".into()).into())
}

mod migrations_table {
    diesel::table! {
        __diesel_schema_migrations (version) {
            version -> Text,
        }
    }
}

#[async_trait]
impl HealthStore for DieselStore {
    async fn check_ready(&self) -> DomainResult<()> {
        use migrations_table::__diesel_schema_migrations as mt;
        let expected = latest_migration()?;
        let mut conn = self.conn().await?;
        let applied: i64 = mt::table
            .filter(mt::version.eq(&expected))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(db)?;
        if applied == 0 {
            return Err(Error::Migration(format!("migration {expected} is not applied")).into());
        }
        Ok(())
    }

    async fn health_stats(
        &self,
        now: DateTime<Utc>,
        expiring_before: DateTime<Utc>,
    ) -> DomainResult<HealthStats> {
        use diesel::dsl::count_star;
        let mut conn = self.conn().await?;
        let conn = &mut *conn;
        let active = ChannelStatus::Active.as_str();
        let live = EventStatus::Cancelled.as_str();
        let pending = OutboxState::Pending.as_str();

        let now = micros(now);
        let active_channels: i64 = wc::table
            .filter(wc::status.eq(active))
            .filter(wc::expiration.gt(now))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        let expiring: i64 = wc::table
            .filter(wc::status.eq(active))
            .filter(wc::expiration.gt(now))
            .filter(wc::expiration.lt(micros(expiring_before)))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        let lapsed: i64 = wc::table
            .filter(wc::status.eq(active))
            .filter(wc::expiration.le(now))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        // ORDER BY + LIMIT 1 rather than MIN(): it uses the same indexes and
        // works for SQLite's text timestamps, which Diesel cannot aggregate.
        let next_expiry: Option<DateTime<Utc>> = wc::table
            .filter(wc::status.eq(active))
            .filter(wc::expiration.gt(now))
            .order(wc::expiration.asc())
            .select(wc::expiration)
            .first(conn)
            .await
            .optional()
            .map_err(db)?;
        let per_calendar: Vec<(String, i64)> = wc::table
            .filter(wc::status.eq(active))
            .filter(wc::expiration.gt(now))
            .group_by(wc::calendar_id)
            .select((wc::calendar_id, count_star()))
            .load(conn)
            .await
            .map_err(db)?;
        let per_calendar: HashMap<String, i64> = per_calendar.into_iter().collect();
        let states: Vec<SyncState> = ss::table
            .select(SyncStateRow::as_select())
            .load::<SyncStateRow>(conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(SyncStateRow::into_state)
            .collect::<DomainResult<_>>()?;
        // Kept by triggers (see the active_event_counts migration): one row
        // per calendar, so this stays cheap at millions of events.
        let active_events: i64 = ec::table
            .select(ec::active)
            .load::<i64>(conn)
            .await
            .map_err(db)?
            .into_iter()
            .sum();
        let oldest: Option<DateTime<Utc>> = ev::table
            .filter(ev::status.ne(live))
            .order(ev::start_at.asc())
            .select(ev::start_at)
            .first(conn)
            .await
            .optional()
            .map_err(db)?;
        let newest: Option<DateTime<Utc>> = ev::table
            .filter(ev::status.ne(live))
            .order(ev::start_at.desc())
            .select(ev::start_at)
            .first(conn)
            .await
            .optional()
            .map_err(db)?;
        let outbox_pending: i64 = ob::table
            .filter(ob::state.eq(pending))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        let oldest_pending: Option<DateTime<Utc>> = ob::table
            .filter(ob::state.eq(pending))
            .order(ob::created_at.asc())
            .select(ob::created_at)
            .first(conn)
            .await
            .optional()
            .map_err(db)?;
        let dead_letters: i64 = ob::table
            .filter(ob::state.eq(OutboxState::DeadLetter.as_str()))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        let push_failed: i64 = ev::table
            .filter(ev::push_state.eq(PushState::Failed.as_str()))
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        // The bare column, not `= $1`: only a predicate spelled as the
        // partial index's (`WHERE push_conflict`) lets the planners use it.
        let push_conflicts: i64 = ev::table
            .filter(ev::push_conflict)
            .count()
            .get_result(conn)
            .await
            .map_err(db)?;
        Ok(HealthStats {
            active_channels: count(active_channels),
            channels_expiring_soon: count(expiring),
            channels_lapsed: count(lapsed),
            next_channel_expiry: next_expiry,
            last_sync_at: states.iter().filter_map(SyncState::last_sync_at).max(),
            calendars: states
                .iter()
                .map(|s| {
                    let channels = per_calendar
                        .get(s.calendar_id.as_str())
                        .copied()
                        .unwrap_or(0);
                    CalendarHealth::new(s, count(channels))
                })
                .collect(),
            active_events: count(active_events),
            oldest_event_start: oldest,
            newest_event_start: newest,
            outbox_pending: count(outbox_pending),
            oldest_pending_outbox_at: oldest_pending,
            outbox_dead_letters: count(dead_letters),
            events_push_failed: count(push_failed),
            events_push_conflicts: count(push_conflicts),
        })
    }
}
