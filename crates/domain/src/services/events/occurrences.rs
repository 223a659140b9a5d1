//! Recurring series as a calendar shows them: a window's occurrences, the
//! way Google's `singleEvents=true` expands them, and writes to one
//! occurrence, which become exceptions at Google.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::event::{Event, EventChanges, EventKind, EventQuery, EventStatus, PushState};
use crate::ids::{CalendarId, Etag, EventId, LocalEventId};
use crate::outbox::{OutboxEntry, OutboxOp, PatchIntent};
use crate::ports::EventStore;
use crate::recurrence::{Occurrence, Series, split_instance_id};
use crate::services::series_index::{IndexedMaster, SeriesIndex};

use super::EventService;

/// Masters and exceptions are read in batches of this many rows.
const BATCH: u32 = 1000;

/// An event as a window lists it: a stored row, or one occurrence of a
/// stored series that has no row of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Row(Event),
    Occurrence {
        /// The master's local id.
        master: LocalEventId,
        /// `YYYYMMDDTHHMMSSZ` or `YYYYMMDD`: the occurrence's original start.
        suffix: String,
        /// The occurrence as an event: the master's content at the
        /// occurrence's times, `recurring_event_id` and `original_start`
        /// set, and Google's instance id `{masterId}_{suffix}`.
        event: Event,
    },
}

impl Listed {
    /// The id this API uses: a row's local id, or `{masterLocalId}_{suffix}`.
    pub fn id(&self) -> String {
        match self {
            Self::Row(event) => event.id.to_string(),
            Self::Occurrence { master, suffix, .. } => format!("{master}_{suffix}"),
        }
    }

    pub fn event(&self) -> &Event {
        match self {
            Self::Row(event) | Self::Occurrence { event, .. } => event,
        }
    }

    /// Where this item sorts: by start, then by [`Listed::id`].
    fn key(&self) -> Key {
        match self {
            Self::Row(event) => Key {
                at: event.start.sort_key(),
                id: event.id.as_uuid(),
                occurrence: false,
            },
            Self::Occurrence { master, event, .. } => Key {
                at: event.start.sort_key(),
                id: master.as_uuid(),
                occurrence: true,
            },
        }
    }
}

/// A listing's order, `(start, id)`, without writing the id: a UUID's
/// bytes order as its lowercase hyphenated text does, a row's id
/// (`{uuid}`) sorts before its occurrences' (`{uuid}_{suffix}`), and one
/// series has one occurrence per start, so this orders as the text would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at: DateTime<Utc>,
    id: uuid::Uuid,
    occurrence: bool,
}

impl Key {
    /// The key of a `(start, id)` cursor; `None` for an id this API never made.
    fn of_cursor((at, id): &(DateTime<Utc>, String)) -> Option<Self> {
        let (row, occurrence) = match id.split_once('_') {
            Some((row, _)) => (row, true),
            None => (id.as_str(), false),
        };
        Some(Self {
            at: *at,
            id: row.parse().ok()?,
            occurrence,
        })
    }
}

/// An API id naming one occurrence: `{masterLocalId}_{suffix}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceRef {
    pub master: LocalEventId,
    pub suffix: String,
}

impl OccurrenceRef {
    /// Reads `{uuid}_{suffix}`; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        let (master, suffix) = split_instance_id(id)?;
        let master = master.parse::<uuid::Uuid>().ok()?;
        Some(Self {
            master: LocalEventId::from_uuid(master),
            suffix: suffix.to_owned(),
        })
    }
}

/// A window of occurrences. `until` is required: an endless series has
/// no last occurrence to stop at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceQuery {
    /// Calendar, entity, status (not `cancelled`) and event type filters;
    /// its window and paging fields are ignored.
    pub filter: EventQuery,
    pub from: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
    /// Resume after this `(start, id)` position.
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: u32,
}

/// The occurrence of `master` named by `occurrence`, as an event (`None`
/// if its instance id would be longer than Google allows).
fn occurrence_event(master: &Event, occurrence: Occurrence) -> Option<Event> {
    let suffix = occurrence.suffix();
    let mut event = master.clone();
    event.google_event_id = instance_id(&master.google_event_id, &suffix)?;
    event.recurrence = Vec::new();
    event.recurring_event_id = Some(master.google_event_id.clone());
    event.original_start = Some(occurrence.original_start);
    event.start = occurrence.start;
    event.end = occurrence.end;
    // Google gives each occurrence its own etag; the master's does not vouch for it.
    event.etag = None;
    event.google = None;
    Some(event)
}

