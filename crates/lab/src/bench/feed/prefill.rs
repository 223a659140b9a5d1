//! Fills `calendar_changes` with N changes straight in SQL, as a feed that
//! has been written for days looks: `generate_series` on Postgres, a
//! recursive CTE on SQLite, in chunks (one statement each) so no
//! transaction grows with N. Nothing else in the lab writes SQL; this does
//! because no port writes millions of rows in minutes, nor should one.
//!
//! Every row's payload is a real `ChangePayload`: the bench store's
//! synthetic event (about 1 KB as a row, with Google's resource beside it),
//! serialized once by the domain; SQL then puts each row's entity and ids
//! in. One event per entity, each changed about ten times, so a read
//! filtered by entity answers about ten changes.

use std::time::{Duration, Instant};

use calsync_domain::event::{Event, PushState};
use calsync_domain::feed::{ChangePayload, ChangeType, NewChange, Origin};
use calsync_domain::ids::{CalendarId, LocalEventId};
use calsync_store::DatabaseUrl;
use chrono::{DurationRound, Utc};

use crate::bench::fixtures::synthetic_event;
use crate::error::LabError;

/// The calendar the pre-filled changes name (never synced by the server).
pub(super) const CALENDAR: &str = "feed-bench-prefill@example.com";
/// The entity type of every pre-filled change.
pub(super) const ENTITY_TYPE: &str = "deal";
/// The template event's index: its digits stand for the entity number
/// wherever the synthetic event writes its index (ids, summary, entity
/// id, Google's copy), and [`mark_uuid`] for its local id's last group.
const MARK: usize = 918_273_645;
/// Changes per entity (so entities = rows / this).
const CHANGES_PER_ENTITY: u64 = 10;
/// Rows per statement.
const POSTGRES_CHUNK: u64 = 250_000;
const SQLITE_CHUNK: u64 = 100_000;

/// What was written.
pub(super) struct Filled {
    pub rows: u64,
    /// Entities 0..entities are in the feed, `deal` each.
    pub entities: u64,
    pub payload_bytes: usize,
    pub elapsed: Duration,
}

pub(super) async fn fill(url: &DatabaseUrl, rows: u64) -> Result<Filled, LabError> {
    let entities = (rows / CHANGES_PER_ENTITY).max(1);
    let template = template()?;
    let started = Instant::now();
    if rows > 0 {
        let sql = Sql {
            template: template.replace('\'', "''"),
            entities,
            total: rows,
            now: Utc::now(),
        };
        match url {
            DatabaseUrl::Postgres(url) => fill_postgres(url, &sql).await?,
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || fill_sqlite(&path, &sql))
                    .await
                    .map_err(|e| format!("the SQLite fill stopped: {e}"))??
            }
        }
    }
    Ok(Filled {
        rows,
        entities,
        payload_bytes: template.len(),
        elapsed: started.elapsed(),
    })
}

/// The last group of the template's local id (`MARK` in 12 hex digits).
fn mark_uuid() -> String {
    format!("{MARK:012x}")
}

/// The payload of an `event.updated` of the synthetic event `MARK`, as
/// the store writes it.
fn template() -> Result<String, LabError> {
    // Attendees at example.com (the argument is their domain).
    let mut remote = synthetic_event("example.com", MARK, 1);
    let now = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .map_err(|e| e.to_string())?;
    // Whole seconds and a start of its own: no digits of the index's
    // anywhere but where the index is.
    let start = now + chrono::Duration::days(1);
    if let Some(google) = remote.google.as_mut() {
        google["start"] = serde_json::json!({"dateTime": start.to_rfc3339()});
        google["end"] =
            serde_json::json!({"dateTime": (start + chrono::Duration::minutes(30)).to_rfc3339()});
    }
    let event = Event {
        id: LocalEventId::from_uuid(uuid::Uuid::from_u128(MARK as u128)),
        calendar_id: CalendarId::new(CALENDAR)?,
        // Google's id as the column has it (the synthetic one is derived
        // from the local id, which SQL cannot re-derive).
        google_event_id: calsync_domain::ids::EventId::new(format!("bench{MARK}"))?,
        ical_uid: remote.ical_uid,
        summary: remote.summary,
        // A shorter agenda than the store bench's: ~1.5 KB in all.
        description: Some("Agenda: review the proposal, agree next steps and owners. ".repeat(3)),
        location: remote.location,
        start: calsync_domain::event::EventTime::at(start, None),
        end: calsync_domain::event::EventTime::at(start + chrono::Duration::minutes(30), None),
        status: remote.status,
        attendees: remote.attendees,
        organizer: remote.organizer,
        recurrence: remote.recurrence,
        recurring_event_id: remote.recurring_event_id,
        original_start: remote.original_start,
        etag: remote.etag,
        google_updated: Some(now),
        html_link: remote.html_link,
        event_type: remote.event_type,
        details: remote.details,
        google: remote.google,
        entity: remote.entity,
        push_state: PushState::Synced,
        push_note: None,
        pushed_at: None,
        created_at: now,
        updated_at: now,
    };
    let change = NewChange {
        kind: ChangeType::EventUpdated,
        origin: Origin::Google,
        occurred_at: now,
        calendar_id: Some(event.calendar_id.clone()),
        event: Some(Box::new(event)),
        changed_fields: vec!["summary".into(), "etag".into()],
        detail: Default::default(),
    };
    let json = serde_json::to_string(&ChangePayload::of(&change)).map_err(|e| e.to_string())?;
    let id = LocalEventId::from_uuid(uuid::Uuid::from_u128(MARK as u128)).to_string();
    if !id.ends_with(&mark_uuid()) || !json.contains(&MARK.to_string()) {
        return Err(format!("the payload template lost its marks: {json}").into());
    }
    Ok(json)
}

