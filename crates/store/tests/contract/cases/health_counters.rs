//! The health report's per-event figures are counters kept by triggers:
//! they must equal a recount after any mix of writes, and no health read
//! may be planned as a walk over the events or the outbox, however stale
//! the planner's statistics.

use std::collections::BTreeMap;

use super::*;
use crate::helpers::{Backend, TestDb};

/// The per-event figures of a health report, as a recount gives them:
/// live events, failed pushes, conflicts, and live unreadable series per
/// calendar (calendars with none left out).
#[derive(Debug, PartialEq, Eq)]
struct Figures {
    active: u64,
    push_failed: u64,
    push_conflicts: u64,
    unreadable: BTreeMap<String, u64>,
}

async fn reported(store: &Arc<dyn Store>) -> Figures {
    let stats = store.health_stats(now(), now()).await.unwrap();
    Figures {
        active: stats.active_events,
        push_failed: stats.events_push_failed,
        push_conflicts: stats.events_push_conflicts,
        unreadable: stats
            .calendars
            .iter()
            .filter_map(|c| {
                let n = c.unreadable_series.unwrap_or(0);
                (n > 0).then(|| (c.calendar_id.to_string(), n))
            })
            .collect(),
    }
}

async fn recounted(store: &Arc<dyn Store>) -> Figures {
    let events = all_events(store).await;
    let live = || events.iter().filter(|e| e.status != EventStatus::Cancelled);
    let mut unreadable = BTreeMap::new();
    for event in live().filter(|e| e.series_unreadable().is_some()) {
        *unreadable.entry(event.calendar_id.to_string()).or_default() += 1;
    }
    let in_state = |state| events.iter().filter(|e| e.push_state == state).count() as u64;
    Figures {
        active: live().count() as u64,
        push_failed: in_state(PushState::Failed),
        push_conflicts: in_state(PushState::Conflict),
        unreadable,
    }
}

/// splitmix64: a few lines, no dependency, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }
}

/// Prints the seed if the test fails (a panic unwinds through it).
struct SeedNote(u64);

impl Drop for SeedNote {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "health counters: failed with seed {0}; rerun with CALSYNC_TEST_SEED={0}",
                self.0
            );
        }
    }
}

const UNREADABLE: &str = "RRULE:FREQ=FORTNIGHTLY";
const WEEKLY: &str = "RRULE:FREQ=WEEKLY;COUNT=3";

/// A remote event of either calendar: a single, a readable or an
/// unreadable series, or (now and then) a cancellation.
fn random_remote(rng: &mut Rng, id: &str, tick: i64) -> RemoteEvent {
    let hours = rng.below(150) as i64 - 50;
    let mut event = match rng.below(6) {
        0 => series(id, hours / 24, UNREADABLE),
        1 => series(id, hours / 24, WEEKLY),
        2 => RemoteEvent::cancelled_stub(EventId::new(id).unwrap()),
        _ => remote(id, "\"1\"", hours),
    };
    event.etag = Some(Etag::new(format!("\"{tick}\"")).unwrap());
    event.updated = Some(now() + Duration::seconds(tick));
    event
}

