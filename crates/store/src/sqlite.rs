//! The embedded SQLite backend: diesel's `SqliteConnection` behind
//! diesel-async's `SyncConnectionWrapper` (queries run on blocking threads),
//! in WAL mode so readers never wait for the writer. Writes are serialized
//! in-process and use `BEGIN IMMEDIATE`, so a transaction never fails on
//! upgrading a read lock.

use std::path::Path;

use diesel::connection::AnsiTransactionManager;
use diesel::{QueryResult, SqliteConnection};
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::dialect::Dialect;
use crate::{Error, StoreOptions};

/// The shared query code, compiled for SQLite.
#[path = "queries/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per dialect on purpose; see crate::dialect"
)]
mod queries;

pub(crate) use queries::health_queries_sql;
use queries::{Conn, DieselStore, DomainResult, EventRow, NewAttemptRow, NewChangeRow, db};

/// The SQLite dialect.
pub(crate) struct SqliteDialect;

/// The timestamp SQL type, plainly named for the schema (see `queries`).
type Ts = diesel::sql_types::TimestamptzSqlite;

/// The JSON SQL type: JSON text (diesel's `Json`, not SQLite's binary `jsonb`).
type Json = diesel::sql_types::Json;

impl diesel::deserialize::FromSql<Json, diesel::sqlite::Sqlite> for queries::StoredPayload {
    fn from_sql(
        mut value: diesel::sqlite::SqliteValue<'_, '_, '_>,
    ) -> diesel::deserialize::Result<Self> {
        Ok(Self(serde_json::from_str(value.read_text())?))
    }
}

impl diesel::serialize::ToSql<Json, diesel::sqlite::Sqlite> for queries::StoredPayload {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
    ) -> diesel::serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(diesel::serialize::IsNull::No)
    }
}

/// The dialect `queries` is compiled for.
type ThisDialect = SqliteDialect;

impl Dialect for SqliteDialect {
    type Conn = SyncConnectionWrapper<SqliteConnection>;
    type Backend = diesel::sqlite::Sqlite;
    type Ts = Ts;
    type Json = Json;
    type EventRow = EventRow;
    type NewChangeRow = NewChangeRow;
    type NewAttemptRow = NewAttemptRow;

    /// SQLite has one writer at a time; queueing writers here is fairer and
    /// cheaper than letting them spin on the busy handler.
    const SERIALIZE_WRITES: bool = true;

    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

    /// Timestamps are text here; `julianday` reads them (to about 0.1 ms).
    const MAX_SPAN_SECONDS: &'static str = "MAX(julianday(calendar_events.last_end_at) - julianday(calendar_events.start_at)) * 86400.0";

    async fn begin_write(conn: &mut Conn) -> QueryResult<()> {
        conn.spawn_blocking(|inner| {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
        })
        .await
    }

    /// Write transactions run one at a time (`SERIALIZE_WRITES` and
    /// `BEGIN IMMEDIATE`): seqs are handed out in commit order already.
    async fn lock_feed(_conn: &mut Conn) -> QueryResult<()> {
        Ok(())
    }

    /// The write transaction holds the database's write lock: no other
    /// writer can change the row before it ends.
    async fn load_event_for_update<'a>(
        conn: &'a mut Conn,
        id: &'a str,
    ) -> QueryResult<Option<EventRow>> {
        use diesel::{OptionalExtension, QueryDsl, SelectableHelper};
        use diesel_async::RunQueryDsl;
        queries::schema::calendar_events::table
            .find(id)
            .select(EventRow::as_select())
            .first(conn)
            .await
            .optional()
    }

    async fn upsert_events(conn: &mut Conn, rows: Vec<EventRow>) -> DomainResult<()> {
        upsert_events(conn, rows).await
    }

    /// diesel batches inserts on SQLite only over its own (blocking)
    /// connection, so the rows go there in one hop.
    async fn insert_changes(conn: &mut Conn, rows: Vec<NewChangeRow>) -> QueryResult<()> {
        conn.spawn_blocking(move |inner| {
            for chunk in rows.chunks(BATCH_CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(queries::schema::calendar_changes::table).values(chunk),
                    inner,
                )?;
            }
            Ok(())
        })
        .await
    }

    /// As `insert_changes`.
    async fn insert_attempts(conn: &mut Conn, rows: Vec<NewAttemptRow>) -> QueryResult<()> {
        conn.spawn_blocking(move |inner| {
            for chunk in rows.chunks(BATCH_CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(queries::schema::calendar_webhook_attempts::table)
                        .values(chunk),
                    inner,
                )?;
            }
            Ok(())
        })
        .await
    }
}