/// The SQL both dialects share, for rows `from..=to` (1-based: row g is
/// the g-th change of `total`; entity g % entities).
struct Sql {
    /// Quoted for a SQL string literal.
    template: String,
    entities: u64,
    total: u64,
    now: chrono::DateTime<Utc>,
}

impl Sql {
    /// A realistic mix: mostly updates, some creations, cancellations and
    /// RSVPs; a tenth written through the API.
    const KIND: &'static str = "CASE g % 20 WHEN 0 THEN 'event.created' WHEN 1 THEN 'event.cancelled' \
         WHEN 2 THEN 'attendee.responded' ELSE 'event.updated' END";
    const ORIGIN: &'static str = "CASE WHEN g % 10 = 0 THEN 'api' ELSE 'google' END";

    fn columns() -> &'static str {
        "kind, origin, occurred_at, calendar_id, event_id, google_event_id, entity_type, \
         entity_id, etag, payload"
    }

    /// The SELECT list over `g` (row) and `e` (entity), given the dialect's
    /// occurred_at, hex-of-e and payload-cast expressions.
    fn select(&self, occurred_at: &str, hex_e: &str, e_text: &str, json: &str) -> String {
        let payload = format!(
            "replace(replace('{}', '{MARK}', {e_text}), '{}', {hex_e})",
            self.template,
            mark_uuid(),
        );
        format!(
            "{kind}, {origin}, {occurred_at}, '{CALENDAR}', \
             '00000000-0000-0000-0000-' || {hex_e}, 'bench' || {e_text}, '{ENTITY_TYPE}', \
             {e_text}, '\"1000' || {e_text} || '\"', {json}",
            kind = Self::KIND,
            origin = Self::ORIGIN,
            json = json.replace("{payload}", &payload),
        )
    }

    /// Postgres: one `generate_series` chunk. Row g occurred (total - g)
    /// milliseconds before `now`: a thousand changes a second, the newest
    /// last, all well inside the retention.
    fn postgres(&self, from: u64, to: u64) -> String {
        let occurred_at = format!(
            "TIMESTAMPTZ '{}' - ({} - g) * INTERVAL '1 millisecond'",
            self.now.to_rfc3339(),
            self.total
        );
        format!(
            "INSERT INTO calendar_changes ({columns}) SELECT {select} \
             FROM generate_series({from}::bigint, {to}::bigint) AS g, \
             LATERAL (SELECT g % {entities} AS e) AS x",
            columns = Self::columns(),
            select = self.select(
                &occurred_at,
                "lpad(to_hex(e), 12, '0')",
                "e::text",
                "{payload}::jsonb"
            ),
            entities = self.entities,
        )
    }

    /// SQLite: one recursive-CTE chunk; occurred_at in the form Diesel
    /// writes a `DateTime<Utc>` there (`%F %T%.f%:z`).
    fn sqlite(&self, from: u64, to: u64) -> String {
        let occurred_at = format!(
            "strftime('%Y-%m-%d %H:%M:%f', {:.3} - ({} - g) / 1000.0, 'unixepoch') || '+00:00'",
            self.now.timestamp_millis() as f64 / 1000.0,
            self.total
        );
        format!(
            "WITH RECURSIVE s(g) AS (SELECT {from} UNION ALL SELECT g + 1 FROM s WHERE g < {to}), \
             x(g, e) AS (SELECT g, g % {entities} FROM s) \
             INSERT INTO calendar_changes ({columns}) SELECT {select} FROM x",
            columns = Self::columns(),
            select = self.select(
                &occurred_at,
                "printf('%012x', e)",
                "CAST(e AS TEXT)",
                "{payload}"
            ),
            entities = self.entities,
        )
    }
}