pub async fn health_counters_match_a_recount_after_random_writes(store: &Arc<dyn Store>) {
    let seed = std::env::var("CALSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let _note = SeedNote(seed);
    let mut rng = Rng(seed);
    let calendars = [cal(), CalendarId::new("other@example.com").unwrap()];
    let remote_ids: Vec<String> = (0..40).map(|i| format!("rnd{i:04}")).collect();
    let mut locals: Vec<LocalEventId> = Vec::new();
    let lease_end = now() + Duration::days(3650);
    let mut tick = 0i64;
    let mut runs = 0;
    // The most each figure reached: the mix must move every counter.
    let mut reached = Figures {
        active: 0,
        push_failed: 0,
        push_conflicts: 0,
        unreadable: BTreeMap::new(),
    };
    for step in 0..200 {
        tick += 1;
        let op = rng.below(9);
        match op {
            // A sync page: inserts, updates, cancellations and revivals.
            0 | 1 => {
                let calendar = &calendars[rng.below(2)];
                let mut ids: Vec<&String> = (0..1 + rng.below(6))
                    .filter_map(|_| rng.pick(&remote_ids))
                    .collect();
                ids.sort();
                ids.dedup();
                let events = ids
                    .into_iter()
                    .map(|id| random_remote(&mut rng, id, tick))
                    .collect();
                let mut page = page(events, SyncRun::Incremental, None);
                page.calendar_id = calendar.clone();
                store.apply_sync_page(&page).await.unwrap();
            }
            // A full run that sees only some events: it sweeps the rest.
            2 if rng.below(3) == 0 => {
                runs += 1;
                let mut events = Vec::new();
                for id in &remote_ids {
                    if rng.below(4) != 0 {
                        events.push(random_remote(&mut rng, id, tick));
                    }
                }
                let run = SyncRun::Full {
                    run_id: format!("mix-{runs}"),
                    started_at: now() + Duration::seconds(tick),
                };
                let mut page = page(events, run, Some("t"));
                page.now = now() + Duration::seconds(tick);
                store.apply_sync_page(&page).await.unwrap();
            }
            // A local write, now and then an unreadable series.
            2..=4 => {
                let mut event = local_event(&format!("mix{step}"), now() + Duration::hours(tick));
                event.calendar_id = calendars[rng.below(2)].clone();
                if rng.below(3) == 0 {
                    event.recurrence = vec![UNREADABLE.into()];
                }
                store
                    .insert_with_outbox(&event, OutboxOp::Insert)
                    .await
                    .unwrap();
                locals.push(event.id);
            }
            // A local edit: cancelled, or its recurrence changed.
            5 => {
                let Some(&id) = rng.pick(&locals) else {
                    continue;
                };
                let stored = store.get_event(id).await.unwrap().unwrap();
                if stored.status == EventStatus::Cancelled {
                    continue;
                }
                let mut edited = stored.clone();
                edited.push_state = PushState::Pending;
                edited.updated_at = stored.updated_at + Duration::seconds(1);
                let op = if rng.below(2) == 0 {
                    edited.status = EventStatus::Cancelled;
                    OutboxOp::Delete
                } else {
                    edited.recurrence = if stored.recurrence.is_empty() {
                        vec![UNREADABLE.into()]
                    } else {
                        Vec::new()
                    };
                    OutboxOp::Patch {
                        if_match: stored.etag.clone(),
                        intent: None,
                    }
                };
                store
                    .update_with_outbox(&edited, stored.updated_at, op)
                    .await
                    .unwrap();
            }
            // The push worker: pushed, dead-lettered, or a conflict.
            6 | 7 => {
                let claimed = store
                    .claim_outbox("mix", now() + Duration::days(3000), lease_end, 3)
                    .await
                    .unwrap();
                for entry in claimed {
                    match rng.below(3) {
                        0 => store
                            .complete_outbox(
                                &entry,
                                &PushReceipt {
                                    pushed_at: now() + Duration::seconds(tick),
                                    remote: None,
                                    etag: Some(Etag::new(format!("\"p{tick}\"")).unwrap()),
                                    updated: Some(now() + Duration::seconds(tick)),
                                    html_link: None,
                                },
                            )
                            .await
                            .unwrap(),
                        1 => store
                            .dead_letter_outbox(&entry, PushFailure::Refused, "refused")
                            .await
                            .unwrap(),
                        _ => {
                            let mut theirs =
                                store.get_event(entry.event_id).await.unwrap().unwrap();
                            theirs.push_state = PushState::Conflict;
                            theirs.push_note = Some("edited at Google meanwhile".into());
                            store
                                .settle_outbox(
                                    &entry,
                                    &theirs,
                                    PushFailure::Conflict,
                                    "edited at Google meanwhile",
                                )
                                .await
                                .unwrap();
                        }
                    }
                }
            }
            // Failed pushes back in the queue, or given up; and cleanup.
            _ => {
                let failed: Vec<Event> = all_events(store)
                    .await
                    .into_iter()
                    .filter(|e| e.push_state == PushState::Failed)
                    .collect();
                if let Some(event) = rng.pick(&failed) {
                    if rng.below(2) == 0 {
                        store
                            .requeue_dead_letters(event.id, now() + Duration::seconds(tick))
                            .await
                            .unwrap();
                    } else {
                        let mut mirror = event.clone();
                        mirror.push_state = PushState::Synced;
                        store
                            .discard_dead_letters(&mirror, "given up")
                            .await
                            .unwrap();
                    }
                }
                let cutoff = now() + Duration::hours(rng.below(150) as i64 - 50);
                store
                    .cancel_ended_before(cutoff, 1 + rng.below(5) as u32, now())
                    .await
                    .unwrap();
            }
        }
        let figures = recounted(store).await;
        assert_eq!(
            reported(store).await,
            figures,
            "health counters vs a recount after step {step} (op {op}), seed {seed}"
        );
        reached.active = reached.active.max(figures.active);
        reached.push_failed = reached.push_failed.max(figures.push_failed);
        reached.push_conflicts = reached.push_conflicts.max(figures.push_conflicts);
        for (calendar, n) in figures.unreadable {
            let most = reached.unreadable.entry(calendar).or_default();
            *most = (*most).max(n);
        }
    }
    assert!(
        reached.active > 0
            && reached.push_failed > 0
            && reached.push_conflicts > 0
            && reached.unreadable.len() == 2,
        "seed {seed}: the mix left a counter untouched: {reached:?}"
    );
}

/// The partial indexes a health read may use on the two big tables: each
/// holds only the rows that read needs (live events; pending or
/// dead-lettered outbox rows), so no plan over them walks history.
const PARTIAL_INDEXES: [&str; 4] = [
    "calendar_events_active_start",
    "calendar_outbox_due",
    "calendar_outbox_pending_age",
    "calendar_outbox_dead",
];
const BIG_TABLES: [&str; 2] = ["calendar_events", "calendar_outbox"];

/// Postgres: every node of an `EXPLAIN (FORMAT JSON)` plan, depth first.
fn plan_nodes<'a>(node: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    if let Some(plan) = node.get("Plan") {
        plan_nodes(plan, out);
        return;
    }
    out.push(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_nodes(child, out);
    }
}