fn instance_id(master: &EventId, suffix: &str) -> Option<EventId> {
    EventId::new(format!("{master}_{suffix}")).ok()
}

/// The occurrence suffixes a series' exceptions replace.
#[derive(Clone, Copy)]
enum Replaced<'a> {
    None,
    Set(&'a HashSet<String>),
    Map(&'a HashMap<String, Arc<Event>>),
}

impl Replaced<'_> {
    fn contains(&self, suffix: &str) -> bool {
        match self {
            Self::None => false,
            Self::Set(set) => set.contains(suffix),
            Self::Map(map) => map.contains_key(suffix),
        }
    }
}

/// A series' occurrence starts, lazily, with those its exceptions replace
/// left out. Only the page's occurrences become events.
struct Stream<'a> {
    master: &'a Event,
    series: &'a Series,
    starts: Box<dyn Iterator<Item = DateTime<Utc>> + 'a>,
    replaced: Replaced<'a>,
}

impl Stream<'_> {
    fn next_pending(&mut self) -> Option<(Key, DateTime<Utc>)> {
        for start in self.starts.by_ref() {
            if !matches!(self.replaced, Replaced::None)
                && self
                    .replaced
                    .contains(&self.series.occurrence(start).suffix())
            {
                continue;
            }
            let key = Key {
                at: start,
                id: self.master.id.as_uuid(),
                occurrence: true,
            };
            return Some((key, start));
        }
        None
    }

    fn listed(&self, start: DateTime<Utc>) -> Option<Listed> {
        let occurrence = self.series.occurrence(start);
        let suffix = occurrence.suffix();
        let event = occurrence_event(self.master, occurrence)?;
        Some(Listed::Occurrence {
            master: self.master.id,
            suffix,
            event,
        })
    }
}

impl EventService {
    /// [`list_occurrences`] on this service's store, through its series
    /// index when it has one and the window names a calendar.
    pub async fn list_occurrences(&self, query: &OccurrenceQuery) -> Result<Vec<Listed>> {
        match &self.series_index {
            Some(index) => list_occurrences_indexed(self.events.as_ref(), index, query).await,
            None => list_occurrences(self.events.as_ref(), query).await,
        }
    }
}

/// A page of the window's events with series expanded: rows that are
/// not series, live exceptions, and occurrences without an exception,
/// ordered by `(start, id)`. Cancelled occurrences and EXDATEs are left
/// out. Reads every live series overlapping the window but expands only
/// as far as the page needs, so a request costs one pass over the
/// window's series plus `limit` occurrences.
pub async fn list_occurrences(
    events: &dyn EventStore,
    query: &OccurrenceQuery,
) -> Result<Vec<Listed>> {
    list_occurrences_within(events, query, Longest::Unknown).await
}

/// [`list_occurrences`], its single events read knowing `longest`.
async fn list_occurrences_within(
    events: &dyn EventStore,
    query: &OccurrenceQuery,
    longest: Longest,
) -> Result<Vec<Listed>> {
    let window = window_of(query)?;
    let (masters, exceptions) = window_series(events, &window).await?;
    let singles = window_singles(events, &window, query, longest).await?;

    // Exceptions replace their occurrence (cancelled ones hide it);
    // live ones in the window are listed as rows.
    let mut replaced: HashMap<(CalendarId, EventId), HashSet<String>> = HashMap::new();
    let mut rows: Vec<Listed> = singles.into_iter().map(Listed::Row).collect();
    for exception in exceptions {
        let (Some(series), Some(original)) =
            (&exception.recurring_event_id, &exception.original_start)
        else {
            continue;
        };
        replaced
            .entry((exception.calendar_id.clone(), series.clone()))
            .or_default()
            .insert(crate::recurrence::instance_suffix(original));
        if exception_listed(&exception, query) {
            rows.push(Listed::Row(exception));
        }
    }

    let mut parsed: Vec<(&Event, Series)> = Vec::with_capacity(masters.len());
    for master in &masters {
        match master.series() {
            Some(Ok(series)) => parsed.push((master, series)),
            // A line calsync cannot expand (`Event::series_unreadable`):
            // the master is listed as stored, at its own start, in every
            // window the series may overlap, rather than silently dropped.
            Some(Err(_)) => rows.push(Listed::Row(master.clone())),
            None => {}
        }
    }
    let streams: Vec<Stream<'_>> = parsed
        .iter()
        .map(|(master, series)| Stream {
            master,
            series,
            starts: Box::new(
                series
                    .between(query.from, Some(query.until))
                    .map(|o| o.start.sort_key()),
            ),
            replaced: replaced
                .get(&(master.calendar_id.clone(), master.google_event_id.clone()))
                .map_or(Replaced::None, Replaced::Set),
        })
        .collect();
    merge_page(query, rows, streams)
}

