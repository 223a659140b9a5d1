//! `calsync-lab bench freebusy`: free/busy and availability answered from
//! a mirror of N single events and M recurring series over C calendars,
//! in milliseconds per request (p50/p99), on SQLite and optionally
//! Postgres (a fresh schema, dropped after).
//!
//! Beside the service's own figures, the same requests' single-event read
//! (the one store query `FreeBusyService` makes for all the calendars) is
//! timed alone, so a missed goal shows whether the store or the service costs.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use calsync_domain::calendar::ManagedCalendar;
use calsync_domain::event::{Attendee, EventStatus, EventTime};
use calsync_domain::freebusy::rule::{BusyCalendar, BusyQuery};
use calsync_domain::freebusy::{Interval, ParticipantGroup, Required};
use calsync_domain::ids::{CalendarId, EventId, LocalEventId};
use calsync_domain::ports::{CalendarProvider, Clock, Store, SystemClock};
use calsync_domain::services::{AvailabilityQuery, FreeBusyRequest, FreeBusyService, SeriesIndex};
use calsync_domain::sync::{PageOutcome, RemoteEvent, SyncCompletion, SyncPage, SyncRun};
use calsync_google::{Credentials, GoogleCalendar, GoogleConfig};
use calsync_store::{DatabaseUrl, StoreOptions};
use chrono::{DateTime, Duration, DurationRound, Utc};
use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};

use super::fixtures::{percentile, synthetic_event};
use crate::error::LabError;
use crate::harness::pg;

/// Rows per sync page, as Google's largest `events.list` page.
const PAGE: usize = 2500;
/// Calendars per free/busy request (Google's `calendarExpansionMax`).
const FREEBUSY_CALENDARS: usize = 50;
const FREEBUSY_DAYS: i64 = 30;
/// Calendars per availability request, in one group that must all be free.
const AVAILABILITY_CALENDARS: usize = 10;
const AVAILABILITY_DAYS: i64 = 14;
/// Single events are spread over this many days either side of now.
const SPREAD_DAYS: i64 = 180;
/// The zone all-day events are read in: not UTC, so they are shifted.
const ZONE: &str = "Europe/Berlin";
/// Same rows on every run, so runs compare.
const SEED: u64 = 0x00ca_1515;

#[derive(Debug, Clone)]
pub(super) struct FreeBusyBench {
    pub events: usize,
    pub series: usize,
    pub calendars: usize,
    pub requests: usize,
    pub postgres_url: Option<String>,
}

impl FreeBusyBench {
    pub(super) async fn run(&self) -> Result<(), LabError> {
        let dir =
            std::env::temp_dir().join(format!("calsync-bench-{}", uuid::Uuid::new_v4().simple()));
        let sqlite = DatabaseUrl::Sqlite(dir.join("bench.db"));
        let result = self.measure(&sqlite).await;
        let _ = std::fs::remove_dir_all(&dir);
        result?;
        if let Some(url) = &self.postgres_url {
            let url = DatabaseUrl::parse(Some(url))?;
            // A schema of its own: `standings` reads every managed calendar,
            // so earlier runs' calendars would be measured too.
            let schema = pg::fresh_schema_for(&url).await?;
            let result = match &schema {
                Some(schema) => self.measure(&DatabaseUrl::parse(Some(&schema.url))?).await,
                None => self.measure(&url).await,
            };
            if let Some(schema) = &schema
                && let Err(error) = pg::drop_schema(schema).await
            {
                eprintln!("freebusy bench: cannot drop the scratch schema: {error}");
            }
            result?;
        }
        Ok(())
    }

