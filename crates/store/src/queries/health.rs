//! Readiness (the newest migration is applied) and the health report's
//! aggregates.

use std::collections::HashMap;

use async_trait::async_trait;
use calsync_domain::ProviderErrorKind;
use calsync_domain::channel::ChannelStatus;
use calsync_domain::event::{EventStatus, PushState};
use calsync_domain::health::{CalendarHealth, HealthStats, count_unreadable_series};
use calsync_domain::ids::CalendarId;
use calsync_domain::outbox::OutboxState;
use calsync_domain::ports::HealthStore;
use calsync_domain::sync::SyncState;
use chrono::{DateTime, Utc};
use diesel::query_dsl::methods::LimitDsl;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper, TextExpressionMethods,
};
use diesel_async::RunQueryDsl;
use diesel_async::methods::LoadQuery;

use super::rows::SyncStateRow;
use super::schema::{
    calendar_event_counts as ec, calendar_events as ev, calendar_outbox as ob,
    calendar_sync_states as ss, calendar_watch_channels as wc,
};
use super::{Conn, D, DieselStore, DomainResult, db, micros};
use crate::Error;
use crate::dialect::Dialect;

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The newest migration embedded in this build, as Diesel records it.
fn latest_migration() -> DomainResult<String> {
    use diesel::migration::MigrationSource;
    let migrations =
        MigrationSource::<<D as Dialect>::Backend>::migrations(&<D as Dialect>::MIGRATIONS)
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
        let live_channels = || {
            wc::table
                .filter(wc::status.eq(active))
                .filter(wc::expiration.gt(now))
        };
        let active_channels = count_of(conn, live_channels().count()).await?;
        let expiring = count_of(
            conn,
            live_channels()
                .filter(wc::expiration.lt(micros(expiring_before)))
                .count(),
        )
        .await?;
        let lapsed = count_of(
            conn,
            wc::table
                .filter(wc::status.eq(active))
                .filter(wc::expiration.le(now))
                .count(),
        )
        .await?;
        // ORDER BY + LIMIT 1 rather than MIN(): it uses the same indexes and
        // works for SQLite's text timestamps, which Diesel cannot aggregate.
        let next_expiry = first_at(
            conn,
            live_channels()
                .order(wc::expiration.asc())
                .select(wc::expiration),
        )
        .await?;
        let per_calendar: Vec<(String, i64)> = live_channels()
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
        let live_starts = || ev::table.filter(ev::status.ne(live)).select(ev::start_at);
        let oldest = first_at(conn, live_starts().order(ev::start_at.asc())).await?;
        let newest = first_at(conn, live_starts().order(ev::start_at.desc())).await?;
        let outbox_pending =
            count_of(conn, ob::table.filter(ob::state.eq(pending)).count()).await?;
        let oldest_pending = first_at(
            conn,
            ob::table
                .filter(ob::state.eq(pending))
                .order(ob::created_at.asc())
                .select(ob::created_at),
        )
        .await?;
        let dead_letters = count_of(
            conn,
            ob::table
                .filter(ob::state.eq(OutboxState::DeadLetter.as_str()))
                .count(),
        )
        .await?;
        // The domain writes a provider error as "... (quota_exhausted): ...".
        let quota_marker = format!("%({})%", ProviderErrorKind::QuotaExhausted);
        let quota_waiting = count_of(
            conn,
            ob::table
                .filter(ob::state.eq(pending))
                .filter(ob::last_error.like(quota_marker))
                .count(),
        )
        .await?;
        let push_failed = count_of(
            conn,
            ev::table
                .filter(ev::push_state.eq(PushState::Failed.as_str()))
                .count(),
        )
        .await?;
        // The bare column, not `= $1`: only a predicate spelled as the
        // partial index's (`WHERE push_conflict`) lets the planners use it.
        let push_conflicts = count_of(conn, ev::table.filter(ev::push_conflict).count()).await?;
        // Live series whose recurrence cannot be expanded, per calendar: the
        // flag is set on write (no rule is parsed here) and the bare column
        // matches its partial index's predicate, which holds calendar_id and
        // status, so this reads that small index (and, for visibility, only
        // its rows): no scan of the events, however many there are.
        let unreadable: Vec<(String, i64)> = ev::table
            .filter(ev::recurrence_unreadable)
            .filter(ev::status.ne(live))
            .group_by(ev::calendar_id)
            .select((ev::calendar_id, count_star()))
            .load(conn)
            .await
            .map_err(db)?;
        let unreadable = unreadable
            .into_iter()
            .map(|(calendar_id, n)| Ok((CalendarId::new(calendar_id)?, count(n))))
            .collect::<DomainResult<Vec<_>>>()?;
        let mut calendars: Vec<CalendarHealth> = states
            .iter()
            .map(|s| {
                let channels = per_calendar
                    .get(s.calendar_id.as_str())
                    .copied()
                    .unwrap_or(0);
                CalendarHealth::new(s, count(channels))
            })
            .collect();
        count_unreadable_series(&mut calendars, unreadable);
        Ok(HealthStats {
            active_channels,
            channels_expiring_soon: expiring,
            channels_lapsed: lapsed,
            next_channel_expiry: next_expiry,
            last_sync_at: states.iter().filter_map(SyncState::last_sync_at).max(),
            calendars,
            active_events: count(active_events),
            oldest_event_start: oldest,
            newest_event_start: newest,
            outbox_pending,
            oldest_pending_outbox_at: oldest_pending,
            outbox_dead_letters: dead_letters,
            outbox_quota_waiting: quota_waiting,
            events_push_failed: push_failed,
            events_push_conflicts: push_conflicts,
        })
    }
}

/// Runs a `COUNT(*)` query. Not an `async fn`: its future's `Send` is then
/// proven here, for every `Q`, rather than in `health_stats`, where the
/// compiler cannot (its lifetimes are erased there: "`Send` is not general
/// enough").
fn count_of<'c, 'q, Q>(
    conn: &'c mut Conn,
    query: Q,
) -> impl Future<Output = DomainResult<u64>> + Send + 'c
where
    Q: LoadQuery<'q, Conn, i64> + Send + 'q,
    'q: 'c,
{
    let counted = query.get_result::<i64>(conn);
    async move { counted.await.map(count).map_err(db) }
}

/// The first timestamp a sorted query yields, if any (a `Send` future like
/// [`count_of`]).
fn first_at<'c, 'q, Q>(
    conn: &'c mut Conn,
    query: Q,
) -> impl Future<Output = DomainResult<Option<DateTime<Utc>>>> + Send + 'c
where
    Q: LimitDsl + Send + 'q,
    diesel::dsl::Limit<Q>: LoadQuery<'q, Conn, DateTime<Utc>> + Send + 'q,
    'q: 'c,
{
    let first = query.first::<DateTime<Utc>>(conn);
    async move { first.await.optional().map_err(db) }
}
