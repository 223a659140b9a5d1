//! Row writes that both the event and the outbox queries make inside their
//! transactions: queueing a push, and cancelling a deleted series'
//! exceptions. Kept below both so neither module imports the other.

use calsync_domain::event::{Event, EventStatus};
use calsync_domain::feed::{self, NewChange, Origin};
use calsync_domain::outbox::{OutboxEntry, OutboxOp, OutboxState};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::rows::{EventRow, NewOutboxRow, OutboxRow, to_json};
use super::schema::{calendar_events as ev, calendar_outbox as ob};
use super::{Conn, DomainResult, db, micros};

pub(super) async fn enqueue(
    conn: &mut Conn,
    event: &Event,
    op: &OutboxOp,
) -> DomainResult<OutboxEntry> {
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

/// Cancels the live exceptions of a series whose master is cancelled: Google
/// cancels them with their master ("Deleting a master cancels its
/// exceptions"), and the mirror must not show occurrences of a deleted series
/// while it waits for the sync that would report them. Answers the rows it
/// cancelled, as stored, for the caller to record in the feed.
pub(super) async fn cancel_exceptions_of(
    conn: &mut Conn,
    master: &Event,
    now: DateTime<Utc>,
) -> DomainResult<Vec<Event>> {
    if !master.is_master() || master.status != EventStatus::Cancelled {
        return Ok(Vec::new());
    }
    diesel::update(ev::table)
        .filter(ev::calendar_id.eq(master.calendar_id.as_str()))
        .filter(ev::recurring_event_id.eq(master.google_event_id.as_str()))
        .filter(ev::status.ne(EventStatus::Cancelled.as_str()))
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
        .collect()
}

/// The feed's `event.cancelled` for each row a bulk write cancelled.
pub(super) fn cancellations(rows: &[Event], origin: Origin, at: DateTime<Utc>) -> Vec<NewChange> {
    rows.iter()
        .map(|row| feed::cancellation(row, origin, at))
        .collect()
}
