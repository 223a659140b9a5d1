//! Readiness (the newest migration is applied) and the health report's
//! aggregates.

use std::collections::HashMap;

use async_trait::async_trait;
use calsync_domain::ProviderErrorKind;
use calsync_domain::channel::ChannelStatus;
use calsync_domain::event::EventStatus;
use calsync_domain::health::{CalendarHealth, HealthStats, count_unreadable_series};
use calsync_domain::ids::CalendarId;
use calsync_domain::outbox::OutboxState;
use calsync_domain::ports::HealthStore;
use calsync_domain::sync::SyncState;
use chrono::{DateTime, Utc};
use diesel::dsl::{self, sql};
use diesel::expression::SqlLiteral;
use diesel::sql_types::{BigInt, Bool};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;

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
        let mut conn = self.conn().await?;
        let conn = &mut *conn;
        let (now, expiring_before) = (micros(now), micros(expiring_before));
        // Every channel still marked active, in one read (one row per
        // watched calendar, as the per-calendar list needs anyway): the
        // counts, the next expiry and the per-calendar figures are taken
        // from it here rather than by a query each.
        let marked_active: Vec<(String, DateTime<Utc>)> = wc::table
            .filter(wc::status.eq(ChannelStatus::Active.as_str()))
            .select((wc::calendar_id, wc::expiration))
            .load(conn)
            .await
            .map_err(db)?;
        let (mut active_channels, mut expiring, mut lapsed) = (0, 0, 0);
        let mut next_expiry: Option<DateTime<Utc>> = None;
        let mut per_calendar: HashMap<String, u64> = HashMap::new();
        for (calendar_id, expiration) in marked_active {
            if expiration <= now {
                lapsed += 1;
                continue;
            }
            active_channels += 1;
            if expiration < expiring_before {
                expiring += 1;
            }
            next_expiry = Some(next_expiry.map_or(expiration, |next| next.min(expiration)));
            *per_calendar.entry(calendar_id).or_default() += 1;
        }
        let states: Vec<SyncState> = ss::table
            .select(SyncStateRow::as_select())
            .load::<SyncStateRow>(conn)
            .await
            .map_err(db)?
            .into_iter()
            .map(SyncStateRow::into_state)
            .collect::<DomainResult<_>>()?;
        // Every per-event figure is a counter kept by triggers in the
        // writing transaction (migrations 4 and 15): one row per calendar,
        // however many events, and no aggregate over calendar_events here.
        let counters: Vec<(String, i64, i64, i64, i64)> =
            counters().load(conn).await.map_err(db)?;
        let (mut active_events, mut push_failed, mut push_conflicts) = (0, 0, 0);
        let mut unreadable = Vec::new();
        for (calendar_id, active, failed, conflicts, unreadable_series) in counters {
            active_events += count(active);
            push_failed += count(failed);
            push_conflicts += count(conflicts);
            if unreadable_series > 0 {
                unreadable.push((CalendarId::new(calendar_id)?, count(unreadable_series)));
            }
        }
        let Scalars {
            oldest,
            newest,
            outbox_pending,
            quota_waiting,
            oldest_pending,
            dead_letters,
        } = scalars(conn).await?;
        let mut calendars: Vec<CalendarHealth> = states
            .iter()
            .map(|s| {
                let channels = per_calendar
                    .get(s.calendar_id.as_str())
                    .copied()
                    .unwrap_or(0);
                CalendarHealth::new(s, channels)
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
            active_events,
            oldest_event_start: oldest,
            newest_event_start: newest,
            outbox_pending: count(outbox_pending),
            oldest_pending_outbox_at: oldest_pending,
            outbox_dead_letters: count(dead_letters),
            outbox_quota_waiting: count(quota_waiting),
            events_push_failed: push_failed,
            events_push_conflicts: push_conflicts,
        })
    }
}

/// Literal predicates, spelled as the partial indexes' (migrations 1 and
/// 4): a bound `status <> $1` cannot be matched to `WHERE status <>
/// 'cancelled'` by Postgres in a generic plan (nor, in general, by SQLite's
/// planner), and the read would fall back to walking every row. Only a
/// literal can be proven to imply an index's predicate.
fn live() -> Predicate {
    sql(&format!("status <> '{}'", EventStatus::Cancelled.as_str()))
}

fn in_state(state: OutboxState) -> Predicate {
    sql(&format!("state = '{}'", state.as_str()))
}

type Predicate = SqlLiteral<Bool>;
type LiveStarts = dsl::Select<dsl::Filter<ev::table, Predicate>, ev::start_at>;
type Outbox = dsl::Filter<ob::table, Predicate>;

fn live_starts() -> LiveStarts {
    ev::table.filter(live()).select(ev::start_at)
}

/// ORDER BY + LIMIT 1 rather than MIN(): it reads one entry of the live
/// rows' start index (calendar_events_active_start) and works for SQLite's text timestamps, which Diesel
/// cannot aggregate.
type LiveStartsOrdered<O> = dsl::Order<LiveStarts, O>;

fn oldest_live_start() -> LiveStartsOrdered<dsl::Asc<ev::start_at>> {
    live_starts().order(ev::start_at.asc())
}

fn newest_live_start() -> LiveStartsOrdered<dsl::Desc<ev::start_at>> {
    live_starts().order(ev::start_at.desc())
}

/// Pending outbox rows: live work only (done rows stay in the table), read
/// through the pending rows' partial indexes.
fn outbox_pending() -> Outbox {
    ob::table.filter(in_state(OutboxState::Pending))
}

