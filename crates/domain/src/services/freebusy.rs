//! Free/busy and availability answered from the mirror, with Google's
//! `freeBusy.query` as the fallback for calendars the mirror cannot vouch
//! for. The busy rule is [`crate::freebusy::rule`]; what counts as stale is
//! [`FreeBusyConfig::stale_after`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::event::{EventStatus, EventTime};
use crate::freebusy::rule::{BusyCalendar, BusyQuery};
use crate::freebusy::{
    AvailabilityRequest, BusyRule, Interval, MAX_CALENDARS, MAX_WINDOW_DAYS, ParticipantGroup,
    RemoteFreeBusyQuery, Required, Slot, busy_interval, clip, merge, slots,
};
use crate::ids::CalendarId;
use crate::ports::{CalendarProvider, CalendarStore, Clock, EventStore, SyncStateStore};

use super::series_index::{CalendarSeries, SeriesIndex};

/// A calendar not synced successfully for longer than this is stale unless
/// configured: twice the safety sweep's default interval (15 minutes), so
/// one missed sweep is not yet staleness but two are.
pub const DEFAULT_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Most slots one availability answer holds.
pub const MAX_SLOTS: usize = 1000;

/// All-day events are stored at UTC midnight; read a day more on each side
/// so a request's zone (at most 14 hours from UTC) sees every such event.
const ZONE_SLACK: Duration = Duration::days(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeBusyConfig {
    pub rule: BusyRule,
    pub stale_after: std::time::Duration,
}

impl Default for FreeBusyConfig {
    fn default() -> Self {
        Self {
            rule: BusyRule::default(),
            stale_after: DEFAULT_STALE_AFTER,
        }
    }
}

/// A free/busy question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeBusyRequest {
    pub time_min: DateTime<Utc>,
    pub time_max: DateTime<Utc>,
    /// The zone all-day events are read in.
    pub zone: Tz,
    pub calendars: Vec<CalendarId>,
    /// Ask Google for the calendars the mirror cannot vouch for.
    pub fallback: bool,
}

/// Where a calendar's busy intervals came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusySource {
    Mirror,
    Google,
}

/// Why a calendar has no (or only the mirror's stale) answer, in Google's
/// `errors[]` shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyError {
    pub domain: &'static str,
    pub reason: String,
}

/// One calendar's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarBusy {
    pub calendar_id: CalendarId,
    /// Merged and sorted, clipped to the window.
    pub busy: Vec<Interval>,
    pub errors: Vec<BusyError>,
    /// When the calendar last synced successfully; `None` for one calsync
    /// does not manage or has not synced yet.
    pub synced_at: Option<DateTime<Utc>>,
    pub stale: bool,
    pub source: BusySource,
}

/// An availability question: the groups, the slot shape, the periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityQuery {
    pub groups: Vec<ParticipantGroup>,
    pub duration: Duration,
    pub interval: Duration,
    pub buffer: Duration,
    pub periods: Vec<Interval>,
    pub zone: Tz,
}

/// The slots, and which of the calendars asked about are stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub slots: Vec<Slot>,
    pub stale: Vec<CalendarId>,
}

/// How a managed calendar's sync stands.
struct Standing {
    synced_at: Option<DateTime<Utc>>,
    stale: bool,
}

#[derive(Clone)]
pub struct FreeBusyService {
    index: Arc<SeriesIndex>,
    events: Arc<dyn EventStore>,
    calendars: Arc<dyn CalendarStore>,
    states: Arc<dyn SyncStateStore>,
    provider: Arc<dyn CalendarProvider>,
    clock: Arc<dyn Clock>,
    config: FreeBusyConfig,
}

