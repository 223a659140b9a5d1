//! `calsync-lab bench store`: the store's upsert throughput through the sync
//! path, inserts then updates, on SQLite and optionally Postgres.

use calsync_domain::ids::CalendarId;
use calsync_store::{DatabaseUrl, StoreOptions};

use super::fixtures::pass;
use crate::error::LabError;

pub(super) async fn run(
    events: usize,
    page_size: usize,
    postgres_url: Option<&str>,
) -> Result<(), LabError> {
    let dir = std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
    let sqlite = DatabaseUrl::Sqlite(dir.join("bench.db"));
    let result = store_bench(&sqlite, events, page_size).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if let Some(url) = postgres_url {
        store_bench(&DatabaseUrl::parse(Some(url))?, events, page_size).await?;
    }
    Ok(())
}

async fn store_bench(url: &DatabaseUrl, events: usize, page_size: usize) -> Result<(), LabError> {
    let store = calsync_store::connect(url, &StoreOptions::default()).await?;
    // A fresh calendar per run, so repeated runs against one database compare.
    let calendar = CalendarId::new(format!(
        "bench-{}@example.com",
        uuid::Uuid::new_v4().simple()
    ))?;
    let page_size = page_size.clamp(1, 2500);
    let inserts = pass(store.as_ref(), &calendar, events, page_size, 1).await?;
    let updates = pass(store.as_ref(), &calendar, events, page_size, 2).await?;
    println!(
        "store bench: backend={} events={events} page_size={page_size} insert_rows_per_sec={inserts:.0} update_rows_per_sec={updates:.0}",
        url.backend()
    );
    Ok(())
}
