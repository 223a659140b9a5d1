//! Several replicas on one Postgres.

use std::time::Duration;

use calsync_domain::ids::CalendarId;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::helpers::{eventually, server};

/// A fresh schema on the test Postgres; `None` (loudly) when there is no
/// server outside CI.
async fn postgres_schema() -> Option<String> {
    let base = std::env::var("CALSYNC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match AsyncPgConnection::establish(&base).await {
        Ok(conn) => conn,
        Err(error) => {
            if std::env::var_os("CI").is_some() {
                panic!("Postgres at {base} is required in CI but unreachable: {error}");
            }
            eprintln!("SKIPPED: replica test: no Postgres at {base} ({error})");
            return None;
        }
    };
    let schema = format!("calsync_e2e_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-csearch_path%3D{schema}"))
}

async fn drop_schema(url: &str) {
    let (base, schema) = url.split_once("options=-csearch_path%3D").unwrap();
    let base = base.trim_end_matches(['?', '&']);
    if let Ok(mut admin) = AsyncPgConnection::establish(base).await {
        let _ = admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_run_each_job_tick_once() {
    let Some(url) = postgres_schema().await else {
        return;
    };
    // A day-long sweep period, so both replicas fall in the same slot.
    let args = [
        "--sweep-interval-secs",
        "86400",
        "--scheduler-tick-secs",
        "1",
    ];
    let calendar = CalendarId::new("shared@example.com").unwrap();
    {
        let store = calsync_store::connect(
            &calsync_store::DatabaseUrl::parse(Some(&url)).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        store.mark_dirty(&calendar, false).await.unwrap();
    }
    let (first, _) = server(Some(&url), &args).await;
    let (second, _) = server(Some(&url), &args).await;
    // Let both tick a few times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let store = first.store.clone();
    let settled = eventually(Duration::from_secs(10), || {
        let (store, calendar) = (store.clone(), calendar.clone());
        async move {
            store
                .sync_state(&calendar)
                .await
                .unwrap()
                .is_some_and(|s| !s.is_dirty())
        }
    })
    .await;
    assert!(settled, "the calendar was synced");
    let state = first.store.sync_state(&calendar).await.unwrap().unwrap();
    assert_eq!(
        state.dirty_seq, 2,
        "our mark plus exactly one safety sweep across both replicas"
    );
    first.stop().await;
    second.stop().await;
    drop_schema(&url).await;
}
