//! The service graph: every use case built once from one store, one
//! provider and one clock, so the server, the CLI, embedders and tests wire
//! the same thing the same way.

use std::sync::Arc;
use std::time::Duration;

use super::cleanup::retention;
use super::{
    CalendarService, ChannelCache, ChannelService, CleanupService, EventService,
    EvictingChannelStore, FeedService, FreeBusyConfig, FreeBusyService, GrantAdapters,
    GrantService, HealthService, NotificationService, SeriesIndex, SyncService, WebhookAdapters,
    WebhookService,
};
use crate::health::HealthThresholds;
use crate::outbox::OutboxRetryPolicy;
use crate::ports::{CalendarProvider, ChannelStore, Clock, Store, Timer};
use crate::webhook::WebhookSecret;

/// Events per sync page unless configured. A page is held twice while a
/// sync runs (one applied, the next fetched) and each event costs about
/// ten kilobytes on its way (decoded, mapped, Google's JSON, the row), so
/// the page bounds a sync's memory: measured on a 100k-event full sync,
/// 1000 peaks at 83 to 94 MB resident where Google's largest (2500)
/// peaks at 148 MB, for 2.5x the `events.list` calls against the per-principal quota.
pub const DEFAULT_SYNC_PAGE_SIZE: u32 = 1000;

/// How many days after their end events are kept when nothing says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

/// How many days the change feed keeps a change when nothing says otherwise.
pub const DEFAULT_CHANGES_RETENTION_DAYS: u32 = 7;

/// What the services need beyond their ports. [`ServicesConfig::new`]
/// fills in the defaults the server uses when no setting says otherwise.
#[derive(Clone)]
pub struct ServicesConfig {
    /// Signs channel tokens and checks notifications.
    pub webhook_secret: WebhookSecret,
    /// The public URL of the Calendar webhook that channels point at.
    pub webhook_address: String,
    /// The lifetime requested for each watch channel.
    pub channel_ttl: Duration,
    /// Events that ended longer ago than this many days are neither
    /// mirrored nor kept.
    pub retention_days: u32,
    /// Changes older than this many days leave the change feed.
    pub changes_retention_days: u32,
    /// Sync and outbox leases: how soon another replica takes over a
    /// crashed one's work. Used only with a `timer` (see `with_heartbeat`):
    /// an unrenewed lease keeps the services' own, longer defaults.
    pub lease_ttl: Duration,
    /// Renews leases while work runs, and times the wait of
    /// [`EventService::verdict`]. Without one, leases are long enough to
    /// outlive a slow page (the services' own defaults) instead, and a
    /// verdict is where the write stands at once (the routes bring a timer
    /// of their own for `?wait=true`).
    pub timer: Option<Arc<dyn Timer>>,
    pub outbox_retry: OutboxRetryPolicy,
    pub health: HealthThresholds,
    /// Google refuses attendees from a service account acting as itself
    /// (403 `forbiddenForServiceAccounts`): set when calsync runs as one
    /// without a subject, so such writes are refused up front.
    pub attendees_need_delegation: bool,
    /// Events per `events.list` page; two pages are in memory during a sync.
    pub sync_page_size: u32,
    /// See [`super::sync::DEFAULT_FOLLOW_UP_REST`].
    pub sync_follow_up_rest: Duration,
    /// The busy rule's setting and when a calendar counts as stale.
    pub freebusy: FreeBusyConfig,
}

impl std::fmt::Debug for ServicesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServicesConfig")
            .field("webhook_address", &self.webhook_address)
            .field("channel_ttl", &self.channel_ttl)
            .field("retention_days", &self.retention_days)
            .field("changes_retention_days", &self.changes_retention_days)
            .field("lease_ttl", &self.lease_ttl)
            .field("heartbeat", &self.timer.is_some())
            .field("outbox_retry", &self.outbox_retry)
            .field("health", &self.health)
            .field("attendees_need_delegation", &self.attendees_need_delegation)
            .field("sync_page_size", &self.sync_page_size)
            .field("sync_follow_up_rest", &self.sync_follow_up_rest)
            .field("freebusy", &self.freebusy)
            .finish_non_exhaustive()
    }
}

impl ServicesConfig {
    /// Channels live 7 days, events are kept 180 days after they end (the
    /// original backend's defaults), leases last 15 s when a timer renews
    /// them.
    pub fn new(webhook_secret: WebhookSecret, webhook_address: impl Into<String>) -> Self {
        Self {
            webhook_secret,
            webhook_address: webhook_address.into(),
            channel_ttl: Duration::from_secs(7 * 86_400),
            retention_days: DEFAULT_RETENTION_DAYS,
            changes_retention_days: DEFAULT_CHANGES_RETENTION_DAYS,
            lease_ttl: Duration::from_secs(15),
            timer: None,
            outbox_retry: OutboxRetryPolicy::default(),
            health: HealthThresholds::default(),
            attendees_need_delegation: false,
            sync_page_size: DEFAULT_SYNC_PAGE_SIZE,
            sync_follow_up_rest: super::sync::DEFAULT_FOLLOW_UP_REST,
            freebusy: FreeBusyConfig::default(),
        }
    }

