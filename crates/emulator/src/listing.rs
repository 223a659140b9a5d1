//! `events.list` and `events.instances`: change order, sync and page
//! tokens, series expansion (`singleEvents`), time windows and ordering.
//!
//! events.list: https://developers.google.com/workspace/calendar/api/v3/reference/events/list
//! events.instances: https://developers.google.com/workspace/calendar/api/v3/reference/events/instances

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::event_types;
use crate::recurrence::{Series, overlaps, span};
use crate::state::{Calendars, StoredEvent, stub, timestamp};

const MAX_PAGE: usize = 2500;
const DEFAULT_PAGE: usize = 250;

type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

pub struct ListParams {
    pub sync_token: Option<String>,
    pub page_token: Option<String>,
    pub max_results: Option<usize>,
    pub show_deleted: Option<bool>,
    pub single_events: bool,
    pub order_by: Option<String>,
    pub time_min: Option<DateTime<Utc>>,
    pub time_max: Option<DateTime<Utc>>,
    /// `eventTypes`; every type when empty.
    pub event_types: Vec<String>,
    /// Parameters Google refuses together with a sync token, if present.
    pub refused_with_sync_token: Vec<&'static str>,
}

pub struct InstancesParams {
    pub page_token: Option<String>,
    pub max_results: Option<usize>,
    pub show_deleted: bool,
    pub time_min: Option<DateTime<Utc>>,
    pub time_max: Option<DateTime<Utc>>,
    pub original_start: Option<DateTime<Utc>>,
}

/// One listed item. A stored event is only referenced: its body is copied,
/// and its start parsed, only if the page or the ordering needs them (a
/// listing pages over every event, and doing either for all of them made
/// each page cost a pass over the calendar).
enum Item<'a> {
    Stored(&'a StoredEvent),
    /// An occurrence made from its series.
    Made {
        start: DateTime<Utc>,
        id: String,
        body: Value,
    },
}

impl Item<'_> {
    /// Start order, ties by id: `orderBy=startTime` and a series' instances.
    fn start_order(&self) -> (DateTime<Utc>, String) {
        match self {
            Self::Stored(event) => {
                let body = &event.body;
                let start = span(body)
                    .map(|(start, _)| start)
                    .or_else(|| Series::original_start(body))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC);
                let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
                (start, id.to_owned())
            }
            Self::Made { start, id, .. } => (*start, id.clone()),
        }
    }

    /// The occurrence's original start, if it is one.
    fn original(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Stored(event) => Series::original_start(&event.body),
            Self::Made { start, .. } => Some(*start),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Self::Stored(event) if event.cancelled() => stub(&event.body),
            Self::Stored(event) => Value::Object(event.body.clone()),
            Self::Made { body, .. } => body,
        }
    }
}

fn check_window(window: Window) -> Result<(), ApiError> {
    match window {
        (Some(min), Some(max)) if max <= min => Err(ApiError::bad_request(
            "timeRangeEmpty",
            "The specified time range is empty.",
        )),
        _ => Ok(()),
    }
}

fn page_size(max_results: Option<usize>) -> usize {
    max_results.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

/// Where a page starts: the change sequence the first page saw, so later
/// pages list the same snapshot of stored events; the position (the last
/// change sequence listed for stored events, an offset for expanded
/// occurrences); and the page's number (0 for the first).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    high: u64,
    position: usize,
    number: u64,
}

impl Cursor {
    /// The next page's token: `p{high}_{position}_{number}`.
    fn token(self, position: usize) -> String {
        format!(
            "p{}_{position}_{}",
            self.high,
            self.number.saturating_add(1)
        )
    }
}

/// Page tokens are `p{high}_{position}_{number}` (see [`Cursor`]).
fn parse_page_token(token: Option<&String>, seq: u64) -> Result<Cursor, ApiError> {
    let Some(token) = token else {
        return Ok(Cursor {
            high: seq,
            position: 0,
            number: 0,
        });
    };
    let mut parts = token.strip_prefix('p').unwrap_or_default().split('_');
    let mut next = || parts.next().and_then(|part| part.parse::<u64>().ok());
    match (next(), next(), next()) {
        (Some(high), Some(position), number) => Ok(Cursor {
            high,
            position: usize::try_from(position).unwrap_or(usize::MAX),
            number: number.unwrap_or(0),
        }),
        _ => Err(ApiError::bad_request(
            "invalid",
            "Invalid page token value.",
        )),
    }
}