/// Chunks `1..=total` by `size`, reporting progress on stderr for long fills.
fn chunks(total: u64, size: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..total.div_ceil(size)).map(move |i| (i * size + 1, ((i + 1) * size).min(total)))
}

fn progress(done: u64, total: u64, started: Instant) {
    if total >= 1_000_000 {
        eprintln!(
            "feed bench: pre-filled {done} of {total} changes ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
}

async fn fill_postgres(url: &str, sql: &Sql) -> Result<(), LabError> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    // A plain connection (the scratch schema is on a bench database).
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| format!("cannot connect to Postgres to pre-fill the feed: {e}"))?;
    let started = Instant::now();
    for (from, to) in chunks(sql.total, POSTGRES_CHUNK) {
        conn.batch_execute(&sql.postgres(from, to))
            .await
            .map_err(|e| format!("pre-filling the feed: {e}"))?;
        progress(to, sql.total, started);
    }
    // What autovacuum would do after a bulk load: the planner's statistics
    // and the visibility map (index-only scans), as a feed in use has them.
    conn.batch_execute("VACUUM (ANALYZE) calendar_changes")
        .await
        .map_err(|e| format!("vacuuming the feed: {e}"))?;
    Ok(())
}

fn fill_sqlite(path: &std::path::Path, sql: &Sql) -> Result<(), LabError> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::SqliteConnection::establish(&path.display().to_string())
        .map_err(|e| format!("cannot open {} to pre-fill the feed: {e}", path.display()))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000")
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for (from, to) in chunks(sql.total, SQLITE_CHUNK) {
        conn.batch_execute(&sql.sqlite(from, to))
            .map_err(|e| format!("pre-filling the feed: {e}"))?;
        progress(to, sql.total, started);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

    use super::*;

    /// The SQL's substitutions keep the payload a `ChangePayload` of the
    /// row's own entity and ids.
    #[test]
    fn the_template_is_a_change_payload_of_about_one_and_a_half_kilobytes() {
        let json = template().unwrap();
        assert!((1400..1700).contains(&json.len()), "{} bytes", json.len());
        let entity = json
            .replace(&MARK.to_string(), "42")
            .replace(&mark_uuid(), "00000000002a");
        let payload: ChangePayload = serde_json::from_str(&entity).unwrap();
        let event = payload.event.unwrap();
        let link = event.entity.unwrap();
        assert_eq!((link.entity_type(), link.entity_id()), ("deal", "42"));
        assert_eq!(event.id.to_string(), "00000000-0000-0000-0000-00000000002a");
        assert_eq!(event.google_event_id.as_str(), "bench42");
    }

    /// The SQL writes rows the store reads back as changes of their own
    /// entity (SQLite; Postgres runs the same expressions in the bench).
    #[tokio::test]
    async fn the_store_reads_the_pre_filled_rows_back() {
        use calsync_domain::feed::{ChangeQuery, Cursor};
        let dir = std::env::temp_dir().join(format!(
            "calsync-feed-prefill-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let url = DatabaseUrl::Sqlite(dir.join("prefill.db"));
        let store = calsync_store::connect(&url, &calsync_store::StoreOptions::default())
            .await
            .unwrap();
        let filled = fill(&url, 250).await.unwrap();
        assert_eq!(filled.entities, 25);
        let all = store
            .read_changes(&ChangeQuery {
                after: Some(Cursor::from_seq(200)),
                limit: 1000,
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.items.len(), 50);
        assert_eq!(all.next_cursor, Cursor::from_seq(250));
        assert!(
            all.items
                .windows(2)
                .all(|w| w[0].change.occurred_at < w[1].change.occurred_at)
        );
        let entity = store
            .read_changes(&ChangeQuery {
                limit: 1000,
                entity_type: Some(ENTITY_TYPE.into()),
                entity_id: Some("7".into()),
                ..ChangeQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(entity.items.len(), 10);
        for change in &entity.items {
            let event = change.change.event.as_ref().unwrap();
            assert_eq!(event.entity.as_ref().unwrap().entity_id(), "7");
            assert_eq!(event.google_event_id.as_str(), "bench7");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn chunks_cover_every_row_once() {
        let all: Vec<_> = chunks(25, 10).collect();
        assert_eq!(all, vec![(1, 10), (11, 20), (21, 25)]);
        assert_eq!(chunks(0, 10).count(), 0);
    }
}