/// [`list_occurrences`] with the masters and exceptions of the window's
/// calendar read from `index` instead of the store; the same answer. A
/// window over every calendar reads the store.
pub async fn list_occurrences_indexed(
    events: &dyn EventStore,
    index: &SeriesIndex,
    query: &OccurrenceQuery,
) -> Result<Vec<Listed>> {
    let Some(calendar_id) = &query.filter.calendar_id else {
        // Every calendar's series are read from the store, and the single
        // events from the longest span over all calendars on.
        let longest = Longest::Known(index.longest_span(None).await?);
        return list_occurrences_within(events, query, longest).await;
    };
    let window = window_of(query)?;
    let calendars = index.calendars(std::slice::from_ref(calendar_id)).await?;
    let Some(calendar) = calendars.first() else {
        return Ok(Vec::new());
    };
    let longest = Longest::Known(calendar.longest_span());
    let singles = window_singles(events, &window, query, longest).await?;
    let filter = &query.filter;
    let wanted = |event: &Event| {
        filter
            .entity
            .as_ref()
            .is_none_or(|entity| event.entity.as_ref() == Some(entity))
            && filter
                .event_type
                .as_ref()
                .is_none_or(|kind| &event.event_type == kind)
            && filter.status.is_none_or(|status| status == event.status)
    };
    let masters: Vec<&Arc<IndexedMaster>> =
        calendar.masters().filter(|m| wanted(m.event())).collect();
    let mut rows: Vec<Listed> = singles.into_iter().map(Listed::Row).collect();
    for master in &masters {
        let Some(exceptions) = calendar.exceptions_of(&master.event().google_event_id) else {
            continue;
        };
        rows.extend(
            exceptions
                .values()
                .filter(|e| exception_listed(e, query))
                .map(|e| Listed::Row((**e).clone())),
        );
    }
    let now = index.now();
    let from = query.from.unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut streams = Vec::with_capacity(masters.len());
    for master in &masters {
        let event = master.event();
        if master.series().is_none() {
            // Unreadable: listed as stored while the series may overlap.
            if event.start.sort_key() < query.until {
                rows.push(Listed::Row(event.clone()));
            }
            continue;
        }
        let Some(series) = master.series() else {
            continue;
        };
        let starts = master.starts_between(from, query.until, now);
        if starts.is_empty() {
            continue;
        }
        streams.push(Stream {
            master: event,
            series,
            starts: Box::new(starts.into_iter()),
            replaced: calendar
                .exceptions_of(&event.google_event_id)
                .map_or(Replaced::None, Replaced::Map),
        });
    }
    merge_page(query, rows, streams)
}

/// The store query for a window's rows; refuses a window of cancelled events.
fn window_of(query: &OccurrenceQuery) -> Result<EventQuery> {
    if query.filter.status == Some(EventStatus::Cancelled) {
        return Err(Error::invalid(
            "status",
            "a window of occurrences lists live events only",
        ));
    }
    Ok(EventQuery {
        ends_after: query.from,
        starts_before: Some(query.until),
        after: None,
        of_series: Vec::new(),
        ..query.filter.clone()
    })
}

/// Whether a series' exception is listed as a row of the window.
fn exception_listed(exception: &Event, query: &OccurrenceQuery) -> bool {
    let in_window = query
        .from
        .is_none_or(|from| exception.end.sort_key() > from)
        && exception.start.sort_key() < query.until;
    exception.status != EventStatus::Cancelled
        && in_window
        && query.filter.status.is_none_or(|s| s == exception.status)
}

