//! Incremental sync: what Google sends, the rule that applies it to the
//! mirror, and the per-calendar sync state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{
    Attendee, Event, EventDetails, EventStatus, EventTime, EventType, Organizer, PushState,
    check_span,
};
use crate::ids::{CalendarId, EntityRef, Etag, EventId, LocalEventId};

/// An event as the provider reports it in a list or get. A cancelled event in
/// an incremental sync may be a bare stub: only `id` and `status`, or `id`,
/// `recurring_event_id` and `original_start` for a cancelled instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteEvent {
    pub id: EventId,
    pub status: EventStatus,
    pub ical_uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<EventTime>,
    pub end: Option<EventTime>,
    pub attendees: Vec<Attendee>,
    pub organizer: Option<Organizer>,
    pub recurrence: Vec<String>,
    pub recurring_event_id: Option<EventId>,
    pub original_start: Option<EventTime>,
    pub etag: Option<Etag>,
    pub updated: Option<DateTime<Utc>>,
    pub html_link: Option<String>,
    pub event_type: EventType,
    pub details: EventDetails,
    /// Google's event resource verbatim, when the adapter has it.
    pub google: Option<serde_json::Value>,
    /// The entity link read back from `extendedProperties.private`.
    pub entity: Option<EntityRef>,
}

impl RemoteEvent {
    /// Every writable field as Google holds it, to compare with a write's
    /// changes and the values they were based on.
    pub fn fields(&self) -> crate::event::EventChanges {
        crate::event::EventChanges {
            summary: Some(self.summary.clone()),
            description: Some(self.description.clone()),
            location: Some(self.location.clone()),
            start: self.start.clone(),
            end: self.end.clone(),
            attendees: Some(self.attendees.clone()),
            status: Some(self.status),
            recurrence: Some(self.recurrence.clone()),
        }
    }

    /// The mirror row `existing` becomes when it takes Google's copy (a
    /// write lost a conflict), or `None` if this is a bare or malformed stub.
    pub fn onto(&self, existing: &Event, now: DateTime<Utc>) -> Option<Event> {
        let (Some(start), Some(end)) = (&self.start, &self.end) else {
            return None;
        };
        check_span(start, end).ok()?;
        let mut next = from_remote(
            self,
            (start, end),
            existing.id,
            &existing.calendar_id,
            existing.created_at,
            now,
        );
        next.entity = self.entity.clone().or_else(|| existing.entity.clone());
        if next.ical_uid.is_none() {
            next.ical_uid.clone_from(&existing.ical_uid);
        }
        next.pushed_at = existing.pushed_at;
        Some(next)
    }

    /// A bare cancelled stub as incremental sync delivers it.
    pub fn cancelled_stub(id: EventId) -> Self {
        Self {
            id,
            status: EventStatus::Cancelled,
            ical_uid: None,
            summary: None,
            description: None,
            location: None,
            start: None,
            end: None,
            attendees: Vec::new(),
            organizer: None,
            recurrence: Vec::new(),
            recurring_event_id: None,
            original_start: None,
            etag: None,
            updated: None,
            html_link: None,
            event_type: EventType::Default,
            details: EventDetails::default(),
            google: None,
            entity: None,
        }
    }
}

/// One `events.list` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Present for an incremental sync; absent for a full one.
    pub sync_token: Option<String>,
    pub page_token: Option<String>,
    /// At most 2500, Google's cap.
    pub max_results: u32,
}

/// One page of `events.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    pub events: Vec<RemoteEvent>,
    /// Non-empty means more pages follow (a page may be empty while more remain).
    pub next_page_token: Option<String>,
    /// Only on the last page.
    pub next_sync_token: Option<String>,
}

/// Whether a sync run continues from a token or lists everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRun {
    Incremental,
    /// A full listing; every event seen is stamped with `run_id` so that, at the
    /// end, mirrored events Google no longer lists can be found and cancelled.
    Full {
        run_id: String,
        /// When the run's first listing was requested: rows created or
        /// pushed since are spared by its deletion sweep, since the listing
        /// may have passed them before they reached Google.
        started_at: DateTime<Utc>,
    },
}

