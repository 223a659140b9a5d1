//! Cases that reach past the port into the SQL behind it (SQLite and Postgres only).

use super::*;
use crate::helpers::TestDb;

pub async fn a_failure_mid_page_leaves_the_previous_state_intact(db: &TestDb) {
    let store = &db.store;
    store
        .apply_sync_page(&page(
            vec![remote("b0001", "\"1\"", 1), remote("b0002", "\"1\"", 2)],
            full("r1"),
            Some("tok-1"),
        ))
        .await
        .unwrap();
    let before = all_events(store).await;
    db.exec(
        "CREATE TRIGGER poison BEFORE INSERT ON calendar_events WHEN NEW.google_event_id = 'poison01' \
         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
           IF NEW.google_event_id = 'poison01' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; \
         END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER poison BEFORE INSERT ON calendar_events FOR EACH ROW EXECUTE FUNCTION poison();",
    )
    .await;
    let mut changed = remote("b0001", "\"2\"", 9);
    changed.updated = Some(now());
    let result = store
        .apply_sync_page(&page(
            vec![
                changed,
                remote("poison01", "\"1\"", 3),
                remote("b0003", "\"1\"", 4),
            ],
            SyncRun::Incremental,
            Some("tok-2"),
        ))
        .await;
    assert!(matches!(result, Err(Error::Storage(_))), "{result:?}");
    assert_eq!(
        all_events(store).await,
        before,
        "nothing of the page was applied"
    );
    assert_eq!(token(store).await.as_deref(), Some("tok-1"));
    // The store still works afterwards (no dangling transaction).
    store
        .apply_sync_page(&page(
            vec![remote("b0004", "\"1\"", 5)],
            SyncRun::Incremental,
            Some("tok-3"),
        ))
        .await
        .unwrap();
    assert_eq!(token(store).await.as_deref(), Some("tok-3"));
}