type OldestPending = dsl::Select<dsl::Order<Outbox, dsl::Asc<ob::created_at>>, ob::created_at>;

fn oldest_pending() -> OldestPending {
    outbox_pending()
        .order(ob::created_at.asc())
        .select(ob::created_at)
}

fn outbox_dead_letters() -> Outbox {
    ob::table.filter(in_state(OutboxState::DeadLetter))
}

/// How many outbox rows are pending.
fn outbox_pending_count() -> dsl::Select<Outbox, dsl::CountStar> {
    outbox_pending().select(dsl::count_star())
}

/// How many pending outbox rows wait out Google's quota. The domain writes
/// a provider error as "... (quota_exhausted): ..."; the marker is a fixed
/// word, so it is spelled in the SQL rather than bound.
fn outbox_quota_waiting() -> dsl::Select<Outbox, SqlLiteral<BigInt>> {
    let quota_waiting = format!(
        "COALESCE(SUM(CASE WHEN last_error LIKE '%({})%' THEN 1 ELSE 0 END), 0)",
        ProviderErrorKind::QuotaExhausted
    );
    outbox_pending().select(sql::<BigInt>(&quota_waiting))
}

/// The report's single-value figures: each a scalar subquery of one
/// statement, so one round trip rather than one each (on Postgres each
/// round trip was a fifth of the report's time). Each subquery is planned
/// as it would be alone (see `health_plans_read_no_table`).
struct Scalars {
    oldest: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
    outbox_pending: i64,
    quota_waiting: i64,
    oldest_pending: Option<DateTime<Utc>>,
    dead_letters: i64,
}

type ScalarsQuery = dsl::select<(
    dsl::SingleValue<LiveStartsOrdered<dsl::Asc<ev::start_at>>>,
    dsl::SingleValue<LiveStartsOrdered<dsl::Desc<ev::start_at>>>,
    dsl::SingleValue<dsl::Select<Outbox, dsl::CountStar>>,
    dsl::SingleValue<dsl::Select<Outbox, SqlLiteral<BigInt>>>,
    dsl::SingleValue<OldestPending>,
    dsl::SingleValue<dsl::Select<Outbox, dsl::CountStar>>,
)>;

fn scalars_query() -> ScalarsQuery {
    diesel::select((
        oldest_live_start().single_value(),
        newest_live_start().single_value(),
        outbox_pending_count().single_value(),
        outbox_quota_waiting().single_value(),
        oldest_pending().single_value(),
        outbox_dead_letters()
            .select(dsl::count_star())
            .single_value(),
    ))
}

/// Reads [`Scalars`]. Not an `async fn`: its future's `Send` is then
/// proven here rather than in `health_stats`, where the compiler cannot
/// (its lifetimes are erased there: "`Send` is not general enough").
fn scalars<'c>(conn: &'c mut Conn) -> impl Future<Output = DomainResult<Scalars>> + Send + 'c {
    type Row = (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<i64>,
    );
    let row = scalars_query().get_result::<Row>(conn);
    async move {
        let (oldest, newest, outbox_pending, quota_waiting, oldest_pending, dead_letters) =
            row.await.map_err(db)?;
        Ok(Scalars {
            oldest,
            newest,
            outbox_pending: outbox_pending.unwrap_or(0),
            quota_waiting: quota_waiting.unwrap_or(0),
            oldest_pending,
            dead_letters: dead_letters.unwrap_or(0),
        })
    }
}

/// The SQL of each of `health_stats`' reads of calendar_events,
/// calendar_outbox and the counters, built by the same functions, with the
/// dialect's placeholders for bound values: the contract suite asks the
/// planner about exactly these (see `health_plans_read_no_table`).
pub(crate) fn health_queries_sql() -> Vec<(&'static str, String)> {
    fn sql_of<Q>(query: &Q) -> String
    where
        Q: diesel::query_builder::QueryFragment<<D as Dialect>::Backend>,
    {
        let text = diesel::debug_query::<<D as Dialect>::Backend, _>(query).to_string();
        match text.split_once(" -- binds: ") {
            Some((sql, _)) => sql.to_owned(),
            None => text,
        }
    }
    vec![
        ("event counters", sql_of(&counters())),
        (
            "oldest event start",
            sql_of(&QueryDsl::limit(oldest_live_start(), 1)),
        ),
        (
            "newest event start",
            sql_of(&QueryDsl::limit(newest_live_start(), 1)),
        ),
        ("outbox pending", sql_of(&outbox_pending_count())),
        ("outbox quota waiting", sql_of(&outbox_quota_waiting())),
        (
            "oldest pending",
            sql_of(&QueryDsl::limit(oldest_pending(), 1)),
        ),
        (
            "outbox dead letters",
            sql_of(&outbox_dead_letters().count()),
        ),
        // What `health_stats` runs: all of the above but the counters, as
        // scalar subqueries of one statement.
        ("single-value figures", sql_of(&scalars_query())),
    ]
}

type Counters = dsl::Select<
    ec::table,
    (
        ec::calendar_id,
        ec::active,
        ec::push_failed,
        ec::push_conflicts,
        ec::unreadable_series,
    ),
>;

/// Each calendar's counters, one row per calendar.
fn counters() -> Counters {
    ec::table.select((
        ec::calendar_id,
        ec::active,
        ec::push_failed,
        ec::push_conflicts,
        ec::unreadable_series,
    ))
}