/// What the store must do after the last page of a run, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncCompletion {
    pub next_sync_token: String,
}

/// A page of changes for the store to apply in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    pub calendar_id: CalendarId,
    pub run: SyncRun,
    pub events: Vec<RemoteEvent>,
    /// Set on the last page only: the token is stored with it, never before.
    pub completion: Option<SyncCompletion>,
    /// Events ending before this are not added to the mirror (cancellations
    /// still apply: they carry no dates to filter by).
    pub retention_cutoff: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub cancelled: u64,
    pub unchanged: u64,
    pub skipped: u64,
    /// Events cancelled by a full run's deletion detection (last page only).
    pub swept: u64,
}

impl PageOutcome {
    /// Whether the mirror changed (skipped and unchanged events leave it).
    pub fn changed_any(&self) -> bool {
        self.inserted + self.updated + self.cancelled + self.swept > 0
    }

    pub fn add(&mut self, other: &PageOutcome) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.cancelled += other.cancelled;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
        self.swept += other.swept;
    }

    pub fn count(&mut self, decision: &ApplyDecision) {
        match decision {
            ApplyDecision::Insert(_) => self.inserted += 1,
            ApplyDecision::Update(_) => self.updated += 1,
            ApplyDecision::Cancel(_) => self.cancelled += 1,
            ApplyDecision::Unchanged => self.unchanged += 1,
            ApplyDecision::Skip(_) => self.skipped += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A cancellation for an event the mirror never had.
    UnknownCancelled,
    /// Older than what the mirror holds.
    Stale,
    /// A local write to this event is still waiting to be pushed; the push
    /// result will bring the event up to date.
    LocalWritePending,
    /// A non-cancelled event without start or end, or with an end before its start.
    Malformed,
    /// Ended before the retention cutoff; it would be cleaned up at once.
    BeyondRetention,
}

/// The outcome of [`decide`] for one remote event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyDecision {
    Insert(Box<Event>),
    Update(Box<Event>),
    /// Mark the existing row cancelled (its content is kept).
    Cancel(Box<Event>),
    Unchanged,
    Skip(SkipReason),
}

fn is_stale(existing: &Event, incoming: &RemoteEvent) -> bool {
    matches!((existing.google_updated, incoming.updated), (Some(have), Some(got)) if got < have)
}

