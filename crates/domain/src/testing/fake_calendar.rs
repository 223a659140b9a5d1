//! [`FakeCalendar`]: Google Calendar in memory.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::lock;
use crate::channel::{WatchGrant, WatchRequest};
use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Attendee, Event, EventStatus, EventTime, EventType, Organizer};
use crate::freebusy::{
    Interval, MAX_CALENDARS, MAX_WINDOW_DAYS, RemoteCalendarBusy, RemoteFreeBusyQuery,
};
use crate::ids::{CalendarId, ChannelId, Etag, EventId, ResourceId};
use crate::ports::{CalendarProvider, Clock, PatchCall};
use crate::recurrence::{Series, instance_suffix};
use crate::sync::{ChangePage, ListRequest, RemoteEvent};

#[derive(Debug, Clone)]
struct FakeEvent {
    event: RemoteEvent,
    seq: u64,
}

#[derive(Debug)]
struct Fault {
    op: Option<&'static str>,
    /// Matching calls to let through before failing.
    skip: u32,
    error: Error,
}

#[derive(Debug, Default)]
struct FakeState {
    calendars: HashMap<CalendarId, BTreeMap<EventId, FakeEvent>>,
    seq: u64,
    token_generation: u64,
    channels: HashMap<ChannelId, (CalendarId, ResourceId, WatchRequest)>,
    /// Resource ids handed out so far (each channel gets its own).
    resources: u64,
    faults: VecDeque<Fault>,
    calls: HashMap<&'static str, u32>,
    max_ttl: Option<std::time::Duration>,
    /// Calendars this principal cannot reach: every call on them is a 404.
    unreachable: HashSet<CalendarId>,
    /// Every patch asked for, refused ones included.
    patches: Vec<PatchCall>,
}

/// Google Calendar in memory: sync tokens, paging, cancelled stubs, reserved
/// ids of deleted events, etags, `If-Match`, and injectable failures. It
/// answers as the Google adapter does against the emulator (the provider
/// contract in [`super::provider_contract`] runs on both): a 404 for every
/// call on an unreachable calendar, classified per call; Google's own
/// fields on an insert; HTTPS-only, single-use channel ids on a watch.
pub struct FakeCalendar {
    state: Mutex<FakeState>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for FakeCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCalendar").finish_non_exhaustive()
    }
}

