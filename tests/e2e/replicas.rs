//! Several replicas on one Postgres.

use std::time::Duration;

use calsync_domain::ids::CalendarId;

use crate::helpers::{drop_schema, eventually, postgres_schema, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_run_each_job_tick_once() {
    let Some(url) = postgres_schema().await else {
        return;
    };
    // A day-long sweep period, so both replicas fall in the same slot.
    let args = [
        "--sweep-interval-secs",
        "86400",
        "--sweep-slices",
        "1",
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
        // Synced once (clean): the sweep marks only calendars with no mark,
        // so the one sweep across both replicas is what makes it dirty.
        store.mark_dirty(&calendar, false).await.unwrap();
        let now = chrono::Utc::now();
        let lease = store
            .lease_dirty("setup", now, now + chrono::Duration::seconds(30))
            .await
            .unwrap()
            .unwrap();
        let synced = calsync_domain::sync::SyncOutcome::Succeeded {
            full: lease.full_sync_requested,
            rest_until: None,
        };
        store.release_lease(&lease, &synced, now).await.unwrap();
        assert!(
            !store
                .sync_state(&calendar)
                .await
                .unwrap()
                .unwrap()
                .is_dirty()
        );
        // The sweep covers managed calendars.
        let now = chrono::Utc::now();
        store
            .upsert_calendar(&calsync_domain::calendar::ManagedCalendar {
                calendar_id: calendar.clone(),
                subject: None,
                grant: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
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
        "our mark plus exactly one safety sweep's across both replicas"
    );
    first.stop().await;
    second.stop().await;
    drop_schema(&url).await;
}
