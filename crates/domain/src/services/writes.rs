use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, ProviderErrorKind, Result};
use crate::event::{Event, EventChanges, EventStatus, NewEvent, PushState};
use crate::ids::{Etag, LocalEventId};
use crate::outbox::{IdempotencyKey, OutboxEntry, OutboxOp, OutboxRetryPolicy, PatchIntent};
use crate::ports::{
    CalendarProvider, CalendarStore, Clock, EventStore, OutboxStore, PatchCall, PushReceipt,
    SyncStateStore, Timer,
};
use crate::sync::RemoteEvent;

/// The note on an event whose write found it deleted at Google.
pub const DELETED_AT_GOOGLE: &str =
    "deleted at Google: the change was not applied and the event is cancelled here too";

/// The start of the note on an event whose write lost a conflict.
pub const CONFLICT_NOTE: &str = "conflict: the same fields changed in Google since this write was made; Google's version is kept";

/// What happened to one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// Google had deleted the event: it is cancelled here too.
    GoneAtGoogle,
    /// Google's copy changed the same fields: it is kept, the write is not applied.
    Conflict,
    /// Failed for now; tried again at the scheduled time.
    Retrying {
        error: String,
    },
    /// Given up: the event is marked `failed`.
    DeadLettered {
        error: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    pub pushed: u32,
    pub retrying: u32,
    pub dead_lettered: u32,
    pub gone: u32,
    pub conflicts: u32,
}

impl DrainReport {
    pub fn total(&self) -> u32 {
        self.pushed + self.retrying + self.dead_lettered + self.gone + self.conflicts
    }
}

/// How Google answered a push.
enum Verdict {
    /// Applied; Google's copy when the call returned one.
    Applied(Option<Box<RemoteEvent>>),
    /// Not applied; the mirror takes this row instead, with this note.
    Settled(Box<Event>, &'static str),
}

fn receipt(
    remote: Option<Box<RemoteEvent>>,
    pushed_at: chrono::DateTime<chrono::Utc>,
) -> PushReceipt {
    let fields = remote
        .as_ref()
        .map(|r| (r.etag.clone(), r.updated, r.html_link.clone()));
    let (etag, updated, html_link) = fields.unwrap_or((None, None, None));
    PushReceipt {
        etag,
        updated,
        html_link,
        pushed_at,
        remote,
    }
}

/// Whether Google's refusal of a write shows the principal may write the
/// calendar: Google judged the write itself (412, 409, 410, 400, 403
/// `forbiddenForNonOrganizer`, ...) rather than refusing access (403
/// `requiredAccessLevel`), failing to answer (transient, transport), or
/// answering for its quota or the calendar's reachability.
fn judged_with_write_access(error: &Error) -> bool {
    error.provider_kind().is_some_and(|kind| {
        !matches!(
            kind,
            ProviderErrorKind::ReadOnly
                | ProviderErrorKind::Transient
                | ProviderErrorKind::RateLimited
                | ProviderErrorKind::QuotaExhausted
                | ProviderErrorKind::ReconnectRequired
        )
    })
}

/// The result of an idempotent create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The event as it is now (for a replay, it may have been pushed since).
    pub event: Event,
    /// True when an earlier request with the same key created it.
    pub replayed: bool,
}

