//! The Postgres backend: diesel-async's `AsyncPgConnection` in a bb8 pool.
//! What it provides the shared query code is its [`Dialect`] impl.

use diesel::QueryResult;
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::dialect::Dialect;
use crate::pg_tls::PgConnector;
use crate::{Error, StoreOptions};

/// The shared query code, compiled for Postgres.
#[path = "queries/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per dialect on purpose; see crate::dialect"
)]
mod queries;

pub(crate) use queries::health_queries_sql;
use queries::schema::calendar_events as ev;
use queries::{Conn, DieselStore, DomainResult, EventRow, NewAttemptRow, NewChangeRow, db};

/// The Postgres dialect.
pub(crate) struct PgDialect;

/// The timestamp SQL type, plainly named for the schema (see `queries`).
type Ts = diesel::sql_types::Timestamptz;

/// The JSON SQL type: `jsonb` (stores the value, normalising key order and
/// whitespace; see the migration).
type Json = diesel::sql_types::Jsonb;

/// The dialect `queries` is compiled for.
type ThisDialect = PgDialect;

/// `jsonb`'s binary form is a version byte (1) and the JSON text.
impl diesel::deserialize::FromSql<Json, diesel::pg::Pg> for queries::StoredPayload {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        match value.as_bytes().split_first() {
            Some((1, json)) => Ok(Self(serde_json::from_slice(json)?)),
            _ => Err("unsupported jsonb encoding version".into()),
        }
    }
}

impl diesel::serialize::ToSql<Json, diesel::pg::Pg> for queries::StoredPayload {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        out.write_all(&[1])?;
        serde_json::to_writer(out, &self.0)?;
        Ok(diesel::serialize::IsNull::No)
    }
}

impl Dialect for PgDialect {
    type Conn = AsyncPgConnection;
    type Backend = diesel::pg::Pg;
    type Ts = Ts;
    type Json = Json;
    type EventRow = EventRow;
    type NewChangeRow = NewChangeRow;
    type NewAttemptRow = NewAttemptRow;

    /// Postgres runs concurrent writers itself.
    const SERIALIZE_WRITES: bool = false;

    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

    const MAX_SPAN_SECONDS: &'static str =
        "EXTRACT(EPOCH FROM MAX(calendar_events.last_end_at - calendar_events.start_at))::float8";

    async fn begin_write(conn: &mut Conn) -> QueryResult<()> {
        <Conn as AsyncConnection>::TransactionManager::begin_transaction(conn).await
    }