/// Merges the rows and the series' occurrences into the page after the
/// query's cursor: a k-way merge whose heap holds each source's next item.
fn merge_page(
    query: &OccurrenceQuery,
    mut rows: Vec<Listed>,
    mut streams: Vec<Stream<'_>>,
) -> Result<Vec<Listed>> {
    let cursor = match &query.after {
        Some(after) => Some(
            Key::of_cursor(after)
                .ok_or_else(|| Error::invalid("pageToken", "is not a token this API returned"))?,
        ),
        None => None,
    };
    let past = |key: &Key| cursor.is_none_or(|cursor| *key > cursor);
    let mut heap = BinaryHeap::new();
    let mut pending: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(streams.len());
    for (index, stream) in streams.iter_mut().enumerate() {
        let mut next = stream.next_pending();
        while next.as_ref().is_some_and(|(key, _)| !past(key)) {
            next = stream.next_pending();
        }
        if let Some((key, _)) = &next {
            heap.push(Reverse((*key, index)));
        }
        pending.push(next.map(|(_, start)| start));
    }
    rows.retain(|row| past(&row.key()));
    rows.sort_by_key(Listed::key);
    let mut rows = rows.into_iter().peekable();
    let mut out = Vec::with_capacity(query.limit as usize);
    while out.len() < query.limit as usize {
        let from_rows = match (rows.peek(), heap.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(row), Some(Reverse((key, _)))) => row.key() <= *key,
        };
        if from_rows {
            if let Some(row) = rows.next() {
                out.push(row);
            }
            continue;
        }
        let Some(Reverse((_, index))) = heap.pop() else {
            break;
        };
        if let Some(start) = pending[index].take()
            && let Some(listed) = streams[index].listed(start)
        {
            out.push(listed);
        }
        let next = streams[index].next_pending();
        if let Some((key, _)) = &next {
            heap.push(Reverse((*key, index)));
        }
        pending[index] = next.map(|(_, start)| start);
    }
    Ok(out)
}

/// Live masters overlapping the window, and all their exceptions.
async fn window_series(
    events: &dyn EventStore,
    window: &EventQuery,
) -> Result<(Vec<Event>, Vec<Event>)> {
    let mut masters = Vec::new();
    let mut query = EventQuery {
        kind: Some(EventKind::Master),
        status: None,
        limit: BATCH,
        ..window.clone()
    };
    loop {
        let batch = events.list_events(&query).await?;
        let last = batch.last().map(|e| (e.start.sort_key(), e.id));
        let full = batch.len() == BATCH as usize;
        masters.extend(batch.into_iter().filter(|m| {
            m.status != EventStatus::Cancelled
                && window.status.is_none_or(|status| status == m.status)
        }));
        match last {
            Some(position) if full => query.after = Some(position),
            _ => break,
        }
    }
    let mut exceptions = Vec::new();
    let known: HashSet<(&CalendarId, &EventId)> = masters
        .iter()
        .map(|m| (&m.calendar_id, &m.google_event_id))
        .collect();
    for chunk in masters.chunks(BATCH as usize) {
        let mut query = EventQuery {
            kind: Some(EventKind::Exception),
            of_series: chunk.iter().map(|m| m.google_event_id.clone()).collect(),
            limit: BATCH,
            ..EventQuery::default()
        };
        loop {
            let batch = events.list_events(&query).await?;
            let last = batch.last().map(|e| (e.start.sort_key(), e.id));
            let full = batch.len() == BATCH as usize;
            exceptions.extend(batch.into_iter().filter(|e| {
                e.recurring_event_id
                    .as_ref()
                    .is_some_and(|series| known.contains(&(&e.calendar_id, series)))
            }));
            match last {
                Some(position) if full => query.after = Some(position),
                _ => break,
            }
        }
    }
    Ok((masters, exceptions))
}

/// What a window's read of single events knows of their longest span.
#[derive(Debug, Clone, Copy)]
enum Longest {
    /// Nothing: single events are read from the beginning of time.
    Unknown,
    /// At least the longest span of the rows that are not masters (see
    /// `EventStore::longest_span`); `None`: there is no such row.
    Known(Option<chrono::Duration>),
}

/// At least a page of the window's live rows that are not part of a
/// series (or all there are), from the cursor on. With the longest span
/// known, only rows starting from the window's start less it are read:
/// none starting earlier reaches the window.
async fn window_singles(
    events: &dyn EventStore,
    window: &EventQuery,
    query: &OccurrenceQuery,
    longest: Longest,
) -> Result<Vec<Event>> {
    let starts_from = match longest {
        Longest::Unknown => None,
        Longest::Known(None) => return Ok(Vec::new()),
        Longest::Known(Some(longest)) => query.from.map(|from| {
            from.checked_sub_signed(longest)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        }),
    };
    let mut singles = EventQuery {
        kind: Some(EventKind::Single),
        starts_from,
        limit: query.limit.max(1),
        ..window.clone()
    };
    // Ids sort as text, and a row id is a prefix of its occurrences'.
    singles.after = query.after.as_ref().and_then(|(at, id)| {
        let row = id.split('_').next()?.parse::<uuid::Uuid>().ok()?;
        Some((*at, LocalEventId::from_uuid(row)))
    });
    let mut live = Vec::new();
    loop {
        let batch = events.list_events(&singles).await?;
        let full = batch.len() == singles.limit as usize;
        singles.after = batch.last().map(|e| (e.start.sort_key(), e.id));
        live.extend(
            batch
                .into_iter()
                .filter(|e| e.status != EventStatus::Cancelled),
        );
        if !full || live.len() >= query.limit as usize {
            return Ok(live);
        }
    }
}