#[derive(diesel::QueryableByName)]
struct PgPlan {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(diesel::QueryableByName)]
struct SqlitePlanRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// Each health read's plan, as lines naming what it reads: Postgres's
/// generic plan (the one a prepared statement may settle on, made without
/// the bound values), or SQLite's query plan with its parameters unbound.
async fn plans(db: &TestDb) -> Vec<(&'static str, String, Vec<String>)> {
    match &db.backend {
        Backend::Postgres { url, .. } => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let database = calsync_store::DatabaseUrl::parse(Some(url)).unwrap();
            let mut conn = AsyncPgConnection::establish(url).await.unwrap();
            diesel::sql_query("SET plan_cache_mode = force_generic_plan")
                .execute(&mut conn)
                .await
                .unwrap();
            let mut out = Vec::new();
            for (i, (what, sql)) in calsync_store::health_queries_sql(&database)
                .into_iter()
                .enumerate()
            {
                let params = (1..=20)
                    .take_while(|n| sql.contains(&format!("${n}")))
                    .count();
                diesel::sql_query(format!("PREPARE health_{i} AS {sql}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let args = if params == 0 {
                    String::new()
                } else {
                    format!("({})", vec!["NULL"; params].join(", "))
                };
                let explained: Vec<PgPlan> =
                    diesel::sql_query(format!("EXPLAIN (FORMAT JSON) EXECUTE health_{i}{args}"))
                        .load(&mut conn)
                        .await
                        .unwrap();
                let json: serde_json::Value = serde_json::from_str(&explained[0].plan).unwrap();
                let mut nodes = Vec::new();
                for root in json.as_array().into_iter().flatten() {
                    plan_nodes(root, &mut nodes);
                }
                let lines = nodes
                    .into_iter()
                    .map(|n| {
                        format!(
                            "{} on {} using {}",
                            n["Node Type"].as_str().unwrap_or("?"),
                            n["Relation Name"].as_str().unwrap_or("-"),
                            n["Index Name"].as_str().unwrap_or("-"),
                        )
                    })
                    .collect();
                out.push((what, sql, lines));
            }
            out
        }
        Backend::Sqlite { path, .. } => {
            use diesel::{Connection, RunQueryDsl, SqliteConnection};
            let database =
                calsync_store::DatabaseUrl::parse(Some(&format!("sqlite://{}", path.display())))
                    .unwrap();
            let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            calsync_store::health_queries_sql(&database)
                .into_iter()
                .map(|(what, sql)| {
                    let rows: Vec<SqlitePlanRow> =
                        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                            .load(&mut conn)
                            .unwrap();
                    (what, sql, rows.into_iter().map(|r| r.detail).collect())
                })
                .collect()
        }
    }
}