impl FreeBusyService {
    pub fn new(
        index: Arc<SeriesIndex>,
        events: Arc<dyn EventStore>,
        calendars: Arc<dyn CalendarStore>,
        states: Arc<dyn SyncStateStore>,
        provider: Arc<dyn CalendarProvider>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            index,
            events,
            calendars,
            states,
            provider,
            clock,
            config: FreeBusyConfig::default(),
        }
    }

    pub fn with_config(mut self, config: FreeBusyConfig) -> Self {
        self.config = config;
        self
    }

    pub fn config(&self) -> FreeBusyConfig {
        self.config
    }

    /// Each asked calendar's busy time in the window, in request order
    /// (a calendar named twice is answered once).
    pub async fn free_busy(&self, request: &FreeBusyRequest) -> Result<Vec<CalendarBusy>> {
        check_window(request.time_min, request.time_max, "timeMax")?;
        if request.calendars.len() > MAX_CALENDARS {
            return Err(Error::invalid(
                "items",
                format!("at most {MAX_CALENDARS} calendars per request"),
            ));
        }
        let window = Interval::new(request.time_min, request.time_max)
            .ok_or_else(|| Error::invalid("timeMax", "must be after timeMin"))?;
        let mut seen = HashSet::new();
        let asked: Vec<CalendarId> = request
            .calendars
            .iter()
            .filter(|id| seen.insert((*id).clone()))
            .cloned()
            .collect();
        let standings = self.standings().await?;
        let managed: Vec<CalendarId> = asked
            .iter()
            .filter(|id| standings.contains_key(*id))
            .cloned()
            .collect();
        let series = self.index.calendars(&managed).await?;
        let mut singles = self.single_busy(&series, window, request.zone).await?;
        let mut answers = Vec::with_capacity(asked.len());
        let mut by_id: HashMap<&CalendarId, &Arc<CalendarSeries>> =
            managed.iter().zip(series.iter()).collect();
        for calendar_id in &asked {
            let (Some(standing), Some(series)) =
                (standings.get(calendar_id), by_id.remove(calendar_id))
            else {
                answers.push(CalendarBusy {
                    calendar_id: calendar_id.clone(),
                    busy: Vec::new(),
                    errors: vec![BusyError {
                        domain: "global",
                        reason: "notFound".into(),
                    }],
                    synced_at: None,
                    stale: false,
                    source: BusySource::Mirror,
                });
                continue;
            };
            answers.push(CalendarBusy {
                calendar_id: calendar_id.clone(),
                busy: self.mirror_busy(
                    series,
                    singles.remove(calendar_id).unwrap_or_default(),
                    window,
                    request.zone,
                ),
                errors: Vec::new(),
                synced_at: standing.synced_at,
                stale: standing.stale,
                source: BusySource::Mirror,
            });
        }
        if request.fallback {
            self.ask_google(&mut answers, request).await;
        }
        Ok(answers)
    }

    /// Slots free for every group, from the mirror (no fallback: a slot
    /// offered must hold on what calsync will write against).
    pub async fn availability(&self, query: &AvailabilityQuery) -> Result<Availability> {
        check_availability(query)?;
        let mut calendars: Vec<CalendarId> = Vec::new();
        for group in &query.groups {
            for id in &group.calendar_ids {
                if !calendars.contains(id) {
                    calendars.push(id.clone());
                }
            }
        }
        let start = query.periods.iter().map(|p| p.start).min();
        let end = query.periods.iter().map(|p| p.end).max();
        let (Some(start), Some(end)) = (start, end) else {
            return Err(Error::invalid("periods", "at least one period is required"));
        };
        let answers = self
            .free_busy(&FreeBusyRequest {
                time_min: start - query.buffer,
                time_max: end + query.buffer,
                zone: query.zone,
                calendars: calendars.clone(),
                fallback: false,
            })
            .await?;
        let mut busy = HashMap::new();
        let mut stale = Vec::new();
        for answer in answers {
            if !answer.errors.is_empty() {
                return Err(Error::unprocessable(
                    "participants",
                    format!("calendar {} is not managed by calsync", answer.calendar_id),
                ));
            }
            if answer.stale {
                stale.push(answer.calendar_id.clone());
            }
            busy.insert(answer.calendar_id, answer.busy);
        }
        let request = AvailabilityRequest {
            groups: query.groups.clone(),
            duration: query.duration,
            interval: query.interval,
            buffer: query.buffer,
            periods: query.periods.clone(),
            zone: query.zone,
        };
        Ok(Availability {
            slots: slots(&request, &busy, MAX_SLOTS),
            stale,
        })
    }

    /// Managed calendars (a calendar record or a sync state) and how their
    /// sync stands.
    async fn standings(&self) -> Result<HashMap<CalendarId, Standing>> {
        let now = self.clock.now();
        let stale_after = Duration::from_std(self.config.stale_after).unwrap_or(Duration::MAX);
        let mut standings: HashMap<CalendarId, Standing> = self
            .calendars
            .list_calendars()
            .await?
            .into_iter()
            .map(|c| {
                (
                    c.calendar_id,
                    Standing {
                        synced_at: None,
                        stale: true,
                    },
                )
            })
            .collect();
        for state in self.states.list_sync_states().await? {
            let synced_at = state.last_full_sync_at.max(state.last_incremental_sync_at);
            let stale = state.reconnect_required
                || synced_at.is_none_or(|at| now.signed_duration_since(at) > stale_after);
            standings.insert(state.calendar_id, Standing { synced_at, stale });
        }
        Ok(standings)
    }

    /// The busy time of the calendars' single events in `window` (widened
    /// by [`ZONE_SLACK`]), by calendar: one read for all of them, of only
    /// what the busy rule needs.
    async fn single_busy(
        &self,
        series: &[Arc<CalendarSeries>],
        window: Interval,
        zone: Tz,
    ) -> Result<HashMap<CalendarId, Vec<Interval>>> {
        let rule = self.config.rule;
        let wide_from = window.start - ZONE_SLACK;
        // No single event starts earlier than its calendar's longest span
        // before the window and still reaches it: each calendar's read is
        // a range. A calendar with no row but masters has no single event.
        let calendars: Vec<BusyCalendar> = series
            .iter()
            .filter_map(|series| {
                let longest = series.longest_span()?;
                Some(BusyCalendar {
                    calendar_id: series.calendar_id.clone(),
                    starts_from: Some(
                        wide_from
                            .checked_sub_signed(longest)
                            .unwrap_or(DateTime::<Utc>::MIN_UTC),
                    ),
                })
            })
            .collect();
        let mut busy: HashMap<CalendarId, Vec<Interval>> = HashMap::new();
        if calendars.is_empty() {
            return Ok(busy);
        }
        let candidates = self
            .events
            .busy_candidates(&BusyQuery {
                calendars,
                ends_after: wide_from,
                starts_before: window.end + ZONE_SLACK,
            })
            .await?;
        for candidate in candidates
            .iter()
            .filter(|candidate| rule.blocks_candidate(candidate))
        {
            if let Some(interval) = busy_interval(&candidate.start, &candidate.end, zone) {
                busy.entry(candidate.calendar_id.clone())
                    .or_default()
                    .push(interval);
            }
        }
        Ok(busy)
    }

    /// The busy time the mirror holds for one calendar in `window`: its
    /// single events' (`singles`, from [`Self::single_busy`]) and its
    /// series'.
    fn mirror_busy(
        &self,
        series: &CalendarSeries,
        mut busy: Vec<Interval>,
        window: Interval,
        zone: Tz,
    ) -> Vec<Interval> {
        let rule = self.config.rule;
        let calendar = &series.calendar_id;
        let wide_from = window.start - ZONE_SLACK;
        let wide_until = window.end + ZONE_SLACK;
        let mut push = |start: &EventTime, end: &EventTime| {
            busy.extend(busy_interval(start, end, zone));
        };
        let now = self.index.now();
        for master in series.masters() {
            let event = master.event();
            if master.series().is_none() {
                // A rule calsync cannot expand: its first occurrence at least.
                if rule.blocks(event, calendar) {
                    push(&event.start, &event.end);
                }
                continue;
            }
            if !rule.blocks(event, calendar) {
                continue;
            }
            let replaced = series.exceptions_of(&event.google_event_id);
            for occurrence in master.occurrences_between(wide_from, wide_until, now) {
                if replaced.is_some_and(|r| r.contains_key(&occurrence.suffix())) {
                    continue;
                }
                push(&occurrence.start, &occurrence.end);
            }
        }
        for exception in series.exceptions() {
            if exception.status != EventStatus::Cancelled && rule.blocks(exception, calendar) {
                push(&exception.start, &exception.end);
            }
        }
        merge(clip(&busy, window))
    }

    /// Replaces the stale calendars' answers with Google's. A call that
    /// fails leaves the mirror's answer, with the failure named.
    async fn ask_google(&self, answers: &mut [CalendarBusy], request: &FreeBusyRequest) {
        let stale: Vec<CalendarId> = answers
            .iter()
            .filter(|a| a.stale && a.errors.is_empty())
            .map(|a| a.calendar_id.clone())
            .collect();
        for chunk in stale.chunks(MAX_CALENDARS) {
            let query = RemoteFreeBusyQuery {
                time_min: request.time_min,
                time_max: request.time_max,
                time_zone: Some(request.zone.name().to_owned()),
                calendars: chunk.to_vec(),
            };
            match self.provider.free_busy(&query).await {
                Ok(remote) => {
                    for calendar in remote {
                        if let Some(answer) = answers
                            .iter_mut()
                            .find(|a| a.calendar_id == calendar.calendar_id)
                        {
                            answer.busy = merge(calendar.busy);
                            answer.errors = calendar
                                .errors
                                .into_iter()
                                .map(|reason| BusyError {
                                    domain: "global",
                                    reason,
                                })
                                .collect();
                            answer.source = BusySource::Google;
                        }
                    }
                }
                Err(error) => {
                    for answer in answers
                        .iter_mut()
                        .filter(|a| chunk.contains(&a.calendar_id))
                    {
                        answer.errors.push(BusyError {
                            domain: "calsync",
                            reason: format!("fallbackFailed: {error}"),
                        });
                    }
                }
            }
        }
    }
}

