//! The recurring series of calendars, held in memory and kept exact by the
//! change feed, so a window over thousands of series costs lookups rather
//! than a read of every master and a walk of every rule from its start.
//!
//! Each request first reads the feed's latest cursor (one indexed query).
//! When it moved, the changes since are applied in cursor order: every
//! write to the mirror records the event as written in the same
//! transaction, and the feed's order is commit order (ARCHITECTURE.md), so
//! applying them leaves the index as the database holds it, with several
//! replicas writing too. A calendar is read whole on its first use, when
//! too many changes piled up, when the feed no longer holds the index's
//! cursor, and after [`MAX_AGE`] (a bound on any write path that might not
//! record its change).
//!
//! Each master keeps its occurrence starts expanded from a little before
//! the windows asked for up to a horizon ahead ([`HORIZON`]); a window
//! outside what a master has expanded walks the rule directly, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use futures_util::lock::Mutex as AsyncMutex;

use crate::error::{Error, Result};
use crate::event::{Event, EventKind, EventQuery, EventStatus};
use crate::feed::{ChangeQuery, Cursor, MAX_READ};
use crate::ids::{CalendarId, EventId};
use crate::ports::{ChangeFeedStore, Clock, EventStore};
use crate::recurrence::{Occurrence, Series, instance_suffix};

/// How far past the windows asked for a master's occurrences are expanded.
pub const HORIZON: Duration = Duration::days(120);
/// How far before the earliest window asked for expansions are kept.
const LOOKBEHIND: Duration = Duration::days(31);
/// Most occurrence starts one master keeps (a minutely rule would
/// otherwise fill memory); windows past them walk the rule.
const MAX_STARTS: usize = 20_000;
/// A calendar is read whole again after this long, whatever the feed says.
pub const MAX_AGE: Duration = Duration::minutes(15);
/// More changes than this since the last request: calendars are read
/// whole again rather than replayed change by change.
const MAX_REPLAY: u64 = 5_000;
/// Rows per read when a calendar is loaded.
const BATCH: u32 = 1000;

/// One master and the occurrence starts expanded so far.
#[derive(Debug)]
pub struct IndexedMaster {
    event: Arc<Event>,
    /// `None`: a rule calsync cannot expand (listed as its master row).
    series: Option<Series>,
    expansion: Mutex<Expansion>,
}

#[derive(Debug, Default)]
struct Expansion {
    /// Occurrence starts (Unix seconds) in `[from, until)`, in order.
    starts: Vec<i64>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl IndexedMaster {
    fn new(event: Arc<Event>) -> Self {
        let series = event.series().and_then(Result::ok);
        Self {
            event,
            series,
            expansion: Mutex::new(Expansion::default()),
        }
    }

    pub fn event(&self) -> &Event {
        &self.event
    }

    pub fn series(&self) -> Option<&Series> {
        self.series.as_ref()
    }

    fn expansion(&self) -> MutexGuard<'_, Expansion> {
        // Expansions are rebuilt from the rule; a panic elsewhere leaves
        // nothing here that cannot be used.
        self.expansion
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Occurrences that end after `from` and start before `until`, in
    /// order, as [`Series::between`] yields them. Empty for an unreadable rule.
    pub fn occurrences_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Occurrence> {
        let Some(series) = &self.series else {
            return Vec::new();
        };
        self.starts_between(from, until, now)
            .into_iter()
            .map(|start| series.occurrence(start))
            .collect()
    }

    /// The starts of [`IndexedMaster::occurrences_between`], which is what
    /// ordering a window needs; [`Series::occurrence`] makes the rest.
    pub fn starts_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let Some(series) = &self.series else {
            return Vec::new();
        };
        let length = self.length();
        // An occurrence overlapping `from` started at most `length` before
        // it (a window from the beginning of time stays there).
        let earliest_start = from
            .checked_sub_signed(length)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut expansion = self.expansion();
        let covered = |e: &Expansion| {
            e.from.is_some_and(|f| f <= earliest_start) && e.until.is_some_and(|u| u >= until)
        };
        if !covered(&expansion) {
            let want_from = expansion
                .from
                .map_or(earliest_start, |f| f.min(earliest_start))
                .min(now.checked_sub_signed(LOOKBEHIND).unwrap_or(now));
            let want_until = expansion
                .until
                .map_or(until, |u| u.max(until))
                .max(now.checked_add_signed(HORIZON).unwrap_or(now));
            *expansion = expand(series, want_from, want_until);
        }
        if !covered(&expansion) {
            // More occurrences than one master keeps: walk the rule.
            return series
                .between(Some(from), Some(until))
                .map(|o| o.start.sort_key())
                .collect();
        }
        let from_secs = from.timestamp();
        let first = expansion
            .starts
            .partition_point(|start| start.saturating_add(length.num_seconds()) <= from_secs);
        let until_secs = until.timestamp();
        expansion.starts[first..]
            .iter()
            .take_while(|start| **start < until_secs)
            .filter_map(|start| DateTime::from_timestamp(*start, 0))
            .collect()
    }

