//! The storage ports over Diesel, written once for both dialects: rows and
//! their conversions, then one module per port.
//!
//! This tree is declared in each dialect module (`pg`, `sqlite`) with
//! `#[path = "queries/mod.rs"] mod queries;`, so it is compiled once per
//! dialect against that dialect's concrete types. It names the dialect only
//! as `super::ThisDialect` and uses it only through [`Dialect`], but for the
//! schema's timestamp and JSON types, `super::Ts` and `super::Json` (checked
//! below). See `crate::dialect` for why this shape rather than generics.

use calsync_domain::Error as DomainError;
use chrono::{DateTime, SubsecRound, Utc};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::{AsyncConnection, TransactionManager};

use crate::Error;
use crate::dialect::Dialect;

/// The dialect this copy of the tree is compiled for.
type D = super::ThisDialect;
/// The dialect's connection.
pub(crate) type Conn = <D as Dialect>::Conn;
/// The dialect's timestamp SQL type, for the schema. Named through the
/// dialect module, not as `<D as Dialect>::Ts`: the generic impls
/// `diesel::table!` writes for each column do not see through a projection
/// in their bounds (E0277). The constant below fails to compile unless the
/// two name the same type.
type Ts = super::Ts;
const _: fn(<D as Dialect>::Ts) -> Ts = std::convert::identity;
/// The dialect's JSON SQL type, for the schema (named like `Ts`, checked alike).
type Json = super::Json;
const _: fn(<D as Dialect>::Json) -> Json = std::convert::identity;

pub(crate) type DomainResult<T> = Result<T, DomainError>;
type Pooled<'a> = bb8::PooledConnection<'a, AsyncDieselConnectionManager<Conn>>;

pub(crate) fn db(error: diesel::result::Error) -> DomainError {
    Error::Query(error).into()
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> DomainError {
    Error::Corrupt(format!("{what}: {error}")).into()
}

/// Both databases keep microseconds; rounding before writing makes what is
/// read back equal to what was written (optimistic locking compares them).
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Runs `$body` (an async block's contents using `$conn`) in a write
/// transaction, committing on `Ok` and rolling back on `Err`.
macro_rules! write_tx {
    ($store:expr, |$conn:ident| $body:block) => {{
        let mut tx = $store.begin_write().await?;
        let result: ::core::result::Result<_, ::calsync_domain::Error> = {
            let $conn = tx.conn();
            async { $body }.await
        };
        tx.finish(result).await
    }};
}

mod calendars;
mod channels;
mod drive_notifications;
mod events;
mod feed;
mod grants;
mod health;
mod job_ticks;
mod outbox;
mod rows;
pub(crate) mod schema;
mod secrets;
mod shared_writes;
mod sync_pages;
mod sync_states;
mod webhooks;

pub(crate) use feed::{NewChangeRow, StoredPayload};
pub(crate) use health::health_queries_sql;
pub(crate) use rows::EventRow;
pub(crate) use webhooks::NewAttemptRow;

pub(crate) struct DieselStore {
    pool: Pool<Conn>,
    write_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DieselStore")
            .field("state", &self.pool.state())
            .finish_non_exhaustive()
    }
}

impl DieselStore {
    pub(crate) fn from_pool(pool: Pool<Conn>) -> Self {
        Self {
            pool,
            write_gate: tokio::sync::Mutex::new(()),
        }
    }

    async fn conn(&self) -> DomainResult<Pooled<'_>> {
        self.pool
            .get()
            .await
            .map_err(|error| Error::Pool(error.to_string()).into())
    }

    /// Takes the write gate (if the dialect serializes writes), then a
    /// connection, and begins a write transaction on it; see `write_tx!`.
    async fn begin_write(&self) -> DomainResult<WriteTx<'_>> {
        let gate = if <D as Dialect>::SERIALIZE_WRITES {
            Some(self.write_gate.lock().await)
        } else {
            None
        };
        let mut conn = self.conn().await?;
        <D as Dialect>::begin_write(&mut conn).await.map_err(db)?;
        Ok(WriteTx { conn, _gate: gate })
    }
}

/// An open write transaction, holding the write gate if the dialect has one.
/// Fields drop in order: the connection goes back to the pool before the
/// gate opens for the next writer.
struct WriteTx<'a> {
    conn: Pooled<'a>,
    _gate: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Commits on `Ok` (a failed commit is the answer) and rolls back on `Err`.
    async fn finish<T>(mut self, result: DomainResult<T>) -> DomainResult<T> {
        let conn: &mut Conn = &mut self.conn;
        match result {
            Ok(value) => {
                <Conn as AsyncConnection>::TransactionManager::commit_transaction(conn)
                    .await
                    .map_err(db)?;
                Ok(value)
            }
            Err(error) => {
                // The rollback's own failure is secondary; the pool discards broken connections.
                let _ =
                    <Conn as AsyncConnection>::TransactionManager::rollback_transaction(conn).await;
                Err(error)
            }
        }
    }
}