/// splitmix64: a well-mixed 64-bit hash of one word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A page's size and whether, ending the listing, it still hands out a
/// `nextPageToken` (to an empty last page). Full pages unless ragged
/// paging is on. events.list reference, `maxResults`: "The number of
/// events in the resulting page may be less than this value, or none at
/// all, even if there are more events matching the query. Incomplete pages
/// can be detected by a non-empty nextPageToken field in the response."
/// With a seed, a quarter of
/// the pages are empty, a quarter short, and a quarter of the last pages
/// point to one more, empty, page; the same seed, page number and position
/// give the same page, so a run can be repeated.
fn ragged(seed: Option<u64>, cursor: Cursor, page_size: usize) -> (usize, bool) {
    let Some(seed) = seed else {
        return (page_size, false);
    };
    let position = u64::try_from(cursor.position).unwrap_or(u64::MAX);
    let roll = mix(seed ^ mix(cursor.number) ^ mix(position.rotate_left(29)));
    let size = match roll % 8 {
        0 | 1 => 0,
        2 | 3 if page_size > 1 => {
            let below = u64::try_from(page_size - 1).unwrap_or(1);
            usize::try_from(1 + (roll >> 8) % below).unwrap_or(1)
        }
        _ => page_size,
    };
    (size, (roll >> 40).is_multiple_of(4))
}

fn envelope(calendar_id: &str, high: u64, items: Vec<Value>) -> Value {
    json!({
        "kind": "calendar#events",
        "etag": format!("\"{high}\""),
        "summary": calendar_id,
        "updated": timestamp(Utc::now()),
        "timeZone": "UTC",
        "accessRole": "owner",
        "defaultReminders": [],
        "items": items,
    })
}

impl Calendars {
    /// Whether an event meets the window: a series when one of its
    /// occurrences does.
    fn meets(event: &StoredEvent, window: Window) -> bool {
        if window == (None, None) {
            return true;
        }
        match Series::of(&event.body).ok().flatten() {
            Some(series) => !series.window(window.0, window.1).is_empty(),
            None => span(&event.body).is_none_or(|span| overlaps(span, window.0, window.1)),
        }
    }

    /// The series an occurrence (an exception) belongs to.
    fn parent(&self, calendar_id: &str, event: &StoredEvent) -> Option<&StoredEvent> {
        event
            .body
            .get("recurringEventId")
            .and_then(Value::as_str)
            .and_then(|id| self.stored(calendar_id, id))
    }