    fn length(&self) -> Duration {
        self.series
            .as_ref()
            .map_or_else(Duration::zero, Series::length)
    }
}

/// The starts in `[from, until)`, or as many as [`MAX_STARTS`] allows
/// (then `until` is where they stop being complete).
fn expand(series: &Series, from: DateTime<Utc>, until: DateTime<Utc>) -> Expansion {
    let mut starts = Vec::new();
    let mut complete_until = until;
    for occurrence in series.occurrences() {
        let start = occurrence.start.sort_key();
        if start >= until {
            break;
        }
        if start < from {
            continue;
        }
        if starts.len() == MAX_STARTS {
            complete_until = start;
            break;
        }
        starts.push(start.timestamp());
    }
    Expansion {
        starts,
        from: Some(from),
        until: Some(complete_until),
    }
}

/// One calendar's live masters and every exception of them.
#[derive(Debug, Clone)]
pub struct CalendarSeries {
    pub calendar_id: CalendarId,
    loaded_at: DateTime<Utc>,
    masters: HashMap<EventId, Arc<IndexedMaster>>,
    /// By series (the master's Google id), then by occurrence suffix.
    exceptions: HashMap<EventId, HashMap<String, Arc<Event>>>,
    /// At least the longest span of the calendar's rows that are not
    /// masters (see [`EventStore::longest_span`]; raised by every such row
    /// replayed, never lowered until a reload), so a window's single events
    /// and exceptions can be read from `window start - this` on.
    longest_span: Option<Duration>,
}

impl CalendarSeries {
    fn empty(calendar_id: CalendarId, loaded_at: DateTime<Utc>) -> Self {
        Self {
            calendar_id,
            loaded_at,
            masters: HashMap::new(),
            exceptions: HashMap::new(),
            longest_span: None,
        }
    }

    /// See the field; `None`: the calendar has no row but masters.
    pub fn longest_span(&self) -> Option<Duration> {
        self.longest_span
    }

    /// Live (not cancelled) masters, in no order.
    pub fn masters(&self) -> impl Iterator<Item = &Arc<IndexedMaster>> {
        self.masters.values()
    }

    /// The exceptions of `series`, by occurrence suffix.
    pub fn exceptions_of(&self, series: &EventId) -> Option<&HashMap<String, Arc<Event>>> {
        self.exceptions.get(series)
    }

    /// Every exception of a live master, cancelled ones included.
    pub fn exceptions(&self) -> impl Iterator<Item = &Arc<Event>> {
        self.exceptions
            .iter()
            .filter(|(series, _)| self.masters.contains_key(*series))
            .flat_map(|(_, by_suffix)| by_suffix.values())
    }

    /// Applies one row as written: a master replaces its entry (or leaves
    /// when cancelled or no longer a master), an exception its slot.
    fn apply(&mut self, event: &Event) {
        // A row that was a master and no longer is (its recurrence removed).
        let was_master = self
            .masters
            .get(&event.google_event_id)
            .is_some_and(|m| m.event.id == event.id);
        match event.kind() {
            EventKind::Master if event.status != EventStatus::Cancelled => {
                self.masters.insert(
                    event.google_event_id.clone(),
                    Arc::new(IndexedMaster::new(Arc::new(event.clone()))),
                );
            }
            EventKind::Exception => {
                if let (Some(series), Some(original)) =
                    (&event.recurring_event_id, &event.original_start)
                {
                    self.exceptions
                        .entry(series.clone())
                        .or_default()
                        .insert(instance_suffix(original), Arc::new(event.clone()));
                }
            }
            _ if was_master => {
                self.masters.remove(&event.google_event_id);
            }
            _ => {}
        }
        self.longest_span = raised(self.longest_span, event);
    }
}

/// `longest` raised to `event`'s span when it is not a master (whose
/// span is its series', bounded apart).
fn raised(longest: Option<Duration>, event: &Event) -> Option<Duration> {
    if event.kind() == EventKind::Master {
        return longest;
    }
    let span = event.end.sort_key() - event.start.sort_key();
    Some(longest.map_or(span, |l| l.max(span)))
}

#[derive(Default)]
struct State {
    /// Every change up to here is applied to `calendars` and `longest_span`.
    cursor: Option<Cursor>,
    calendars: HashMap<CalendarId, Arc<CalendarSeries>>,
    /// [`CalendarSeries::longest_span`] over every calendar, with when it
    /// was read (a listing of all calendars is bounded by it).
    longest_span: Option<(DateTime<Utc>, Option<Duration>)>,
}

/// The series index. One per process; cheap to share.
pub struct SeriesIndex {
    events: Arc<dyn EventStore>,
    feed: Arc<dyn ChangeFeedStore>,
    clock: Arc<dyn Clock>,
    state: AsyncMutex<State>,
}

