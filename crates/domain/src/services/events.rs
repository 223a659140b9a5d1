//! Events, one service along its seams: the application's writes go to the
//! mirror and the outbox in one transaction ([`writes`]); the outbox worker
//! pushes them ([`push`], with Google's calls and their refusals in
//! [`google`]); a caller may await Google's verdict on a write
//! ([`verdict`]); series are listed, read and written occurrence by
//! occurrence ([`occurrences`]).

mod failed;
mod google;
mod occurrences;
mod push;
mod verdict;
mod writes;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventQuery};
use crate::ids::LocalEventId;
use crate::outbox::OutboxRetryPolicy;
use crate::ports::{
    CalendarProvider, CalendarStore, Clock, EventStore, OutboxStore, SyncStateStore, Timer,
};

pub use failed::FailedWrite;
pub use occurrences::{
    Listed, OccurrenceQuery, OccurrenceRef, list_occurrences, list_occurrences_indexed,
};
pub use push::{DrainReport, PushOutcome};
pub use verdict::WriteVerdict;
pub use writes::Created;

/// The application's events: writes, each going to the mirror and the
/// outbox in one transaction; their push to Google; reads of the mirror.
/// Clones share one registry of callers awaiting a verdict, so a clone
/// running the outbox worker answers the routes' clone at once.
#[derive(Clone)]
pub struct EventService {
    provider: Arc<dyn CalendarProvider>,
    events: Arc<dyn EventStore>,
    outbox: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    retry: OutboxRetryPolicy,
    lease: Duration,
    /// Renews row leases while rows are pushed (and times verdict waits
    /// unless `wait_timer` does).
    timer: Option<Arc<dyn Timer>>,
    wait_timer: Option<Arc<dyn Timer>>,
    /// Where an unreachable calendar is marked for reconnecting.
    states: Option<Arc<dyn SyncStateStore>>,
    attendees_need_delegation: bool,
    /// The managed calendars, whose own subjects may invite attendees.
    calendars: Option<Arc<dyn CalendarStore>>,
    /// Callers awaiting a verdict on an event, woken by finished pushes.
    waiters: Arc<verdict::Waiters>,
    /// Series held in memory for windows over a calendar.
    series_index: Option<Arc<super::series_index::SeriesIndex>>,
}

impl EventService {
    pub fn new(
        provider: Arc<dyn CalendarProvider>,
        events: Arc<dyn EventStore>,
        outbox: Arc<dyn OutboxStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            provider,
            events,
            outbox,
            clock,
            retry: OutboxRetryPolicy::default(),
            // Long without a heartbeat (see `with_lease`).
            lease: Duration::from_secs(60),
            timer: None,
            wait_timer: None,
            states: None,
            attendees_need_delegation: false,
            calendars: None,
            waiters: Arc::default(),
            series_index: None,
        }
    }

    /// Answers windows over a calendar from `index` (see
    /// [`super::SeriesIndex`]) instead of reading every master.
    pub fn with_series_index(mut self, index: Arc<super::series_index::SeriesIndex>) -> Self {
        self.series_index = Some(index);
        self
    }

    /// Lets a write that finds its calendar unreachable mark it reconnect
    /// required (the sync worker then stops on it too).
    pub fn with_calendar_states(mut self, states: Arc<dyn SyncStateStore>) -> Self {
        self.states = Some(states);
        self
    }

    /// Refuses attendees up front when Google would (a service account
    /// acting as itself cannot invite: 403 `forbiddenForServiceAccounts`),
    /// except on calendars managed with a subject of their own (`calendars`).
    pub fn with_attendees_needing_delegation(
        mut self,
        refuse: bool,
        calendars: Option<Arc<dyn CalendarStore>>,
    ) -> Self {
        self.attendees_need_delegation = refuse;
        self.calendars = calendars;
        self
    }

    /// How long a claimed row's lease lasts; with a timer, a heartbeat
    /// renews it while the row is pushed, so a crashed worker's rows come
    /// back after `ttl` while slow pushes keep theirs. The timer also
    /// times [`EventService::verdict`]'s wait, unless
    /// [`EventService::with_wait_timer`] gives another.
    pub fn with_lease(mut self, ttl: Duration, timer: Option<Arc<dyn Timer>>) -> Self {
        self.lease = ttl;
        self.timer = timer;
        self
    }

    /// Times [`EventService::verdict`]'s waits with `timer`, whatever the
    /// leases use: the routes bring their runtime's timer, so a write's
    /// `?wait=true` waits however the service graph was configured.
    pub fn with_wait_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.wait_timer = Some(timer);
        self
    }

    pub fn with_retry_policy(mut self, retry: OutboxRetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Mirrored events, ordered by start, then id (see [`EventQuery`]).
    ///
    /// A window (`ends_after`) over a store that bounds starts only from
    /// above would read every row starting before the window ends. With a
    /// series index, rows that are not masters are read from the window's
    /// start less the longest such span on (none starting earlier reaches
    /// the window), and masters, whose span is their series', apart: the
    /// page is the first `limit` of both reads merged.
    pub async fn list(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let (Some(index), Some(from)) = (&self.series_index, query.ends_after) else {
            return self.events.list_events(query).await;
        };
        if query.kind == Some(EventKind::Master) || query.starts_from.is_some() {
            return self.events.list_events(query).await;
        }
        let masters = EventQuery {
            kind: Some(EventKind::Master),
            ..query.clone()
        };
        let Some(longest) = index.longest_span(query.calendar_id.as_ref()).await? else {
            // No row but masters: only masters can be listed.
            return match query.kind {
                Some(_) => Ok(Vec::new()),
                None => self.events.list_events(&masters).await,
            };
        };
        let bounded = EventQuery {
            starts_from: Some(
                from.checked_sub_signed(longest)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            ),
            ..query.clone()
        };
        let mut rows = self.events.list_events(&bounded).await?;
        if query.kind.is_some() {
            // A single event or exception kind: no master to add.
            return Ok(rows);
        }
        // The bounded read lists the masters starting from its bound too.
        let listed: HashSet<LocalEventId> = rows.iter().map(|e| e.id).collect();
        rows.extend(
            self.events
                .list_events(&masters)
                .await?
                .into_iter()
                .filter(|m| !listed.contains(&m.id)),
        );
        rows.sort_by_key(|e| (e.start.sort_key(), e.id));
        rows.truncate(query.limit as usize);
        Ok(rows)
    }

    /// One mirrored event; `NotFound` if there is none with that id.
    pub async fn get(&self, id: LocalEventId) -> Result<Event> {
        self.events
            .get_event(id)
            .await?
            .ok_or(Error::NotFound { what: "event" })
    }
}
