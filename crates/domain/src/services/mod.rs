//! Use cases, written against ports only. The binary wires real adapters in;
//! tests wire the in-memory ones from [`crate::testing`].

mod calendars;
mod channel_cache;
mod channels;
mod cleanup;
mod events;
mod feed;
mod freebusy;
mod grant_tokens;
mod grants;
mod graph;
mod health;
mod marks;
mod notifications;
pub mod secrets;
mod series_index;
mod sync;
mod webhooks;

pub use calendars::{ActingAs, CalendarService, CalendarView};
pub use channel_cache::{CHANNEL_CACHE_TTL, ChannelCache, EvictingChannelStore};
pub use channels::{ChannelService, RenewalReport};
pub use cleanup::{CleanupReport, CleanupService, retention, retention_cutoff};
pub use events::{
    Created, DrainReport, EventService, FailedWrite, Listed, OccurrenceQuery, OccurrenceRef,
    PushOutcome, WriteVerdict, list_occurrences, list_occurrences_indexed,
};
pub use feed::{FeedService, MAX_WAIT, WAIT_POLL};
pub use freebusy::{
    Availability, AvailabilityQuery, BusyError, BusySource, CalendarBusy, DEFAULT_STALE_AFTER,
    FreeBusyConfig, FreeBusyRequest, FreeBusyService, MAX_SLOTS,
};
pub use grant_tokens::GrantTokens;
pub use grants::{
    AccountCalendarView, CalendarListReport, Connected, GrantAdapters, GrantService,
    StartedAuthorization,
};
pub use graph::{
    DEFAULT_CHANGES_RETENTION_DAYS, DEFAULT_RETENTION_DAYS, DEFAULT_SYNC_PAGE_SIZE, Services,
    ServicesConfig,
};
pub use health::HealthService;
pub use notifications::{NotificationOutcome, NotificationService};
pub use series_index::{CalendarSeries, IndexedMaster, SeriesIndex};
pub use sync::{
    DEFAULT_FOLLOW_UP_REST, DEFAULT_FOLLOW_UP_REST_MS, SyncMode, SyncReport, SyncService, slice_of,
    sweep_slice,
};
pub use webhooks::{
    DELIVERY_BATCH, DeliveryReport, MAX_WEBHOOKS, NewWebhook, WebhookAdapters, WebhookPatch,
    WebhookService,
};