impl std::fmt::Debug for SeriesIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesIndex").finish_non_exhaustive()
    }
}

impl SeriesIndex {
    pub fn new(
        events: Arc<dyn EventStore>,
        feed: Arc<dyn ChangeFeedStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            events,
            feed,
            clock,
            state: AsyncMutex::new(State::default()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The series of `calendars` as the database holds them now, in the
    /// order asked.
    pub async fn calendars(&self, calendars: &[CalendarId]) -> Result<Vec<Arc<CalendarSeries>>> {
        let mut state = self.state.lock().await;
        self.catch_up(&mut state).await?;
        let now = self.clock.now();
        let mut out = Vec::with_capacity(calendars.len());
        for calendar_id in calendars {
            let fresh = state
                .calendars
                .get(calendar_id)
                .filter(|c| now - c.loaded_at < MAX_AGE)
                .cloned();
            let series = match fresh {
                Some(series) => series,
                None => {
                    let loaded = Arc::new(self.load(calendar_id, now).await?);
                    state.calendars.insert(calendar_id.clone(), loaded.clone());
                    loaded
                }
            };
            out.push(series);
        }
        Ok(out)
    }

    /// At least the longest span of the rows that are not masters, in
    /// `calendar` or, with `None`, in every calendar (see
    /// [`EventStore::longest_span`]), as the database holds them now;
    /// `None` with no such row. Read from the store on first use and after
    /// [`MAX_AGE`], raised by the changes since.
    pub async fn longest_span(&self, calendar: Option<&CalendarId>) -> Result<Option<Duration>> {
        if let Some(calendar) = calendar {
            let series = self.calendars(std::slice::from_ref(calendar)).await?;
            return Ok(series.first().and_then(|s| s.longest_span()));
        }
        let mut state = self.state.lock().await;
        self.catch_up(&mut state).await?;
        let now = self.clock.now();
        match state.longest_span {
            Some((read_at, longest)) if now - read_at < MAX_AGE => Ok(longest),
            _ => {
                let longest = self.events.longest_span(None).await?;
                state.longest_span = Some((now, longest));
                Ok(longest)
            }
        }
    }

    /// Applies the feed's changes since the last request, or forgets what
    /// it cannot bring up to date that way.
    async fn catch_up(&self, state: &mut State) -> Result<()> {
        let latest = self.feed.latest_cursor().await?;
        match state.cursor {
            Some(cursor) if cursor >= latest => {}
            Some(cursor) if latest.seq().saturating_sub(cursor.seq()) <= MAX_REPLAY => {
                if !self.replay(state, cursor, latest).await? {
                    state.calendars.clear();
                    state.longest_span = None;
                }
            }
            _ => {
                state.calendars.clear();
                state.longest_span = None;
            }
        }
        state.cursor = Some(state.cursor.map_or(latest, |c| c.max(latest)));
        Ok(())
    }

    /// Applies the changes after `from` up to `latest`; `false` when the
    /// feed no longer holds them.
    async fn replay(&self, state: &mut State, from: Cursor, latest: Cursor) -> Result<bool> {
        let mut query = ChangeQuery {
            after: Some(from),
            limit: MAX_READ,
            ..ChangeQuery::default()
        };
        loop {
            let batch = match self.feed.read_changes(&query).await {
                Ok(batch) => batch,
                Err(Error::CursorExpired { .. }) => return Ok(false),
                Err(error) => return Err(error),
            };
            for change in &batch.items {
                let Some(event) = &change.change.event else {
                    continue;
                };
                if let Some((_, longest)) = &mut state.longest_span {
                    *longest = raised(*longest, event);
                }
                if let Some(series) = state.calendars.get_mut(&event.calendar_id) {
                    Arc::make_mut(series).apply(event);
                }
            }
            let done = batch.items.is_empty() || batch.next_cursor >= latest;
            query.after = Some(batch.next_cursor);
            if done {
                state.cursor = Some(batch.next_cursor.max(latest));
                return Ok(true);
            }
        }
    }

    /// Reads a calendar's masters and exceptions whole.
    async fn load(&self, calendar_id: &CalendarId, now: DateTime<Utc>) -> Result<CalendarSeries> {
        let mut series = CalendarSeries::empty(calendar_id.clone(), now);
        series.longest_span = self.events.longest_span(Some(calendar_id)).await?;
        for kind in [EventKind::Master, EventKind::Exception] {
            let mut query = EventQuery {
                calendar_id: Some(calendar_id.clone()),
                kind: Some(kind),
                limit: BATCH,
                ..EventQuery::default()
            };
            loop {
                let batch = self.events.list_events(&query).await?;
                let full = batch.len() == BATCH as usize;
                query.after = batch.last().map(|e| (e.start.sort_key(), e.id));
                for event in &batch {
                    series.apply(event);
                }
                if !full {
                    break;
                }
            }
        }
        Ok(series)
    }
}
