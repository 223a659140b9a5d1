//! What the binary's tests share.

use diesel_async::{AsyncConnection, AsyncPgConnection};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Postgres to test `what` on (`CALSYNC_TEST_DATABASE_URL`, else the
/// local one), if it answers. In CI it must: an unreachable server fails
/// the test there instead of skipping it.
pub fn postgres_url(what: &str) -> Option<String> {
    let url =
        std::env::var("CALSYNC_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let reachable = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the Postgres probe")
        .block_on(AsyncPgConnection::establish(&url))
        .map(drop);
    match reachable {
        Ok(()) => Some(url),
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("Postgres at {url} is required in CI but unreachable: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: {what}: no Postgres at {url} ({error}); set CALSYNC_TEST_DATABASE_URL"
            );
            None
        }
    }
}
