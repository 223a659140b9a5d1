//! Ports: the traits adapters implement. All are object-safe (`Arc<dyn Port>`)
//! and their futures are `Send`, so services run on any multi-threaded runtime.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::calendar::ManagedCalendar;
use crate::channel::{ChannelStatus, WatchChannel, WatchGrant, WatchRequest};
use crate::error::Result;
use crate::event::{Event, EventChanges};
use crate::feed::signature::SigningSecret;
use crate::feed::subscription::{
    DeliveryAttempt, DeliveryProgress, OutboundRequest, OutboundResponse, SealedSecret, WebhookId,
    WebhookSubscription,
};
use crate::feed::{Change, ChangeBatch, ChangeQuery, Cursor};
use crate::freebusy::{RemoteCalendarBusy, RemoteFreeBusyQuery};
use crate::grant::{
    AccountCalendar, AccountInfo, AuthorizationRequest, Grant, GrantId, PendingAuthorization,
    RefreshClaim, RefreshResult, TokenGrant,
};
use crate::health::HealthStats;
use crate::ids::{CalendarId, ChannelId, Etag, EventId, LocalEventId, ResourceId};
use crate::outbox::{IdempotencyKey, IdempotencyRecord, OutboxEntry, OutboxOp, PushFailure};
use crate::sync::{
    ChangePage, ListRequest, PageOutcome, RemoteEvent, SyncLease, SyncOutcome, SyncPage, SyncState,
};
use crate::webhook::DriveNotification;

/// The current time. Services never read the system clock directly, so tests
/// can move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Waiting, for heartbeats that keep leases alive while work runs. The
/// domain has no runtime of its own; the server passes tokio's timer.
#[async_trait]
pub trait Timer: Send + Sync {
    async fn sleep(&self, duration: std::time::Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Moved to [`crate::event`]; named here too so adapters keep their imports.
pub use crate::event::EventQuery;

/// One `events.patch`: the fields to send and the etag it is conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchCall {
    pub calendar_id: CalendarId,
    pub event_id: EventId,
    pub changes: EventChanges,
    pub if_match: Option<Etag>,
}

/// What a successful push returned, to record on the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReceipt {
    pub etag: Option<Etag>,
    pub updated: Option<DateTime<Utc>>,
    pub html_link: Option<String>,
    /// When the push was answered (spares the row from a full sync's
    /// deletion sweep that began before it).
    pub pushed_at: DateTime<Utc>,
    /// Google's whole event after the write, when it answered with one. A
    /// patch sends only the changed fields, so Google's copy may carry
    /// changes made there meanwhile: the mirror takes it (once no later
    /// write is queued), or its etag would vouch for content it lacks.
    pub remote: Option<Box<RemoteEvent>>,
}