impl FakeCalendar {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            clock,
        })
    }

    /// Makes the next call (of operation `op`, or any if `None`) fail with `error`.
    /// Operations: list, get, insert, patch, delete, watch, stop,
    /// calendar_get, free_busy.
    pub fn fail_next(&self, op: Option<&'static str>, error: Error) {
        self.fail_after(op, 0, error);
    }

    /// Lets `successes` matching calls through, then fails the next one.
    pub fn fail_after(&self, op: Option<&'static str>, successes: u32, error: Error) {
        lock(&self.state).faults.push_back(Fault {
            op,
            skip: successes,
            error,
        });
    }

    /// The patches asked for so far, in order, refused ones included.
    pub fn patches(&self) -> Vec<PatchCall> {
        lock(&self.state).patches.clone()
    }

    /// How many times `op` was called (failed calls included).
    pub fn calls(&self, op: &str) -> u32 {
        lock(&self.state).calls.get(op).copied().unwrap_or(0)
    }

    /// Caps granted channel lifetimes, as Google may.
    pub fn set_max_ttl(&self, ttl: std::time::Duration) {
        lock(&self.state).max_ttl = Some(ttl);
    }

    /// Makes the calendar unreachable for this principal (or reachable
    /// again): Google then answers 404 to every call on it.
    pub fn set_unreachable(&self, calendar_id: &CalendarId, unreachable: bool) {
        let mut state = lock(&self.state);
        if unreachable {
            state.unreachable.insert(calendar_id.clone());
        } else {
            state.unreachable.remove(calendar_id);
        }
    }

    /// Makes every outstanding sync token expire (the next use gets 410).
    pub fn invalidate_sync_tokens(&self) {
        lock(&self.state).token_generation += 1;
    }

    /// Creates or replaces an event as another Google user would.
    pub fn put(&self, calendar_id: &CalendarId, mut event: RemoteEvent) -> RemoteEvent {
        let mut state = lock(&self.state);
        state.seq += 1;
        let seq = state.seq;
        event.etag = Etag::new(format!("\"{seq}\"")).ok();
        event.updated = Some(self.clock.now());
        state
            .calendars
            .entry(calendar_id.clone())
            .or_default()
            .insert(
                event.id.clone(),
                FakeEvent {
                    event: event.clone(),
                    seq,
                },
            );
        event
    }

    /// Deletes an event as another Google user would.
    pub fn remove(&self, calendar_id: &CalendarId, id: &EventId) {
        let mut state = lock(&self.state);
        state.seq += 1;
        let seq = state.seq;
        let now = self.clock.now();
        if let Some(stored) = state
            .calendars
            .get_mut(calendar_id)
            .and_then(|c| c.get_mut(id))
        {
            stored.event.status = EventStatus::Cancelled;
            stored.event.updated = Some(now);
            stored.event.etag = Etag::new(format!("\"{seq}\"")).ok();
            stored.seq = seq;
        }
    }

    /// Deletes an event without leaving a cancelled stub behind (as if it
    /// fell out of Google's retention of deletions): only a full resync notices.
    pub fn purge(&self, calendar_id: &CalendarId, id: &EventId) {
        if let Some(calendar) = lock(&self.state).calendars.get_mut(calendar_id) {
            calendar.remove(id);
        }
    }

    /// The events Google holds, cancelled ones included.
    pub fn events(&self, calendar_id: &CalendarId) -> Vec<RemoteEvent> {
        lock(&self.state)
            .calendars
            .get(calendar_id)
            .map(|c| c.values().map(|f| f.event.clone()).collect())
            .unwrap_or_default()
    }

    pub fn active_channels(&self) -> Vec<ChannelId> {
        lock(&self.state).channels.keys().cloned().collect()
    }

    fn enter(&self, op: &'static str) -> Result<MutexGuard<'_, FakeState>> {
        let mut state = lock(&self.state);
        *state.calls.entry(op).or_default() += 1;
        let position = state
            .faults
            .iter()
            .position(|f| f.op.is_none_or(|t| t == op));
        if let Some(index) = position {
            if let Some(fault) = state.faults.get_mut(index)
                && fault.skip > 0
            {
                fault.skip -= 1;
                return Ok(state);
            }
            if let Some(fault) = state.faults.remove(index) {
                return Err(fault.error);
            }
        }
        Ok(state)
    }
}

fn not_found() -> Error {
    Error::provider(ProviderErrorKind::NotFound, "Not Found")
}

/// A 404 on a list or watch: the calendar itself is gone for this principal.
fn calendar_gone() -> Error {
    Error::provider(ProviderErrorKind::ReconnectRequired, "Not Found")
}

fn refused(reason: &str) -> Error {
    Error::provider(ProviderErrorKind::Permanent, format!("400 {reason}"))
}

/// `If-Match`: `*` matches any etag.
fn etag_matches(if_match: Option<&Etag>, held: Option<&Etag>) -> bool {
    if_match.is_none_or(|etag| etag.as_str() == "*" || Some(etag) == held)
}

/// Google answers attendees it was sent without a response as `needsAction`
/// (the adapter sends them so).
fn invited(attendees: &[Attendee]) -> Vec<Attendee> {
    attendees
        .iter()
        .map(|a| Attendee {
            response_status: a
                .response_status
                .clone()
                .or_else(|| Some("needsAction".into())),
            ..a.clone()
        })
        .collect()
}