impl EventService {
    /// The series `reference` names and its master.
    async fn master_of(&self, reference: &OccurrenceRef) -> Result<(Event, Series)> {
        let master = self
            .events
            .get_event(reference.master)
            .await?
            .filter(Event::is_master)
            .ok_or(Error::NotFound { what: "event" })?;
        let series = master
            .series()
            .and_then(Result::ok)
            .ok_or(Error::NotFound { what: "event" })?;
        Ok((master, series))
    }

    /// One occurrence: its exception row if it has one, else the
    /// occurrence computed from the master. An id naming no occurrence of
    /// the series is `NotFound`.
    pub async fn occurrence(&self, reference: &OccurrenceRef) -> Result<Listed> {
        let (master, series) = self.master_of(reference).await?;
        let google_id = instance_id(&master.google_event_id, &reference.suffix)
            .ok_or(Error::NotFound { what: "event" })?;
        if let Some(row) = self
            .events
            .find_by_google_id(&master.calendar_id, &google_id)
            .await?
        {
            return Ok(Listed::Row(row));
        }
        if master.status == EventStatus::Cancelled {
            return Err(Error::NotFound { what: "event" });
        }
        let event = series
            .find(&reference.suffix)
            .and_then(|occurrence| occurrence_event(&master, occurrence))
            .ok_or(Error::NotFound { what: "event" })?;
        Ok(Listed::Occurrence {
            master: master.id,
            suffix: reference.suffix.clone(),
            event,
        })
    }

    /// Changes one occurrence. The first change makes it an exception: a
    /// row of its own, pushed as a patch of Google's instance id, which
    /// Google turns into an exception of the series.
    pub async fn update_occurrence(
        &self,
        reference: &OccurrenceRef,
        changes: &EventChanges,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let virtual_event = match self.occurrence(reference).await? {
            Listed::Row(row) => return self.update(row.id, changes, if_match).await,
            Listed::Occurrence { event, .. } => event,
        };
        virtual_event.event_type.check_writable()?;
        // As `update` does: what the caller leaves out of an attendee stays.
        let mut changes = changes.clone();
        changes.fill_attendees_from(&virtual_event.attendees);
        let changes = &changes;
        if if_match.is_some() {
            return Err(Error::PreconditionFailed {
                reason: "the occurrence has no etag of its own until it is changed".into(),
            });
        }
        // An occurrence of an invitation (or a locked copy) takes only what
        // Google lets an attendee change: judged on the master's Google
        // copy, which the computed occurrence does not carry.
        let (master, _) = self.master_of(reference).await?;
        let judged = Event {
            google: master.google,
            ..virtual_event.clone()
        };
        crate::event::check_copy_change(&judged, changes)?;
        let now = self.clock.now();
        let mut fresh = virtual_event.clone();
        fresh.id = LocalEventId::new();
        fresh.created_at = now;
        let next = changes.apply_to(&fresh, now)?;
        let op = OutboxOp::Patch {
            if_match: None,
            intent: Some(Box::new(PatchIntent {
                changes: changes.clone(),
                base: changes.base_in(&virtual_event),
            })),
        };
        match self.events.insert_with_outbox(&next, op).await {
            Ok(entry) => Ok((next, entry)),
            // Another request made the exception first: change that row.
            Err(Error::Duplicate { .. }) => match self.occurrence(reference).await? {
                Listed::Row(row) => self.update(row.id, changes, None).await,
                Listed::Occurrence { .. } => Err(Error::Conflict {
                    reason: "the occurrence changed concurrently; try again".into(),
                }),
            },
            Err(error) => Err(error),
        }
    }