/// The mirrored events, including the writes that queue outbox rows.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn get_event(&self, id: LocalEventId) -> Result<Option<Event>>;

    async fn find_by_google_id(
        &self,
        calendar_id: &CalendarId,
        google_event_id: &EventId,
    ) -> Result<Option<Event>>;

    /// Ordered by start, then id.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>>;

    /// The longest span (start to end, as windows compare them) of the rows
    /// that are not series masters (single events and exceptions, cancelled
    /// ones too) in `calendar_id`, or in every calendar with `None`, or up
    /// to a couple of milliseconds more (a store may compute it in floats);
    /// `None` with no such row. Bounds a window's rows from below: none
    /// starting earlier than the window's start less this can reach it. A
    /// scan of the calendar's rows (in the database, one number out):
    /// callers keep it (see `SeriesIndex`).
    async fn longest_span(
        &self,
        calendar_id: Option<&CalendarId>,
    ) -> Result<Option<chrono::Duration>>;

    /// The live single events of the query's calendars overlapping its
    /// window, each reduced to what the busy rule reads, in no particular
    /// order: one read for all the calendars, Google's copy not decoded.
    async fn busy_candidates(
        &self,
        query: &crate::freebusy::rule::BusyQuery,
    ) -> Result<Vec<crate::freebusy::rule::BusyCandidate>>;

    /// Inserts a new event and its outbox row in one transaction. A Google id
    /// already mirrored in the calendar is `Error::Duplicate`.
    async fn insert_with_outbox(&self, event: &Event, op: OutboxOp) -> Result<OutboxEntry>;

    /// [`EventStore::insert_with_outbox`] that also records `key` in the same
    /// transaction. A key already recorded is `Error::Duplicate` with
    /// `what: "idempotency key"`, and nothing is written.
    async fn insert_idempotent(
        &self,
        event: &Event,
        op: OutboxOp,
        key: &IdempotencyKey,
    ) -> Result<OutboxEntry>;

    async fn find_idempotency_key(&self, key: &str) -> Result<Option<IdempotencyRecord>>;

    /// Forgets keys recorded before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Replaces an event's row and queues an outbox row, in one transaction,
    /// provided the stored row still has `expected_updated_at` (optimistic
    /// locking against concurrent local writers); otherwise
    /// `Error::PreconditionFailed`. The record of Google's answer to the
    /// last push (`etag`, `google_updated`, `html_link`, `pushed_at`) stays
    /// as stored: a push finishing after `event` was read records a newer
    /// one and leaves `updated_at` alone, and the next push's `If-Match`
    /// must name the etag Google holds.
    async fn update_with_outbox(
        &self,
        event: &Event,
        expected_updated_at: DateTime<Utc>,
        op: OutboxOp,
    ) -> Result<OutboxEntry>;

    /// Applies a page of remote changes with [`crate::sync::decide`] in one
    /// transaction. On the last page (`completion` set) it also stores the
    /// sync token and, for a full run, cancels the calendar's synced events
    /// the run never saw. A failure leaves the previous state intact.
    async fn apply_sync_page(&self, page: &SyncPage) -> Result<PageOutcome>;

    /// Marks at most `limit` events that ended before `cutoff` as cancelled,
    /// skipping cancelled ones and ones with a push still pending. A single
    /// event by its end (all-day ends exclusive); a series master once its
    /// last occurrence has ended ([`Event::last_end`]; an endless series
    /// never); an exception by its own end, and only when its series has no
    /// active master row in its calendar (an exception whose master is
    /// cancelled in the same call goes in a later one). Returns how many it
    /// marked.
    async fn cancel_ended_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<u64>;
}

/// Per-calendar sync state, dirty marks and sync leases.
#[async_trait]
pub trait SyncStateStore: Send + Sync {
    async fn sync_state(&self, calendar_id: &CalendarId) -> Result<Option<SyncState>>;

    async fn list_sync_states(&self) -> Result<Vec<SyncState>>;

    /// Records that the calendar changed (creating its state if new).
    async fn mark_dirty(&self, calendar_id: &CalendarId, full: bool) -> Result<()>;

    /// Marks calendars dirty for the safety sweep, at its priority: each
    /// one not already dirty is marked and leased only after every calendar
    /// marked by [`Self::mark_dirty`] (a notification, a request), so a
    /// sweep never queues in front of a change; one already dirty keeps its
    /// mark. Returns how many were marked.
    async fn mark_swept(&self, calendar_ids: &[CalendarId]) -> Result<u64>;