/// The rule that applies one incoming Google event to the mirror, given the
/// row the mirror already holds for the same Google id (if any). Pure, so
/// every storage adapter applies changes identically.
pub fn decide(
    existing: Option<&Event>,
    incoming: &RemoteEvent,
    calendar_id: &CalendarId,
    retention_cutoff: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ApplyDecision {
    if let Some(have) = existing {
        if have.etag.is_some() && have.etag == incoming.etag && have.status == incoming.status {
            return ApplyDecision::Unchanged;
        }
        if is_stale(have, incoming) {
            return ApplyDecision::Skip(SkipReason::Stale);
        }
    }

    if incoming.status == EventStatus::Cancelled {
        // Never filtered by date: stubs carry none.
        return match existing {
            // A cancelled occurrence of a series: Google says to keep it for
            // the series' lifetime (it hides that occurrence), so it is
            // mirrored even though the mirror never held it.
            None => match cancelled_occurrence(incoming, calendar_id, retention_cutoff, now) {
                Some(decision) => decision,
                None => ApplyDecision::Skip(SkipReason::UnknownCancelled),
            },
            Some(have) if have.status == EventStatus::Cancelled => ApplyDecision::Unchanged,
            Some(have) => {
                let mut next = have.clone();
                next.status = EventStatus::Cancelled;
                next.etag = incoming.etag.clone().or(next.etag);
                next.google_updated = incoming.updated.or(next.google_updated);
                next.push_state = PushState::Synced;
                next.updated_at = now;
                ApplyDecision::Cancel(Box::new(next))
            }
        };
    }

    let (Some(start), Some(end)) = (&incoming.start, &incoming.end) else {
        return ApplyDecision::Skip(SkipReason::Malformed);
    };
    if check_span(start, end).is_err() {
        return ApplyDecision::Skip(SkipReason::Malformed);
    }

    match existing {
        Some(have) if have.push_state == PushState::Pending => {
            ApplyDecision::Skip(SkipReason::LocalWritePending)
        }
        Some(have) => match incoming.onto(have, now) {
            Some(next) => ApplyDecision::Update(Box::new(next)),
            None => ApplyDecision::Skip(SkipReason::Malformed),
        },
        None => {
            let next = from_remote(
                incoming,
                (start, end),
                LocalEventId::new(),
                calendar_id,
                now,
                now,
            );
            if retention_cutoff.is_some_and(|cutoff| beyond_retention(&next, cutoff)) {
                return ApplyDecision::Skip(SkipReason::BeyondRetention);
            }
            ApplyDecision::Insert(Box::new(next))
        }
    }
}

/// Whether a row ended before the retention cutoff: a series only once its
/// last occurrence has (an endless one never); an exception by its own end.
pub fn beyond_retention(event: &Event, cutoff: DateTime<Utc>) -> bool {
    if event.is_master() {
        return event.last_end().is_some_and(|last| last < cutoff);
    }
    crate::event::ends_before(&event.end, cutoff)
}

/// The row for a cancelled occurrence the mirror does not hold yet (a stub
/// with `recurringEventId` and `originalStartTime`): cancelled, spanning its
/// original start, so expansion leaves that occurrence out.
fn cancelled_occurrence(
    incoming: &RemoteEvent,
    calendar_id: &CalendarId,
    retention_cutoff: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<ApplyDecision> {
    incoming.recurring_event_id.as_ref()?;
    let original = incoming.original_start.as_ref()?;
    let start = incoming.start.clone().unwrap_or_else(|| original.clone());
    let end = match (&incoming.end, &start) {
        (Some(end), _) => end.clone(),
        (None, EventTime::AllDay { date }) => EventTime::date(date.succ_opt()?),
        (None, at) => at.clone(),
    };
    check_span(&start, &end).ok()?;
    let row = from_remote(
        incoming,
        (&start, &end),
        LocalEventId::new(),
        calendar_id,
        now,
        now,
    );
    if retention_cutoff.is_some_and(|cutoff| beyond_retention(&row, cutoff)) {
        return Some(ApplyDecision::Skip(SkipReason::BeyondRetention));
    }
    Some(ApplyDecision::Insert(Box::new(row)))
}

/// Builds a mirror row from a complete remote event and its checked span.
fn from_remote(
    incoming: &RemoteEvent,
    (start, end): (&EventTime, &EventTime),
    id: LocalEventId,
    calendar_id: &CalendarId,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Event {
    Event {
        id,
        calendar_id: calendar_id.clone(),
        google_event_id: incoming.id.clone(),
        ical_uid: incoming.ical_uid.clone(),
        summary: incoming.summary.clone(),
        description: incoming.description.clone(),
        location: incoming.location.clone(),
        start: start.clone(),
        end: end.clone(),
        status: incoming.status,
        attendees: incoming.attendees.clone(),
        organizer: incoming.organizer.clone(),
        recurrence: incoming.recurrence.clone(),
        recurring_event_id: incoming.recurring_event_id.clone(),
        original_start: incoming.original_start.clone(),
        etag: incoming.etag.clone(),
        google_updated: incoming.updated,
        html_link: incoming.html_link.clone(),
        event_type: incoming.event_type.clone(),
        details: incoming.details.clone(),
        google: incoming.google.clone(),
        entity: incoming.entity.clone(),
        push_state: PushState::Synced,
        push_note: None,
        pushed_at: None,
        created_at,
        updated_at: now,
    }
}

/// Per-calendar sync bookkeeping. A calendar is dirty while `dirty_seq`
/// exceeds `clean_seq`: each notification bumps `dirty_seq`, and a finished
/// sync sets `clean_seq` to the value it saw when it started, so a
/// notification arriving mid-sync leaves the calendar dirty for a follow-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    pub calendar_id: CalendarId,
    #[serde(skip_serializing)]
    pub sync_token: Option<String>,
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub last_incremental_sync_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub error_count: u32,
    pub dirty_seq: i64,
    pub clean_seq: i64,
    pub full_sync_requested: bool,
    pub reconnect_required: bool,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The `dirty_seq` the lease holder saw when it took the lease.
    pub lease_seen_seq: Option<i64>,
    /// Since when Google has refused this principal's writes to the
    /// calendar (403 `requiredAccessLevel`); `None` while writable.
    pub read_only_since: Option<DateTime<Utc>>,
    /// Google's words for the refusal.
    pub read_only_reason: Option<String>,
}

impl SyncState {
    pub fn new(calendar_id: CalendarId) -> Self {
        Self {
            calendar_id,
            sync_token: None,
            last_full_sync_at: None,
            last_incremental_sync_at: None,
            last_status: None,
            last_error: None,
            last_error_at: None,
            error_count: 0,
            dirty_seq: 0,
            clean_seq: 0,
            full_sync_requested: false,
            reconnect_required: false,
            lease_owner: None,
            lease_until: None,
            lease_seen_seq: None,
            read_only_since: None,
            read_only_reason: None,
        }
    }

    /// Whether writes to the calendar wait for write access.
    pub fn is_read_only(&self) -> bool {
        self.read_only_since.is_some()
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty_seq > self.clean_seq || self.full_sync_requested
    }

    /// Whether a change announced now is already covered by a sync that
    /// will start after this moment, so marking the calendar again would
    /// change nothing: either no sync runs and the calendar is already dirty
    /// (the next sync lists after now), or a live sync runs and a mark
    /// arrived since it started (it stays dirty for a follow-up). When in
    /// doubt (an expired lease) it is not covered.
    pub fn covers_new_change(&self, now: DateTime<Utc>) -> bool {
        match (&self.lease_owner, self.lease_seen_seq, self.lease_until) {
            (None, _, _) => self.dirty_seq > self.clean_seq,
            (Some(_), Some(seen), Some(until)) if until > now => self.dirty_seq > seen,
            _ => false,
        }
    }

    /// Until when a change announced is covered whatever any worker does:
    /// a dirty calendar resting (no lease owner, `lease_until` ahead, after
    /// a failure or a sync that found nothing) can be leased by no one
    /// before then, so it stays dirty and its next sync starts after.
    /// `None` when it is not resting, or not dirty.
    pub fn resting_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (&self.lease_owner, self.lease_until) {
            (None, Some(until)) if until > now && self.dirty_seq > self.clean_seq => Some(until),
            _ => None,
        }
    }

    pub fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.last_full_sync_at.max(self.last_incremental_sync_at)
    }

    /// How long a calendar rests after `error_count` consecutive failed syncs
    /// before a worker tries it again: 5 s doubling, at most 10 minutes.
    pub fn retry_delay(error_count: u32) -> std::time::Duration {
        let doubled = 5u64.saturating_mul(1u64 << error_count.saturating_sub(1).min(20));
        std::time::Duration::from_secs(doubled.min(600))
    }

    /// Whether a worker may take the lease now.
    pub fn lease_available(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_none_or(|until| until <= now)
    }
}

