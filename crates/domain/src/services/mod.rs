//! Use cases, written against ports only. The binary wires real adapters in;
//! tests wire the in-memory ones from [`crate::testing`].

mod calendars;
mod channels;
mod cleanup;
mod graph;
mod health;
mod marks;
mod notifications;
mod series;
mod sync;
mod writes;

pub use calendars::{CalendarService, CalendarView};
pub use channels::{ChannelService, RenewalReport};
pub use cleanup::{CleanupReport, CleanupService, retention, retention_cutoff};
pub use graph::{DEFAULT_RETENTION_DAYS, DEFAULT_SYNC_PAGE_SIZE, Services, ServicesConfig};
pub use health::HealthService;
pub use marks::{CHANNEL_CACHE_TTL, ChannelCache, EvictingChannelStore};
pub use notifications::{NotificationOutcome, NotificationService};
pub use series::{Listed, OccurrenceQuery, OccurrenceRef, list_occurrences};
pub use sync::{
    DEFAULT_FOLLOW_UP_REST, DEFAULT_FOLLOW_UP_REST_MS, SyncMode, SyncReport, SyncService,
    sweep_slice,
};
pub use writes::{Created, DrainReport, EventService, PushOutcome};