    /// Takes the lease of one dirty calendar whose lease is free or expired,
    /// skipping calendars that need reconnecting.
    async fn lease_dirty(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>>;

    /// When the next dirty calendar (not needing reconnecting) whose lease
    /// is held or resting until after `now` becomes leasable: the earliest
    /// such `lease_until`; `None` when there is none.
    async fn next_lease_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;

    /// Takes one calendar's lease whether dirty or not (explicit sync requests).
    async fn lease_calendar(
        &self,
        calendar_id: &CalendarId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SyncLease>>;

    /// Extends a held lease; false if it was lost to another worker.
    async fn extend_lease(&self, lease: &SyncLease, until: DateTime<Utc>) -> Result<bool>;

    /// Gives the lease back and records the outcome. On success the dirty mark
    /// the lease saw is cleared; marks made since stay, and with them the
    /// outcome's rest (the lease stays unowned until `rest_until`).
    async fn release_lease(
        &self,
        lease: &SyncLease,
        outcome: &SyncOutcome,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Google refused access for good (revoked grant, deleted calendar): stop
    /// syncing and renewing the calendar until a person reconnects it.
    async fn mark_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// A person reconnected the calendar: sync and renew it again; with
    /// `full_sync`, from scratch (access came back through another way,
    /// so what was read before may not be what is readable now).
    async fn clear_reconnect_required(
        &self,
        calendar_id: &CalendarId,
        full_sync: bool,
    ) -> Result<()>;

    /// Google refused a write because this principal may only read the
    /// calendar (403 `requiredAccessLevel`): records why, and since when
    /// (the first refusal's `now`; a later mark keeps it). Syncing goes on.
    async fn mark_read_only(
        &self,
        calendar_id: &CalendarId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// A write to the calendar landed: it is writable again. Returns
    /// whether it was marked read-only.
    async fn clear_read_only(&self, calendar_id: &CalendarId) -> Result<bool>;
}

/// Watch channels.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    async fn insert_channel(&self, channel: &WatchChannel) -> Result<()>;

    async fn get_channel(&self, id: &ChannelId) -> Result<Option<WatchChannel>>;

    /// All channels, or only those in `status`.
    async fn list_channels(&self, status: Option<ChannelStatus>) -> Result<Vec<WatchChannel>>;

    /// Records Google's grant and makes the channel active.
    async fn activate_channel(&self, id: &ChannelId, grant: &WatchGrant) -> Result<()>;

    async fn set_channel_status(&self, id: &ChannelId, status: ChannelStatus) -> Result<()>;

    /// Records a delivered notification (keeps the highest message number).
    async fn record_notification(
        &self,
        id: &ChannelId,
        message_number: u64,
        at: DateTime<Utc>,
    ) -> Result<()>;
}

/// The push queue.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` due pending rows, at most one per event and only
    /// the oldest pending row of each event, so writes to one event apply in order.
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>>;

    /// Marks the row done and records Google's answer on the event; the event
    /// becomes `synced` unless later rows for it are still pending. Google
    /// took a write to the calendar, so its read-only mark (if any) is
    /// cleared in the same transaction.
    async fn complete_outbox(&self, entry: &OutboxEntry, receipt: &PushReceipt) -> Result<()>;

    /// Records a failed attempt (`error` and its `failure` kind, as the
    /// row's `last_error` and `last_failure`) and when to try again;
    /// releases the lease.
    async fn retry_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Like [`OutboxStore::retry_outbox`], but the failure is a wait, not
    /// an attempt (the calendar is read-only for now): `attempts` stays as
    /// it is, so however long the wait, it never counts toward the limit.
    /// The row is the calendar's probe: its other pending rows that no one
    /// holds and that are due before `others_until` wait until then, so
    /// one write, not every queued one, asks Google each interval.
    async fn wait_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        others_until: DateTime<Utc>,
    ) -> Result<()>;

    /// Gives up on the row (recording `error` and its `failure` kind) and
    /// marks its event `failed`.
    async fn dead_letter_outbox(
        &self,
        entry: &OutboxEntry,
        failure: PushFailure,
        error: &str,
    ) -> Result<()>;

    /// Resolves the row without its write having applied as sent (the event
    /// was deleted at Google, or Google's copy conflicted): marks it done
    /// with `note` and `failure` as its last error and kind and stores
    /// `event`, Google's side of the story, as the mirror row. The event
    /// stays `pending` if later rows for it are still queued.
    async fn settle_outbox(
        &self,
        entry: &OutboxEntry,
        event: &Event,
        failure: PushFailure,
        note: &str,
    ) -> Result<()>;

    /// Extends the leases `owner` holds on these rows (a heartbeat while
    /// they are pushed); returns how many it still held.
    async fn extend_outbox_leases(
        &self,
        owner: &str,
        ids: &[i64],
        until: DateTime<Utc>,
    ) -> Result<u64>;

    /// Puts the event's unresolved dead-lettered rows (those after its last
    /// row Google took) back in the queue as they were: attempts reset, due
    /// at `now`, errors cleared; marks the event `pending` and records
    /// `event.push_retried`, in one transaction. Returns the requeued rows:
    /// none if the event is missing or its push has not failed.
    async fn requeue_dead_letters(
        &self,
        event_id: LocalEventId,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxEntry>>;

    /// Gives up on the event's failed write: its unresolved dead-lettered
    /// rows are marked done with `note`, `event` (Google's copy, or the
    /// local one cancelled if Google has none) becomes the mirror row, and
    /// `event.push_discarded` is recorded, in one transaction. False, and
    /// nothing changed, if the event is missing or its push has not failed.
    async fn discard_dead_letters(&self, event: &Event, note: &str) -> Result<bool>;

    async fn outbox_for_event(&self, event_id: LocalEventId) -> Result<Vec<OutboxEntry>>;

    /// Makes the pending rows of these calendars that no one holds due at
    /// `now` (access came back: a reconnected account); returns how many.
    async fn wake_outbox(&self, calendar_ids: &[CalendarId], now: DateTime<Utc>) -> Result<u64>;
}

/// Claims of scheduled job runs, so each tick runs once across replicas.
#[async_trait]
pub trait JobTickStore: Send + Sync {
    /// True for exactly one caller per `(job, scheduled_for)`.
    async fn claim_tick(
        &self,
        job: &str,
        scheduled_for: DateTime<Utc>,
        owner: &str,
    ) -> Result<bool>;
}

/// The health figures.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Active channels expiring between `now` and `expiring_before` count as
    /// expiring soon; those whose expiry has passed count as lapsed, not active.
    async fn health_stats(
        &self,
        now: DateTime<Utc>,
        expiring_before: DateTime<Utc>,
    ) -> Result<HealthStats>;

    /// Ok when the database answers and holds every migration this build
    /// expects (readiness: a replica on a newer schema than the database is not ready).
    async fn check_ready(&self) -> Result<()>;
}

/// Accepted Google Drive push notifications, kept for the record.
#[async_trait]
pub trait DriveNotificationStore: Send + Sync {
    /// Records a notification; `false` when its (channel, message number)
    /// was already recorded (a retry or a replay), and nothing is written.
    async fn record_drive_notification(
        &self,
        notification: &DriveNotification,
        received_at: DateTime<Utc>,
    ) -> Result<bool>;

