//! calsync's storage adapter: the domain's storage ports on Diesel, for
//! Postgres (through diesel-async, pooled with bb8) or an embedded SQLite
//! file. [`connect`] picks the backend from `DATABASE_URL` and runs the
//! embedded migrations; nothing above this crate names a Diesel type.

mod error;
mod pg;
mod sqlite;
mod url;

use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ports::Store;

pub use error::Error;
pub use url::DatabaseUrl;

/// Pool and connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections in the pool (Postgres). SQLite uses at most 4: it has one
    /// writer at a time, and readers are cheap.
    pub max_connections: u32,
    /// How long to wait for a connection before failing the call.
    pub connection_timeout: Duration,
    /// SQLite: how long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connection_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects to the database named by `url` (see [`DatabaseUrl::parse`]),
/// applies pending migrations, and returns the store behind the domain's
/// ports. Call from within a Tokio runtime.
pub async fn connect(url: &DatabaseUrl, options: &StoreOptions) -> Result<Arc<dyn Store>, Error> {
    migrate(url).await?;
    Ok(match url {
        DatabaseUrl::Postgres(url) => Arc::new(pg::PgStore::connect(url, options).await?),
        DatabaseUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::connect(path, options).await?),
    })
}

/// Applies the embedded migrations that have not run yet; returns their
/// versions. Runs on a blocking thread, so any Tokio runtime flavour works.
pub async fn migrate(url: &DatabaseUrl) -> Result<Vec<String>, Error> {
    let url = url.clone();
    tokio::task::spawn_blocking(move || match &url {
        DatabaseUrl::Postgres(url) => pg::run_migrations(url),
        DatabaseUrl::Sqlite(path) => sqlite::run_migrations(path),
    })
    .await
    .map_err(|error| Error::Migration(format!("migration task failed: {error}")))?
}
