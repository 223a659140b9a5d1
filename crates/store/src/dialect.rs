//! What a SQL dialect must provide for the shared query code to run on it.
//!
//! The storage ports are written once, in `queries/`, and that module tree
//! is declared once per dialect (`#[path = "queries/mod.rs"] mod queries;`
//! in `pg` and in `sqlite`), so each copy compiles against concrete types:
//! `queries` names its dialect only as `super::ThisDialect` and reaches its
//! specifics only through this trait. The compiler, not a comment, checks
//! that each dialect provides all of it, with these types.
//!
//! Why not shared code generic over `D: Dialect`: every Diesel query would
//! then need where-clauses spelling out, for `D::Backend`, each query
//! fragment, bind and load it uses (dozens per query, hundreds in all), and
//! the pool, the transaction manager and the `Send` futures `async_trait`
//! requires would each add more. Compiled per dialect, the same code needs
//! none: `<PgDialect as Dialect>::Conn` is simply `AsyncPgConnection`. The
//! price is that the query code is compiled twice, as it was when both
//! dialects pasted in one file's text; unlike then, it is an ordinary module
//! tree that rustfmt, the compiler's privacy rules and this contract reach.
//!
//! Two specifics are named beside the trait rather than through it: the
//! schema's `Ts` and `Json` (see `queries`), checked equal to
//! [`Dialect::Ts`] and [`Dialect::Json`].

use std::future::Future;

use diesel::QueryResult;
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_migrations::EmbeddedMigrations;

/// One SQL dialect: a marker type per backend implements it once.
pub(crate) trait Dialect {
    /// The connection the pool hands out.
    type Conn: AsyncConnection<Backend = Self::Backend> + PoolableConnection + Send + 'static;
    /// Diesel's backend: what queries are built for and the migrations name.
    type Backend: diesel::backend::Backend;
    /// The SQL type timestamps are stored as (`Ts` in the schema).
    type Ts: diesel::sql_types::SqlType + diesel::sql_types::SingleValue;
    /// The SQL type JSON columns are stored as (`Json` in the schema),
    /// read and written as `serde_json::Value`.
    type Json: diesel::sql_types::SqlType + diesel::sql_types::SingleValue;
    /// The mirror row of this dialect's copy of the query tree (each copy
    /// has its own, typed by its own schema), for [`Dialect::upsert_events`].
    type EventRow: Send + Sync + 'static;
    /// A feed change row to insert, for [`Dialect::insert_changes`].
    type NewChangeRow: Send + 'static;
    /// A webhook attempt row to insert, for [`Dialect::insert_attempts`].
    type NewAttemptRow: Send + 'static;

    /// Whether write transactions queue in-process, one at a time.
    const SERIALIZE_WRITES: bool;
    /// The dialect's migrations, embedded in the binary.
    const MIGRATIONS: EmbeddedMigrations;
    /// The largest `last_end_at - start_at` of the rows a query selects, in
    /// seconds (a float, NULL without a row): timestamp arithmetic differs
    /// by dialect, and the maximum is taken where the rows are.
    const MAX_SPAN_SECONDS: &'static str;

    /// Begins a write transaction (committed or rolled back by the caller
    /// through the connection's transaction manager).
    fn begin_write(conn: &mut Self::Conn) -> impl Future<Output = QueryResult<()>> + Send;

    /// Serializes the transactions that record feed changes, so change
    /// seqs are handed out in commit order: taken just before a write
    /// transaction inserts its change rows, its last statement, and held
    /// until it ends. A no-op where writes are serialized already.
    fn lock_feed(conn: &mut Self::Conn) -> impl Future<Output = QueryResult<()>> + Send;

    /// One mirror row, locked against concurrent writers until the write
    /// transaction ends (where the dialect has row locks), so what a write
    /// records as the row before it is what it replaced.
    fn load_event_for_update<'a>(
        conn: &'a mut Self::Conn,
        id: &'a str,
    ) -> impl Future<Output = QueryResult<Option<Self::EventRow>>> + Send + 'a;

    /// Inserts or fully replaces mirror rows, in as few statements as the
    /// dialect allows.
    fn upsert_events(
        conn: &mut Self::Conn,
        rows: Vec<Self::EventRow>,
    ) -> impl Future<Output = Result<(), calsync_domain::Error>> + Send;

    /// Inserts feed change rows, in as few statements as the dialect allows
    /// (they are written holding the feed lock).
    fn insert_changes(
        conn: &mut Self::Conn,
        rows: Vec<Self::NewChangeRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;

    /// Inserts webhook attempt rows, in as few statements as the dialect
    /// allows.
    fn insert_attempts(
        conn: &mut Self::Conn,
        rows: Vec<Self::NewAttemptRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}