    async fn measure(&self, url: &DatabaseUrl) -> Result<(), LabError> {
        let backend = url.backend();
        let store = calsync_store::connect(url, &StoreOptions::default()).await?;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let calendars = (0..self.calendars)
            .map(|c| CalendarId::new(format!("fb-{}-{c:05}@example.com", &run[..8])))
            .collect::<Result<Vec<_>, _>>()?;
        let base = Utc::now()
            .duration_trunc(Duration::hours(1))
            .map_err(|e| e.to_string())?;

        let started = Instant::now();
        let mut outcome = PageOutcome::default();
        for (c, calendar) in calendars.iter().enumerate() {
            let rows = self.calendar_rows(calendar, c, base);
            let pages = prefill_calendar(store.as_ref(), calendar, rows).await?;
            outcome.inserted += pages.inserted;
            outcome.skipped += pages.skipped;
        }
        let prefill = started.elapsed();
        println!(
            "freebusy bench: backend={backend} result=prefill events={} series={} calendars={} rows_inserted={} rows_skipped={} secs={:.1} rows_per_sec={:.0}",
            self.events,
            self.series,
            self.calendars,
            outcome.inserted,
            outcome.skipped,
            prefill.as_secs_f64(),
            outcome.inserted as f64 / prefill.as_secs_f64().max(1e-9),
        );

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let index = Arc::new(SeriesIndex::new(
            store.clone(),
            store.clone(),
            clock.clone(),
        ));
        let service = FreeBusyService::new(
            index.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
            unused_provider().await?,
            clock,
        );
        let mut rng = StdRng::seed_from_u64(SEED ^ 0xf7ee);
        // The requests are built from these (the zone's type is chrono-tz's,
        // which the lab does not name).
        let freebusy_shape = FreeBusyRequest {
            time_min: base,
            time_max: base + Duration::days(FREEBUSY_DAYS),
            zone: ZONE.parse().map_err(|e| format!("zone {ZONE}: {e}"))?,
            calendars: Vec::new(),
            fallback: false,
        };
        let availability_shape = AvailabilityQuery {
            groups: Vec::new(),
            duration: Duration::minutes(30),
            interval: Duration::minutes(15),
            buffer: Duration::minutes(5),
            periods: Vec::new(),
            zone: freebusy_shape.zone,
        };
        let freebusy_request =
            |rng: &mut StdRng| freebusy_request(rng, &calendars, base, &freebusy_shape);
        let availability_query =
            |rng: &mut StdRng| availability_query(rng, &calendars, base, &availability_shape);

        // The first request on a fresh index reads its calendars' series.
        let request = freebusy_request(&mut rng);
        let started = Instant::now();
        service.free_busy(&request).await?;
        let cold = started.elapsed();
        // Then every calendar, as a server that has run a while holds them
        // (one is read whole again only after `MAX_AGE`), and one request more.
        let started = Instant::now();
        for chunk in calendars.chunks(FREEBUSY_CALENDARS) {
            index.calendars(chunk).await?;
        }
        let index_all = started.elapsed();
        service.free_busy(&freebusy_request(&mut rng)).await?;

        let (mut freebusy, mut reads) = (Vec::new(), Vec::new());
        let (mut answers, mut intervals) = (0usize, 0usize);
        for _ in 0..self.requests {
            let request = freebusy_request(&mut rng);
            let started = Instant::now();
            let answer = service.free_busy(&request).await?;
            freebusy.push(started.elapsed());
            answers += answer.len();
            intervals += answer.iter().map(|a| a.busy.len()).sum::<usize>();
            if let Some(failed) = answer.iter().find(|a| !a.errors.is_empty()) {
                return Err(format!(
                    "free/busy of {} failed: {:?}",
                    failed.calendar_id, failed.errors
                )
                .into());
            }
            reads.push(single_event_reads(store.as_ref(), &index, &request).await?);
        }
        let busy_avg = intervals as f64 / answers.max(1) as f64;
        if intervals == 0 {
            return Err("free/busy answered no busy interval at all: the bench is broken".into());
        }

        let mut availability = Vec::new();
        let mut slots = 0usize;
        service.availability(&availability_query(&mut rng)).await?;
        for _ in 0..self.requests {
            let query = availability_query(&mut rng);
            let started = Instant::now();
            let answer = service.availability(&query).await?;
            availability.push(started.elapsed());
            slots += answer.slots.len();
        }
        let slots_avg = slots as f64 / self.requests.max(1) as f64;

        let (standings, standings_rows) = standings(store.as_ref()).await?;
        for samples in [&mut freebusy, &mut reads, &mut availability] {
            samples.sort();
        }
        let ms = |d: StdDuration| d.as_secs_f64() * 1000.0;
        println!(
            "freebusy bench: backend={backend} events={} series={} calendars={} requests={} freebusy_p50_ms={:.1} freebusy_p99_ms={:.1} availability_p50_ms={:.1} availability_p99_ms={:.1} cold_ms={:.1} index_all_ms={:.0} single_reads_p50_ms={:.1} single_reads_p99_ms={:.1} standings_ms={:.1} standings_rows={standings_rows} busy_intervals_avg={busy_avg:.1} slots_avg={slots_avg:.0}",
            self.events,
            self.series,
            self.calendars,
            self.requests,
            ms(percentile(&freebusy, 0.50)),
            ms(percentile(&freebusy, 0.99)),
            ms(percentile(&availability, 0.50)),
            ms(percentile(&availability, 0.99)),
            ms(cold),
            ms(index_all),
            ms(percentile(&reads, 0.50)),
            ms(percentile(&reads, 0.99)),
            ms(standings),
        );
        Ok(())
    }