pub async fn unreadable_json_is_a_storage_error(db: &TestDb) {
    let store = &db.store;
    store
        .apply_sync_page(&page(
            vec![
                remote("json0001", "\"1\"", 1),
                remote("json0002", "\"1\"", 2),
            ],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    // Valid JSON of the wrong shape (both dialects), and on SQLite, whose
    // JSON is text, no JSON at all.
    db.exec(
        "UPDATE calendar_events SET details = '{\"reminders\": 5}' WHERE google_event_id = 'json0001'; \
         UPDATE calendar_events SET google = 'not json' WHERE google_event_id = 'json0002';",
        "UPDATE calendar_events SET details = '{\"reminders\": 5}' WHERE google_event_id = 'json0001';",
    )
    .await;
    let id = |google_id: &'static str| EventId::new(google_id).unwrap();
    let read = store.find_by_google_id(&cal(), &id("json0001")).await;
    assert!(matches!(read, Err(Error::Storage(_))), "{read:?}");
    if matches!(db.backend, crate::helpers::Backend::Sqlite { .. }) {
        let read = store.find_by_google_id(&cal(), &id("json0002")).await;
        assert!(matches!(read, Err(Error::Storage(_))), "{read:?}");
    }
}

/// Migration 7's version, as diesel records it.
const RECURRENCE_MIGRATION: &str = "20261201000007";

pub async fn the_recurrence_migration_backfills_existing_rows(db: &TestDb) {
    use crate::helpers::Backend;
    let cutoff = now() - Duration::days(180);
    let mut ended = remote("ended001", "\"1\"", 0);
    ended.start = Some(EventTime::at(cutoff - Duration::days(2), None));
    ended.end = Some(EventTime::at(cutoff - Duration::days(1), None));
    let mut all_day = remote("allday01", "\"1\"", 0);
    all_day.start = Some(EventTime::date(cutoff.date_naive() - Duration::days(1)));
    all_day.end = Some(EventTime::date(cutoff.date_naive()));
    // Over long ago, as its rule says; SQL cannot tell.
    let master = series("bounded1", -400, "RRULE:FREQ=WEEKLY;COUNT=2");
    let moved = exception("bounded1", now() - Duration::days(393));
    db.store
        .apply_sync_page(&page(
            vec![ended, all_day, master, moved.clone()],
            full("r1"),
            Some("t1"),
        ))
        .await
        .unwrap();
    // Back to the schema before migration 7, rows kept, and forward again.
    let (sqlite_down, pg_down) = (
        include_str!(
            "../../../../../migrations/sqlite/2026-12-01-000007_recurrence_and_google_event/down.sql"
        ),
        include_str!(
            "../../../../../migrations/postgres/2026-12-01-000007_recurrence_and_google_event/down.sql"
        ),
    );
    let forget =
        format!("DELETE FROM __diesel_schema_migrations WHERE version = '{RECURRENCE_MIGRATION}';");
    // A later migration indexes `kind`, which migration 7 adds: it goes
    // first, and comes back once 7 has run again.
    let drop_later = "DROP INDEX calendar_events_calendar_kind_start;";
    db.exec(
        &format!("{drop_later}\n{sqlite_down}\n{forget}"),
        &format!("{drop_later}\n{pg_down}\n{forget}"),
    )
    .await;
    let url = match &db.backend {
        Backend::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
        Backend::Postgres { url, .. } => url.clone(),
    };
    let url = calsync_store::DatabaseUrl::parse(Some(&url)).unwrap();
    assert_eq!(
        calsync_store::migrate(&url).await.unwrap(),
        [RECURRENCE_MIGRATION]
    );
    let later_index =
        include_str!("../../../../../migrations/sqlite/2026-12-07-000013_kind_window_index/up.sql");
    db.exec(later_index, later_index).await;
    // A fresh pool: the old one's prepared statements name dropped columns.
    let store = calsync_store::connect(&url, &calsync_store::StoreOptions::default())
        .await
        .unwrap();
    let kind = |kind| EventQuery {
        kind: Some(kind),
        limit: 10,
        ..EventQuery::default()
    };
    let ids = |events: Vec<Event>| -> Vec<String> {
        events
            .into_iter()
            .map(|e| e.google_event_id.to_string())
            .collect()
    };
    assert_eq!(
        ids(store.list_events(&kind(EventKind::Master)).await.unwrap()),
        ["bounded1"]
    );
    assert_eq!(
        ids(store
            .list_events(&kind(EventKind::Exception))
            .await
            .unwrap()),
        [moved.id.to_string()]
    );
    let mut singles = ids(store.list_events(&kind(EventKind::Single)).await.unwrap());
    singles.sort();
    assert_eq!(singles, ["allday01", "ended001"]);
    let got = store
        .find_by_google_id(&cal(), &EventId::new("ended001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.event_type, got.details, got.google),
        (EventType::Default, EventDetails::default(), None)
    );
    // The backfilled master counts as endless until it is written again: in
    // every window from its start on, and not retired; its exception stays
    // with it. The singles keep their end rule.
    let far = now() + Duration::days(3650);
    assert_eq!(
        ids(store
            .list_events(&EventQuery {
                ends_after: Some(far),
                limit: 10,
                ..EventQuery::default()
            })
            .await
            .unwrap()),
        ["bounded1"]
    );
    assert_eq!(
        store.cancel_ended_before(cutoff, 10, now()).await.unwrap(),
        2
    );
    let status = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_by_google_id(&cal(), &EventId::new(id).unwrap())
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    assert_eq!(status("ended001").await, EventStatus::Cancelled);
    assert_eq!(status("allday01").await, EventStatus::Cancelled);
    assert_eq!(status("bounded1").await, EventStatus::Confirmed);
    // Its next write computes its last end: then it retires, and its
    // exception after it.
    let mut again = series("bounded1", -400, "RRULE:FREQ=WEEKLY;COUNT=2");
    again.etag = Some(Etag::new("\"2\"").unwrap());
    again.updated = Some(now());
    store
        .apply_sync_page(&page(vec![again], SyncRun::Incremental, None))
        .await
        .unwrap();
    let mut total = 0;
    for _ in 0..3 {
        total += store.cancel_ended_before(cutoff, 10, now()).await.unwrap();
    }
    assert_eq!(total, 2);
    assert_eq!(status("bounded1").await, EventStatus::Cancelled);
    drop(store);
}

/// Migration 8's version, as diesel records it.
const CALENDARS_MIGRATION: &str = "20261201000008";
/// Migration 17 adds `grant_id` to the table migration 8 creates.
const GRANT_CALENDARS_MIGRATION: &str = "20261207000017";

pub async fn the_calendars_migration_backfills_synced_calendars(db: &TestDb) {
    use calsync_domain::calendar::ManagedCalendar;
    use calsync_domain::ports::CalendarStore;

    use crate::helpers::Backend;
    let second = calendar_id("second@example.com");
    db.store.mark_dirty(&cal(), true).await.unwrap();
    db.store.mark_dirty(&second, false).await.unwrap();
    // Managed but never synced: the revert forgets it, and the backfill,
    // which only knows synced calendars, does not bring it back.
    db.store
        .upsert_calendar(&managed(
            "unsynced@example.com",
            Some("erin@example.com"),
            now(),
        ))
        .await
        .unwrap();
    // Back to the schema before migration 8 (through migration 17's down,
    // which adds to that table), and forward again.
    let (sqlite_down, pg_down) = (
        concat!(
            include_str!(
                "../../../../../migrations/sqlite/2026-12-07-000017_grant_calendars/down.sql"
            ),
            "\n",
            include_str!(
                "../../../../../migrations/sqlite/2026-12-01-000008_managed_calendars/down.sql"
            ),
        ),
        concat!(
            include_str!(
                "../../../../../migrations/postgres/2026-12-07-000017_grant_calendars/down.sql"
            ),
            "\n",
            include_str!(
                "../../../../../migrations/postgres/2026-12-01-000008_managed_calendars/down.sql"
            ),
        ),
    );
    let forget = format!(
        "DELETE FROM __diesel_schema_migrations WHERE version IN ('{CALENDARS_MIGRATION}', '{GRANT_CALENDARS_MIGRATION}');"
    );
    db.exec(
        &format!("{sqlite_down}\n{forget}"),
        &format!("{pg_down}\n{forget}"),
    )
    .await;
    let url = match &db.backend {
        Backend::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
        Backend::Postgres { url, .. } => url.clone(),
    };
    let url = calsync_store::DatabaseUrl::parse(Some(&url)).unwrap();
    let before = Utc::now() - Duration::seconds(1);
    assert_eq!(
        calsync_store::migrate(&url).await.unwrap(),
        [CALENDARS_MIGRATION, GRANT_CALENDARS_MIGRATION]
    );
    let after = Utc::now() + Duration::seconds(1);
    // A fresh pool: the old one's prepared statements name a dropped table.
    let store = calsync_store::connect(&url, &calsync_store::StoreOptions::default())
        .await
        .unwrap();
    let calendars = store.list_calendars().await.unwrap();
    let ids: Vec<&CalendarId> = calendars.iter().map(|c| &c.calendar_id).collect();
    assert_eq!(ids, [&second, &cal()]);
    for calendar in &calendars {
        assert_eq!(calendar.subject, None, "{calendar:?}");
        assert_eq!(calendar.created_at, calendar.updated_at, "{calendar:?}");
        assert!(
            (before..=after).contains(&calendar.created_at),
            "backfilled at the migration's time: {calendar:?}"
        );
    }
    // A backfilled row is an ordinary one: an upsert keeps its `created_at`.
    let backfilled = calendars[1].clone();
    let updated = store
        .upsert_calendar(&managed(
            cal().as_str(),
            Some("frank@example.com"),
            now() + Duration::days(365),
        ))
        .await
        .unwrap();
    assert_eq!(
        updated,
        ManagedCalendar {
            subject: Some(calsync_domain::calendar::Subject::new("frank@example.com").unwrap()),
            grant: None,
            updated_at: now() + Duration::days(365),
            ..backfilled
        }
    );
    drop(store);
}

/// The ordering promise's mechanism: while another transaction holds the
/// feed's lock (Postgres: the advisory lock every recording write takes
/// before inserting its changes; SQLite: the database's write lock), a
/// write that records changes waits, so no change can commit with a seq
/// below one a reader has passed; readers never wait.
pub async fn feed_writers_wait_for_the_lock_and_readers_do_not(db: &TestDb) {
    use super::feed::{mark, since};
    use crate::helpers::Backend;
    use calsync_domain::feed::ChangeQuery;
    use std::time::Duration as Wait;

    enum Holder {
        Postgres(Box<diesel_async::AsyncPgConnection>),
        Sqlite(diesel::SqliteConnection),
    }
    let store = &db.store;
    store
        .insert_with_outbox(&local_event("lock0", now()), OutboxOp::Insert)
        .await
        .unwrap();
    let first = mark(store).await;
    let mut holder = match &db.backend {
        Backend::Postgres { url, .. } => {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = diesel_async::AsyncPgConnection::establish(url)
                .await
                .unwrap();
            // The store's key: "calsyncf" in ASCII (see `pg::FEED_LOCK_KEY`).
            let key = i64::from_be_bytes(*b"calsyncf");
            conn.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key});"))
                .await
                .unwrap();
            Holder::Postgres(Box::new(conn))
        }
        Backend::Sqlite { path, .. } => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            conn.batch_execute("BEGIN IMMEDIATE").unwrap();
            Holder::Sqlite(conn)
        }
    };
    let write = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .insert_with_outbox(&local_event("lock1", now()), OutboxOp::Insert)
                .await
        })
    };
    tokio::time::sleep(Wait::from_millis(300)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    let read = tokio::time::timeout(
        Wait::from_secs(5),
        store.read_changes(&ChangeQuery {
            after: Some(first),
            limit: 10,
            ..ChangeQuery::default()
        }),
    )
    .await
    .expect("a reader does not wait for writers")
    .unwrap();
    assert!(read.items.is_empty());
    assert_eq!(read.next_cursor, first);
    match &mut holder {
        Holder::Postgres(conn) => {
            use diesel_async::SimpleAsyncConnection;
            conn.batch_execute("COMMIT").await.unwrap();
        }
        Holder::Sqlite(conn) => {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("COMMIT").unwrap();
        }
    }
    tokio::time::timeout(Wait::from_secs(10), write)
        .await
        .expect("the write goes on once the lock is free")
        .unwrap()
        .unwrap();
    let recorded = since(store, first).await;
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].cursor > first);
}
