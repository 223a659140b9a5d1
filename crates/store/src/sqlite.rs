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

use crate::{Error, StoreOptions};

pub(crate) type Ts = diesel::sql_types::TimestamptzSqlite;
type Conn = SyncConnectionWrapper<SqliteConnection>;

/// SQLite has one writer at a time; queueing writers here is fairer and
/// cheaper than letting them spin on the busy handler.
const SERIALIZE_WRITES: bool = true;

/// Readers are cheap, and there is only ever one writer.
const MAX_CONNECTIONS: u32 = 4;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

mod schema {
    pub(crate) use super::Ts;
    include!("schema.rs");
}

async fn begin_write(conn: &mut Conn) -> QueryResult<()> {
    conn.spawn_blocking(|inner| {
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
    })
    .await
}

/// Set on every connection: the busy timeout first (the WAL switch itself
/// may need to wait for a lock), then WAL, foreign keys, and the
/// durability level WAL makes safe.
fn pragmas(busy_timeout_ms: u128) -> String {
    format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; PRAGMA journal_mode = WAL; \
         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
    )
}

include!("shared.rs");

pub(crate) type SqliteStore = DieselStore;

/// Inserts or fully replaces mirror rows. Diesel cannot batch upserts on
/// SQLite, so rows go one statement each, all on one blocking call: SQLite
/// runs them in-process in microseconds, and one hop to the blocking pool
/// per page (not per row) keeps it that way.
async fn upsert_events(conn: &mut Conn, rows: &[EventRow]) -> DomainResult<()> {
    let rows = rows.to_vec();
    conn.spawn_blocking(move |inner| {
        for row in &rows {
            let upsert = diesel::insert_into(ev::table)
                .values(event_values!(row))
                .on_conflict(ev::id)
                .do_update()
                .set(event_upsert_set!());
            diesel::RunQueryDsl::execute(upsert, inner)?;
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
        .run_pending_migrations(MIGRATIONS)
        .map_err(|error| Error::Migration(error.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}