/// Rows per multi-row insert of feed changes or attempts: 10 and 8
/// parameters each stay under SQLite's 32766 bind parameters.
const BATCH_CHUNK: usize = 1000;
const _: () = assert!(BATCH_CHUNK * 10 <= 32766);

/// Readers are cheap, and there is only ever one writer.
const MAX_CONNECTIONS: u32 = 4;

/// Set on every connection: the busy timeout first (the WAL switch itself
/// may need to wait for a lock), then WAL, foreign keys, and the
/// durability level WAL makes safe.
fn pragmas(busy_timeout_ms: u128) -> String {
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
    )
}

pub(crate) type SqliteStore = DieselStore;

/// Columns a mirror row binds, one parameter each.
const EVENT_COLUMN_COUNT: usize = 37;
/// Rows per multi-row upsert: 37 parameters each stays under SQLite's
/// 32766 bind parameters.
const UPSERT_CHUNK: usize = 500;
const _: () = assert!(UPSERT_CHUNK * EVENT_COLUMN_COUNT <= 32766);

const EVENT_COLUMNS: &str = "id, calendar_id, google_event_id, ical_uid, summary, description, location, start_at, end_at, start_date, end_date, start_time_zone, end_time_zone, status, attendees, organizer, recurrence, recurring_event_id, original_start, etag, google_updated, html_link, entity_type, entity_id, push_state, sync_run_id, created_at, updated_at, push_note, push_conflict, pushed_at, event_type, kind, details, google, last_end_at, recurrence_unreadable";
/// Names in a comma-separated column list.
const fn column_count(list: &str) -> usize {
    let bytes = list.as_bytes();
    let (mut at, mut count) = (0, 1);
    while at < bytes.len() {
        if bytes[at] == b',' {
            count += 1;
        }
        at += 1;
    }
    count
}
const _: () = assert!(column_count(EVENT_COLUMNS) == EVENT_COLUMN_COUNT);
const EVENT_UPSERT_TAIL: &str = " ON CONFLICT (id) DO UPDATE SET ical_uid = excluded.ical_uid, summary = excluded.summary, description = excluded.description, location = excluded.location, start_at = excluded.start_at, end_at = excluded.end_at, start_date = excluded.start_date, end_date = excluded.end_date, start_time_zone = excluded.start_time_zone, end_time_zone = excluded.end_time_zone, status = excluded.status, attendees = excluded.attendees, organizer = excluded.organizer, recurrence = excluded.recurrence, recurring_event_id = excluded.recurring_event_id, original_start = excluded.original_start, etag = excluded.etag, google_updated = excluded.google_updated, html_link = excluded.html_link, entity_type = excluded.entity_type, entity_id = excluded.entity_id, push_state = excluded.push_state, sync_run_id = excluded.sync_run_id, updated_at = excluded.updated_at, push_note = excluded.push_note, push_conflict = excluded.push_conflict, pushed_at = excluded.pushed_at, event_type = excluded.event_type, kind = excluded.kind, details = excluded.details, google = excluded.google, last_end_at = excluded.last_end_at, recurrence_unreadable = excluded.recurrence_unreadable";

