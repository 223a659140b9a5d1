//! The mirror of Google's events: reads, local writes with their outbox
//! rows, sync pages, and the retention sweep.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::event::{Event, EventKind, EventStatus, PushState};
use calsync_domain::feed::{self, NewChange, Origin};
use calsync_domain::freebusy::rule::{BusyCandidate, BusyQuery};
use calsync_domain::ids::{CalendarId, EventId, LocalEventId};
use calsync_domain::outbox::{IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp};
use calsync_domain::ports::{EventQuery, EventStore};
use calsync_domain::sync::{PageOutcome, SyncPage};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::rows::{BusyRow, EventRow, load_event};
use super::schema::{calendar_events as ev, calendar_idempotency_keys as ik};
use super::shared_writes::{cancel_exceptions_of, cancellations, enqueue};
use super::sync_pages::apply_page;
use super::{Conn, D, DieselStore, DomainResult, db, micros};
use crate::dialect::Dialect;

/// Inserts a new event row; a Google id already mirrored is `Duplicate`.
pub(super) async fn insert_event(conn: &mut Conn, row: &EventRow) -> DomainResult<()> {
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

    async fn longest_span(
        &self,
        calendar_id: Option<&CalendarId>,
    ) -> DomainResult<Option<chrono::Duration>> {
        let mut conn = self.conn().await?;
        // The maximum is taken in the database: a calendar of a million
        // events answers one number, not a million rows.
        let mut select = ev::table
            .filter(ev::kind.ne(EventKind::Master.as_str()))
            .select(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Double>,
            >(<D as Dialect>::MAX_SPAN_SECONDS))
            .into_boxed();
        if let Some(calendar_id) = calendar_id {
            select = select.filter(ev::calendar_id.eq(calendar_id.as_str().to_owned()));
        }
        let seconds: Option<f64> = select.first(&mut conn).await.map_err(db)?;
        Ok(seconds.map(span_at_least))
    }

    async fn busy_candidates(&self, query: &BusyQuery) -> DomainResult<Vec<BusyCandidate>> {
        let Some(calendars) = busy_calendars(query) else {
            return Ok(Vec::new());
        };
        let mut conn = self.conn().await?;
        ev::table
            .filter(calendars)
            .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
            .filter(ev::last_end_at.gt(micros(query.ends_after)))
            .select((
                ev::calendar_id,
                ev::start_at,
                ev::end_at,
                ev::start_date,
                ev::end_date,
                ev::start_time_zone,
                ev::end_time_zone,
                ev::status,
                ev::event_type,
                ev::attendees,
                // `->` and `->>` mean the same on Postgres' jsonb and on
                // SQLite (3.38 on): only these parts leave the database.
                diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(
                    "calendar_events.details ->> 'transparency'",
                ),
                diesel::dsl::sql::<diesel::sql_types::Nullable<super::Json>>(
                    "calendar_events.google -> 'attendees'",
                ),
            ))
            .load::<BusyRow>(&mut conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(BusyRow::into_candidate)
            .collect()
    }

    async fn list_events(&self, query: &EventQuery) -> DomainResult<Vec<Event>> {
        let mut conn = self.conn().await?;
        let series: Vec<String> = query.of_series.iter().map(ToString::to_string).collect();
        let chunks: Vec<&[String]> = if series.is_empty() {
            vec![&[]]
        } else {
            series.chunks(SERIES_CHUNK).collect()
        };
        let mut rows = Vec::new();
        for chunk in &chunks {
            rows.extend(
                listing(query, chunk)
                    .load::<EventRow>(&mut conn)
                    .await
                    .map_err(db)?,
            );
        }
        if chunks.len() > 1 {
            // Each chunk is ordered and limited; so is their merge.
            rows.sort_by(|a, b| (a.start_at, &a.id).cmp(&(b.start_at, &b.id)));
            rows.truncate(query.limit as usize);
        }
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn insert_with_outbox(&self, event: &Event, op: OutboxOp) -> DomainResult<OutboxEntry> {
        let row = EventRow::new(event, None);
        let changes = created(&row, event)?;
        write_tx!(self, |conn| {
            insert_event(conn, &row).await?;
            let entry = enqueue(conn, event, &op).await?;
            record_changes(conn, &changes).await?;
            Ok(entry)
        })
    }

    async fn insert_idempotent(
        &self,
        event: &Event,
        op: OutboxOp,
        key: &IdempotencyKey,
    ) -> DomainResult<OutboxEntry> {
        let row = EventRow::new(event, None);
        let changes = created(&row, event)?;
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
            let entry = enqueue(conn, event, &op).await?;
            record_changes(conn, &changes).await?;
            Ok(entry)
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
        let id = row.id.clone();
        let write = LocalWrite::from(row);
        write_tx!(self, |conn| {
            // The row before, locked until the write commits: what the
            // feed records this write changed.
            let before = <D as Dialect>::load_event_for_update(conn, &id)
                .await
                .map_err(db)?
                .ok_or(DomainError::NotFound { what: "event" })?
                .into_event()?;
            let stored = diesel::update(ev::table.find(&id))
                .filter(ev::updated_at.eq(micros(expected_updated_at)))
                .set(&write)
                .returning(EventRow::as_returning())
                .get_results::<EventRow>(conn)
                .await
                .map_err(db)?;
            let Some(after) = stored.into_iter().next() else {
                return Err(DomainError::PreconditionFailed {
                    reason: "the event was changed concurrently".into(),
                });
            };
            // The event as stored: its receipt of the last push kept.
            let after = after.into_event()?;
            let mut changes =
                feed::event_changes(Some(&before), &after, Origin::Api, event.updated_at);
            let cancelled = cancel_exceptions_of(conn, event, event.updated_at).await?;
            changes.extend(cancellations(&cancelled, Origin::Api, event.updated_at));
            let entry = enqueue(conn, event, &op).await?;
            record_changes(conn, &changes).await?;
            Ok(entry)
        })
    }

    async fn apply_sync_page(&self, page: &SyncPage) -> DomainResult<PageOutcome> {
        write_tx!(self, |conn| { apply_page(conn, page).await })
    }

    async fn cancel_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> DomainResult<u64> {
        let cutoff = micros(cutoff);
        let cutoff_date = cutoff.date_naive();
        // Every row due has its last end before the end of the cutoff's day
        // (an all-day end is that date's midnight): a range on the index of
        // active rows by last end, refined by the exact rules below.
        let scan_before = cutoff_date
            .succ_opt()
            .map(|day| day.and_time(NaiveTime::MIN).and_utc());
        write_tx!(self, |conn| {
            // All-day ends are exclusive dates; instants compare as instants.
            let ended = || {
                ev::end_date
                    .is_null()
                    .and(ev::end_at.lt(cutoff))
                    .or(ev::end_date.is_not_null().and(ev::end_date.le(cutoff_date)))
            };
            // A single row by its end; a series once its last occurrence
            // has ended (an endless one, NULL, never); an exception by its
            // own end, but only with its master: while the series' master
            // row is active, the exception is part of it and stays.
            let due = ev::kind
                .eq(EventKind::Single.as_str())
                .and(ended())
                .or(ev::kind
                    .eq(EventKind::Master.as_str())
                    .and(ev::last_end_at.is_not_null())
                    .and(ev::last_end_at.lt(cutoff)))
                .or(ev::kind.eq(EventKind::Exception.as_str()).and(ended()).and(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(NO_ACTIVE_MASTER),
                ));
            let mut select = ev::table
                .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
                .filter(ev::push_state.ne(PushState::Pending.as_str()))
                .filter(due)
                .into_boxed();
            if let Some(before) = scan_before {
                select = select.filter(ev::last_end_at.lt(before));
            }
            let ids: Vec<String> = select
                .order((ev::last_end_at.asc(), ev::id.asc()))
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
                .returning(EventRow::as_returning())
                .get_results::<EventRow>(conn)
                .await
                .map_err(db)?
                .into_iter()
                .map(EventRow::into_event)
                .collect::<DomainResult<Vec<Event>>>()?;
            record_changes(conn, &cancellations(&cancelled, Origin::Calsync, now)).await?;
            Ok(cancelled.len() as u64)
        })
    }
}

/// The feed's record of a new event: the event as its row stores it.
fn created(row: &EventRow, event: &Event) -> DomainResult<Vec<NewChange>> {
    let stored = row.clone().into_event()?;
    Ok(feed::event_changes(
        None,
        &stored,
        Origin::Api,
        event.updated_at,
    ))
}

/// What a local write (`update_with_outbox`) stores: the whole row except
/// the record of Google's answer to the last push (etag, `updated`, html
/// link, `pushed_at`). A local write never changes that record, but the
/// event it carries was read before its transaction began: a push that
/// finished in between wrote a newer one without touching `updated_at`
/// (so the optimistic lock lets the write through), and writing the stale
/// etag back would make the next push's `If-Match` fail at Google, where
/// a write conditional on an etag is then settled as a conflict.
#[derive(diesel::AsChangeset)]
#[diesel(table_name = ev)]
#[diesel(treat_none_as_null = true)]
struct LocalWrite {
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
    entity_type: Option<String>,
    entity_id: Option<String>,
    push_state: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    push_note: Option<String>,
    push_conflict: bool,
    event_type: String,
    kind: String,
    details: serde_json::Value,
    google: Option<serde_json::Value>,
    last_end_at: Option<DateTime<Utc>>,
    recurrence_unreadable: bool,
}

impl From<EventRow> for LocalWrite {
    fn from(row: EventRow) -> Self {
        // No `..`: a column added to the row must be placed on one side.
        let EventRow {
            id: _,
            calendar_id,
            google_event_id,
            ical_uid,
            summary,
            description,
            location,
            start_at,
            end_at,
            start_date,
            end_date,
            start_time_zone,
            end_time_zone,
            status,
            attendees,
            organizer,
            recurrence,
            recurring_event_id,
            original_start,
            etag: _,
            google_updated: _,
            html_link: _,
            entity_type,
            entity_id,
            push_state,
            sync_run_id: _,
            created_at,
            updated_at,
            push_note,
            push_conflict,
            pushed_at: _,
            event_type,
            kind,
            details,
            google,
            last_end_at,
            recurrence_unreadable,
        } = row;
        Self {
            calendar_id,
            google_event_id,
            ical_uid,
            summary,
            description,
            location,
            start_at,
            end_at,
            start_date,
            end_date,
            start_time_zone,
            end_time_zone,
            status,
            attendees,
            organizer,
            recurrence,
            recurring_event_id,
            original_start,
            entity_type,
            entity_id,
            push_state,
            created_at,
            updated_at,
            push_note,
            push_conflict,
            event_type,
            kind,
            details,
            google,
            last_end_at,
            recurrence_unreadable,
        }
    }
}

/// An exception's series has no active master row in its calendar. (Diesel
/// has no correlated subqueries; the outer row is `calendar_events`.)
const NO_ACTIVE_MASTER: &str = "NOT EXISTS (SELECT 1 FROM calendar_events AS series_master \
     WHERE series_master.calendar_id = calendar_events.calendar_id \
     AND series_master.google_event_id = calendar_events.recurring_event_id \
     AND series_master.status <> 'cancelled')";

type Condition =
    Box<dyn diesel::BoxableExpression<ev::table, Backend, SqlType = diesel::sql_types::Bool>>;

/// Which rows a [`BusyQuery`] reads: per calendar, its single events
/// starting in `[starts_from, starts_before)`, each calendar's range a
/// term of its own (so each is a range scan of the calendar, kind and
/// start index); `None` for no calendar.
fn busy_calendars(query: &BusyQuery) -> Option<Condition> {
    let before = micros(query.starts_before);
    query.calendars.iter().fold(None, |all, calendar| {
        let range: Condition = Box::new(
            ev::calendar_id
                .eq(calendar.calendar_id.as_str().to_owned())
                .and(ev::kind.eq(EventKind::Single.as_str()))
                .and(ev::start_at.lt(before)),
        );
        let range: Condition = match calendar.starts_from {
            Some(from) => Box::new(range.and(ev::start_at.ge(micros(from)))),
            None => range,
        };
        Some(match all {
            None => range,
            Some(all) => Box::new(all.or(range)),
        })
    })
}

/// Most `of_series` ids bound in one statement (SQLite binds each one;
/// larger lists are queried in chunks and merged).
const SERIES_CHUNK: usize = 1000;

type Backend = <D as Dialect>::Backend;
type Listing<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::Select<ev::table, diesel::dsl::AsSelect<EventRow, Backend>>,
    Backend,
>;

/// The listing query for `query`, limited to exceptions of `series` when
/// that is not empty. A master spans from its start to its last end
/// (endless when NULL); every other row's last end is its end.
fn listing<'a>(query: &EventQuery, series: &'a [String]) -> Listing<'a> {
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
    if let Some(event_type) = &query.event_type {
        select = select.filter(ev::event_type.eq(event_type.as_str().to_owned()));
    }
    if let Some(kind) = query.kind {
        select = select.filter(ev::kind.eq(kind.as_str()));
    }
    select = match query.push_state {
        None => select,
        // Spelled as the partial indexes' predicates (no bound value), so
        // the planners can use them: failed and conflicted rows are few.
        Some(PushState::Failed) => select.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "calendar_events.push_state = 'failed'",
        )),
        Some(PushState::Conflict) => select.filter(ev::push_conflict),
        Some(PushState::Synced) => select
            .filter(ev::push_state.eq(PushState::Synced.as_str()))
            .filter(ev::push_conflict.eq(false)),
        Some(PushState::Pending) => select.filter(ev::push_state.eq(PushState::Pending.as_str())),
    };
    if !series.is_empty() {
        select = select.filter(ev::recurring_event_id.eq_any(series));
    }
    if let Some(after) = query.ends_after {
        select = select.filter(
            ev::last_end_at
                .is_null()
                .or(ev::last_end_at.gt(micros(after))),
        );
    }
    if let Some(before) = query.starts_before {
        select = select.filter(ev::start_at.lt(micros(before)));
    }
    if let Some(from) = query.starts_from {
        select = select.filter(ev::start_at.ge(micros(from)));
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
}

/// A span read as float seconds, rounded up to whole milliseconds plus
/// one: the float (and SQLite's `julianday`) may fall short of the exact
/// span by a fraction of a millisecond, and callers bound reads from below
/// with it, so it may be a little long, never short.
fn span_at_least(seconds: f64) -> chrono::Duration {
    let millis = (seconds * 1000.0).ceil();
    // Spans are at most centuries long: far inside i64 milliseconds.
    chrono::Duration::milliseconds(millis as i64 + 1)
}
