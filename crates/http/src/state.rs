//! What the routes share: [`AppState`], built with [`AppState::builder`]
//! from the service graph, every other part defaulted.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use calsync_domain::ids::{CalendarId, ChannelId, ResourceId};
use calsync_domain::ports::{DriveNotificationSink, Timer};
use calsync_domain::services::{
    CalendarService, ChannelService, EventService, FeedService, FreeBusyService, GrantService,
    HealthService, NotificationService, Services, WebhookService,
};
use calsync_resilience::{Metrics, RateLimiter};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use crate::api_tokens::ApiTokens;
use crate::drive_sink::LoggingDriveSink;
use crate::trusted_proxies::TrustedProxies;

/// Where the routes queue channels to stop at Google (with the calendar
/// watched, whose principal must make the stop); the worker crate's
/// channel stopper drains it.
pub type ChannelStops = UnboundedSender<(CalendarId, ChannelId, ResourceId)>;

/// Webhook requests per minute from one source, when nothing says otherwise
/// (`CALSYNC_WEBHOOK_RATE_PER_MINUTE`'s default).
pub const DEFAULT_WEBHOOK_RATE_PER_MINUTE: NonZeroU32 = match NonZeroU32::new(6000) {
    Some(rate) => rate,
    None => NonZeroU32::MIN,
};

/// tokio's timer: the routes run on actix's tokio runtime, and time a
/// write's `?wait=true` and a feed read's `waitSecs` with it whether or not
/// the service graph has a timer of its own.
struct RouteTimer;

#[async_trait::async_trait]
impl Timer for RouteTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// What the routes need, built once by the composition root.
pub struct AppState {
    pub notifications: NotificationService,
    pub channels: ChannelService,
    pub calendars: CalendarService,
    pub events: EventService,
    pub health: HealthService,
    /// The change feed (`GET /calendar/changes`).
    pub feed: FeedService,
    /// Free/busy and availability (`/calendar/freebusy`, `/calendar/availability`).
    pub freebusy: FreeBusyService,
    /// The application's webhook subscriptions; `None` when the service
    /// graph was built without delivery adapters (the routes answer 503).
    pub webhooks: Option<WebhookService>,
    /// Connected user accounts; `None` without an OAuth client (the
    /// routes answer 503).
    pub grants: Option<GrantService>,
    /// Hosts a grant's `returnTo` may name (`CALSYNC_GRANT_RETURN_HOSTS`).
    pub grant_return_hosts: Vec<String>,
    pub drive_sink: Arc<dyn DriveNotificationSink>,
    pub api_tokens: ApiTokens,
    /// Used when a request names no calendar.
    pub default_calendar: Option<CalendarId>,
    /// Keyed by request source, so a flood from one sender cannot starve the rest.
    pub webhook_limiter: RateLimiter,
    /// Whose `X-Forwarded-For` names the request source.
    pub trusted_proxies: TrustedProxies,
    /// Channels to stop at Google (validly signed notifications for
    /// channels calsync no longer wants); a background task drains it.
    pub channel_stops: ChannelStops,
    /// Woken after a webhook marks a calendar dirty, so the sync starts at once.
    pub sync_wakeup: Arc<Notify>,
    /// Woken after a write, so the outbox worker pushes it at once.
    pub outbox_wakeup: Arc<Notify>,
    /// The longest a `?wait=true` write waits for Google's answer.
    pub write_wait: Duration,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
    /// Accepted notifications log at info once a second per channel, with
    /// how many the line stands for; each one at debug.
    pub notification_log: calsync_resilience::LogSampler,
    /// The same for replayed ones, counted apart.
    pub replay_log: calsync_resilience::LogSampler,
}