    /// Cancels one occurrence: a cancelled exception here, and a delete of
    /// Google's instance id, which Google keeps as a cancelled exception.
    pub async fn cancel_occurrence(
        &self,
        reference: &OccurrenceRef,
        if_match: Option<Etag>,
    ) -> Result<(Event, Option<OutboxEntry>)> {
        let virtual_event = match self.occurrence(reference).await? {
            Listed::Row(row) if row.status == EventStatus::Cancelled => return Ok((row, None)),
            Listed::Row(row) => {
                let (event, entry) = self.cancel(row.id, if_match).await?;
                return Ok((event, Some(entry)));
            }
            Listed::Occurrence { event, .. } => event,
        };
        virtual_event.event_type.check_writable()?;
        if if_match.is_some() {
            return Err(Error::PreconditionFailed {
                reason: "the occurrence has no etag of its own until it is changed".into(),
            });
        }
        let now = self.clock.now();
        let mut cancelled = virtual_event;
        cancelled.id = LocalEventId::new();
        cancelled.status = EventStatus::Cancelled;
        cancelled.push_state = PushState::Pending;
        cancelled.push_note = None;
        cancelled.created_at = now;
        cancelled.updated_at = now;
        match self
            .events
            .insert_with_outbox(&cancelled, OutboxOp::Delete)
            .await
        {
            Ok(entry) => Ok((cancelled, Some(entry))),
            Err(Error::Duplicate { .. }) => match self.occurrence(reference).await? {
                Listed::Row(row) if row.status == EventStatus::Cancelled => Ok((row, None)),
                Listed::Row(row) => {
                    let (event, entry) = self.cancel(row.id, None).await?;
                    Ok((event, Some(entry)))
                }
                Listed::Occurrence { .. } => Err(Error::Conflict {
                    reason: "the occurrence changed concurrently; try again".into(),
                }),
            },
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;
    use futures_executor::block_on;

    use super::*;
    use crate::event::{EventTime, NewEvent, NewEventFields, TimeZoneName};
    use crate::ids::EntityRef;
    use crate::testing::MemoryStore;

    fn series(store: &MemoryStore, summary: &str, lines: &[&str]) -> Event {
        let zone = TimeZoneName::new("Asia/Tokyo").unwrap();
        // 08:00 Tokyo on 1 March 2030.
        let start = Utc.with_ymd_and_hms(2030, 2, 28, 23, 0, 0).unwrap();
        let new = NewEvent::new(
            CalendarId::new("team@example.com").unwrap(),
            EntityRef::new("deal", "42").unwrap(),
            EventTime::at(start, Some(zone.clone())),
            EventTime::at(start + chrono::Duration::hours(1), Some(zone)),
            NewEventFields {
                summary: Some(summary.into()),
                recurrence: vec!["RRULE:FREQ=DAILY".into()],
                ..NewEventFields::default()
            },
        )
        .unwrap();
        let mut event = new.into_event(start);
        // Written as Google would hand it over, past the write checks.
        event.recurrence = lines.iter().map(|l| (*l).to_owned()).collect();
        block_on(store.insert_with_outbox(&event, OutboxOp::Insert)).unwrap();
        event
    }

    #[test]
    fn an_unreadable_series_is_listed_as_its_master_row() {
        let store = MemoryStore::new();
        let readable = series(&store, "daily", &["RRULE:FREQ=DAILY;COUNT=3"]);
        let unreadable = series(&store, "odd", &["RRULE:FREQ=FORTNIGHTLY"]);
        assert!(readable.series_unreadable().is_none());
        assert!(unreadable.series_unreadable().is_some());
        let window = |from, until| OccurrenceQuery {
            filter: EventQuery::default(),
            from: Some(from),
            until,
            after: None,
            limit: 100,
        };
        // A window a week later: the readable series has ended, the
        // unreadable one may still run and is listed as stored.
        let later = block_on(list_occurrences(
            store.as_ref(),
            &window(
                Utc.with_ymd_and_hms(2030, 3, 8, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2030, 3, 9, 0, 0, 0).unwrap(),
            ),
        ))
        .unwrap();
        assert_eq!(later.len(), 1, "{later:?}");
        assert_eq!(later[0], Listed::Row(unreadable.clone()));
        // The first day: the readable series' first occurrence, then the master row.
        let first = block_on(list_occurrences(
            store.as_ref(),
            &window(
                Utc.with_ymd_and_hms(2030, 2, 28, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap(),
            ),
        ))
        .unwrap();
        let ids: Vec<String> = first.iter().map(Listed::id).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&unreadable.id.to_string()), "{ids:?}");
        assert!(
            ids.contains(&format!("{}_20300228T230000Z", readable.id)),
            "{ids:?}"
        );
    }
}
