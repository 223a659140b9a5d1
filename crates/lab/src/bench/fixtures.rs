//! What the benchmarks share: synthetic Google events, a pass of sync
//! pages straight into a store (the store's own ceiling), percentiles.

use std::time::Instant;

use calsync_domain::event::{Attendee, EventDetails, EventStatus, EventTime, EventType, Reminders};
use calsync_domain::ids::{CalendarId, EntityRef, Etag, EventId};
use calsync_domain::ports::Store;
use calsync_domain::sync::{RemoteEvent, SyncCompletion, SyncPage, SyncRun};
use chrono::{Duration, Utc};

use crate::error::LabError;

/// A remote event of about 1 KB once stored.
pub(super) fn synthetic_event(calendar: &str, index: usize, generation: u32) -> RemoteEvent {
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
        event_type: EventType::Default,
        details: EventDetails {
            reminders: Some(Reminders {
                use_default: true,
                overrides: Vec::new(),
            }),
            ..EventDetails::default()
        },
        // What a real row carries beside its columns: Google's resource.
        google: Some(serde_json::json!({
            "kind": "calendar#event",
            "id": format!("bench{index}"),
            "status": "confirmed",
            "summary": format!("Customer meeting #{index} (revision {generation})"),
            "start": {"dateTime": start.to_rfc3339()},
            "end": {"dateTime": (start + Duration::minutes(30)).to_rfc3339()},
            "eventType": "default",
            "reminders": {"useDefault": true},
            "extendedProperties": {"private": {"entity_type": "deal", "entity_id": index.to_string()}},
        })),
        entity: EntityRef::new("deal", index.to_string()).ok(),
    }
}

/// Applies `events` synthetic events in pages of `page_size` as one full
/// run; answers rows per second.
pub(super) async fn pass(
    store: &dyn Store,
    calendar: &CalendarId,
    events: usize,
    page_size: usize,
    generation: u32,
) -> Result<f64, LabError> {
    let run = SyncRun::Full {
        run_id: format!("bench-{generation}"),
        started_at: chrono::Utc::now(),
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

pub(super) fn percentile(sorted: &[std::time::Duration], fraction: f64) -> std::time::Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// Resident memory of process `pid` (`self` for this one), from `/proc`
/// (Linux); 0 when it cannot be read.
pub fn rss_mb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `calsync serve` in this process, configured by `serve` flags as on its
/// command line (the environment still applies), logs discarded.
pub async fn start_server(flags: &[&str]) -> Result<calsync::server::Running, LabError> {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: calsync::settings::ServeArgs,
    }
    let settings = Args::try_parse_from(std::iter::once("calsync").chain(flags.iter().copied()))
        .map_err(|e| e.to_string())?
        .serve
        .settings()?;
    Ok(calsync::server::start(settings, slog::Logger::root(slog::Discard, slog::o!())).await?)
}