/// Whether a plan line reads one of the big tables other than through one
/// of the partial indexes. Postgres names the relation on scan nodes (a
/// Seq, Parallel Seq or Bitmap Heap Scan reads the table); SQLite says
/// `SCAN t`, `SCAN t USING [COVERING] INDEX i` or `SEARCH t USING ...`.
fn walks_a_big_table(backend: &Backend, line: &str) -> bool {
    let partial = PARTIAL_INDEXES
        .iter()
        .any(|index| line.ends_with(&format!(" {index}")) || line.contains(&format!(" {index} ")));
    match backend {
        Backend::Postgres { .. } => BIG_TABLES.iter().any(|table| {
            line.contains(&format!(" on {table} "))
                && !(partial
                    && (line.starts_with("Index Scan ") || line.starts_with("Index Only Scan ")))
        }),
        Backend::Sqlite { .. } => {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() >= 2
                && matches!(words[0], "SCAN" | "SEARCH")
                && BIG_TABLES.contains(&words[1])
                && !partial
        }
    }
}

pub async fn health_plans_read_no_table(db: &TestDb) {
    let store = &db.store;
    // A few thousand events, then statistics that lie: analysed while a
    // third of them were cancelled, failed, conflicted and unreadable, as
    // after a burst the autovacuum has not seen through (the issue's
    // planner guessed a third of the rows were conflicts).
    for batch in 0..4 {
        let events = (0..1000)
            .map(|i| remote(&format!("pln{:05}", batch * 1000 + i), "\"1\"", i % 500))
            .collect();
        store
            .apply_sync_page(&page(events, SyncRun::Incremental, None))
            .await
            .unwrap();
    }
    let third =
        "(google_event_id LIKE '%0' OR google_event_id LIKE '%1' OR google_event_id LIKE '%2')";
    let (yes, no) = match db.backend {
        Backend::Postgres { .. } => ("TRUE", "FALSE"),
        Backend::Sqlite { .. } => ("1", "0"),
    };
    let seed_outbox = "INSERT INTO calendar_outbox \
         (event_id, calendar_id, google_event_id, op, state, attempts, next_attempt_at, created_at, updated_at) \
         SELECT id, calendar_id, google_event_id, 'patch', 'done', 1, updated_at, created_at, updated_at \
         FROM calendar_events;\n\
         UPDATE calendar_outbox SET state = 'pending' WHERE id % 100 = 0;\n\
         UPDATE calendar_outbox SET state = 'dead_letter' WHERE id % 100 = 1;\n";
    let skew = format!(
        "{seed_outbox}\
         UPDATE calendar_events SET push_conflict = {yes}, push_state = 'failed', \
         recurrence_unreadable = {yes}, status = 'cancelled' WHERE {third};\n"
    );
    db.exec(
        &format!("{skew}ANALYZE;"),
        &format!("{skew}ANALYZE calendar_events; ANALYZE calendar_outbox;"),
    )
    .await;
    // Multi-row statements outside the port keep the counters too.
    let skewed = reported(store).await;
    assert_eq!(
        (skewed.active, skewed.push_failed, skewed.push_conflicts),
        (2800, 1200, 1200)
    );
    assert_eq!(skewed.unreadable, BTreeMap::new(), "cancelled: not counted");
    let restore = format!(
        "UPDATE calendar_events SET push_conflict = {no}, push_state = 'synced', \
         recurrence_unreadable = {no}, status = 'confirmed' WHERE {third};"
    );
    db.exec(&restore, &restore).await;
    assert_eq!(reported(store).await, recounted(store).await);
    assert_eq!(reported(store).await.active, 4000);

    let plans = plans(db).await;
    assert!(plans.len() >= 6, "{plans:?}");
    for (what, sql, lines) in &plans {
        // No aggregate over the events on the request path, whatever its
        // plan (in a statement of scalar subqueries, in any of them).
        for part in sql.split("(SELECT ") {
            assert!(
                !(part.contains("calendar_events") && part.to_uppercase().contains("COUNT(")),
                "health's {what} counts events: {sql}"
            );
        }
        let bad: Vec<&String> = lines
            .iter()
            .filter(|line| walks_a_big_table(&db.backend, line))
            .collect();
        assert!(
            bad.is_empty(),
            "health's {what} walks a table: {bad:?}\nplan: {lines:#?}\nsql: {sql}"
        );
        if what.contains("event start") {
            assert!(
                lines
                    .iter()
                    .any(|line| line.contains("calendar_events_active_start")),
                "health's {what} reads the live rows' start index: {lines:#?}\nsql: {sql}"
            );
        }
        if *what == "event counters" {
            assert!(
                !sql.contains("calendar_events\""),
                "health's {what} reads the counters only: {sql}"
            );
        }
    }
}
