//! calsync's storage adapter: the domain's storage ports on Diesel, for
//! Postgres (through diesel-async, pooled with bb8) or an embedded SQLite
//! file. [`connect`] picks the backend from `DATABASE_URL` and runs the
//! embedded migrations; nothing above this crate names a Diesel type.

mod dialect;
mod error;
mod pg;
mod pg_tls;
mod sqlite;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
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
    /// Postgres: the `sslmode` when `DATABASE_URL` names none. Production
    /// should pass [`SslMode::VerifyFull`]; the default, `Prefer`, suits
    /// development and tests.
    pub default_sslmode: SslMode,
    /// Postgres: a PEM file of CA certificates to trust instead of the
    /// bundled webpki roots. The URL's `sslrootcert` takes precedence. With a
    /// CA, `prefer` and `require` verify the chain too (as libpq does).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connection_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            default_sslmode: SslMode::Prefer,
            tls_ca_file: None,
        }
    }
}

/// How a Postgres connection uses TLS: libpq's `sslmode` values, set by
/// `sslmode=` in the URL or [`StoreOptions::default_sslmode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP: the login and the data travel in clear.
    Disable,
    /// TLS when the server offers it; plain only when the server answers the
    /// TLS request with "no". A failed handshake is an error, never a
    /// silent downgrade. `allow` in a URL means this too.
    #[default]
    Prefer,
    /// TLS or no connection. The certificate is not verified (encrypted but
    /// not authenticated) unless a CA is given: then as `VerifyCa`.
    Require,
    /// TLS, the certificate chain verified; the host name not checked.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        Ok(match value {
            "disable" => Self::Disable,
            // libpq's allow tries plain first; preferring TLS only removes a leak.
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(Error::InvalidUrl(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                )));
            }
        })
    }
}

/// Connects to the database named by `url` (see [`DatabaseUrl::parse`]),
/// applies pending migrations, and returns the store behind the domain's
/// ports. Call from within a Tokio runtime.
pub async fn connect(url: &DatabaseUrl, options: &StoreOptions) -> Result<Arc<dyn Store>, Error> {
    migrate_with_options(url, options).await?;
    Ok(match url {
        DatabaseUrl::Postgres(url) => Arc::new(pg::PgStore::connect(url, options).await?),
        DatabaseUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::connect(path, options).await?),
    })
}

/// A new, empty Postgres schema in the database `base` names, for a run
/// that must not share rows with any other (benchmarks, the chaos battery):
/// answers `base` with its `search_path` set to the schema, and the schema.
pub async fn create_scratch_schema(
    base: &str,
    options: &StoreOptions,
) -> Result<(String, String), Error> {
    let name = format!("calsync_scratch_{}", uuid::Uuid::new_v4().simple());
    pg::execute_admin(base, options, &format!("CREATE SCHEMA {name}")).await?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok((
        format!("{base}{separator}options=-csearch_path%3D{name}"),
        name,
    ))
}

/// Drops a schema [`create_scratch_schema`] made, with everything in it.
pub async fn drop_scratch_schema(
    base: &str,
    name: &str,
    options: &StoreOptions,
) -> Result<(), Error> {
    if !name.starts_with("calsync_scratch_")
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::InvalidUrl(format!("not a scratch schema: {name}")));
    }
    pg::execute_admin(base, options, &format!("DROP SCHEMA {name} CASCADE")).await
}

/// The SQL of the health report's reads of the events, the outbox and the
/// counters, as `(what, sql)` with the backend's placeholders: for the
/// contract suite, which asks each database's planner about them. Not API.
#[doc(hidden)]
pub fn health_queries_sql(url: &DatabaseUrl) -> Vec<(&'static str, String)> {
    match url {
        DatabaseUrl::Postgres(_) => pg::health_queries_sql(),
        DatabaseUrl::Sqlite(_) => sqlite::health_queries_sql(),
    }
}

/// [`migrate_with_options`] with the default options (Postgres: `sslmode`
/// from the URL, else `prefer`).
pub async fn migrate(url: &DatabaseUrl) -> Result<Vec<String>, Error> {
    migrate_with_options(url, &StoreOptions::default()).await
}

/// Applies the embedded migrations that have not run yet; returns their
/// versions. Postgres connects with the same TLS settings as [`connect`].
/// Runs on a blocking thread, so any Tokio runtime flavour works.
pub async fn migrate_with_options(
    url: &DatabaseUrl,
    options: &StoreOptions,
) -> Result<Vec<String>, Error> {
    let url = url.clone();
    let options = options.clone();
    tokio::task::spawn_blocking(move || match &url {
        DatabaseUrl::Postgres(url) => pg::run_migrations(url, &options),
        DatabaseUrl::Sqlite(path) => sqlite::run_migrations(path),
    })
    .await
    .map_err(|error| Error::Migration(format!("migration task failed: {error}")))?
}
