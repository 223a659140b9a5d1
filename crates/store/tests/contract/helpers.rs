//! Test databases: a fresh SQLite file or a fresh Postgres schema per test,
//! or a fresh `MemoryStore`.

use std::path::PathBuf;
use std::sync::Arc;

use calsync_domain::ports::Store;
use calsync_store::{DatabaseUrl, StoreOptions};
use diesel::connection::SimpleConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub enum Backend {
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
    },
    Postgres {
        base: String,
        schema: String,
        url: String,
    },
}

pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("calsync-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Postgres server the tests use: `CALSYNC_TEST_DATABASE_URL`, or the
/// local one CI starts.
pub fn pg_base_url() -> String {
    std::env::var("CALSYNC_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

fn with_search_path(base: &str, schema: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

/// A fresh in-memory store (the domain's fake), seen through the port.
pub fn memory_store() -> Arc<dyn Store> {
    calsync_domain::testing::MemoryStore::new()
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("calsync.db");
        let url = DatabaseUrl::parse(Some(&format!("sqlite://{}", path.display()))).unwrap();
        let store = calsync_store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        Self {
            store,
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    /// A store in a new schema of the test Postgres. Without a reachable
    /// server: `None` with a loud notice, or a panic when `CI` is set (CI
    /// must never skip these).
    pub async fn postgres() -> Option<Self> {
        let base = pg_base_url();
        let mut admin = match AsyncPgConnection::establish(&base).await {
            Ok(conn) => conn,
            Err(error) => {
                if std::env::var_os("CI").is_some() {
                    panic!("Postgres at {base} is required in CI but unreachable: {error}");
                }
                eprintln!(
                    "SKIPPED: Postgres contract test: no server at {base} ({error}); set CALSYNC_TEST_DATABASE_URL"
                );
                return None;
            }
        };
        let schema = format!("calsync_t_{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let url = with_search_path(&base, &schema);
        let store = calsync_store::connect(
            &DatabaseUrl::parse(Some(&url)).unwrap(),
            &StoreOptions::default(),
        )
        .await
        .unwrap();
        Some(Self {
            store,
            backend: Backend::Postgres { base, schema, url },
        })
    }

    /// Runs raw SQL against the test database (to set up faults).
    pub async fn exec(&self, sqlite_sql: &str, postgres_sql: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                use diesel::Connection;
                let mut conn =
                    diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
                conn.batch_execute(sqlite_sql).unwrap();
            }
            Backend::Postgres { url, .. } => {
                let mut conn = AsyncPgConnection::establish(url).await.unwrap();
                conn.batch_execute(postgres_sql).await.unwrap();
            }
        }
    }

    pub async fn drop_schema(self) {
        if let Backend::Postgres { base, schema, .. } = &self.backend {
            drop(self.store);
            if let Ok(mut admin) = AsyncPgConnection::establish(base).await {
                let _ = admin
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await;
            }
        }
    }
}