    /// Forgets notifications received before `before`; returns how many.
    async fn purge_drive_notifications(&self, before: DateTime<Utc>) -> Result<u64>;

    /// The newest notifications first, at most `limit`: the read side of
    /// the Drive log, for embedders and the store contract suite (calsync's
    /// own routes only write it and hand each notification to the sink).
    async fn recent_drive_notifications(
        &self,
        limit: u32,
    ) -> Result<Vec<(DriveNotification, DateTime<Utc>)>>;
}

/// What to do with a Drive notification once it is authenticated and
/// recorded. Embedding services implement it; the server's default logs.
#[async_trait]
pub trait DriveNotificationSink: Send + Sync {
    async fn drive_changed(&self, notification: &DriveNotification) -> Result<()>;
}

/// Everything a storage adapter provides, as one object.
/// The managed calendars and whom calsync acts as for each.
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Adds the calendar, or replaces its subject if it is known (keeping
    /// `created_at`). Returns the stored record.
    async fn upsert_calendar(&self, calendar: &ManagedCalendar) -> Result<ManagedCalendar>;

    async fn get_calendar(&self, calendar_id: &CalendarId) -> Result<Option<ManagedCalendar>>;

    /// Ordered by calendar id.
    async fn list_calendars(&self) -> Result<Vec<ManagedCalendar>>;

    /// Forgets the calendar (its mirrored events and sync state stay);
    /// false if it was not managed.
    async fn delete_calendar(&self, calendar_id: &CalendarId) -> Result<bool>;
}

/// The change feed. Stores record changes inside the transactions that
/// make them (every write port above records what it changes, with
/// [`crate::feed::event_changes`]); this is the read side.
#[async_trait]
pub trait ChangeFeedStore: Send + Sync {
    /// Changes after `query.after` in cursor order, at most `query.limit`,
    /// those the filters match. The ordering promise: once a read has
    /// answered up to a cursor, no change sorting before it commits later.
    /// A cursor before the oldest change kept (purged since) is
    /// `Error::CursorExpired`.
    async fn read_changes(&self, query: &ChangeQuery) -> Result<ChangeBatch>;

    /// The cursor of the newest change (`Cursor::START` when there is none).
    async fn latest_cursor(&self) -> Result<Cursor>;

