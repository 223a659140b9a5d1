//! Both migration dialects must yield the same tables and columns.

use std::collections::{BTreeMap, BTreeSet};

use diesel::QueryableByName;
use diesel::connection::SimpleConnection;

use crate::helpers::{Backend, TestDb};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct TableColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

type Layout = BTreeMap<String, BTreeSet<String>>;

fn sqlite_layout(path: &std::path::Path) -> Layout {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    conn.batch_execute("SELECT 1").unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%'",
    )
    .load(&mut conn)
    .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let columns: Vec<Name> = diesel::sql_query(format!(
                "SELECT name FROM pragma_table_info('{}')",
                table.name
            ))
            .load(&mut conn)
            .unwrap();
            (table.name, columns.into_iter().map(|c| c.name).collect())
        })
        .collect()
}

async fn postgres_layout(url: &str, schema: &str) -> Layout {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<TableColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name NOT LIKE '__diesel%'",
    )
    .bind::<diesel::sql_types::Text, _>(schema)
    .load(&mut conn)
    .await
    .unwrap();
    let mut layout = Layout::new();
    for row in rows {
        layout
            .entry(row.table_name)
            .or_default()
            .insert(row.column_name);
    }
    layout
}

#[tokio::test(flavor = "multi_thread")]
async fn both_dialects_yield_the_same_tables_and_columns() {
    let sqlite = TestDb::sqlite().await;
    let Backend::Sqlite { path, .. } = &sqlite.backend else {
        unreachable!()
    };
    let sqlite_layout = sqlite_layout(path);
    assert!(sqlite_layout.contains_key("calendar_events"));
    assert!(sqlite_layout.contains_key("calendar_calendars"));
    assert!(sqlite_layout.contains_key("calendar_changes"));
    assert!(sqlite_layout.contains_key("calendar_webhooks"));
    assert_eq!(sqlite_layout.len(), 15, "{sqlite_layout:?}");

    let Some(pg) = TestDb::postgres().await else {
        return;
    };
    let Backend::Postgres { url, schema, .. } = &pg.backend else {
        unreachable!()
    };
    let pg_layout = postgres_layout(url, schema).await;
    assert_eq!(sqlite_layout, pg_layout);
    pg.drop_schema().await;
}