/// The application's writes: each goes to the mirror and the outbox in one
/// transaction, and the outbox worker pushes it to Google.
#[derive(Clone)]
pub struct EventService {
    provider: Arc<dyn CalendarProvider>,
    events: Arc<dyn EventStore>,
    outbox: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    retry: OutboxRetryPolicy,
    lease: std::time::Duration,
    timer: Option<Arc<dyn Timer>>,
    /// Where an unreachable calendar is marked for reconnecting.
    states: Option<Arc<dyn SyncStateStore>>,
    attendees_need_delegation: bool,
    /// The managed calendars, whose own subjects may invite attendees.
    calendars: Option<Arc<dyn CalendarStore>>,
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
            lease: std::time::Duration::from_secs(60),
            timer: None,
            states: None,
            attendees_need_delegation: false,
            calendars: None,
        }
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

    async fn check_attendees_allowed(
        &self,
        calendar_id: &crate::ids::CalendarId,
        attendees: &[crate::event::Attendee],
    ) -> Result<()> {
        if !self.attendees_need_delegation || attendees.is_empty() {
            return Ok(());
        }
        if let Some(calendars) = &self.calendars
            && calendars
                .get_calendar(calendar_id)
                .await?
                .is_some_and(|c| c.subject.is_some())
        {
            return Ok(());
        }
        Err(Error::unprocessable(
            "attendees",
            "Google does not let a service account invite attendees without domain-wide delegation: give the calendar a subject (PATCH /calendar/calendars/{id}) or set CALSYNC_GOOGLE_SUBJECT, or send no attendees",
        ))
    }

    /// How long a claimed row's lease lasts; with a timer, a heartbeat
    /// renews it while the row is pushed, so a crashed worker's rows come
    /// back after `ttl` while slow pushes keep theirs.
    pub fn with_lease(mut self, ttl: std::time::Duration, timer: Option<Arc<dyn Timer>>) -> Self {
        self.lease = ttl;
        self.timer = timer;
        self
    }

    pub fn with_retry_policy(mut self, retry: OutboxRetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub(super) fn events(&self) -> &dyn EventStore {
        self.events.as_ref()
    }

    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Creates the event locally (push pending) and queues its insert.
    pub async fn create(&self, new: NewEvent) -> Result<(Event, OutboxEntry)> {
        let event = new.into_event(self.clock.now());
        self.check_attendees_allowed(&event.calendar_id, &event.attendees)
            .await?;
        let entry = self
            .events
            .insert_with_outbox(&event, OutboxOp::Insert)
            .await?;
        Ok((event, entry))
    }

    /// [`EventService::create`] under an idempotency key: the first request
    /// with the key creates the event; a retry with the same request gets
    /// that event back (`replayed`), and another request is refused.
    pub async fn create_idempotent(&self, new: NewEvent, key: &IdempotencyKey) -> Result<Created> {
        if let Some(replayed) = self.replay(key).await? {
            return Ok(replayed);
        }
        let event = new.into_event(self.clock.now());
        self.check_attendees_allowed(&event.calendar_id, &event.attendees)
            .await?;
        match self
            .events
            .insert_idempotent(&event, OutboxOp::Insert, key)
            .await
        {
            Ok(_) => Ok(Created {
                event,
                replayed: false,
            }),
            // A concurrent request with the same key won the race.
            Err(Error::Duplicate {
                what: "idempotency key",
            }) => self.replay(key).await?.ok_or(Error::NotFound {
                what: "idempotency key",
            }),
            Err(error) => Err(error),
        }
    }

    async fn replay(&self, key: &IdempotencyKey) -> Result<Option<Created>> {
        let Some(record) = self.events.find_idempotency_key(key.key()).await? else {
            return Ok(None);
        };
        if record.fingerprint != key.fingerprint() {
            return Err(Error::IdempotencyKeyReused);
        }
        let event = self.load(record.event_id).await?;
        Ok(Some(Created {
            event,
            replayed: true,
        }))
    }

    async fn load(&self, id: LocalEventId) -> Result<Event> {
        self.events
            .get_event(id)
            .await?
            .ok_or(Error::NotFound { what: "event" })
    }

    fn check_etag(event: &Event, if_match: Option<&Etag>) -> Result<()> {
        match if_match {
            Some(expected) if event.etag.as_ref() != Some(expected) => {
                Err(Error::PreconditionFailed {
                    reason: "the event changed since that etag was read".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Changes an event and queues the patch. With `if_match`, the change
    /// applies only if the event's etag is still that one, here and at Google.
    pub async fn update(
        &self,
        id: LocalEventId,
        changes: &EventChanges,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let current = self.load(id).await?;
        if current.status == EventStatus::Cancelled {
            let why = current.push_note.as_deref().unwrap_or("cancelled");
            return Err(Error::Conflict {
                reason: format!("the event is cancelled ({why}); it cannot be changed"),
            });
        }
        current.event_type.check_writable()?;
        // What the caller leaves out of an attendee it sends (an answer, a
        // display name) stays as the mirror has it, RSVPs made in Google
        // included: the patch replaces the list whole.
        let mut changes = changes.clone();
        changes.fill_attendees_from(&current.attendees);
        let changes = &changes;
        if let Some(attendees) = &changes.attendees {
            self.check_attendees_allowed(&current.calendar_id, attendees)
                .await?;
        }
        Self::check_etag(&current, if_match.as_ref())?;
        self.check_exception_copy(&current, changes).await?;
        let next = changes.apply_to(&current, self.clock.now())?;
        let intent = PatchIntent {
            changes: changes.clone(),
            base: changes.base_in(&current),
        };
        let op = OutboxOp::Patch {
            if_match,
            intent: Some(Box::new(intent)),
        };
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, op)
            .await?;
        Ok((next, entry))
    }

    /// An exception calsync made has no Google copy of its own until its
    /// first push lands, so what Google lets this calendar change in it is
    /// judged on the master's copy (an occurrence of an invitation is an
    /// invitation too), as [`EventService::update_occurrence`] judges the
    /// write that made it. With a copy of its own, `apply_to` judges it.
    async fn check_exception_copy(&self, event: &Event, changes: &EventChanges) -> Result<()> {
        let (None, Some(master_id)) = (&event.google, &event.recurring_event_id) else {
            return Ok(());
        };
        let Some(master) = self
            .events
            .find_by_google_id(&event.calendar_id, master_id)
            .await?
        else {
            return Ok(());
        };
        let judged = Event {
            google: master.google,
            ..event.clone()
        };
        crate::event::check_copy_change(&judged, changes)
    }

    /// Cancels an event locally and queues its deletion at Google.
    pub async fn cancel(
        &self,
        id: LocalEventId,
        if_match: Option<Etag>,
    ) -> Result<(Event, OutboxEntry)> {
        let current = self.load(id).await?;
        current.event_type.check_writable()?;
        Self::check_etag(&current, if_match.as_ref())?;
        let mut next = current.clone();
        next.status = EventStatus::Cancelled;
        next.push_state = PushState::Pending;
        next.push_note = None;
        next.updated_at = self.clock.now();
        let entry = self
            .events
            .update_with_outbox(&next, current.updated_at, OutboxOp::Delete)
            .await?;
        Ok((next, entry))
    }

    /// Pushes up to `limit` due outbox rows.
    pub async fn drain_outbox(&self, owner: &str, limit: u32) -> Result<DrainReport> {
        let now = self.clock.now();
        let until = crate::later(now, self.lease);
        let entries = self.outbox.claim_outbox(owner, now, until, limit).await?;
        let ids: Vec<i64> = entries.iter().map(|entry| entry.id).collect();
        // Claimed rows belong to distinct events, so they may go concurrently:
        // one slow or retried call does not hold up the batch.
        let pushes = async {
            Ok(futures_util::future::join_all(entries.iter().map(|entry| self.push(entry))).await)
        };
        // A lost row lease is not a reason to abandon a push in flight (it
        // may already have reached Google); the beat only keeps the rows.
        let outcomes = crate::heartbeat::run(
            self.timer.as_ref(),
            crate::heartbeat::interval(self.lease),
            pushes,
            || async {
                let until = crate::later(self.clock.now(), self.lease);
                self.outbox
                    .extend_outbox_leases(owner, &ids, until)
                    .await
                    .map(|_| true)
            },
        )
        .await?;
        let mut report = DrainReport::default();
        for outcome in outcomes {
            match outcome? {
                PushOutcome::Pushed => report.pushed += 1,
                PushOutcome::Retrying { .. } => report.retrying += 1,
                PushOutcome::DeadLettered { .. } => report.dead_lettered += 1,
                PushOutcome::GoneAtGoogle => report.gone += 1,
                PushOutcome::Conflict => report.conflicts += 1,
            }
        }
        Ok(report)
    }

    /// Pushes one claimed row and records the result. Only storage failures
    /// are returned as errors; provider failures become the outcome.
    pub async fn push(&self, entry: &OutboxEntry) -> Result<PushOutcome> {
        let Some(event) = self.events.get_event(entry.event_id).await? else {
            let error = "the event no longer exists";
            self.outbox.dead_letter_outbox(entry, error).await?;
            return Ok(PushOutcome::DeadLettered {
                error: error.into(),
            });
        };
        match self.call_provider(entry, &event).await {
            Ok(Verdict::Applied(remote)) => {
                let receipt = receipt(remote, self.clock.now());
                // Clears the calendar's read-only mark, if any, too.
                self.outbox.complete_outbox(entry, &receipt).await?;
                Ok(PushOutcome::Pushed)
            }
            Ok(Verdict::Settled(settled, note)) => {
                self.outbox.settle_outbox(entry, &settled, note).await?;
                // Google judged the write (gone, or changed meanwhile),
                // which it does only for a principal that may write.
                self.writable_again(&event.calendar_id).await?;
                Ok(if settled.push_state == PushState::Conflict {
                    PushOutcome::Conflict
                } else {
                    PushOutcome::GoneAtGoogle
                })
            }
            Err(error) => {
                let error = self.note_refusal(&event, error).await?;
                if judged_with_write_access(&error) {
                    self.writable_again(&event.calendar_id).await?;
                }
                self.record_failure(entry, &error).await
            }
        }
    }

    /// What a refusal says about the calendar or the mirror, recorded
    /// before the row's fate is decided; returns the error to record.
    async fn note_refusal(&self, event: &Event, error: Error) -> Result<Error> {
        match error.provider_kind() {
            // The principal may read but not write the calendar (403
            // `requiredAccessLevel`): health names it until a write lands.
            Some(ProviderErrorKind::ReadOnly) => {
                if let Some(states) = &self.states {
                    states
                        .mark_read_only(&event.calendar_id, &error.to_string(), self.clock.now())
                        .await?;
                }
                Ok(error)
            }
            // 403 `forbiddenForNonOrganizer`: the mirror did not yet know
            // the event is an invitation (or a locked copy) when the write
            // was accepted. Retrying cannot help, so the row is given up
            // with a message saying why, and the calendar is synced so
            // the next such write is refused up front.
            Some(ProviderErrorKind::NotOrganizer) => {
                if let Some(states) = &self.states {
                    states.mark_dirty(&event.calendar_id, false).await?;
                }
                Ok(Error::provider(
                    ProviderErrorKind::NotOrganizer,
                    format!(
                        "Google refused the change: the event is an invitation organized from another calendar (or a locked copy), and only its organizer can change these fields; retrying cannot help. Change it in the organizer's calendar, or change only what an attendee may (its own responseStatus). Google said: {error}"
                    ),
                ))
            }
            _ => Ok(error),
        }
    }

    /// Google judged a write to the calendar on its merits (settled, or
    /// refused for another reason than access): if it was marked read-only,
    /// it is writable again. A landed write clears the mark inside
    /// `complete_outbox` instead. Read first: these paths are rare and the
    /// mark usually absent, so no write transaction is spent on them. The
    /// calendar's held writes keep their next try, at most one probe
    /// interval away.
    async fn writable_again(&self, calendar_id: &crate::ids::CalendarId) -> Result<()> {
        let Some(states) = &self.states else {
            return Ok(());
        };
        if states
            .sync_state(calendar_id)
            .await?
            .is_some_and(|state| state.is_read_only())
        {
            states.clear_read_only(calendar_id).await?;
        }
        Ok(())
    }

    /// The mirror row of an event Google deleted: cancelled, with the note.
    fn gone(&self, event: &Event) -> Verdict {
        let mut gone = event.clone();
        gone.status = EventStatus::Cancelled;
        gone.push_state = PushState::Synced;
        gone.push_note = Some(DELETED_AT_GOOGLE.into());
        gone.updated_at = self.clock.now();
        Verdict::Settled(Box::new(gone), DELETED_AT_GOOGLE)
    }

    /// A 404 on an event means it is gone only if the calendar itself is
    /// readable: Google answers 404 for calendars it won't show us, too.
    async fn gone_unless_unreachable(&self, event: &Event, error: Error) -> Result<Verdict> {
        if self
            .provider
            .calendar_accessible(&event.calendar_id)
            .await?
        {
            return Ok(self.gone(event));
        }
        let why = format!("the calendar is not reachable by this principal (404): {error}");
        if let Some(states) = &self.states {
            states
                .mark_reconnect_required(&event.calendar_id, &why, self.clock.now())
                .await?;
        }
        // The write stays queued (`waits`) until the calendar is back.
        Err(Error::provider(ProviderErrorKind::ReconnectRequired, why))
    }

    async fn call_provider(&self, entry: &OutboxEntry, event: &Event) -> Result<Verdict> {
        match &entry.op {
            OutboxOp::Insert => match self.provider.insert_event(event).await {
                Ok(remote) => Ok(Verdict::Applied(Some(Box::new(remote)))),
                Err(error) if error.provider_kind() == Some(ProviderErrorKind::Duplicate) => {
                    // An earlier try may have reached Google before failing
                    // here. Deleted ids stay reserved too, so only an event
                    // carrying our entity link proves the insert happened.
                    let remote = self
                        .provider
                        .get_event(&event.calendar_id, &event.google_event_id)
                        .await?;
                    if remote.entity.is_some() && remote.entity == event.entity {
                        if remote.status == EventStatus::Cancelled {
                            // Ours, and deleted in Google since.
                            return Ok(self.gone(event));
                        }
                        Ok(Verdict::Applied(Some(Box::new(remote))))
                    } else {
                        Err(Error::provider(
                            ProviderErrorKind::Permanent,
                            "the Google event id is taken by an event that is not ours",
                        ))
                    }
                }
                Err(error) => Err(error),
            },
            OutboxOp::Patch { if_match, intent } => {
                // Rows queued before intents were recorded send the content.
                let intent = intent.as_deref().cloned().unwrap_or_else(|| PatchIntent {
                    changes: EventChanges::content_of(event),
                    base: EventChanges::default(),
                });
                self.patch(event, &intent, if_match.is_some()).await
            }
            OutboxOp::Delete => self.delete(event).await,
        }
    }

    /// A conditional patch of the changed fields. On 412 Google's copy is
    /// read again: if the fields this write changed still hold the values
    /// it was based on, it is re-applied on the new etag (someone changed
    /// other fields); if they already hold the new values, an earlier try
    /// landed; otherwise it is a conflict and Google's version is kept. A
    /// caller who demanded an etag (`If-Match`) gets no re-apply.
    async fn patch(&self, event: &Event, intent: &PatchIntent, demanded: bool) -> Result<Verdict> {
        let call = PatchCall {
            calendar_id: event.calendar_id.clone(),
            event_id: event.google_event_id.clone(),
            changes: intent.changes.clone(),
            if_match: event.etag.clone(),
        };
        let refused = match self.provider.patch_event(&call).await {
            Ok(remote) => return Ok(Verdict::Applied(Some(Box::new(remote)))),
            Err(error) => error,
        };
        match refused.provider_kind() {
            Some(ProviderErrorKind::Gone) => return Ok(self.gone(event)),
            Some(ProviderErrorKind::NotFound) => {
                return self.gone_unless_unreachable(event, refused).await;
            }
            Some(ProviderErrorKind::PreconditionFailed) => {}
            _ => return Err(refused),
        }
        let remote = match self
            .provider
            .get_event(&event.calendar_id, &event.google_event_id)
            .await
        {
            Ok(remote) => remote,
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::Gone) => {
                return Ok(self.gone(event));
            }
            Err(error) => return Err(error),
        };
        if remote.status == EventStatus::Cancelled && intent.changes.status.is_none() {
            return Ok(self.gone(event));
        }
        let current = remote.fields();
        // The RSVPs this write gives count as fields it changes; answers it
        // only carried over are Google's to keep.
        let answered = intent.changes.answered(&intent.base);
        if intent.changes.holds_in(&current, &answered) {
            return Ok(Verdict::Applied(Some(Box::new(remote))));
        }
        if demanded || !intent.base.holds_in(&current, &answered) {
            let now = self.clock.now();
            let Some(mut kept) = remote.onto(event, now) else {
                return Err(Error::provider(
                    ProviderErrorKind::Transient,
                    "Google's copy of a conflicting event has no start or end",
                ));
            };
            kept.push_state = PushState::Conflict;
            kept.push_note = Some(CONFLICT_NOTE.into());
            return Ok(Verdict::Settled(Box::new(kept), CONFLICT_NOTE));
        }
        let mut changes = intent.changes.clone();
        changes.keep_responses_from(&remote.attendees, &answered);
        let again = PatchCall {
            changes,
            if_match: remote.etag.clone(),
            ..call
        };
        match self.provider.patch_event(&again).await {
            Ok(remote) => Ok(Verdict::Applied(Some(Box::new(remote)))),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::Gone) => {
                Ok(self.gone(event))
            }
            // Changed yet again in between: look again on the next attempt.
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {
                Err(Error::provider(
                    ProviderErrorKind::Transient,
                    format!("the event keeps changing in Google: {error}"),
                ))
            }
            Err(error) => Err(error),
        }
    }

    /// A delete conditional on the etag the mirror holds. If Google's copy
    /// changed meanwhile the delete still wins (the caller asked for the
    /// event to go), but only after reading what it deletes, so an already
    /// deleted event is not an error.
    async fn delete(&self, event: &Event) -> Result<Verdict> {
        let (calendar, id) = (&event.calendar_id, &event.google_event_id);
        let gone = |error: &Error| {
            matches!(
                error.provider_kind(),
                Some(ProviderErrorKind::NotFound | ProviderErrorKind::Gone)
            )
        };
        match self
            .provider
            .delete_event(calendar, id, event.etag.as_ref())
            .await
        {
            Ok(()) => return Ok(Verdict::Applied(None)),
            // A 404 is "gone" only if the calendar itself is readable: an
            // unshared calendar answers 404 while the event lives on.
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::NotFound) => {
                return match self.gone_unless_unreachable(event, error).await? {
                    Verdict::Settled(..) => Ok(Verdict::Applied(None)),
                    applied => Ok(applied),
                };
            }
            // Already gone at Google: the deletion holds.
            Err(error) if gone(&error) => return Ok(Verdict::Applied(None)),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {}
            Err(error) => return Err(error),
        }
        let remote = match self.provider.get_event(calendar, id).await {
            Ok(remote) => remote,
            Err(error) if gone(&error) => return Ok(Verdict::Applied(None)),
            Err(error) => return Err(error),
        };
        if remote.status == EventStatus::Cancelled {
            return Ok(Verdict::Applied(None));
        }
        match self
            .provider
            .delete_event(calendar, id, remote.etag.as_ref())
            .await
        {
            Ok(()) => Ok(Verdict::Applied(None)),
            Err(error) if gone(&error) => Ok(Verdict::Applied(None)),
            Err(error) if error.provider_kind() == Some(ProviderErrorKind::PreconditionFailed) => {
                Err(Error::provider(
                    ProviderErrorKind::Transient,
                    format!("the event keeps changing in Google: {error}"),
                ))
            }
            Err(error) => Err(error),
        }
    }

    async fn record_failure(&self, entry: &OutboxEntry, error: &Error) -> Result<PushOutcome> {
        let message = error.to_string();
        let attempts = entry.attempts + 1;
        let retry_after = match error {
            Error::Provider { retry_after, .. } => *retry_after,
            _ => None,
        };
        let kind = error.provider_kind();
        let seed = u64::try_from(entry.id).unwrap_or_default();
        if kind == Some(ProviderErrorKind::ReadOnly) {
            // Write access comes back when someone changes the sharing:
            // the write waits, tried again every probe interval (the try
            // is the probe), and the wait is not an attempt. The
            // calendar's other queued writes wait one interval behind it,
            // so Google is asked once per interval, not once per write.
            let probe = self.retry.read_only_probe;
            let next = crate::later(self.clock.now(), probe);
            self.outbox
                .wait_outbox(entry, &message, next, crate::later(next, probe))
                .await?;
            return Ok(PushOutcome::Retrying { error: message });
        }
        let delay = match kind {
            // Spent quota and unreachable calendars come back, in hours or
            // when a person reconnects: the write waits, never given up.
            Some(kind) if kind.waits() => Some(self.retry.long_wait(attempts, retry_after, seed)),
            Some(kind) if kind.is_retryable() && !self.retry.exhausted(attempts) => {
                Some(self.retry.jittered(attempts, retry_after, seed))
            }
            _ => None,
        };
        if let Some(delay) = delay {
            let next = crate::later(self.clock.now(), delay);
            self.outbox.retry_outbox(entry, &message, next).await?;
            Ok(PushOutcome::Retrying { error: message })
        } else {
            self.outbox.dead_letter_outbox(entry, &message).await?;
            Ok(PushOutcome::DeadLettered { error: message })
        }
    }
}