/// A held sync lease: who holds it and the dirty mark it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLease {
    pub calendar_id: CalendarId,
    pub owner: String,
    pub until: DateTime<Utc>,
    /// `dirty_seq` when the lease was taken.
    pub seen_seq: i64,
    pub full_sync_requested: bool,
}

/// How a leased sync ended, for the store to record on release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded {
        full: bool,
        /// If the calendar was marked again during the sync, no worker
        /// takes it before this instant (a rest: a notification storm costs
        /// a sync per rest, not one after another). `None`: at once.
        rest_until: Option<DateTime<Utc>>,
    },
    Failed {
        error: String,
        reconnect_required: bool,
    },
    /// Shutting down: give the lease back, keep the calendar dirty.
    Abandoned,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate, TimeZone};

    fn cal() -> CalendarId {
        CalendarId::new("cal@example.com").unwrap()
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn a_new_change_needs_a_mark_only_when_no_later_sync_is_due() {
        let mut state = SyncState::new(cal());
        assert!(!state.covers_new_change(t(10)), "clean: mark");
        state.dirty_seq = 3;
        state.clean_seq = 2;
        assert!(
            state.covers_new_change(t(10)),
            "dirty, no sync running: covered"
        );

        // A sync runs, having seen seq 3.
        state.lease_owner = Some("w".into());
        state.lease_until = Some(t(11));
        state.lease_seen_seq = Some(3);
        assert!(
            !state.covers_new_change(t(10)),
            "nothing marked since it started"
        );
        state.dirty_seq = 4;
        assert!(state.covers_new_change(t(10)), "a follow-up is already due");
        assert!(
            !state.covers_new_change(t(12)),
            "an expired lease proves nothing: mark"
        );
        state.lease_seen_seq = None;
        assert!(!state.covers_new_change(t(10)), "unknown seen seq: mark");
    }

    fn remote(id: &str, etag: &str, updated: DateTime<Utc>) -> RemoteEvent {
        RemoteEvent {
            start: Some(EventTime::at(t(10), None)),
            end: Some(EventTime::at(t(11), None)),
            etag: Some(Etag::new(etag).unwrap()),
            updated: Some(updated),
            status: EventStatus::Confirmed,
            summary: Some("Call".into()),
            ..RemoteEvent::cancelled_stub(EventId::new(id).unwrap())
        }
    }

    fn inserted(change: &RemoteEvent) -> Event {
        match decide(None, change, &cal(), None, t(12)) {
            ApplyDecision::Insert(event) => *event,
            other => panic!("expected insert, got {other:?}"),
        }
    }

    #[test]
    fn new_events_are_inserted_as_synced() {
        let event = inserted(&remote("e1", "\"1\"", t(1)));
        assert_eq!(event.google_event_id.as_str(), "e1");
        assert_eq!(event.push_state, PushState::Synced);
        assert_eq!(event.summary.as_deref(), Some("Call"));
    }

    #[test]
    fn same_etag_is_unchanged_so_replaying_a_page_changes_nothing() {
        let change = remote("e1", "\"1\"", t(1));
        let have = inserted(&change);
        assert_eq!(
            decide(Some(&have), &change, &cal(), None, t(13)),
            ApplyDecision::Unchanged
        );
    }

    #[test]
    fn a_stale_change_never_overwrites_a_newer_one() {
        let have = inserted(&remote("e1", "\"2\"", t(5)));
        let older = remote("e1", "\"1\"", t(4));
        assert_eq!(
            decide(Some(&have), &older, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::Stale)
        );
        let mut older_cancel = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
        older_cancel.updated = Some(t(3));
        assert_eq!(
            decide(Some(&have), &older_cancel, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::Stale)
        );
        let newer = remote("e1", "\"3\"", t(6));
        assert!(
            matches!(decide(Some(&have), &newer, &cal(), None, t(13)), ApplyDecision::Update(e) if e.id == have.id)
        );
    }

    #[test]
    fn cancelled_stubs_apply_without_dates_and_ignore_retention() {
        let have = inserted(&remote("e1", "\"1\"", t(1)));
        let stub = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
        let far_future_cutoff = t(0) + Duration::days(3650);
        match decide(Some(&have), &stub, &cal(), Some(far_future_cutoff), t(13)) {
            ApplyDecision::Cancel(event) => {
                assert_eq!(event.status, EventStatus::Cancelled);
                assert_eq!(event.start, have.start, "the row keeps its content");
            }
            other => panic!("expected cancel, got {other:?}"),
        }
        assert_eq!(
            decide(None, &stub, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::UnknownCancelled)
        );
    }

    #[test]
    fn a_cancelled_recurring_instance_cancels_the_mirrored_instance() {
        let mut instance = remote("series_20260501T100000Z", "\"1\"", t(1));
        instance.recurring_event_id = Some(EventId::new("series").unwrap());
        instance.original_start = Some(EventTime::at(t(10), None));
        let have = inserted(&instance);
        let stub = RemoteEvent {
            recurring_event_id: Some(EventId::new("series").unwrap()),
            original_start: Some(EventTime::at(t(10), None)),
            ..RemoteEvent::cancelled_stub(EventId::new("series_20260501T100000Z").unwrap())
        };
        assert!(matches!(
            decide(Some(&have), &stub, &cal(), None, t(13)),
            ApplyDecision::Cancel(_)
        ));
    }

    #[test]
    fn retention_filters_only_new_events_with_dates() {
        let mut old = remote("e1", "\"1\"", t(1));
        old.start = Some(EventTime::date(
            NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        ));
        old.end = Some(EventTime::date(
            NaiveDate::from_ymd_opt(2020, 1, 2).unwrap(),
        ));
        assert_eq!(
            decide(None, &old, &cal(), Some(t(0)), t(13)),
            ApplyDecision::Skip(SkipReason::BeyondRetention)
        );
        assert!(matches!(
            decide(None, &old, &cal(), None, t(13)),
            ApplyDecision::Insert(_)
        ));
    }

    #[test]
    fn all_day_dates_stay_dates() {
        let mut all_day = remote("e1", "\"1\"", t(1));
        let start = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2026, 5, 2).unwrap();
        all_day.start = Some(EventTime::date(start));
        all_day.end = Some(EventTime::date(end));
        let event = inserted(&all_day);
        assert_eq!(event.start, EventTime::date(start));
        assert_eq!(
            event.end,
            EventTime::date(end),
            "exclusive end kept as given"
        );
    }

    #[test]
    fn pending_local_writes_are_not_overwritten_but_cancellations_win() {
        let mut have = inserted(&remote("e1", "\"1\"", t(1)));
        have.push_state = PushState::Pending;
        have.summary = Some("local edit".into());
        let remote_edit = remote("e1", "\"2\"", t(2));
        assert_eq!(
            decide(Some(&have), &remote_edit, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::LocalWritePending)
        );
        let stub = RemoteEvent::cancelled_stub(EventId::new("e1").unwrap());
        assert!(matches!(
            decide(Some(&have), &stub, &cal(), None, t(13)),
            ApplyDecision::Cancel(_)
        ));
    }

    #[test]
    fn entity_link_survives_a_remote_edit_that_dropped_it() {
        let mut first = remote("e1", "\"1\"", t(1));
        first.entity = Some(EntityRef::new("deal", "7").unwrap());
        let have = inserted(&first);
        let edit = remote("e1", "\"2\"", t(2));
        match decide(Some(&have), &edit, &cal(), None, t(13)) {
            ApplyDecision::Update(event) => {
                assert_eq!(event.entity, Some(EntityRef::new("deal", "7").unwrap()));
            }
            other => panic!("expected update, got {other:?}"),
        }
    }

    #[test]
    fn malformed_events_are_skipped_not_fatal() {
        let mut bad = remote("e1", "\"1\"", t(1));
        bad.end = Some(EventTime::at(t(9), None));
        assert_eq!(
            decide(None, &bad, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::Malformed)
        );
        let mut no_end = remote("e2", "\"1\"", t(1));
        no_end.end = None;
        assert_eq!(
            decide(None, &no_end, &cal(), None, t(13)),
            ApplyDecision::Skip(SkipReason::Malformed)
        );
    }

    #[test]
    fn failing_calendars_back_off() {
        let secs: Vec<u64> = [1, 2, 3, 8, 50]
            .iter()
            .map(|n| SyncState::retry_delay(*n).as_secs())
            .collect();
        assert_eq!(secs, vec![5, 10, 20, 600, 600]);
    }

    #[test]
    fn dirty_marks_survive_a_sync_that_started_before_them() {
        let mut state = SyncState::new(cal());
        state.dirty_seq = 3;
        assert!(state.is_dirty());
        let seen = state.dirty_seq;
        state.dirty_seq += 1; // a notification arrives mid-sync
        state.clean_seq = seen; // the sync finishes
        assert!(
            state.is_dirty(),
            "the mid-sync notification needs a follow-up sync"
        );
    }
}