/// Google accepts push addresses over HTTPS only; the emulator, and so this
/// fake, also plain HTTP to a loopback host.
fn webhook_address_allowed(address: &str) -> bool {
    if address.starts_with("https://") {
        return true;
    }
    let Some(rest) = address.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn stub(event: &RemoteEvent) -> RemoteEvent {
    RemoteEvent {
        recurring_event_id: event.recurring_event_id.clone(),
        original_start: event.original_start.clone(),
        etag: event.etag.clone(),
        ..RemoteEvent::cancelled_stub(event.id.clone())
    }
}

/// What Google holds after inserting `event`: what the adapter sends (no
/// iCalUID, organizer or instance fields) plus what Google assigns.
fn content_from(event: &Event, id: EventId) -> RemoteEvent {
    RemoteEvent {
        ical_uid: Some(format!("{id}@google.com")),
        html_link: Some(format!("https://www.google.com/calendar/event?eid={id}")),
        status: event.status,
        summary: event.summary.clone(),
        description: event.description.clone(),
        location: event.location.clone(),
        start: Some(event.start.clone()),
        end: Some(event.end.clone()),
        attendees: invited(&event.attendees),
        organizer: Some(Organizer {
            email: Some(event.calendar_id.to_string()),
            display_name: None,
        }),
        recurrence: event.recurrence.clone(),
        recurring_event_id: None,
        original_start: None,
        etag: None,
        updated: None,
        event_type: event.event_type.clone(),
        details: granted(&event.details),
        google: None,
        entity: event.entity.clone(),
        id,
    }
}

/// The details as Google keeps them: a requested Meet conference is
/// created (one per request id, named after it).
fn granted(details: &crate::event::EventDetails) -> crate::event::EventDetails {
    use crate::event::{Conference, ConferenceStatus, EntryPoint};
    let mut details = details.clone();
    if let Some(request) = details.conference.as_ref().filter(|c| c.needs_creating()) {
        let code = request.request_id.clone().unwrap_or_default();
        let link = format!("https://meet.google.com/{code}");
        details.hangout_link = Some(link.clone());
        details.conference = Some(Conference {
            request_id: request.request_id.clone(),
            status: ConferenceStatus::Success,
            conference_id: Some(code),
            solution: Some("hangoutsMeet".into()),
            entry_points: vec![EntryPoint {
                entry_point_type: "video".into(),
                uri: link,
                label: None,
            }],
        });
    }
    details
}

/// Whether the event blocks `calendar`'s time, by Google's free/busy rule:
/// not cancelled, not `transparent`, not a working location or a birthday;
/// out of office and focus time block; other events unless the calendar
/// itself declined (`needsAction` and `tentative` block).
fn blocks(event: &RemoteEvent, calendar: &CalendarId) -> bool {
    let declined = event.attendees.iter().any(|a| {
        a.email.eq_ignore_ascii_case(calendar.as_str())
            && a.response_status.as_deref() == Some("declined")
    });
    if event.status == EventStatus::Cancelled
        || event.details.transparency.as_deref() == Some("transparent")
    {
        return false;
    }
    match event.event_type {
        EventType::WorkingLocation | EventType::Birthday => false,
        EventType::OutOfOffice | EventType::FocusTime => true,
        _ => !declined,
    }
}

/// An event time as an instant: a date is midnight in `zone` (in a DST
/// gap at midnight, the first instant after it).
fn instant(time: &EventTime, zone: Tz) -> Option<DateTime<Utc>> {
    match time {
        EventTime::At { at, .. } => Some(*at),
        EventTime::AllDay { date } => {
            let midnight = date.and_time(NaiveTime::MIN);
            zone.from_local_datetime(&midnight)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(midnight + Duration::hours(1)))
                        .earliest()
                })
                .map(|at| at.with_timezone(&Utc))
        }
    }
}