    /// Forgets changes that occurred before `before`, oldest first, at most
    /// `limit`; cursors before what is left expire. Returns how many.
    async fn purge_changes(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// The application's webhook subscriptions and their delivery state.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_webhook(&self, subscription: &WebhookSubscription) -> Result<()>;

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookSubscription>>;

    /// Ordered by creation.
    async fn list_webhooks(&self) -> Result<Vec<WebhookSubscription>>;

    /// Writes the settings (url, filters, description, secrets, `updated_at`),
    /// not the delivery state; false if the subscription is gone.
    async fn update_webhook(&self, subscription: &WebhookSubscription) -> Result<bool>;

    /// Enables (clearing failures; due at `now`) or disables with `reason`;
    /// false if the subscription is gone.
    async fn set_webhook_enabled(
        &self,
        id: &WebhookId,
        enabled: bool,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool>;

    /// Leases up to `limit` enabled subscriptions that are due at `now`,
    /// whose lease is free or expired, and whose cursor is before `latest`
    /// (something may be waiting for them).
    async fn claim_webhooks(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        latest: Cursor,
        limit: u32,
    ) -> Result<Vec<WebhookSubscription>>;

    /// Records a round's progress and its attempts if `owner` still holds
    /// the lease (extending it to `lease_until`, or releasing it when
    /// `None`); false (and nothing written) if the lease was lost.
    async fn record_webhook_progress(
        &self,
        id: &WebhookId,
        owner: &str,
        progress: &DeliveryProgress,
        lease_until: Option<DateTime<Utc>>,
    ) -> Result<bool>;

    /// Records an attempt made outside the delivery rounds (a test).
    async fn record_webhook_attempt(&self, attempt: &DeliveryAttempt) -> Result<()>;

    /// The newest attempts first, at most `limit`.
    async fn list_webhook_attempts(
        &self,
        id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>>;

    /// Forgets attempts made before `before`; returns how many.
    async fn purge_webhook_attempts(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// Posts a delivery to an application's receiver.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Whether calsync may deliver to `url` (scheme, host, the addresses it
    /// resolves to): an `Error::Invalid` on `url` saying why not.
    async fn check_url(&self, url: &str) -> Result<()>;

    /// Posts the request and answers the receiver's status; a refused
    /// address, a connection failure or no answer within `timeout` is an
    /// error (its text is recorded on the attempt).
    async fn send(
        &self,
        request: &OutboundRequest,
        timeout: std::time::Duration,
    ) -> Result<OutboundResponse>;
}

/// Keeps secrets sealed at rest: the database holds only what this opens.
pub trait SecretKeeper: Send + Sync {
    /// A new random signing secret.
    fn new_signing_secret(&self) -> Result<SigningSecret>;

    /// Seals any secret: a signing secret, a refresh token, a verifier.
    fn seal_bytes(&self, plain: &[u8]) -> Result<SealedSecret>;

    fn open_bytes(&self, sealed: &SealedSecret) -> Result<Vec<u8>>;

    fn seal(&self, secret: &SigningSecret) -> Result<SealedSecret> {
        self.seal_bytes(secret.bytes())
    }

    fn open(&self, sealed: &SealedSecret) -> Result<SigningSecret> {
        SigningSecret::from_bytes(self.open_bytes(sealed)?)
    }

    fn seal_text(&self, text: &str) -> Result<SealedSecret> {
        self.seal_bytes(text.as_bytes())
    }

    fn open_text(&self, sealed: &SealedSecret) -> Result<String> {
        String::from_utf8(self.open_bytes(sealed)?)
            .map_err(|_| crate::Error::Storage("a sealed text is not UTF-8".into()))
    }

    /// Whether `sealed` names the key that seals now, so re-sealing it
    /// would change nothing (it does not say the value opens). A keeper
    /// that cannot tell keeps the default, no: re-sealing is then always
    /// done, which is wasted work but never wrong.
    fn sealed_with_current_key(&self, _sealed: &SealedSecret) -> bool {
        false
    }
}

/// Connected accounts ([`crate::grant::Grant`]) and the authorizations
/// in flight.
#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn insert_authorization(&self, pending: &PendingAuthorization) -> Result<()>;

    /// Removes and returns the authorization `state` names: each is used
    /// once. `None` when unknown or already taken (expiry is the caller's).
    async fn take_authorization(&self, state: &str) -> Result<Option<PendingAuthorization>>;

    /// Drops authorizations that expired before `before`.
    async fn purge_authorizations(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Stores a grant; when one for the same provider and account exists,
    /// updates that one in place (its id and `created_at` kept) and
    /// returns it as stored.
    async fn upsert_grant(&self, grant: &Grant) -> Result<Grant>;

    async fn get_grant(&self, id: &GrantId) -> Result<Option<Grant>>;

    /// The grant of one account (Google's stable account id) at a provider.
    async fn grant_for_account(&self, provider: &str, account: &str) -> Result<Option<Grant>>;

    /// Every grant, oldest first.
    async fn list_grants(&self) -> Result<Vec<Grant>>;

    /// Saves a grant's status, tokens and refresh record; `false` if it
    /// no longer exists.
    async fn update_grant(&self, grant: &Grant) -> Result<bool>;

    /// Claims the refresh of an active grant's access token for `holder`
    /// until `until`: at most one holder at a time across replicas (a
    /// claim past its `until` may be taken over).
    async fn claim_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<RefreshClaim>;

    /// Records how `holder`'s refresh ended and releases the claim, in one
    /// transaction: a rotated refresh token saved, or the grant turned
    /// `reconnect_required` with a `grant.reconnect_required` change.
    /// `false` if the claim was no longer `holder`'s.
    async fn finish_grant_refresh(
        &self,
        id: &GrantId,
        holder: &str,
        result: &RefreshResult,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}

/// Access tokens of connected accounts, for the Google adapter: each
/// replica keeps them in memory and refreshes them through the grant's
/// sealed refresh token. A grant that needs reconnecting is an
/// [`crate::Error::Provider`] of kind
/// [`crate::ProviderErrorKind::ReconnectRequired`].
#[async_trait]
pub trait GrantTokenSource: Send + Sync {
    /// A valid access token; with `refresh`, a new one even if the one
    /// held has not expired (Google just refused it).
    async fn access_token(&self, grant: &GrantId, refresh: bool) -> Result<String>;
}

/// Google's OAuth 2.0 server, as calsync needs it for user grants. A
/// refresh token Google no longer honours (`invalid_grant`) is an
/// [`crate::Error::Provider`] of kind
/// [`crate::ProviderErrorKind::ReconnectRequired`].
#[async_trait]
pub trait OAuthProvider: Send + Sync {
    /// The URL the user's browser is sent to (consent, then the callback).
    fn authorization_url(&self, request: &AuthorizationRequest) -> String;

    /// Redeems an authorization code with its PKCE verifier.
    async fn exchange_code(&self, code: &str, verifier: &str) -> Result<TokenGrant>;

    async fn refresh(&self, refresh_token: &str) -> Result<TokenGrant>;

    /// Revokes a token and the grant it belongs to.
    async fn revoke(&self, token: &str) -> Result<()>;

    /// Whose account an access token acts for.
    async fn account(&self, access_token: &str) -> Result<AccountInfo>;
}

/// Renders a change as the API answers it (one element of
/// `GET /calendar/changes`), the body of its webhook delivery.
pub trait ChangeRenderer: Send + Sync {
    fn render(&self, change: &Change) -> Result<Vec<u8>>;
}

pub trait Store:
    EventStore
    + ChangeFeedStore
    + WebhookStore
    + CalendarStore
    + SyncStateStore
    + ChannelStore
    + OutboxStore
    + JobTickStore
    + HealthStore
    + DriveNotificationStore
    + GrantStore
    + SealedSecretStore
{
}

impl<T> Store for T where
    T: EventStore
        + ChangeFeedStore
        + WebhookStore
        + CalendarStore
        + SyncStateStore
        + ChannelStore
        + OutboxStore
        + JobTickStore
        + HealthStore
        + DriveNotificationStore
        + GrantStore
        + SealedSecretStore
{
}

/// Google Calendar, as the domain needs it. Adapters classify every failure
/// into an [`crate::Error::Provider`] with a [`crate::ProviderErrorKind`].
#[async_trait]
pub trait CalendarProvider: Send + Sync {
    /// One page of `events.list`: full (no sync token) or incremental.
    async fn list_events(
        &self,
        calendar_id: &CalendarId,
        request: &ListRequest,
    ) -> Result<ChangePage>;

    async fn get_event(&self, calendar_id: &CalendarId, id: &EventId) -> Result<RemoteEvent>;

    /// Inserts with the event's own (client-chosen) id and its entity link.
    async fn insert_event(&self, event: &Event) -> Result<RemoteEvent>;

    /// Patches the named fields only; with `if_match`, only if Google's etag
    /// still matches (412 `PreconditionFailed` otherwise).
    async fn patch_event(&self, call: &PatchCall) -> Result<RemoteEvent>;

    /// Deletes the event; with `if_match`, only if Google's etag still matches.
    async fn delete_event(
        &self,
        calendar_id: &CalendarId,
        id: &EventId,
        if_match: Option<&Etag>,
    ) -> Result<()>;

    /// Whether this principal can read the calendar (`calendars.get`).
    /// Google answers 404 both for a missing event and for a calendar it
    /// cannot reach, so a write's 404 means "event gone" only if this is true.
    async fn calendar_accessible(&self, calendar_id: &CalendarId) -> Result<bool>;

    async fn watch(&self, calendar_id: &CalendarId, request: &WatchRequest) -> Result<WatchGrant>;

    /// Google's `freeBusy.query` for at most
    /// [`crate::freebusy::MAX_CALENDARS`] calendars over at most
    /// [`crate::freebusy::MAX_WINDOW_DAYS`] days (callers chunk). One answer
    /// per requested calendar, in request order; a calendar Google cannot
    /// answer for carries its `errors` rather than failing the call.
    async fn free_busy(&self, query: &RemoteFreeBusyQuery) -> Result<Vec<RemoteCalendarBusy>>;

    /// Stops a channel `watch` made on `calendar_id`. Google's
    /// `channels.stop` names no calendar; the calendar says whom to act as,
    /// since the stop must come from the principal that made the watch (under
    /// domain-wide delegation, the calendar's subject).
    async fn stop_channel(
        &self,
        calendar_id: &CalendarId,
        id: &ChannelId,
        resource_id: &ResourceId,
    ) -> Result<()>;

    /// The calendars a connected account sees (`calendarList.list`, every
    /// page), acting as its grant.
    async fn account_calendars(&self, grant: &GrantId) -> Result<Vec<AccountCalendar>>;
}

/// Where a sealed value is kept: a column of a table. Reports name the
/// column and the row, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedColumn {
    /// A grant's refresh token (a revoked grant's, dropped, is not listed).
    GrantRefreshToken,
    /// The PKCE verifier of an authorization in flight.
    AuthorizationVerifier,
    /// A webhook subscription's signing secret.
    WebhookSecret,
    /// The secret before a webhook's last rotation, when it has one.
    WebhookPreviousSecret,
}

impl SealedColumn {
    /// Every column the [`SecretKeeper`] seals into.
    pub const ALL: [Self; 4] = [
        Self::GrantRefreshToken,
        Self::AuthorizationVerifier,
        Self::WebhookSecret,
        Self::WebhookPreviousSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GrantRefreshToken => "grant.refresh_token",
            Self::AuthorizationVerifier => "authorization.verifier",
            Self::WebhookSecret => "webhook.secret",
            Self::WebhookPreviousSecret => "webhook.previous_secret",
        }
    }
}

/// One sealed value as stored: where it is, and its sealed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub column: SealedColumn,
    /// The row's key: a grant id, an authorization's `state`, a webhook id.
    pub row: String,
    pub sealed: SealedSecret,
}

/// Every value the [`SecretKeeper`] sealed, seen column by column, so they
/// can be re-sealed under a new key while the service runs.
#[async_trait]
pub trait SealedSecretStore: Send + Sync {
    /// Up to `limit` values of `column` whose row key sorts after `after`
    /// (from the first when `None`), by row key: keyset pages, so a listing
    /// costs the same at any size and rows written meanwhile are neither
    /// skipped nor repeated. Rows with nothing sealed in the column are
    /// left out.
    async fn list_sealed(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SealedValue>>;

    /// Writes `new` in place of `value.sealed` if the row still holds
    /// exactly that (sealed texts never repeat: each seal has its own
    /// nonce); false, and nothing written, if the row changed or is gone,
    /// so a refresh or a rotation made meanwhile is never overwritten.
    /// Nothing else in the row changes.
    async fn replace_sealed(&self, value: &SealedValue, new: &SealedSecret) -> Result<bool>;
}
