//! The outbox: local writes waiting to be pushed to Google, claimed by one
//! worker at a time and finished, retried, dead-lettered or settled.

use async_trait::async_trait;
use calsync_domain::event::{Event, PushState};
use calsync_domain::feed::{self, Origin};
use calsync_domain::ids::{CalendarId, LocalEventId};
use calsync_domain::outbox::{OutboxEntry, OutboxState, PushFailure};
use calsync_domain::ports::{OutboxStore, PushReceipt};
use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::rows::{EventRow, OutboxRow};
use super::schema::{self, calendar_events as ev, calendar_outbox as ob};
use super::shared_writes::{cancel_exceptions_of, cancellations};
use super::{Conn, D, DieselStore, DomainResult, db, micros};
use crate::dialect::Dialect;

/// Marks a pushed (or settled) outbox row done and releases its lease,
/// keeping `note` and its kind as its last error if given; answers how
/// many rows of the same event are still pending.
async fn finish_outbox_row(
    conn: &mut Conn,
    entry: &OutboxEntry,
    note: Option<(PushFailure, &str)>,
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
        Some((failure, note)) => {
            row.set((
                done,
                ob::last_error.eq(note),
                ob::last_failure.eq(failure.as_str()),
            ))
            .execute(conn)
            .await
        }
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

/// The event's dead-lettered rows not yet superseded: those after its last
/// row that went through (an older dead letter was overtaken by a later
/// write that Google took), oldest first.
async fn unresolved_dead_letters(conn: &mut Conn, event_id: &str) -> DomainResult<Vec<i64>> {
    let last_done: Option<i64> = ob::table
        .filter(ob::event_id.eq(event_id))
        .filter(ob::state.eq(OutboxState::Done.as_str()))
        .select(diesel::dsl::max(ob::id))
        .get_result(conn)
        .await
        .map_err(db)?;
    ob::table
        .filter(ob::event_id.eq(event_id))
        .filter(ob::state.eq(OutboxState::DeadLetter.as_str()))
        .filter(ob::id.gt(last_done.unwrap_or(0)))
        .order(ob::id.asc())
        .select(ob::id)
        .load(conn)
        .await
        .map_err(db)
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
            // The event row first, locked: a local write committing while
            // this runs can neither be overwritten by the row read here nor
            // be missed by the count of pending rows below.
            let locked = <D as Dialect>::load_event_for_update(conn, &entry.event_id.to_string())
                .await
                .map_err(db)?;
            let more_pending = finish_outbox_row(conn, entry, None).await?;
            // Google took a write to the calendar: it is writable.
            super::sync_states::clear_read_only_in(conn, &entry.calendar_id).await?;
            let Some(mut row) = locked else {
                return Ok(());
            };
            let before = row.clone().into_event()?;
            // The mirror takes Google's whole copy (see `PushReceipt::remote`).
            if more_pending == 0
                && let Some(remote) = &receipt.remote
            {
                // `updated_at` stays: a local writer racing this push is
                // not told the event changed under it.
                if let Some(taken) = remote.onto(&before, before.updated_at) {
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
            // The push settling (pushState, etag, htmlLink; Google's
            // content if its whole event was taken).
            let after = row.into_event()?;
            let changes =
                feed::event_changes(Some(&before), &after, Origin::Calsync, receipt.pushed_at);
            record_changes(conn, &changes).await
        })
    }

    async fn retry_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let no_owner: Option<&str> = None;
            diesel::update(ob::table.find(entry.id))
                .set((
                    ob::attempts.eq(ob::attempts + 1),
                    ob::last_error.eq(error),
                    ob::last_failure.eq(failure.as_str()),
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

    async fn wait_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        others_until: DateTime<Utc>,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            let no_owner: Option<&str> = None;
            let now = micros(Utc::now());
            // As `retry_outbox`, but `attempts` stays: a wait is no attempt.
            diesel::update(ob::table.find(entry.id))
                .set((
                    ob::last_error.eq(error),
                    ob::last_failure.eq(failure.as_str()),
                    ob::next_attempt_at.eq(micros(next_attempt_at)),
                    ob::lease_owner.eq(no_owner),
                    ob::lease_until.eq(None::<DateTime<Utc>>),
                    ob::updated_at.eq(now),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            // This row is the calendar's probe; the rest wait behind it.
            diesel::update(ob::table)
                .filter(ob::calendar_id.eq(entry.calendar_id.as_str()))
                .filter(ob::id.ne(entry.id))
                .filter(ob::state.eq(OutboxState::Pending.as_str()))
                .filter(ob::lease_until.is_null().or(ob::lease_until.le(now)))
                .filter(ob::next_attempt_at.lt(micros(others_until)))
                .set((
                    ob::next_attempt_at.eq(micros(others_until)),
                    ob::updated_at.eq(now),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn dead_letter_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            // The row before, locked first (as in `complete_outbox`).
            let id = entry.event_id.to_string();
            let before = <D as Dialect>::load_event_for_update(conn, &id)
                .await
                .map_err(db)?;
            let no_owner: Option<&str> = None;
            diesel::update(ob::table.find(entry.id))
                .set((
                    ob::state.eq(OutboxState::DeadLetter.as_str()),
                    ob::attempts.eq(ob::attempts + 1),
                    ob::last_error.eq(error),
                    ob::last_failure.eq(failure.as_str()),
                    ob::lease_owner.eq(no_owner),
                    ob::lease_until.eq(None::<DateTime<Utc>>),
                    ob::updated_at.eq(micros(Utc::now())),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            let Some(before) = before else {
                return Ok(());
            };
            let before = before.into_event()?;
            let stored = diesel::update(ev::table.find(&id))
                .set(ev::push_state.eq(PushState::Failed.as_str()))
                .returning(EventRow::as_returning())
                .get_results::<EventRow>(conn)
                .await
                .map_err(db)?;
            let mut changes = Vec::new();
            for after in stored {
                let after = after.into_event()?;
                changes.push(feed::push_failed(&before, &after, error, Utc::now()));
            }
            record_changes(conn, &changes).await
        })
    }

    async fn settle_outbox(
        &self,
        entry: &OutboxEntry,
        event: &Event,
        failure: PushFailure,
        note: &str,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            // The row before, locked (as in `complete_outbox`).
            let before = <D as Dialect>::load_event_for_update(conn, &event.id.to_string())
                .await
                .map_err(db)?;
            let more_pending = finish_outbox_row(conn, entry, Some((failure, note))).await?;
            let mut row = EventRow::new(event, None);
            if more_pending > 0 {
                row.push_state = PushState::Pending.as_str().to_owned();
                row.push_conflict = false;
            }
            let stored = diesel::update(ev::table.find(&row.id))
                .set(&row)
                .returning(EventRow::as_returning())
                .get_results::<EventRow>(conn)
                .await
                .map_err(db)?;
            // The settled event's own time (Google's side of the story).
            let now = event.updated_at;
            let mut changes = Vec::new();
            if let (Some(before), Some(after)) = (before, stored.into_iter().next()) {
                let (before, after) = (before.into_event()?, after.into_event()?);
                if failure == PushFailure::Conflict {
                    changes.push(feed::conflict(&before, &after, note, now));
                } else {
                    // Deleted at Google: Google's side of the story.
                    changes.extend(feed::event_changes(
                        Some(&before),
                        &after,
                        Origin::Google,
                        now,
                    ));
                }
            }
            // A series found deleted at Google takes its exceptions along.
            let cancelled = cancel_exceptions_of(conn, event, event.updated_at).await?;
            changes.extend(cancellations(&cancelled, Origin::Google, now));
            record_changes(conn, &changes).await
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

    async fn requeue_dead_letters(
        &self,
        event_id: LocalEventId,
        now: DateTime<Utc>,
    ) -> DomainResult<Vec<OutboxEntry>> {
        let id = event_id.to_string();
        write_tx!(self, |conn| {
            let Some(before) = <D as Dialect>::load_event_for_update(conn, &id)
                .await
                .map_err(db)?
            else {
                return Ok(Vec::new());
            };
            let before = before.into_event()?;
            if before.push_state != PushState::Failed {
                return Ok(Vec::new());
            }
            let rows = unresolved_dead_letters(conn, &id).await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let no_owner: Option<&str> = None;
            let requeued = diesel::update(ob::table.filter(ob::id.eq_any(&rows)))
                .set((
                    ob::state.eq(OutboxState::Pending.as_str()),
                    ob::attempts.eq(0),
                    ob::next_attempt_at.eq(micros(now)),
                    ob::last_error.eq(None::<String>),
                    ob::last_failure.eq(None::<String>),
                    ob::lease_owner.eq(no_owner),
                    ob::lease_until.eq(None::<DateTime<Utc>>),
                    ob::updated_at.eq(micros(now)),
                ))
                .returning(OutboxRow::as_returning())
                .get_results::<OutboxRow>(conn)
                .await
                .map_err(db)?
                .into_iter()
                .map(OutboxRow::into_entry)
                .collect::<DomainResult<Vec<_>>>()?;
            let after = diesel::update(ev::table.find(&id))
                .set(ev::push_state.eq(PushState::Pending.as_str()))
                .returning(EventRow::as_returning())
                .get_result::<EventRow>(conn)
                .await
                .map_err(db)?
                .into_event()?;
            record_changes(conn, &[feed::push_retried(&before, &after, now)]).await?;
            Ok(requeued)
        })
    }

    async fn discard_dead_letters(&self, event: &Event, note: &str) -> DomainResult<bool> {
        let id = event.id.to_string();
        write_tx!(self, |conn| {
            let Some(before) = <D as Dialect>::load_event_for_update(conn, &id)
                .await
                .map_err(db)?
            else {
                return Ok(false);
            };
            let before = before.into_event()?;
            if before.push_state != PushState::Failed {
                return Ok(false);
            }
            let rows = unresolved_dead_letters(conn, &id).await?;
            let now = Utc::now();
            diesel::update(ob::table.filter(ob::id.eq_any(&rows)))
                .set((
                    ob::state.eq(OutboxState::Done.as_str()),
                    ob::last_error.eq(note),
                    ob::updated_at.eq(micros(now)),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            let row = EventRow::new(event, None);
            let after = diesel::update(ev::table.find(&id))
                .set(&row)
                .returning(EventRow::as_returning())
                .get_result::<EventRow>(conn)
                .await
                .map_err(db)?
                .into_event()?;
            let mut changes = vec![feed::push_discarded(&before, &after, note, now)];
            // Google no longer holding a series takes its exceptions along.
            let cancelled = cancel_exceptions_of(conn, event, now).await?;
            changes.extend(cancellations(&cancelled, Origin::Api, now));
            record_changes(conn, &changes).await?;
            Ok(true)
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

    async fn wake_outbox(
        &self,
        calendar_ids: &[CalendarId],
        now: DateTime<Utc>,
    ) -> DomainResult<u64> {
        if calendar_ids.is_empty() {
            return Ok(0);
        }
        let now = micros(now);
        let ids: Vec<&str> = calendar_ids.iter().map(CalendarId::as_str).collect();
        write_tx!(self, |conn| {
            let woken = diesel::update(
                ob::table
                    .filter(ob::state.eq(OutboxState::Pending.as_str()))
                    .filter(ob::calendar_id.eq_any(&ids))
                    .filter(ob::next_attempt_at.gt(now))
                    .filter(ob::lease_until.is_null().or(ob::lease_until.le(now))),
            )
            .set(ob::next_attempt_at.eq(now))
            .execute(conn)
            .await
            .map_err(db)?;
            Ok(woken as u64)
        })
    }
}