fn check_window(start: DateTime<Utc>, end: DateTime<Utc>, field: &'static str) -> Result<()> {
    if end <= start {
        return Err(Error::invalid(field, "must be after the start"));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(Error::invalid(
            field,
            format!("the window may span at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    Ok(())
}

fn check_availability(query: &AvailabilityQuery) -> Result<()> {
    if query.groups.is_empty() {
        return Err(Error::invalid(
            "participants",
            "at least one participant group is required",
        ));
    }
    let calendars: HashSet<&CalendarId> = query
        .groups
        .iter()
        .flat_map(|g| g.calendar_ids.iter())
        .collect();
    if calendars.len() > MAX_CALENDARS {
        return Err(Error::invalid(
            "participants",
            format!("at most {MAX_CALENDARS} calendars in all"),
        ));
    }
    for group in &query.groups {
        if group.calendar_ids.is_empty() {
            return Err(Error::invalid(
                "participants.calendarIds",
                "each group names at least one calendar",
            ));
        }
        if let Required::AtLeast(n) = group.required
            && (n == 0 || n > group.calendar_ids.len())
        {
            return Err(Error::invalid(
                "participants.required",
                "must be \"all\" or a number from 1 to the group's calendar count",
            ));
        }
    }
    if query.duration <= Duration::zero() || query.duration > Duration::days(1) {
        return Err(Error::invalid(
            "durationMinutes",
            "must be from 1 to 1440 minutes",
        ));
    }
    if query.interval <= Duration::zero() || query.interval > Duration::days(1) {
        return Err(Error::invalid(
            "intervalMinutes",
            "must be from 1 to 1440 minutes",
        ));
    }
    if query.buffer < Duration::zero() || query.buffer > Duration::days(1) {
        return Err(Error::invalid(
            "bufferMinutes",
            "must be from 0 to 1440 minutes",
        ));
    }
    if query.periods.is_empty() {
        return Err(Error::invalid("periods", "at least one period is required"));
    }
    let start = query.periods.iter().map(|p| p.start).min();
    let end = query.periods.iter().map(|p| p.end).max();
    if let (Some(start), Some(end)) = (start, end) {
        check_window(start, end, "periods")?;
    }
    Ok(())
}