/// Inserts or fully replaces mirror rows. Diesel's query builder cannot
/// batch upserts on SQLite (nor cache them), so this sends one multi-row
/// statement per chunk, all on one blocking hop per page.
async fn upsert_events(conn: &mut Conn, rows: Vec<EventRow>) -> DomainResult<()> {
    use diesel::sql_types::{Date, Nullable, Text};
    conn.spawn_blocking(move |inner| {
        // Each row's values move into the statement's binds.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<EventRow> = rows.by_ref().take(UPSERT_CHUNK).collect();
            let row_placeholders = format!("({})", vec!["?"; EVENT_COLUMN_COUNT].join(", "));
            let placeholders = vec![row_placeholders; chunk.len()].join(", ");
            let sql = format!("INSERT INTO calendar_events ({EVENT_COLUMNS}) VALUES {placeholders}{EVENT_UPSERT_TAIL}");
            let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
            for row in chunk {
                query = query
                    .bind::<Text, _>(row.id)
                    .bind::<Text, _>(row.calendar_id)
                    .bind::<Text, _>(row.google_event_id)
                    .bind::<Nullable<Text>, _>(row.ical_uid)
                    .bind::<Nullable<Text>, _>(row.summary)
                    .bind::<Nullable<Text>, _>(row.description)
                    .bind::<Nullable<Text>, _>(row.location)
                    .bind::<Ts, _>(row.start_at)
                    .bind::<Ts, _>(row.end_at)
                    .bind::<Nullable<Date>, _>(row.start_date)
                    .bind::<Nullable<Date>, _>(row.end_date)
                    .bind::<Nullable<Text>, _>(row.start_time_zone)
                    .bind::<Nullable<Text>, _>(row.end_time_zone)
                    .bind::<Text, _>(row.status)
                    .bind::<Text, _>(row.attendees)
                    .bind::<Nullable<Text>, _>(row.organizer)
                    .bind::<Text, _>(row.recurrence)
                    .bind::<Nullable<Text>, _>(row.recurring_event_id)
                    .bind::<Nullable<Text>, _>(row.original_start)
                    .bind::<Nullable<Text>, _>(row.etag)
                    .bind::<Nullable<Ts>, _>(row.google_updated)
                    .bind::<Nullable<Text>, _>(row.html_link)
                    .bind::<Nullable<Text>, _>(row.entity_type)
                    .bind::<Nullable<Text>, _>(row.entity_id)
                    .bind::<Text, _>(row.push_state)
                    .bind::<Nullable<Text>, _>(row.sync_run_id)
                    .bind::<Ts, _>(row.created_at)
                    .bind::<Ts, _>(row.updated_at)
                    .bind::<Nullable<Text>, _>(row.push_note)
                    .bind::<diesel::sql_types::Bool, _>(row.push_conflict)
                    .bind::<Nullable<Ts>, _>(row.pushed_at)
                    .bind::<Text, _>(row.event_type)
                    .bind::<Text, _>(row.kind)
                    .bind::<Json, _>(row.details)
                    .bind::<Nullable<Json>, _>(row.google)
                    .bind::<Nullable<Ts>, _>(row.last_end_at)
                    .bind::<diesel::sql_types::Bool, _>(row.recurrence_unreadable);
            }
            diesel::RunQueryDsl::execute(query, inner)?;
        }
        Ok(())
    })
    .await
    .map_err(db)
}

impl DieselStore {
    pub(crate) async fn connect(path: &Path, options: &StoreOptions) -> Result<Self, Error> {
        let url = path.to_string_lossy().into_owned();
        let setup = pragmas(options.busy_timeout.as_millis());
        let mut config = ManagerConfig::<Conn>::default();
        // No `SELECT 1` on every check-out (the default), a blocking-thread
        // hop per store call: a file connection does not go stale, and an
        // open transaction or a broken connection is still caught.
        config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            let setup = setup.clone();
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = Conn::establish(&url).await?;
                conn.batch_execute(&setup)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
        let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(options.max_connections.clamp(1, MAX_CONNECTIONS))
            .connection_timeout(options.connection_timeout)
            .build(manager)
            .await
            .map_err(|error| Error::Connect(error.to_string()))?;
        Ok(Self::from_pool(pool))
    }
}

pub(crate) fn run_migrations(path: &Path) -> Result<Vec<String>, Error> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| {
            Error::Connect(format!("cannot create {}: {error}", parent.display()))
        })?;
    }
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|error| Error::Connect(error.to_string()))?;
    conn.batch_execute(&pragmas(5000))?;
    let applied = conn
        .run_pending_migrations(SqliteDialect::MIGRATIONS)
        .map_err(|error| Error::Migration(error.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}
