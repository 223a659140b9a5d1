//! Applying Google's changes to the mirror: the page the store applies in
//! one transaction, the pure rule for each event, and what it did.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::remote::{RemoteEvent, from_remote};
use crate::event::{Event, EventStatus, EventTime, PushState, check_span, ends_before};
use crate::ids::{CalendarId, LocalEventId};

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
    ends_before(&event.end, cutoff)
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