    /// Calendar `c`'s rows: every `calendars`-th single event and series,
    /// and exceptions of some of its series.
    fn calendar_rows(
        &self,
        calendar: &CalendarId,
        c: usize,
        base: DateTime<Utc>,
    ) -> Vec<RemoteEvent> {
        let step = self.calendars.max(1);
        let mut rng = StdRng::seed_from_u64(SEED ^ c as u64);
        let mut rows: Vec<RemoteEvent> = (c..self.events)
            .step_by(step)
            .map(|i| single_event(&mut rng, calendar, i, base))
            .collect();
        for j in (c..self.series).step_by(step) {
            let master = series_master(calendar, j, base);
            rows.extend(exceptions(&master, j, base));
            rows.push(master);
        }
        rows
    }
}

/// One full run of `rows` in pages, the last completing it (so the
/// calendar has a sync state), and the calendar registered as managed.
async fn prefill_calendar(
    store: &dyn Store,
    calendar: &CalendarId,
    mut rows: Vec<RemoteEvent>,
) -> Result<PageOutcome, LabError> {
    let now = Utc::now();
    store
        .upsert_calendar(&ManagedCalendar {
            calendar_id: calendar.clone(),
            subject: None,
            grant: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    let run = SyncRun::Full {
        run_id: "bench-freebusy".into(),
        started_at: now,
    };
    let mut outcome = PageOutcome::default();
    loop {
        let rest = rows.split_off(rows.len().min(PAGE));
        let last = rest.is_empty();
        let page = store
            .apply_sync_page(&SyncPage {
                calendar_id: calendar.clone(),
                run: run.clone(),
                events: std::mem::replace(&mut rows, rest),
                completion: last.then(|| SyncCompletion {
                    next_sync_token: "bench-freebusy".into(),
                }),
                retention_cutoff: None,
                now: Utc::now(),
            })
            .await?;
        outcome.inserted += page.inserted;
        outcome.skipped += page.skipped;
        if last {
            return Ok(outcome);
        }
    }
}

/// Single event `i`: 30 to 120 minutes within `SPREAD_DAYS` of `base`;
/// one in ten all-day, one in twenty transparent, one in twenty declined
/// by the calendar.
fn single_event(
    rng: &mut StdRng,
    calendar: &CalendarId,
    i: usize,
    base: DateTime<Utc>,
) -> RemoteEvent {
    let mut event = synthetic_event(calendar.as_str(), i, 1);
    let start = base - Duration::days(SPREAD_DAYS)
        + Duration::minutes(rng.random_range(0..SPREAD_DAYS * 2 * 24 * 12) * 5);
    let (start_time, end_time) = if i.is_multiple_of(10) {
        let day = start.date_naive();
        (
            EventTime::date(day),
            EventTime::date(day + Duration::days(1)),
        )
    } else {
        let minutes = rng.random_range(2..=8) * 15;
        (
            EventTime::at(start, None),
            EventTime::at(start + Duration::minutes(minutes), None),
        )
    };
    set_times(&mut event, start_time, end_time);
    match i % 20 {
        1 => event.details.transparency = Some("transparent".into()),
        2 => decline(&mut event, calendar),
        _ => {}
    }
    event
}

/// Series `j`, as `bench series` mirrors them: weekly, every other day or
/// monthly, started over the past year; some bounded by COUNT.
fn series_master(calendar: &CalendarId, j: usize, base: DateTime<Utc>) -> RemoteEvent {
    let mut event = synthetic_event(calendar.as_str(), j, 1);
    event.id = series_id(j);
    let start = series_start(j, base);
    let minutes = 30 * (1 + i64::try_from(j % 3).unwrap_or(0));
    set_times(
        &mut event,
        EventTime::at(start, None),
        EventTime::at(start + Duration::minutes(minutes), None),
    );
    event.recurrence = vec![match j % 6 {
        0 => "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR".into(),
        3 => "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=40".into(),
        1 | 4 => "RRULE:FREQ=DAILY;INTERVAL=2".into(),
        _ => "RRULE:FREQ=MONTHLY;COUNT=24".into(),
    }];
    if j % 10 == 9 {
        decline(&mut event, calendar);
    }
    event
}

fn series_id(j: usize) -> EventId {
    EventId::for_local(LocalEventId::from_uuid(uuid::Uuid::from_u128(
        (1 << 64) + j as u128,
    )))
}

fn series_start(j: usize, base: DateTime<Utc>) -> DateTime<Utc> {
    base - Duration::hours(i64::try_from(j.wrapping_mul(7919) % 8760).unwrap_or(0))
}

/// For one in five every-other-day series: an occurrence near now moved
/// three hours later, and the next one cancelled.
fn exceptions(master: &RemoteEvent, j: usize, base: DateTime<Utc>) -> Vec<RemoteEvent> {
    if j % 6 != 1 || j % 5 != 1 {
        return Vec::new();
    }
    let start = series_start(j, base);
    let length = Duration::minutes(60);
    // The occurrence within a month of now (every other day from `start`).
    let offset = i64::try_from(j % 60).unwrap_or(0) - 30;
    let k = (((base - start).num_days() + offset) / 2).max(0);
    [(k, false), (k + 1, true)]
        .into_iter()
        .filter_map(|(k, cancelled)| {
            let original = start + Duration::days(2 * k);
            let original_time = EventTime::at(original, None);
            let id = EventId::new(format!(
                "{}_{}",
                master.id,
                calsync_domain::recurrence::instance_suffix(&original_time)
            ))
            .ok()?;
            let mut exception = master.clone();
            exception.id = id;
            exception.recurrence = Vec::new();
            exception.recurring_event_id = Some(master.id.clone());
            exception.original_start = Some(original_time);
            if cancelled {
                exception.status = EventStatus::Cancelled;
            } else {
                let moved = original + Duration::hours(3);
                set_times(
                    &mut exception,
                    EventTime::at(moved, None),
                    EventTime::at(moved + length, None),
                );
            }
            Some(exception)
        })
        .collect()
}

/// Sets the event's times, in its columns and in Google's copy alike.
fn set_times(event: &mut RemoteEvent, start: EventTime, end: EventTime) {
    let json = |time: &EventTime| match time {
        EventTime::AllDay { date } => serde_json::json!({"date": date.to_string()}),
        EventTime::At { at, .. } => serde_json::json!({"dateTime": at.to_rfc3339()}),
    };
    if let Some(google) = event.google.as_mut().and_then(|g| g.as_object_mut()) {
        google.insert("start".into(), json(&start));
        google.insert("end".into(), json(&end));
    }
    event.start = Some(start);
    event.end = Some(end);
}

/// The calendar among the attendees, having declined.
fn decline(event: &mut RemoteEvent, calendar: &CalendarId) {
    if let Ok(mut own) = Attendee::new(calendar.as_str()) {
        own.response_status = Some("declined".into());
        event.attendees.push(own);
    }
}

/// 50 random calendars over a random 30-day window within a month of now.
fn freebusy_request(
    rng: &mut StdRng,
    calendars: &[CalendarId],
    base: DateTime<Utc>,
    shape: &FreeBusyRequest,
) -> FreeBusyRequest {
    let time_min = base + Duration::minutes(rng.random_range(-30 * 24 * 60..30 * 24 * 60));
    FreeBusyRequest {
        time_min,
        time_max: time_min + Duration::days(FREEBUSY_DAYS),
        calendars: pick(rng, calendars, FREEBUSY_CALENDARS),
        ..shape.clone()
    }
}

/// 10 random calendars that must all be free: 30-minute slots on a
/// 15-minute grid with 5 minutes' buffer, 08:00 to 18:00 UTC on each of
/// 14 days from a random day within a month.
fn availability_query(
    rng: &mut StdRng,
    calendars: &[CalendarId],
    base: DateTime<Utc>,
    shape: &AvailabilityQuery,
) -> AvailabilityQuery {
    let first = base.duration_trunc(Duration::days(1)).unwrap_or(base)
        + Duration::days(rng.random_range(0..30));
    let periods = (0..AVAILABILITY_DAYS)
        .filter_map(|d| {
            let day = first + Duration::days(d);
            Interval::new(day + Duration::hours(8), day + Duration::hours(18))
        })
        .collect();
    AvailabilityQuery {
        groups: vec![ParticipantGroup {
            calendar_ids: pick(rng, calendars, AVAILABILITY_CALENDARS),
            required: Required::All,
        }],
        periods,
        ..shape.clone()
    }
}

fn pick(rng: &mut StdRng, calendars: &[CalendarId], n: usize) -> Vec<CalendarId> {
    calendars.iter().cloned().choose_multiple(rng, n)
}

/// The single-event read `request` makes of the store, alone: one
/// `busy_candidates` over all its calendars, each from the window widened
/// by a day either side less its longest span (as `FreeBusyService` reads
/// them; the spans come from the warm index, as the service's do).
async fn single_event_reads(
    store: &dyn Store,
    index: &SeriesIndex,
    request: &FreeBusyRequest,
) -> Result<StdDuration, LabError> {
    let series = index.calendars(&request.calendars).await?;
    let from = request.time_min - Duration::days(1);
    let query = BusyQuery {
        calendars: series
            .iter()
            .filter_map(|s| {
                Some(BusyCalendar {
                    calendar_id: s.calendar_id.clone(),
                    starts_from: Some(from - s.longest_span()?),
                })
            })
            .collect(),
        ends_after: from,
        starts_before: request.time_max + Duration::days(1),
    };
    let started = Instant::now();
    store.busy_candidates(&query).await?;
    Ok(started.elapsed())
}

/// What every request reads to know the managed calendars: all calendar
/// records and all sync states. The time of one such read, and its rows.
async fn standings(store: &dyn Store) -> Result<(StdDuration, usize), LabError> {
    let started = Instant::now();
    let rows = store.list_calendars().await?.len() + store.list_sync_states().await?.len();
    Ok((started.elapsed(), rows))
}

/// A Google adapter nothing listens behind: with `fallback: false` the
/// service never calls it, and a call would fail loudly.
async fn unused_provider() -> Result<Arc<dyn CalendarProvider>, LabError> {
    let mut config = GoogleConfig::new(Credentials::AccessToken("bench".into()));
    config.api_base_url = "http://127.0.0.1:9/".into();
    Ok(Arc::new(
        GoogleCalendar::new(config)
            .await
            .map_err(|e| e.to_string())?,
    ))
}