    /// Short leases kept alive by `timer`'s heartbeats.
    pub fn with_heartbeat(mut self, lease_ttl: Duration, timer: Arc<dyn Timer>) -> Self {
        self.lease_ttl = lease_ttl;
        self.timer = Some(timer);
        self
    }
}

/// Every use case, sharing one store, provider and clock. Cloning is cheap
/// (each service holds `Arc`s).
#[derive(Clone)]
pub struct Services {
    pub sync: SyncService,
    pub events: EventService,
    pub channels: ChannelService,
    pub calendars: CalendarService,
    pub notifications: NotificationService,
    pub health: HealthService,
    pub cleanup: CleanupService,
    pub feed: FeedService,
    /// Free/busy and availability from the mirror.
    pub freebusy: FreeBusyService,
    /// The application's webhooks; `None` until [`Services::with_webhooks`]
    /// brings the adapters that deliver them.
    pub webhooks: Option<WebhookService>,
    /// Users' connected Google accounts; `None` until
    /// [`Services::with_grants`] brings an OAuth client and a keeper.
    pub grants: Option<GrantService>,
    store: Arc<dyn Store>,
    provider: Arc<dyn CalendarProvider>,
    clock: Arc<dyn Clock>,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn CalendarProvider>,
        clock: Arc<dyn Clock>,
        config: ServicesConfig,
    ) -> Self {
        let mut sync = SyncService::new(
            provider.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        );
        let mut events = EventService::new(
            provider.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        )
        .with_retry_policy(config.outbox_retry)
        .with_calendar_states(store.clone())
        .with_attendees_needing_delegation(config.attendees_need_delegation, Some(store.clone()));
        if config.timer.is_some() {
            sync = sync.with_lease(config.lease_ttl, config.timer.clone());
            events = events.with_lease(config.lease_ttl, config.timer.clone());
        }
        // Channels are read from memory on the webhook path; every channel
        // write of this process evicts through the same cache.
        let channel_cache = ChannelCache::new();
        let channel_store: Arc<dyn ChannelStore> =
            EvictingChannelStore::new(store.clone(), channel_cache.clone());
        let channels = ChannelService::new(
            provider.clone(),
            channel_store.clone(),
            store.clone(),
            clock.clone(),
            config.webhook_secret.clone(),
            config.webhook_address,
            config.channel_ttl,
        );
        let series_index = Arc::new(SeriesIndex::new(
            store.clone(),
            store.clone(),
            clock.clone(),
        ));
        events = events.with_series_index(series_index.clone());
        let freebusy = FreeBusyService::new(
            series_index,
            store.clone(),
            store.clone(),
            store.clone(),
            provider.clone(),
            clock.clone(),
        )
        .with_config(config.freebusy);
        let mut feed = FeedService::new(store.clone(), clock.clone());
        if let Some(timer) = &config.timer {
            feed = feed.with_timer(timer.clone());
        }
        Self {
            feed,
            freebusy,
            webhooks: None,
            grants: None,
            sync: sync
                .with_page_size(config.sync_page_size)
                .with_follow_up_rest(config.sync_follow_up_rest)
                .with_retention(retention(config.retention_days))
                .with_calendars(store.clone()),
            events,
            calendars: CalendarService::new(
                store.clone(),
                store.clone(),
                channel_store,
                channels.clone(),
                clock.clone(),
            )
            .with_grants(store.clone()),
            channels,
            notifications: NotificationService::new(
                config.webhook_secret,
                store.clone(),
                store.clone(),
                store.clone(),
                clock.clone(),
            )
            .with_channel_cache(channel_cache),
            health: HealthService::new(store.clone(), clock.clone(), config.health)
                .with_webhooks(store.clone()),
            cleanup: CleanupService::new(store.clone(), clock.clone(), config.retention_days)
                .with_drive_notifications(store.clone())
                .with_change_feed(store.clone(), store.clone(), config.changes_retention_days),
            store,
            provider,
            clock,
        }
    }

    /// Connects users' Google accounts through this OAuth client, their
    /// tokens sealed by this keeper.
    pub fn with_grants(mut self, adapters: GrantAdapters) -> Self {
        self.grants = Some(
            GrantService::new(self.store.clone(), adapters, self.clock.clone()).with_calendars(
                self.provider.clone(),
                self.calendars.clone(),
                self.store.clone(),
            ),
        );
        self
    }

    /// Delivers the change feed to the application's webhooks through
    /// these adapters.
    pub fn with_webhooks(mut self, adapters: WebhookAdapters) -> Self {
        self.webhooks = Some(WebhookService::new(
            self.store.clone(),
            self.store.clone(),
            adapters,
            self.clock.clone(),
        ));
        self
    }
}