impl AppState {
    /// The routes over `services` (they reach the store only through
    /// them). Until set: no API token is accepted, no default calendar,
    /// 6,000 webhooks a minute per source, no trusted proxy, channel stops
    /// dropped (an unwanted channel then lapses at its expiry), fresh
    /// wake-ups (no worker is woken), writes wait at most 10 s, fresh
    /// metrics, logs discarded and Drive notifications logged.
    pub fn builder(services: &Services) -> AppStateBuilder {
        let (channel_stops, _) = tokio::sync::mpsc::unbounded_channel();
        AppStateBuilder {
            services: services.clone(),
            drive_sink: None,
            api_tokens: ApiTokens::none(),
            default_calendar: None,
            webhook_limiter: RateLimiter::per_source(DEFAULT_WEBHOOK_RATE_PER_MINUTE),
            trusted_proxies: TrustedProxies::default(),
            channel_stops,
            sync_wakeup: Arc::new(Notify::new()),
            outbox_wakeup: Arc::new(Notify::new()),
            write_wait: Duration::from_secs(10),
            metrics: Arc::new(Metrics::new()),
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            grant_return_hosts: Vec::new(),
        }
    }
}

/// Sets what differs from [`AppState::builder`]'s defaults.
pub struct AppStateBuilder {
    services: Services,
    drive_sink: Option<Arc<dyn DriveNotificationSink>>,
    api_tokens: ApiTokens,
    default_calendar: Option<CalendarId>,
    webhook_limiter: RateLimiter,
    trusted_proxies: TrustedProxies,
    channel_stops: ChannelStops,
    sync_wakeup: Arc<Notify>,
    outbox_wakeup: Arc<Notify>,
    write_wait: Duration,
    metrics: Arc<Metrics>,
    logger: slog::Logger,
    grant_return_hosts: Vec<String>,
}

impl AppStateBuilder {
    /// Hosts a grant's `returnTo` may send the browser to.
    pub fn grant_return_hosts(mut self, hosts: Vec<String>) -> Self {
        self.grant_return_hosts = hosts;
        self
    }

    pub fn api_tokens(mut self, tokens: ApiTokens) -> Self {
        self.api_tokens = tokens;
        self
    }

    pub fn default_calendar(mut self, calendar: Option<CalendarId>) -> Self {
        self.default_calendar = calendar;
        self
    }

    pub fn webhook_limiter(mut self, limiter: RateLimiter) -> Self {
        self.webhook_limiter = limiter;
        self
    }

    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    pub fn channel_stops(mut self, stops: ChannelStops) -> Self {
        self.channel_stops = stops;
        self
    }

    /// The notifies the sync and outbox workers wait on.
    pub fn wakeups(mut self, sync: Arc<Notify>, outbox: Arc<Notify>) -> Self {
        self.sync_wakeup = sync;
        self.outbox_wakeup = outbox;
        self
    }

    pub fn write_wait(mut self, wait: Duration) -> Self {
        self.write_wait = wait;
        self
    }

    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn logger(mut self, logger: slog::Logger) -> Self {
        self.logger = logger;
        self
    }

    /// Receives Drive notifications; by default they are logged.
    pub fn drive_sink(mut self, sink: Arc<dyn DriveNotificationSink>) -> Self {
        self.drive_sink = Some(sink);
        self
    }

    pub fn build(self) -> AppState {
        let services = self.services;
        let drive_sink = self
            .drive_sink
            .unwrap_or_else(|| Arc::new(LoggingDriveSink(self.logger.clone())));
        AppState {
            notifications: services.notifications,
            channels: services.channels,
            calendars: services.calendars,
            events: services.events.with_wait_timer(Arc::new(RouteTimer)),
            health: services.health,
            feed: services.feed.with_timer(Arc::new(RouteTimer)),
            freebusy: services.freebusy,
            webhooks: services.webhooks,
            grants: services.grants,
            grant_return_hosts: self.grant_return_hosts,
            drive_sink,
            api_tokens: self.api_tokens,
            default_calendar: self.default_calendar,
            webhook_limiter: self.webhook_limiter,
            trusted_proxies: self.trusted_proxies,
            channel_stops: self.channel_stops,
            sync_wakeup: self.sync_wakeup,
            outbox_wakeup: self.outbox_wakeup,
            write_wait: self.write_wait,
            metrics: self.metrics,
            logger: self.logger,
            notification_log: calsync_resilience::LogSampler::new(Duration::from_secs(1)),
            replay_log: calsync_resilience::LogSampler::new(Duration::from_secs(1)),
        }
    }
}
