//! Each calendar's sync state: its token, its dirty marks, the lease that
//! keeps one worker syncing it at a time, and its error record.

use async_trait::async_trait;
use calsync_domain::Error as DomainError;
use calsync_domain::feed::{self, ChangeType};
use calsync_domain::ids::CalendarId;
use calsync_domain::ports::SyncStateStore;
use calsync_domain::sync::{SyncLease, SyncOutcome, SyncState};
use chrono::{DateTime, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, OptionalExtension,
    QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;

use super::feed::record_changes;
use super::rows::SyncStateRow;
use super::schema::calendar_sync_states as ss;
use super::{Conn, DieselStore, DomainResult, db, micros};

pub(super) async fn ensure_sync_state(
    conn: &mut Conn,
    calendar_id: &CalendarId,
) -> DomainResult<()> {
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
        .returning(ss::swept)
        .get_results::<bool>(conn)
        .await
        .map_err(db)?;
    let Some(swept) = taken.into_iter().next() else {
        return Ok(None);
    };
    let state = load_sync_state(conn, calendar_id)
        .await?
        .ok_or(DomainError::NotFound { what: "sync state" })?;
    Ok(Some(SyncLease {
        calendar_id: state.calendar_id,
        owner: owner.to_owned(),
        until: micros(until),
        seen_seq: state.dirty_seq,
        full_sync_requested: state.full_sync_requested,
        swept,
    }))
}

/// Clears the calendar's read-only mark, if it has one, in the caller's
/// transaction; whether there was one.
pub(super) async fn clear_read_only_in(
    conn: &mut Conn,
    calendar_id: &CalendarId,
) -> DomainResult<bool> {
    let cleared = diesel::update(ss::table.find(calendar_id.as_str()))
        .filter(ss::read_only_since.is_not_null())
        .set((
            ss::read_only_since.eq(None::<DateTime<Utc>>),
            ss::read_only_reason.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(cleared > 0)
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
                    // Not the sweep's mark any more: leased first.
                    ss::swept.eq(false),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn mark_swept(&self, calendar_ids: &[CalendarId]) -> DomainResult<u64> {
        if calendar_ids.is_empty() {
            return Ok(0);
        }
        write_tx!(self, |conn| {
            let mut marked = 0;
            for chunk in calendar_ids.chunks(500) {
                let ids: Vec<&str> = chunk.iter().map(CalendarId::as_str).collect();
                // Only clean calendars: a dirty one keeps its mark (and
                // its priority).
                marked += diesel::update(ss::table)
                    .filter(ss::calendar_id.eq_any(&ids))
                    .filter(ss::dirty_seq.le(ss::clean_seq))
                    .filter(ss::full_sync_requested.eq(false))
                    .set((ss::dirty_seq.eq(ss::dirty_seq + 1i64), ss::swept.eq(true)))
                    .execute(conn)
                    .await
                    .map_err(db)?;
            }
            Ok(marked as u64)
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
                // The sweep's marks after every other (false sorts first).
                .order((ss::swept.asc(), ss::lease_until.asc()))
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

    async fn next_lease_at(&self, now: DateTime<Utc>) -> DomainResult<Option<DateTime<Utc>>> {
        let mut conn = self.conn().await?;
        ss::table
            .filter(
                ss::dirty_seq
                    .gt(ss::clean_seq)
                    .or(ss::full_sync_requested.eq(true)),
            )
            .filter(ss::reconnect_required.eq(false))
            .filter(ss::lease_until.gt(micros(now)))
            .order(ss::lease_until.asc())
            .select(ss::lease_until)
            .first::<Option<DateTime<Utc>>>(&mut conn)
            .await
            .optional()
            .map(Option::flatten)
            .map_err(db)
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
            let mut changes = Vec::new();
            match outcome {
                SyncOutcome::Succeeded { full, rest_until } => {
                    // A mark committed after `state` was read goes unseen
                    // here: its follow-up starts at once (a rest missed,
                    // never a sync).
                    let marked_since = state.dirty_seq > lease.seen_seq;
                    let rest_until = rest_until.filter(|_| marked_since).map(micros);
                    target
                        .set((
                            ss::clean_seq.eq(state.clean_seq.max(lease.seen_seq)),
                            ss::full_sync_requested.eq(state.full_sync_requested && !full),
                            ss::last_status.eq("ok"),
                            ss::error_count.eq(0),
                            ss::lease_owner.eq(no_owner),
                            ss::lease_seen_seq.eq(None::<i64>),
                            ss::lease_until.eq(rest_until),
                        ))
                        .execute(conn)
                        .await
                }
                SyncOutcome::Failed {
                    error,
                    reconnect_required,
                } => {
                    // A revoked grant or deleted calendar: reconnecting is
                    // required. Conditional, so only the write that turns it
                    // on records the change (as `mark_reconnect_required`).
                    if *reconnect_required {
                        let turned_on = diesel::update(ss::table.find(lease.calendar_id.as_str()))
                            .filter(ss::lease_owner.eq(&lease.owner))
                            .filter(ss::reconnect_required.eq(false))
                            .set(ss::reconnect_required.eq(true))
                            .execute(conn)
                            .await
                            .map_err(db)?
                            > 0;
                        if turned_on {
                            changes.push(feed::calendar_change(
                                ChangeType::CalendarReconnectRequired,
                                &lease.calendar_id,
                                Some(error),
                                now,
                            ));
                        }
                    }
                    let errors = state.error_count.saturating_add(1);
                    let rest = calsync_domain::later(now, SyncState::retry_delay(errors));
                    target
                        .set((
                            ss::last_status.eq("error"),
                            ss::last_error.eq(error.as_str()),
                            ss::last_error_at.eq(now),
                            ss::error_count.eq(i32::try_from(errors).unwrap_or(i32::MAX)),
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
            record_changes(conn, &changes).await
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
            // Conditional, so of concurrent marks only the one that turned
            // it on records the change.
            let turned_on = diesel::update(ss::table.find(calendar_id.as_str()))
                .filter(ss::reconnect_required.eq(false))
                .set(ss::reconnect_required.eq(true))
                .execute(conn)
                .await
                .map_err(db)?
                > 0;
            diesel::update(ss::table.find(calendar_id.as_str()))
                .set((
                    ss::last_status.eq("error"),
                    ss::last_error.eq(error),
                    ss::last_error_at.eq(micros(now)),
                    ss::error_count.eq(ss::error_count + 1),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if turned_on {
                let change = feed::calendar_change(
                    ChangeType::CalendarReconnectRequired,
                    calendar_id,
                    Some(error),
                    now,
                );
                record_changes(conn, &[change]).await?;
            }
            Ok(())
        })
    }

    async fn mark_read_only(
        &self,
        calendar_id: &CalendarId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            ensure_sync_state(conn, calendar_id).await?;
            diesel::update(ss::table.find(calendar_id.as_str()))
                .set(ss::read_only_reason.eq(reason))
                .execute(conn)
                .await
                .map_err(db)?;
            // The first refusal's time stays: `since` is when writing stopped.
            diesel::update(ss::table.find(calendar_id.as_str()))
                .filter(ss::read_only_since.is_null())
                .set(ss::read_only_since.eq(micros(now)))
                .execute(conn)
                .await
                .map_err(db)?;
            Ok(())
        })
    }

    async fn clear_read_only(&self, calendar_id: &CalendarId) -> DomainResult<bool> {
        write_tx!(self, |conn| { clear_read_only_in(conn, calendar_id).await })
    }

    async fn clear_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        full_sync: bool,
    ) -> DomainResult<()> {
        write_tx!(self, |conn| {
            ensure_sync_state(conn, calendar_id).await?;
            // Conditional, as in `mark_reconnect_required`.
            let turned_off = diesel::update(ss::table.find(calendar_id.as_str()))
                .filter(ss::reconnect_required.eq(true))
                .set(ss::reconnect_required.eq(false))
                .execute(conn)
                .await
                .map_err(db)?
                > 0;
            diesel::update(ss::table.find(calendar_id.as_str()))
                .set((
                    ss::error_count.eq(0),
                    ss::full_sync_requested.eq(ss::full_sync_requested.or(
                        diesel::IntoSql::into_sql::<diesel::sql_types::Bool>(full_sync),
                    )),
                ))
                .execute(conn)
                .await
                .map_err(db)?;
            if turned_off {
                // The port gives no time: the store's clock.
                let change = feed::calendar_change(
                    ChangeType::CalendarRecovered,
                    calendar_id,
                    None,
                    Utc::now(),
                );
                record_changes(conn, &[change]).await?;
            }
            Ok(())
        })
    }
}
