//! `calsync bench ...`: throughput figures measured on real databases.

use std::time::Instant;

use calsync_domain::event::{Attendee, EventStatus, EventTime};
use calsync_domain::ids::{CalendarId, EntityRef, Etag, EventId};
use calsync_domain::ports::Store;
use calsync_domain::sync::{RemoteEvent, SyncCompletion, SyncPage, SyncRun};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{Duration, Utc};
use clap::Subcommand;

use crate::cli::CommandError;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Upsert N calendar-like events (~1 KB each) in pages of 2500 through
    /// the sync path, on embedded SQLite and (with --postgres-url) Postgres;
    /// prints rows/s for the first pass (inserts) and a second (updates).
    Store {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 2500)]
        page_size: usize,
        /// A Postgres database to benchmark too (its tables are created if
        /// missing; use a scratch database).
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
}

impl Bench {
    pub async fn run(self) -> Result<(), CommandError> {
        match self {
            Self::Store {
                events,
                page_size,
                postgres_url,
            } => {
                let dir = std::env::temp_dir()
                    .join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
                let sqlite = DatabaseUrl::Sqlite(dir.join("bench.db"));
                let result = store_bench(&sqlite, events, page_size).await;
                let _ = std::fs::remove_dir_all(&dir);
                result?;
                if let Some(url) = postgres_url {
                    store_bench(&DatabaseUrl::parse(Some(&url))?, events, page_size).await?;
                }
                Ok(())
            }
        }
    }
}

/// A remote event of about 1 KB once stored.
fn synthetic_event(calendar: &str, index: usize, generation: u32) -> RemoteEvent {
    let start = Utc::now() + Duration::minutes(i64::try_from(index).unwrap_or(0) * 30);
    RemoteEvent {
        id: EventId::for_local(calsync_domain::ids::LocalEventId::from_uuid(
            uuid::Uuid::from_u128(index as u128),
        )),
        status: EventStatus::Confirmed,
        ical_uid: Some(format!("bench{index}@google.com")),
        summary: Some(format!("Customer meeting #{index} (revision {generation})")),
        description: Some("Agenda: review the proposal, agree next steps and owners. ".repeat(10)),
        location: Some("Meeting room 3, 2nd floor, Example Street 12, 10115 Berlin".into()),
        start: Some(EventTime::at(start, None)),
        end: Some(EventTime::at(start + Duration::minutes(30), None)),
        attendees: (0..3)
            .filter_map(|a| Attendee::new(format!("person{a}@{calendar}")).ok())
            .collect(),
        organizer: None,
        recurrence: Vec::new(),
        recurring_event_id: None,
        original_start: None,
        etag: Etag::new(format!("\"{generation}{index:012}\"")).ok(),
        updated: Some(Utc::now()),
        html_link: Some(format!(
            "https://calendar.google.com/calendar/event?eid=bench{index}"
        )),
        entity: EntityRef::new("deal", index.to_string()).ok(),
    }
}

async fn pass(
    store: &dyn Store,
    calendar: &CalendarId,
    events: usize,
    page_size: usize,
    generation: u32,
) -> Result<f64, CommandError> {
    let run = SyncRun::Full {
        run_id: format!("bench-{generation}"),
    };
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let end = (done + page_size).min(events);
        let page = SyncPage {
            calendar_id: calendar.clone(),
            run: run.clone(),
            events: (done..end)
                .map(|i| synthetic_event(calendar.as_str(), i, generation))
                .collect(),
            completion: (end == events).then(|| SyncCompletion {
                next_sync_token: format!("bench-token-{generation}"),
            }),
            retention_cutoff: None,
            now: Utc::now(),
        };
        store.apply_sync_page(&page).await?;
        done = end;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

async fn store_bench(
    url: &DatabaseUrl,
    events: usize,
    page_size: usize,
) -> Result<(), CommandError> {
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