/// A calendar's busy time in the query's window, from its stored events:
/// singles and exceptions as stored, series expanded with
/// [`crate::recurrence::Series`] (an occurrence an exception replaces
/// left to the exception), clipped to the window, merged when they overlap
/// or touch. An exception of a deleted series is free (Google deletes them
/// with it).
fn busy_of(
    events: Option<&BTreeMap<EventId, FakeEvent>>,
    calendar: &CalendarId,
    query: &RemoteFreeBusyQuery,
    zone: Tz,
) -> Vec<Interval> {
    let events: Vec<&RemoteEvent> = events
        .into_iter()
        .flat_map(|e| e.values().map(|f| &f.event))
        .collect();
    let master = |id: &EventId| events.iter().find(|e| &e.id == id);
    let mut spans: Vec<(&RemoteEvent, EventTime, EventTime)> = Vec::new();
    for event in &events {
        let master_cancelled = event
            .recurring_event_id
            .as_ref()
            .and_then(master)
            .is_some_and(|m| m.status == EventStatus::Cancelled);
        let (Some(start), Some(end)) = (&event.start, &event.end) else {
            continue;
        };
        if master_cancelled {
            continue;
        }
        if event.recurrence.is_empty() || event.status == EventStatus::Cancelled {
            spans.push((event, start.clone(), end.clone()));
            continue;
        }
        let Ok(series) = Series::new(&event.recurrence, start, end) else {
            continue;
        };
        let replaced: HashSet<String> = events
            .iter()
            .filter(|e| e.recurring_event_id.as_ref() == Some(&event.id))
            .filter_map(|e| e.original_start.as_ref().map(instance_suffix))
            .collect();
        // Dates are read in the query's zone, at most a day off UTC.
        let from = query.time_min - Duration::days(1);
        let until = query.time_max + Duration::days(1);
        for occurrence in series.between(Some(from), Some(until)) {
            if !replaced.contains(&occurrence.suffix()) {
                spans.push((event, occurrence.start, occurrence.end));
            }
        }
    }
    let mut busy: Vec<Interval> = spans
        .into_iter()
        .filter(|(event, _, _)| blocks(event, calendar))
        .filter_map(|(_, start, end)| {
            // An all-day event ending on or before its start date occupies
            // its start date (as calsync's rule and the emulator read it).
            let end = match (&start, end) {
                (EventTime::AllDay { date: first }, EventTime::AllDay { date: last })
                    if last <= *first =>
                {
                    EventTime::date(first.succ_opt()?)
                }
                (_, end) => end,
            };
            let start = instant(&start, zone)?.max(query.time_min);
            let end = instant(&end, zone)?.min(query.time_max);
            Interval::new(start, end)
        })
        .collect();
    busy.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(busy.len());
    for interval in busy {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

#[async_trait]
impl CalendarProvider for FakeCalendar {
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &ListRequest,
    ) -> Result<ChangePage> {
        let state = self.enter("list")?;
        if state.unreachable.contains(calendar_id) {
            return Err(calendar_gone());
        }
        // Page tokens carry the listing's upper bound and offset; sync tokens
        // the generation and the sequence number they cover.
        let (high, offset) = match &request.page_token {
            Some(token) => {
                let (high, offset) = token
                    .split_once(':')
                    .and_then(|(h, o)| Some((h.parse::<u64>().ok()?, o.parse::<usize>().ok()?)))
                    .ok_or_else(|| {
                        Error::provider(ProviderErrorKind::Permanent, "invalid page token")
                    })?;
                (high, offset)
            }
            None => (state.seq, 0),
        };
        let since = match &request.sync_token {
            Some(token) => {
                let (generation, seq) = token
                    .split_once('-')
                    .and_then(|(g, s)| Some((g.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
                    .ok_or_else(|| {
                        Error::provider(ProviderErrorKind::SyncTokenExpired, "invalid sync token")
                    })?;
                if generation != state.token_generation {
                    return Err(Error::provider(
                        ProviderErrorKind::SyncTokenExpired,
                        "fullSyncRequired",
                    ));
                }
                Some(seq)
            }
            None => None,
        };
        let mut matching: Vec<&FakeEvent> = state
            .calendars
            .get(calendar_id)
            .into_iter()
            .flat_map(|c| c.values())
            .filter(|f| f.seq <= high)
            .filter(|f| match since {
                Some(since) => f.seq > since,
                None => f.event.status != EventStatus::Cancelled,
            })
            .collect();
        matching.sort_by_key(|f| f.seq);
        let page_size = request.max_results.clamp(1, 2500) as usize;
        let events: Vec<RemoteEvent> = matching
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|f| {
                if f.event.status == EventStatus::Cancelled {
                    stub(&f.event)
                } else {
                    f.event.clone()
                }
            })
            .collect();
        let more = matching.len() > offset + page_size;
        Ok(ChangePage {
            events,
            next_page_token: more.then(|| format!("{high}:{}", offset + page_size)),
            next_sync_token: (!more).then(|| format!("{}-{high}", state.token_generation)),
        })
    }

    async fn get_event(&self, calendar_id: &CalendarId, id: &EventId) -> Result<RemoteEvent> {
        let state = self.enter("get")?;
        if state.unreachable.contains(calendar_id) {
            return Err(not_found());
        }
        state
            .calendars
            .get(calendar_id)
            .and_then(|c| c.get(id))
            .map(|f| f.event.clone())
            .ok_or_else(not_found)
    }

    async fn insert_event(&self, event: &Event) -> Result<RemoteEvent> {
        let taken = {
            let state = self.enter("insert")?;
            if state.unreachable.contains(&event.calendar_id) {
                return Err(not_found());
            }
            if !event.google_event_id.is_client_assignable() {
                return Err(refused("invalid: Invalid resource id value."));
            }
            state
                .calendars
                .get(&event.calendar_id)
                .is_some_and(|c| c.contains_key(&event.google_event_id))
        };
        if taken {
            // Deleted ids stay reserved, as at Google.
            return Err(Error::provider(
                ProviderErrorKind::Duplicate,
                "The requested identifier already exists.",
            ));
        }
        Ok(self.put(
            &event.calendar_id,
            content_from(event, event.google_event_id.clone()),
        ))
    }

    async fn patch_event(&self, call: &PatchCall) -> Result<RemoteEvent> {
        lock(&self.state).patches.push(call.clone());
        let mut next = {
            let state = self.enter("patch")?;
            if state.unreachable.contains(&call.calendar_id) {
                return Err(not_found());
            }
            let current = state
                .calendars
                .get(&call.calendar_id)
                .and_then(|c| c.get(&call.event_id))
                .ok_or_else(not_found)?;
            // As Google: a patch that sets a live status restores a deleted
            // event; any other patch of one is refused with 410.
            let restores = call
                .changes
                .status
                .is_some_and(|s| s != EventStatus::Cancelled);
            if current.event.status == EventStatus::Cancelled && !restores {
                return Err(Error::provider(ProviderErrorKind::Gone, "deleted"));
            }
            if !etag_matches(call.if_match.as_ref(), current.event.etag.as_ref()) {
                return Err(Error::provider(
                    ProviderErrorKind::PreconditionFailed,
                    "conditionNotMet",
                ));
            }
            current.event.clone()
        };
        let changes = &call.changes;
        if let Some(summary) = &changes.summary {
            next.summary.clone_from(summary);
        }
        if let Some(description) = &changes.description {
            next.description.clone_from(description);
        }
        if let Some(location) = &changes.location {
            next.location.clone_from(location);
        }
        if let Some(start) = &changes.start {
            next.start = Some(start.clone());
        }
        if let Some(end) = &changes.end {
            next.end = Some(end.clone());
        }
        if let Some(attendees) = &changes.attendees {
            next.attendees = invited(attendees);
        }
        if let Some(status) = changes.status {
            next.status = status;
        }
        Ok(self.put(&call.calendar_id, next))
    }

    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
        if_match: Option<&Etag>,
    ) -> Result<()> {
        {
            let state = self.enter("delete")?;
            if state.unreachable.contains(calendar_id) {
                return Err(not_found());
            }
            let current = state
                .calendars
                .get(calendar_id)
                .and_then(|c| c.get(id))
                .ok_or_else(not_found)?;
            if current.event.status == EventStatus::Cancelled {
                return Err(Error::provider(ProviderErrorKind::Gone, "deleted"));
            }
            if !etag_matches(if_match, current.event.etag.as_ref()) {
                return Err(Error::provider(
                    ProviderErrorKind::PreconditionFailed,
                    "conditionNotMet",
                ));
            }
        }
        self.remove(calendar_id, id);
        Ok(())
    }

    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> Result<bool> {
        let state = self.enter("calendar_get")?;
        Ok(!state.unreachable.contains(calendar_id))
    }

    async fn watch(&self, calendar_id: &CalendarId, request: &WatchRequest) -> Result<WatchGrant> {
        let mut state = self.enter("watch")?;
        if state.unreachable.contains(calendar_id) {
            return Err(calendar_gone());
        }
        if !webhook_address_allowed(&request.address) {
            return Err(refused(
                "push.webhookUrlNotHttps: WebHook callback must be HTTPS",
            ));
        }
        if request.token.len() > 256 {
            return Err(refused(
                "invalid: Channel token is longer than 256 characters.",
            ));
        }
        if state.channels.contains_key(&request.channel_id) {
            return Err(refused("channelIdNotUnique: Channel id not unique."));
        }
        let ttl = state
            .max_ttl
            .map_or(request.ttl, |max| request.ttl.min(max));
        state.resources += 1;
        let resource_id = ResourceId::new(format!("res-{}", state.resources))?;
        state.channels.insert(
            request.channel_id.clone(),
            (calendar_id.clone(), resource_id.clone(), request.clone()),
        );
        Ok(WatchGrant {
            resource_id,
            expiration: crate::later(self.clock.now(), ttl),
        })
    }

    /// Google's `freeBusy.query` over the stored events (see [`busy_of`]),
    /// refusing what Google refuses: an empty window (`timeRangeEmpty`),
    /// one over [`MAX_WINDOW_DAYS`] (`timeRangeTooLong`), an unknown zone.
    /// Past [`MAX_CALENDARS`] every calendar carries
    /// `tooManyCalendarsRequested`; an unreachable one `notFound`.
    async fn free_busy(&self, query: &RemoteFreeBusyQuery) -> Result<Vec<RemoteCalendarBusy>> {
        let state = self.enter("free_busy")?;
        if query.time_max <= query.time_min {
            return Err(refused(
                "timeRangeEmpty: The specified time range is empty.",
            ));
        }
        if query.time_max - query.time_min > Duration::days(MAX_WINDOW_DAYS) {
            return Err(refused(
                "timeRangeTooLong: The requested time range is too long.",
            ));
        }
        let zone = match &query.time_zone {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| refused("invalid: Invalid value for timeZone"))?,
        };
        let too_many = query.calendars.len() > MAX_CALENDARS;
        Ok(query
            .calendars
            .iter()
            .map(|calendar| {
                let error = if too_many {
                    Some("tooManyCalendarsRequested")
                } else if state.unreachable.contains(calendar) {
                    Some("notFound")
                } else {
                    None
                };
                RemoteCalendarBusy {
                    calendar_id: calendar.clone(),
                    busy: match error {
                        Some(_) => Vec::new(),
                        None => busy_of(state.calendars.get(calendar), calendar, query, zone),
                    },
                    errors: error.into_iter().map(str::to_owned).collect(),
                }
            })
            .collect())
    }

    /// The fake acts as one principal per calendar: a stop naming another
    /// calendar than the watch's is refused as Google refuses a stop by
    /// another principal (404, as the emulator answers it).
    async fn stop_channel(
        &self,
        calendar_id: &CalendarId,
        id: &ChannelId,
        resource_id: &ResourceId,
    ) -> Result<()> {
        let mut state = self.enter("stop")?;
        match state.channels.get(id) {
            Some((watched, known, _)) if known == resource_id && watched == calendar_id => {
                state.channels.remove(id);
                Ok(())
            }
            _ => Err(not_found()),
        }
    }

    /// Every calendar the fake holds and the principal reaches, as an
    /// owner sees them (one it cannot reach is not in its list).
    async fn account_calendars(
        &self,
        _grant: &crate::grant::GrantId,
    ) -> Result<Vec<crate::grant::AccountCalendar>> {
        let state = self.enter("calendar_list")?;
        let mut ids: Vec<CalendarId> = state
            .calendars
            .keys()
            .filter(|id| !state.unreachable.contains(*id))
            .cloned()
            .collect();
        ids.sort();
        Ok(ids
            .into_iter()
            .map(|calendar_id| crate::grant::AccountCalendar {
                summary: calendar_id.to_string(),
                calendar_id,
                access_role: "owner".into(),
                primary: false,
                time_zone: None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::NaiveDate;

    use super::*;
    use crate::recurrence::time::TimeZoneName;
    use crate::testing::ManualClock;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn timed(id: &str, start: &str, end: &str) -> RemoteEvent {
        RemoteEvent {
            status: EventStatus::Confirmed,
            start: Some(EventTime::at(at(start), None)),
            end: Some(EventTime::at(at(end), None)),
            ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
        }
    }

    fn interval(start: &str, end: &str) -> Interval {
        Interval::new(at(start), at(end)).unwrap()
    }

    #[test]
    fn free_busy_expands_series_and_follows_googles_rule() {
        let google = FakeCalendar::new(ManualClock::fixed());
        let cal = CalendarId::new("team@example.com").unwrap();
        let utc = Some(TimeZoneName::new("UTC").unwrap());
        // Mondays 2, 9 and 16 March; the 9th moved, the 16th cancelled.
        let mut series = timed("standup001", "2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z");
        series.start = Some(EventTime::at(at("2026-03-02T10:00:00Z"), utc.clone()));
        series.end = Some(EventTime::at(at("2026-03-02T10:30:00Z"), utc.clone()));
        series.recurrence = vec!["RRULE:FREQ=WEEKLY;COUNT=3".into()];
        google.put(&cal, series);
        let mut moved = timed(
            "standup001_20260309T100000Z",
            "2026-03-09T15:00:00Z",
            "2026-03-09T16:00:00Z",
        );
        moved.recurring_event_id = Some(EventId::new("standup001").unwrap());
        moved.original_start = Some(EventTime::at(at("2026-03-09T10:00:00Z"), utc.clone()));
        google.put(&cal, moved);
        let mut cancelled =
            RemoteEvent::cancelled_stub(EventId::new("standup001_20260316T100000Z").unwrap());
        cancelled.recurring_event_id = Some(EventId::new("standup001").unwrap());
        cancelled.original_start = Some(EventTime::at(at("2026-03-16T10:00:00Z"), utc));
        google.put(&cal, cancelled);
        // Free: transparent, declined by the calendar, a working location.
        let mut transparent = timed(
            "transparent1",
            "2026-03-03T09:00:00Z",
            "2026-03-03T10:00:00Z",
        );
        transparent.details.transparency = Some("transparent".into());
        google.put(&cal, transparent);
        let mut declined = timed("declined01", "2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z");
        declined.attendees = vec![Attendee {
            response_status: Some("declined".into()),
            ..Attendee::new("TEAM@example.com").unwrap()
        }];
        google.put(&cal, declined);
        let mut working = timed("location01", "2026-03-04T11:00:00Z", "2026-03-04T12:00:00Z");
        working.event_type = EventType::WorkingLocation;
        google.put(&cal, working);
        // Busy: tentative and touching (merged), all-day in the query's zone.
        let mut tentative = timed("tentative1", "2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z");
        tentative.attendees = vec![Attendee {
            response_status: Some("tentative".into()),
            ..Attendee::new("team@example.com").unwrap()
        }];
        google.put(&cal, tentative);
        google.put(
            &cal,
            timed("touches001", "2026-03-05T10:00:00Z", "2026-03-05T10:30:00Z"),
        );
        let mut offsite = timed("offsite001", "2026-03-20T00:00:00Z", "2026-03-21T00:00:00Z");
        offsite.start = Some(EventTime::date(
            NaiveDate::from_ymd_opt(2026, 3, 20).unwrap(),
        ));
        offsite.end = Some(EventTime::date(
            NaiveDate::from_ymd_opt(2026, 3, 21).unwrap(),
        ));
        google.put(&cal, offsite);

        let gone = CalendarId::new("gone@example.com").unwrap();
        google.set_unreachable(&gone, true);
        let query = RemoteFreeBusyQuery {
            time_min: at("2026-03-01T00:00:00Z"),
            time_max: at("2026-04-01T00:00:00Z"),
            time_zone: Some("America/New_York".into()),
            calendars: vec![cal.clone(), gone.clone()],
        };
        let answers = futures_executor::block_on(google.free_busy(&query)).unwrap();
        assert_eq!(
            answers[0].busy,
            vec![
                interval("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z"),
                interval("2026-03-05T09:00:00Z", "2026-03-05T10:30:00Z"),
                interval("2026-03-09T15:00:00Z", "2026-03-09T16:00:00Z"),
                interval("2026-03-20T04:00:00Z", "2026-03-21T04:00:00Z"),
            ]
        );
        assert!(answers[0].errors.is_empty());
        assert_eq!(answers[1].errors, ["notFound"]);
        assert!(answers[1].busy.is_empty());

        let long = RemoteFreeBusyQuery {
            time_max: at("2026-06-01T00:00:00Z"),
            ..query.clone()
        };
        let error = futures_executor::block_on(google.free_busy(&long)).unwrap_err();
        assert!(error.to_string().contains("timeRangeTooLong"), "{error}");
        let many = RemoteFreeBusyQuery {
            calendars: vec![cal.clone(); MAX_CALENDARS + 1],
            ..query
        };
        let answers = futures_executor::block_on(google.free_busy(&many)).unwrap();
        assert!(
            answers
                .iter()
                .all(|a| a.errors == ["tooManyCalendarsRequested"])
        );
        assert_eq!(google.calls("free_busy"), 3);
    }
}