    /// A series' occurrences in the window, exceptions in place of theirs,
    /// cancelled ones (EXDATEs never) only with `show_deleted`, in start
    /// order. Exceptions changed after `high` are not seen.
    fn expand<'a>(
        &'a self,
        calendar_id: &str,
        master: &'a StoredEvent,
        series: &Series,
        window: Window,
        show_deleted: bool,
        high: u64,
    ) -> Vec<Item<'a>> {
        let master_id = master
            .body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let exceptions: HashMap<DateTime<Utc>, &StoredEvent> = self
            .exceptions(calendar_id, master_id)
            .filter(|e| e.seq <= high)
            .filter_map(|e| Some((Series::original_start(&e.body)?, e)))
            .collect();
        let mut out: Vec<Item<'a>> = series
            .window(window.0, window.1)
            .into_iter()
            .filter(|start| !exceptions.contains_key(start))
            .map(|start| {
                let body = series.instance(&master.body, start);
                Item::Made {
                    start,
                    id: body
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    body: Value::Object(body),
                }
            })
            .collect();
        for (original, exception) in exceptions {
            // A moved occurrence is listed where it is now; a cancelled one
            // where it was.
            let shown = if exception.cancelled() {
                show_deleted
                    && overlaps((original, original + series.duration()), window.0, window.1)
            } else {
                span(&exception.body).is_some_and(|s| overlaps(s, window.0, window.1))
            };
            if shown {
                out.push(Item::Stored(exception));
            }
        }
        out.sort_by_cached_key(Item::start_order);
        out
    }

    /// A live series' occurrences meeting the window as `singleEvents=true`
    /// lists them (exceptions in place of theirs, cancelled ones left
    /// out), as whole bodies: what free/busy reads.
    pub(crate) fn occurrence_bodies(
        &self,
        calendar_id: &str,
        master: &StoredEvent,
        series: &Series,
        window: Window,
    ) -> Vec<Value> {
        self.expand(calendar_id, master, series, window, false, self.seq)
            .into_iter()
            .map(Item::into_value)
            .collect()
    }

    /// `events.list`. Without `singleEvents`: masters and exceptions as
    /// stored, in change order; cancelled exceptions of a live series are
    /// listed even without `showDeleted` (events.list, `showDeleted`:
    /// "Cancelled instances of recurring events (but not the underlying
    /// recurring event) will still be included if showDeleted and
    /// singleEvents are both False"). With `singleEvents`: series expanded
    /// into their occurrences. With `singleEvents` and a sync token, a
    /// changed series is listed as all its occurrences (up to the
    /// expansion bound) and a changed exception as itself.
    pub fn list(&self, calendar_id: &str, params: &ListParams) -> Result<Value, ApiError> {
        if params.sync_token.is_some() {
            if let Some(name) = params.refused_with_sync_token.first() {
                return Err(ApiError::bad_request(
                    "invalid",
                    format!("The parameter {name} cannot be used together with syncToken."),
                ));
            }
            if params.show_deleted == Some(false) {
                return Err(ApiError::bad_request(
                    "invalid",
                    "showDeleted=false cannot be used together with syncToken.",
                ));
            }
        }
        let by_start = match params.order_by.as_deref() {
            None | Some("updated") => false,
            Some("startTime") if params.single_events => true,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid",
                    "The requested ordering is not available for the particular query.",
                ));
            }
        };
        let window = (params.time_min, params.time_max);
        check_window(window)?;
        let since = match &params.sync_token {
            None => None,
            Some(token) => {
                let parsed = token
                    .strip_prefix('s')
                    .and_then(|rest| rest.split_once('_'))
                    .and_then(|(g, s)| Some((g.parse::<u64>().ok()?, s.parse::<u64>().ok()?)));
                // A token from before a purged deletion cannot report it
                // (see `purge`): the client must sync in full.
                let purged = self.purged_seq.get(calendar_id).copied().unwrap_or(0);
                match parsed {
                    Some((generation, seq))
                        if generation == self.token_generation && seq >= purged =>
                    {
                        Some(seq)
                    }
                    _ => {
                        return Err(ApiError::new(
                            410,
                            "fullSyncRequired",
                            "Sync token is no longer valid, a full sync is required.",
                        ));
                    }
                }
            }
        };
        let cursor = parse_page_token(params.page_token.as_ref(), self.seq)?;
        let high = cursor.high;
        let show_deleted = since.is_some() || params.show_deleted.unwrap_or(false);
        if !params.single_events {
            return Ok(self.list_stored(calendar_id, params, since, cursor, show_deleted));
        }
        let mut changed: Vec<&StoredEvent> = self
            .events
            .get(calendar_id)
            .into_iter()
            .flat_map(|events| events.values())
            .filter(|e| e.seq <= high && since.is_none_or(|since| e.seq > since))
            .filter(|e| event_types::matches(&params.event_types, &e.body))
            .collect();
        changed.sort_by_key(|e| e.seq);
        let mut items: Vec<Item<'_>> = Vec::new();
        let expanded: HashSet<&str> = changed
            .iter()
            .filter(|e| !e.cancelled() && matches!(Series::of(&e.body), Ok(Some(_))))
            .filter_map(|e| e.body.get("id").and_then(Value::as_str))
            .collect();
        for event in &changed {
            if let Some(parent) = self.parent(calendar_id, event) {
                let parent_id = parent.body.get("id").and_then(Value::as_str);
                if parent_id.is_some_and(|id| expanded.contains(id)) {
                    continue; // listed in its series' expansion
                }
                let shown = if event.cancelled() {
                    show_deleted
                } else {
                    Self::meets(event, window)
                };
                if shown {
                    items.push(Item::Stored(event));
                }
                continue;
            }
            match Series::of(&event.body).ok().flatten() {
                Some(series) if !event.cancelled() => items.extend(self.expand(
                    calendar_id,
                    event,
                    &series,
                    window,
                    show_deleted,
                    high,
                )),
                _ if event.cancelled() => {
                    if show_deleted {
                        items.push(Item::Stored(event));
                    }
                }
                _ => {
                    if Self::meets(event, window) {
                        items.push(Item::Stored(event));
                    }
                }
            }
        }
        if by_start {
            items.sort_by_cached_key(Item::start_order);
        }
        let (page, next) = self.page_of(items, cursor, params.max_results);
        let mut body = envelope(calendar_id, high, page);
        match next {
            Some(token) => body["nextPageToken"] = json!(token),
            None => body["nextSyncToken"] = json!(format!("s{}_{high}", self.token_generation)),
        }
        Ok(body)
    }

    /// One page of a listing by offset (expanded occurrences, instances)
    /// and the next page's token, if more may remain.
    fn page_of(
        &self,
        items: Vec<Item<'_>>,
        cursor: Cursor,
        max_results: Option<usize>,
    ) -> (Vec<Value>, Option<String>) {
        let offset = cursor.position;
        let (size, trailing) = ragged(self.ragged_seed, cursor, page_size(max_results));
        let remaining = items.len().saturating_sub(offset);
        let page: Vec<Value> = items
            .into_iter()
            .skip(offset)
            .take(size)
            .map(Item::into_value)
            .collect();
        let more = remaining > page.len() || (trailing && !page.is_empty());
        let next = more.then(|| cursor.token(offset + page.len()));
        (page, next)
    }

    /// `events.list` without `singleEvents`: stored events in change order,
    /// paged by a cursor (the last change sequence listed), so a page costs
    /// a scan of sequence numbers and a look at the events up to the page's
    /// end, not a look at every event (what made large calendars' syncs
    /// slow here, not at Google).
    fn list_stored(
        &self,
        calendar_id: &str,
        params: &ListParams,
        since: Option<u64>,
        cursor: Cursor,
        show_deleted: bool,
    ) -> Value {
        let high = cursor.high;
        let after = u64::try_from(cursor.position).unwrap_or(u64::MAX);
        let window = (params.time_min, params.time_max);
        let mut changed: Vec<&StoredEvent> = self
            .events
            .get(calendar_id)
            .into_iter()
            .flat_map(|events| events.values())
            .filter(|e| e.seq <= high && e.seq > after && since.is_none_or(|since| e.seq > since))
            .collect();
        changed.sort_unstable_by_key(|e| e.seq);
        let (page_size, trailing) = ragged(self.ragged_seed, cursor, page_size(params.max_results));
        let (mut page, mut last, mut more) = (Vec::new(), after, false);
        for event in changed {
            if !event_types::matches(&params.event_types, &event.body) {
                continue;
            }
            let shown = if event.cancelled() {
                let live_parent = self
                    .parent(calendar_id, event)
                    .is_some_and(|p| !p.cancelled());
                (show_deleted || live_parent) && Self::meets(event, window)
            } else {
                Self::meets(event, window)
            };
            if !shown {
                continue;
            }
            if page.len() == page_size {
                more = true;
                break;
            }
            last = event.seq;
            page.push(Item::Stored(event).into_value());
        }
        more |= trailing && !page.is_empty();
        let mut body = envelope(calendar_id, high, page);
        if more {
            let position = usize::try_from(last).unwrap_or(usize::MAX);
            body["nextPageToken"] = json!(cursor.token(position));
        } else {
            body["nextSyncToken"] = json!(format!("s{}_{high}", self.token_generation));
        }
        body
    }

    /// `events.instances`: one series' occurrences in start order. A
    /// non-recurring event answers 404 `notFound` (the reference calls
    /// `eventId` a "Recurring event identifier" and documents no answer for
    /// another event; refusing keeps callers from mistaking an event for a
    /// series), a deleted series 410 `deleted`, as writes to it do.
    /// Cancelled occurrences are listed only with `showDeleted`. No
    /// `nextSyncToken`: instances cannot be synced incrementally.
    pub fn instances(
        &self,
        calendar_id: &str,
        event_id: &str,
        params: &InstancesParams,
    ) -> Result<Value, ApiError> {
        let window = (params.time_min, params.time_max);
        check_window(window)?;
        let (master, series) = self
            .series(calendar_id, event_id)
            .ok_or_else(ApiError::not_found)?;
        if master.cancelled() {
            return Err(ApiError::new(410, "deleted", "Resource has been deleted"));
        }
        let cursor = parse_page_token(params.page_token.as_ref(), self.seq)?;
        let mut items = self.expand(
            calendar_id,
            master,
            &series,
            window,
            params.show_deleted,
            cursor.high,
        );
        if let Some(original) = params.original_start {
            items.retain(|i| i.original() == Some(original));
        }
        let (page, next) = self.page_of(items, cursor, params.max_results);
        let mut body = envelope(calendar_id, cursor.high, page);
        if let Some(token) = next {
            body["nextPageToken"] = json!(token);
        }
        Ok(body)
    }
}
