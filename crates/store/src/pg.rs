//! The Postgres backend: diesel-async's `AsyncPgConnection` in a bb8 pool.

use diesel::QueryResult;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Error, StoreOptions};

pub(crate) type Ts = diesel::sql_types::Timestamptz;
type Conn = AsyncPgConnection;

/// Postgres runs concurrent writers itself.
const SERIALIZE_WRITES: bool = false;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

mod schema {
    pub(crate) use super::Ts;
    include!("schema.rs");
}

async fn begin_write(conn: &mut Conn) -> QueryResult<()> {
    <Conn as AsyncConnection>::TransactionManager::begin_transaction(conn).await
}

include!("shared.rs");

pub(crate) type PgStore = DieselStore;

/// Rows per multi-row upsert: 28 parameters each stays under Postgres's
/// 65535 bind parameters.
const INSERT_CHUNK: usize = 2000;

/// Inserts or fully replaces mirror rows, a chunk per statement.
async fn upsert_events(conn: &mut Conn, rows: &[EventRow]) -> DomainResult<()> {
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
        let manager = AsyncDieselConnectionManager::<Conn>::new(url);
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
/// surrounding runtime's handle).
pub(crate) fn run_migrations(url: &str) -> Result<Vec<String>, Error> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let mut conn = <AsyncConnectionWrapper<Conn> as Connection>::establish(url)
        .map_err(|error| Error::Connect(error.to_string()))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|error| Error::Migration(error.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}
