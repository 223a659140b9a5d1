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