    async fn lock_feed(conn: &mut Conn) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(FEED_LOCK_KEY)
            .execute(conn)
            .await
            .map(|_| ())
    }

    async fn load_event_for_update<'a>(
        conn: &'a mut Conn,
        id: &'a str,
    ) -> QueryResult<Option<EventRow>> {
        ev::table
            .find(id)
            .select(EventRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()
    }

    async fn upsert_events(conn: &mut Conn, rows: Vec<EventRow>) -> DomainResult<()> {
        upsert_events(conn, rows).await
    }

    async fn insert_changes(conn: &mut Conn, rows: Vec<NewChangeRow>) -> QueryResult<()> {
        for chunk in rows.chunks(BATCH_CHUNK) {
            diesel::insert_into(queries::schema::calendar_changes::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    async fn insert_attempts(conn: &mut Conn, rows: Vec<NewAttemptRow>) -> QueryResult<()> {
        for chunk in rows.chunks(BATCH_CHUNK) {
            diesel::insert_into(queries::schema::calendar_webhook_attempts::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

/// Rows per multi-row insert of feed changes or attempts (10 and 8
/// parameters each: far under Postgres's 65535 bind parameters).
const BATCH_CHUNK: usize = 1000;

/// The advisory lock that orders the change feed's writers (`lock_feed`):
/// one constant key, "calsyncf" in ASCII, unlikely to meet another
/// application's key in a shared database.
const FEED_LOCK_KEY: i64 = i64::from_be_bytes(*b"calsyncf");

pub(crate) type PgStore = DieselStore;

/// The columns an upsert of a mirror row replaces (all but the key and
/// `created_at`), for the batch upsert below.
macro_rules! event_upsert_set {
    () => {
        (
            ev::ical_uid.eq(excluded(ev::ical_uid)),
            ev::summary.eq(excluded(ev::summary)),
            ev::description.eq(excluded(ev::description)),
            ev::location.eq(excluded(ev::location)),
            ev::start_at.eq(excluded(ev::start_at)),
            ev::end_at.eq(excluded(ev::end_at)),
            ev::start_date.eq(excluded(ev::start_date)),
            ev::end_date.eq(excluded(ev::end_date)),
            ev::start_time_zone.eq(excluded(ev::start_time_zone)),
            ev::end_time_zone.eq(excluded(ev::end_time_zone)),
            ev::status.eq(excluded(ev::status)),
            ev::attendees.eq(excluded(ev::attendees)),
            ev::organizer.eq(excluded(ev::organizer)),
            ev::recurrence.eq(excluded(ev::recurrence)),
            ev::recurring_event_id.eq(excluded(ev::recurring_event_id)),
            ev::original_start.eq(excluded(ev::original_start)),
            ev::etag.eq(excluded(ev::etag)),
            ev::google_updated.eq(excluded(ev::google_updated)),
            ev::html_link.eq(excluded(ev::html_link)),
            ev::entity_type.eq(excluded(ev::entity_type)),
            ev::entity_id.eq(excluded(ev::entity_id)),
            ev::push_state.eq(excluded(ev::push_state)),
            ev::sync_run_id.eq(excluded(ev::sync_run_id)),
            ev::updated_at.eq(excluded(ev::updated_at)),
            ev::push_note.eq(excluded(ev::push_note)),
            ev::push_conflict.eq(excluded(ev::push_conflict)),
            ev::pushed_at.eq(excluded(ev::pushed_at)),
            ev::event_type.eq(excluded(ev::event_type)),
            ev::kind.eq(excluded(ev::kind)),
            ev::details.eq(excluded(ev::details)),
            ev::google.eq(excluded(ev::google)),
            ev::last_end_at.eq(excluded(ev::last_end_at)),
            ev::recurrence_unreadable.eq(excluded(ev::recurrence_unreadable)),
        )
    };
}

/// A mirror row as column assignments with explicit NULLs (the derived
/// `Insertable` turns `None` into `DEFAULT`, which rules out multi-row
/// upserts).
macro_rules! event_values {
    ($row:expr) => {
        (
            ev::id.eq(&$row.id),
            ev::calendar_id.eq(&$row.calendar_id),
            ev::google_event_id.eq(&$row.google_event_id),
            ev::ical_uid.eq(&$row.ical_uid),
            ev::summary.eq(&$row.summary),
            ev::description.eq(&$row.description),
            ev::location.eq(&$row.location),
            ev::start_at.eq($row.start_at),
            ev::end_at.eq($row.end_at),
            ev::start_date.eq($row.start_date),
            ev::end_date.eq($row.end_date),
            ev::start_time_zone.eq(&$row.start_time_zone),
            ev::end_time_zone.eq(&$row.end_time_zone),
            ev::status.eq(&$row.status),
            ev::attendees.eq(&$row.attendees),
            ev::organizer.eq(&$row.organizer),
            ev::recurrence.eq(&$row.recurrence),
            ev::recurring_event_id.eq(&$row.recurring_event_id),
            ev::original_start.eq(&$row.original_start),
            ev::etag.eq(&$row.etag),
            ev::google_updated.eq($row.google_updated),
            ev::html_link.eq(&$row.html_link),
            ev::entity_type.eq(&$row.entity_type),
            ev::entity_id.eq(&$row.entity_id),
            ev::push_state.eq(&$row.push_state),
            ev::sync_run_id.eq(&$row.sync_run_id),
            ev::created_at.eq($row.created_at),
            ev::updated_at.eq($row.updated_at),
            ev::push_note.eq(&$row.push_note),
            ev::push_conflict.eq($row.push_conflict),
            ev::pushed_at.eq($row.pushed_at),
            ev::event_type.eq(&$row.event_type),
            ev::kind.eq(&$row.kind),
            ev::details.eq(&$row.details),
            ev::google.eq(&$row.google),
            ev::last_end_at.eq($row.last_end_at),
            ev::recurrence_unreadable.eq($row.recurrence_unreadable),
        )
    };
}

/// Rows per multi-row upsert: 37 parameters each stays under Postgres's
/// 65535 bind parameters.
const INSERT_CHUNK: usize = 1500;
const _: () = assert!(INSERT_CHUNK * 37 <= 65535);

/// Inserts or fully replaces mirror rows, a chunk per statement.
async fn upsert_events(conn: &mut Conn, rows: Vec<EventRow>) -> DomainResult<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let values: Vec<_> = chunk.iter().map(|row| event_values!(row)).collect();
        diesel::insert_into(ev::table)
            .values(values)
            .on_conflict(ev::id)
            .do_update()
            .set(event_upsert_set!())
            .execute(conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

impl DieselStore {
    pub(crate) async fn connect(url: &str, options: &StoreOptions) -> Result<Self, Error> {
        let connector = PgConnector::new(url, options)?;
        // The URL is unused: `custom_setup` connects with the parsed settings.
        let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(
            String::new(),
            connector.manager_config(),
        );
        let pool = Pool::builder()
            .max_size(options.max_connections.max(1))
            .connection_timeout(options.connection_timeout)
            .build(manager)
            .await
            .map_err(|error| Error::Connect(error.to_string()))?;
        Ok(Self::from_pool(pool))
    }
}

/// Runs pending migrations on a blocking thread (the wrapper blocks on the
/// surrounding runtime's handle), connected with the pool's TLS settings.
pub(crate) fn run_migrations(url: &str, options: &StoreOptions) -> Result<Vec<String>, Error> {
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let connector = PgConnector::new(url, options)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|error| Error::Migration(format!("no Tokio runtime to connect on: {error}")))?;
    let conn = runtime
        .block_on(connector.establish())
        .map_err(|error| Error::Connect(error.to_string()))?;
    let mut conn = AsyncConnectionWrapper::<Conn>::from(conn);
    let applied = conn
        .run_pending_migrations(PgDialect::MIGRATIONS)
        .map_err(|error| Error::Migration(error.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Runs one administrative statement (schema set-up) over a connection made
/// like the pool's.
pub(crate) async fn execute_admin(
    url: &str,
    options: &StoreOptions,
    sql: &str,
) -> Result<(), Error> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = PgConnector::new(url, options)?
        .establish()
        .await
        .map_err(|error| Error::Connect(error.to_string()))?;
    conn.batch_execute(sql)
        .await
        .map_err(|error| Error::Connect(error.to_string()))
}
