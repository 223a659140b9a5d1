//! The process's metrics, on `prometheus-client`: one [`Registry`] holding
//! typed families (each label set is a struct, each closed set of values an
//! enum or a `&'static str` from a closed set), rendered in the Prometheus
//! text format 0.0.4 by the crate's own encoder.
//!
//! Counters are registered without `_total`: the encoder appends it, so the
//! scraped names are the ones below (`calsync_http_requests_total`, ...).
//! Families no label set has touched yet are not rendered.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency histograms, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// `calsync_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    /// The route template (never a path with ids), or `unmatched`.
    pub route: String,
    /// A standard method, or `other`.
    pub method: &'static str,
    pub status: u16,
}

/// `calsync_http_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// `calsync_webhook_notifications_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `calendar` or `drive`.
    pub source: &'static str,
    pub outcome: &'static str,
}

/// Which kind of sync ran.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum SyncMode {
    Full,
    Incremental,
    /// A sync that failed before its kind was known.
    Any,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Any => "any",
        }
    }
}

impl EncodeLabelValue for SyncMode {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// `calsync_syncs_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub mode: SyncMode,
    /// `success` or the error's type.
    pub outcome: &'static str,
}

/// `calsync_sync_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncModeLabels {
    pub mode: SyncMode,
}

/// `calsync_google_calls_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GoogleCallLabels {
    pub op: &'static str,
    /// `success` or the error's type.
    pub outcome: &'static str,
}

/// `calsync_google_retries_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GoogleOpLabels {
    pub op: &'static str,
}

/// What became of an outbox row the worker pushed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum OutboxOutcome {
    Pushed,
    Retrying,
    DeadLettered,
    DeletedAtGoogle,
    Conflict,
}

impl OutboxOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pushed => "pushed",
            Self::Retrying => "retrying",
            Self::DeadLettered => "dead_lettered",
            Self::DeletedAtGoogle => "deleted_at_google",
            Self::Conflict => "conflict",
        }
    }
}

impl EncodeLabelValue for OutboxOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// `calsync_outbox_pushes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboxPushLabels {
    pub outcome: OutboxOutcome,
}

/// `calsync_webhook_deliveries_total`: how each attempt to deliver a change
/// to an application webhook ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookDeliveryLabels {
    /// `delivered`, `failed` or `disabled`.
    pub outcome: &'static str,
}

/// `calsync_job_runs_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: &'static str,
    /// `success` or the error's type.
    pub outcome: &'static str,
}

/// What the console's charts count: one ring of [`ACTIVITY_MINUTES`]
/// one-minute buckets per kind.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ActivityKind {
    /// Calendar syncs, by outcome (`success` or the error's type).
    Syncs,
    /// Outbox rows pushed to Google, by [`OutboxOutcome`].
    Pushes,
    /// Attempts to deliver changes to application webhooks.
    Deliveries,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 3] = [Self::Syncs, Self::Pushes, Self::Deliveries];

    fn index(self) -> usize {
        match self {
            Self::Syncs => 0,
            Self::Pushes => 1,
            Self::Deliveries => 2,
        }
    }
}

/// How many minutes [`Activity`] remembers.
pub const ACTIVITY_MINUTES: usize = 60;

/// One minute's counts, by outcome, in the order outcomes first appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityMinute {
    /// The minute's start, in seconds since the Unix epoch.
    pub start: i64,
    pub counts: Vec<(&'static str, u64)>,
}

impl ActivityMinute {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// The last hour of activity in this process, in one-minute buckets, so the
/// console can draw it without a time-series store. Prometheus counters
/// only say "since start"; this keeps the recent shape. Per process: each
/// replica sees its own work only.
#[derive(Debug, Default)]
pub struct Activity {
    /// Per kind, a ring indexed by minute modulo [`ACTIVITY_MINUTES`]; a
    /// bucket whose `start` is not the minute asked for is stale (empty).
    rings: std::sync::Mutex<[Vec<ActivityMinute>; 3]>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

impl Activity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` of `outcome` now.
    pub fn record(&self, kind: ActivityKind, outcome: &'static str, n: u64) {
        self.record_at(kind, outcome, n, unix_now());
    }

    /// Counts `n` of `outcome` at `at` (seconds since the Unix epoch).
    pub fn record_at(&self, kind: ActivityKind, outcome: &'static str, n: u64, at: i64) {
        if n == 0 {
            return;
        }
        let start = at.div_euclid(60) * 60;
        let slot = usize::try_from(at.div_euclid(60).rem_euclid(ACTIVITY_MINUTES as i64))
            .unwrap_or_default();
        // A panic elsewhere while holding the lock leaves counts, not broken state.
        let mut rings = self
            .rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ring = &mut rings[kind.index()];
        if ring.len() < ACTIVITY_MINUTES {
            ring.resize(ACTIVITY_MINUTES, ActivityMinute::default());
        }
        let bucket = &mut ring[slot];
        if bucket.start != start {
            *bucket = ActivityMinute {
                start,
                counts: Vec::new(),
            };
        }
        match bucket.counts.iter_mut().find(|(name, _)| *name == outcome) {
            Some((_, count)) => *count = count.saturating_add(n),
            None => bucket.counts.push((outcome, n)),
        }
    }

    /// The last hour up to now, oldest minute first, always
    /// [`ACTIVITY_MINUTES`] entries (quiet minutes have no counts).
    pub fn last_hour(&self, kind: ActivityKind) -> Vec<ActivityMinute> {
        self.last_hour_at(kind, unix_now())
    }

    /// [`Activity::last_hour`] as seen at `now` (seconds since the Unix epoch).
    pub fn last_hour_at(&self, kind: ActivityKind, now: i64) -> Vec<ActivityMinute> {
        let current = now.div_euclid(60);
        let rings = self
            .rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ring = &rings[kind.index()];
        (0..ACTIVITY_MINUTES as i64)
            .rev()
            .map(|ago| {
                let minute = current - ago;
                let start = minute * 60;
                let slot =
                    usize::try_from(minute.rem_euclid(ACTIVITY_MINUTES as i64)).unwrap_or_default();
                match ring.get(slot) {
                    Some(bucket) if bucket.start == start => bucket.clone(),
                    _ => ActivityMinute {
                        start,
                        counts: Vec::new(),
                    },
                }
            })
            .collect()
    }
}

/// A gauge family's only label set: none. Unlike a bare gauge, the family
/// is rendered only once set, so a depth never read is absent, not 0.
type Unlabelled = [(&'static str, &'static str); 0];

/// Every metric calsync exports. Share it as `Arc<Metrics>`; record with
/// `metrics.<family>.get_or_create(&labels).inc()` (`.inc_by(n)`,
/// `.observe(seconds)` for histograms), read a counter back the same way with
/// `.get()`, and set the outbox gauges with [`Metrics::set_outbox_depth`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpRequestLabels, Counter>,
    pub http_request_duration: Family<RouteLabels, Histogram>,
    pub webhook_notifications: Family<WebhookLabels, Counter>,
    pub syncs: Family<SyncLabels, Counter>,
    pub sync_duration: Family<SyncModeLabels, Histogram>,
    /// `events.list` calls made by syncs only the safety sweep asked for.
    pub sweep_list_calls: Family<Unlabelled, Counter>,
    pub google_calls: Family<GoogleCallLabels, Counter>,
    pub google_retries: Family<GoogleOpLabels, Counter>,
    pub outbox_pushes: Family<OutboxPushLabels, Counter>,
    /// Set with [`Metrics::set_outbox_depth`].
    outbox_pending: Family<Unlabelled, Gauge>,
    outbox_dead_letters: Family<Unlabelled, Gauge>,
    pub job_runs: Family<JobLabels, Counter>,
    pub webhook_deliveries: Family<WebhookDeliveryLabels, Counter>,
    /// From a change's occurrence to its delivery.
    pub webhook_delivery_lag: Family<Unlabelled, Histogram>,
    /// How long receivers took to answer.
    pub webhook_delivery_duration: Family<Unlabelled, Histogram>,
    webhook_feed_lag: Family<Unlabelled, Gauge>,
    /// The last hour of syncs, pushes and deliveries, for the console;
    /// recorded by [`Metrics::count_sync`], [`Metrics::count_outbox_pushes`]
    /// and [`Metrics::count_webhook_deliveries`] beside their counters.
    pub activity: Activity,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(latency_histogram),
            webhook_notifications: Family::default(),
            syncs: Family::default(),
            sync_duration: Family::new_with_constructor(latency_histogram),
            sweep_list_calls: Family::default(),
            google_calls: Family::default(),
            google_retries: Family::default(),
            outbox_pushes: Family::default(),
            outbox_pending: Family::default(),
            outbox_dead_letters: Family::default(),
            job_runs: Family::default(),
            webhook_deliveries: Family::default(),
            webhook_delivery_lag: Family::new_with_constructor(|| {
                Histogram::new([
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0,
                ])
            }),
            webhook_delivery_duration: Family::new_with_constructor(latency_histogram),
            webhook_feed_lag: Family::default(),
            activity: Activity::new(),
        };
        // The registry holds clones: each shares its values with the field.
        // Help texts end without a period: the encoder adds one.
        let registry = &mut metrics.registry;
        registry.register(
            "calsync_http_requests",
            "HTTP requests served, by route template, method and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "calsync_http_request_duration_seconds",
            "HTTP request latency, by route template",
            metrics.http_request_duration.clone(),
        );
        registry.register(
            "calsync_webhook_notifications",
            "Push notifications received, by source (calendar, drive) and outcome",
            metrics.webhook_notifications.clone(),
        );
        registry.register(
            "calsync_syncs",
            "Calendar syncs run, by mode (full, incremental) and outcome",
            metrics.syncs.clone(),
        );
        registry.register(
            "calsync_sync_duration_seconds",
            "Calendar sync duration, by mode",
            metrics.sync_duration.clone(),
        );
        registry.register(
            "calsync_sweep_list_calls",
            "Calls to events.list made by syncs only the safety sweep asked for (the sweep's quota cost)",
            metrics.sweep_list_calls.clone(),
        );
        registry.register(
            "calsync_google_calls",
            "Calls to the Google Calendar API, by operation and outcome",
            metrics.google_calls.clone(),
        );
        registry.register(
            "calsync_google_retries",
            "Retries of Google Calendar API calls after a transient error, by operation",
            metrics.google_retries.clone(),
        );
        registry.register(
            "calsync_outbox_pushes",
            "Outbox rows pushed to Google, by outcome (pushed, retrying, dead_lettered)",
            metrics.outbox_pushes.clone(),
        );
        registry.register(
            "calsync_outbox_pending",
            "Outbox rows waiting to be pushed (read from the database at scrape time)",
            metrics.outbox_pending.clone(),
        );
        registry.register(
            "calsync_outbox_dead_letters",
            "Outbox rows given up on (read from the database at scrape time)",
            metrics.outbox_dead_letters.clone(),
        );
        registry.register(
            "calsync_job_runs",
            "Scheduled job runs, by job and outcome",
            metrics.job_runs.clone(),
        );
        registry.register(
            "calsync_webhook_deliveries",
            "Attempts to deliver changes to application webhooks, by outcome (delivered, failed, disabled)",
            metrics.webhook_deliveries.clone(),
        );
        registry.register(
            "calsync_webhook_delivery_lag_seconds",
            "From a change in the mirror to its delivery to an application webhook",
            metrics.webhook_delivery_lag.clone(),
        );
        registry.register(
            "calsync_webhook_delivery_duration_seconds",
            "How long application webhooks took to answer a delivery",
            metrics.webhook_delivery_duration.clone(),
        );
        registry.register(
            "calsync_webhook_feed_lag",
            "Changes in the feed not yet delivered to the furthest-behind enabled webhook",
            metrics.webhook_feed_lag.clone(),
        );
        metrics
    }

    /// Counts a sync in `calsync_syncs_total` and in the last hour's activity.
    pub fn count_sync(&self, mode: SyncMode, outcome: &'static str) {
        self.syncs
            .get_or_create(&SyncLabels { mode, outcome })
            .inc();
        self.activity.record(ActivityKind::Syncs, outcome, 1);
    }

    /// Counts `n` pushes in `calsync_outbox_pushes_total` (the label set is
    /// created even for 0) and in the last hour's activity.
    pub fn count_outbox_pushes(&self, outcome: OutboxOutcome, n: u64) {
        self.outbox_pushes
            .get_or_create(&OutboxPushLabels { outcome })
            .inc_by(n);
        self.activity
            .record(ActivityKind::Pushes, outcome.as_str(), n);
    }

    /// Counts `n` delivery attempts in `calsync_webhook_deliveries_total`
    /// and in the last hour's activity; 0 touches neither.
    pub fn count_webhook_deliveries(&self, outcome: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        self.webhook_deliveries
            .get_or_create(&WebhookDeliveryLabels { outcome })
            .inc_by(n);
        self.activity.record(ActivityKind::Deliveries, outcome, n);
    }

    /// Sets how many changes the furthest-behind enabled webhook has yet to receive.
    pub fn set_webhook_feed_lag(&self, changes: u64) {
        self.webhook_feed_lag
            .get_or_create(&[])
            .set(i64::try_from(changes).unwrap_or(i64::MAX));
    }

    /// Sets the outbox depth gauges (saturating at `i64::MAX`).
    pub fn set_outbox_depth(&self, pending: u64, dead_letters: u64) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.outbox_pending.get_or_create(&[]).set(count(pending));
        self.outbox_dead_letters
            .get_or_create(&[])
            .set(count(dead_letters));
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4,
    /// served as [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, nor can encoding these label sets.
        if prometheus_text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(route: &str, status: u16) -> HttpRequestLabels {
        HttpRequestLabels {
            route: route.to_owned(),
            method: "GET",
            status,
        }
    }

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_text() {
        let metrics = Metrics::new();
        let ok = request("/health/live", 200);
        metrics.http_requests.get_or_create(&ok).inc();
        metrics.http_requests.get_or_create(&ok).inc();
        metrics
            .http_requests
            .get_or_create(&request("a\"b\\c\nd", 404))
            .inc();
        metrics.set_outbox_depth(7, u64::MAX);
        metrics
            .sync_duration
            .get_or_create(&SyncModeLabels {
                mode: SyncMode::Full,
            })
            .observe(Duration::from_millis(30).as_secs_f64());
        assert_eq!(metrics.http_requests.get_or_create(&ok).get(), 2);

        let text = metrics.render();
        assert!(
            text.contains(
                "# HELP calsync_http_requests_total HTTP requests served, by route template, method and status.\n\
                 # TYPE calsync_http_requests_total counter\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "calsync_http_requests_total{route=\"/health/live\",method=\"GET\",status=\"200\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "calsync_http_requests_total{route=\"a\\\"b\\\\c\\nd\",method=\"GET\",status=\"404\"} 1\n"
            ),
            "label values are escaped: {text}"
        );
        assert!(text.contains("# TYPE calsync_outbox_pending gauge\ncalsync_outbox_pending 7\n"));
        assert!(text.contains(&format!("calsync_outbox_dead_letters {}\n", i64::MAX)));
        // 30 ms: above the 25 ms bucket, inside the 50 ms one, and cumulative after.
        for (le, count) in [
            ("0.001", 0),
            ("0.025", 0),
            ("0.05", 1),
            ("1", 1),
            ("10", 1),
            ("+Inf", 1),
        ] {
            let line = format!(
                "calsync_sync_duration_seconds_bucket{{mode=\"full\",le=\"{le}\"}} {count}\n"
            );
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert_eq!(
            text.matches("calsync_sync_duration_seconds_bucket{")
                .count(),
            BUCKETS.len() + 1
        );
        assert!(text.contains("calsync_sync_duration_seconds_sum{mode=\"full\"} 0.03\n"));
        assert!(text.contains("calsync_sync_duration_seconds_count{mode=\"full\"} 1\n"));
        assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
        // A family nothing was recorded in is left out, as before.
        assert!(!text.contains("calsync_job_runs"), "{text}");
        assert!(
            !Metrics::new().render().contains("calsync_outbox_pending"),
            "a depth never read is absent, not 0"
        );
    }

    /// The scraped names, types and label names: dashboards and alerts
    /// depend on exactly these.
    #[test]
    fn every_family_keeps_its_scraped_name_type_and_labels() {
        let metrics = Metrics::new();
        metrics
            .http_requests
            .get_or_create(&request("/x", 200))
            .inc();
        metrics
            .http_request_duration
            .get_or_create(&RouteLabels { route: "/x".into() })
            .observe(0.2);
        metrics
            .webhook_notifications
            .get_or_create(&WebhookLabels {
                source: "drive",
                outcome: "accepted",
            })
            .inc();
        metrics
            .syncs
            .get_or_create(&SyncLabels {
                mode: SyncMode::Incremental,
                outcome: "success",
            })
            .inc();
        metrics
            .sync_duration
            .get_or_create(&SyncModeLabels {
                mode: SyncMode::Incremental,
            })
            .observe(2.0);
        metrics
            .google_calls
            .get_or_create(&GoogleCallLabels {
                op: "insert",
                outcome: "success",
            })
            .inc();
        metrics
            .google_retries
            .get_or_create(&GoogleOpLabels { op: "list" })
            .inc_by(3);
        for outcome in [
            OutboxOutcome::Pushed,
            OutboxOutcome::Retrying,
            OutboxOutcome::DeadLettered,
            OutboxOutcome::DeletedAtGoogle,
            OutboxOutcome::Conflict,
        ] {
            metrics
                .outbox_pushes
                .get_or_create(&OutboxPushLabels { outcome })
                .inc();
        }
        metrics
            .job_runs
            .get_or_create(&JobLabels {
                job: "renew_channels",
                outcome: "success",
            })
            .inc();
        metrics.set_outbox_depth(0, 2);
        let text = metrics.render();

        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        assert_eq!(
            types,
            [
                "# TYPE calsync_http_requests_total counter",
                "# TYPE calsync_http_request_duration_seconds histogram",
                "# TYPE calsync_webhook_notifications_total counter",
                "# TYPE calsync_syncs_total counter",
                "# TYPE calsync_sync_duration_seconds histogram",
                "# TYPE calsync_google_calls_total counter",
                "# TYPE calsync_google_retries_total counter",
                "# TYPE calsync_outbox_pushes_total counter",
                "# TYPE calsync_outbox_pending gauge",
                "# TYPE calsync_outbox_dead_letters gauge",
                "# TYPE calsync_job_runs_total counter",
            ]
        );
        for sample in [
            "calsync_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.25\"} 1\n",
            "calsync_webhook_notifications_total{source=\"drive\",outcome=\"accepted\"} 1\n",
            "calsync_syncs_total{mode=\"incremental\",outcome=\"success\"} 1\n",
            "calsync_sync_duration_seconds_bucket{mode=\"incremental\",le=\"2.5\"} 1\n",
            "calsync_sync_duration_seconds_sum{mode=\"incremental\"} 2.0\n",
            "calsync_google_calls_total{op=\"insert\",outcome=\"success\"} 1\n",
            "calsync_google_retries_total{op=\"list\"} 3\n",
            "calsync_outbox_pushes_total{outcome=\"pushed\"} 1\n",
            "calsync_outbox_pushes_total{outcome=\"dead_lettered\"} 1\n",
            "calsync_outbox_pushes_total{outcome=\"deleted_at_google\"} 1\n",
            "calsync_outbox_pending 0\n",
            "calsync_outbox_dead_letters 2\n",
            "calsync_job_runs_total{job=\"renew_channels\",outcome=\"success\"} 1\n",
        ] {
            assert!(text.contains(sample), "missing {sample:?} in\n{text}");
        }
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(line.ends_with('.') && !line.ends_with(".."), "{line}");
        }
    }

    #[test]
    fn the_activity_ring_counts_per_minute_and_forgets_after_an_hour() {
        let activity = Activity::new();
        let t0 = 1_800_000_000; // a minute boundary
        assert_eq!(t0 % 60, 0);
        activity.record_at(ActivityKind::Syncs, "success", 2, t0 + 5);
        activity.record_at(ActivityKind::Syncs, "success", 1, t0 + 59);
        activity.record_at(ActivityKind::Syncs, "provider", 1, t0 + 30);
        activity.record_at(ActivityKind::Syncs, "success", 4, t0 + 60);
        activity.record_at(ActivityKind::Pushes, "pushed", 0, t0);
        activity.record_at(ActivityKind::Deliveries, "failed", 3, t0 + 61);

        let hour = activity.last_hour_at(ActivityKind::Syncs, t0 + 90);
        assert_eq!(hour.len(), ACTIVITY_MINUTES);
        assert_eq!(hour[59].start, t0 + 60);
        assert_eq!(hour[59].counts, [("success", 4)]);
        assert_eq!(hour[58].start, t0);
        assert_eq!(hour[58].counts, [("success", 3), ("provider", 1)]);
        assert_eq!(hour[58].total(), 4);
        assert!(hour[..58].iter().all(|m| m.counts.is_empty()));
        assert!(hour.windows(2).all(|w| w[1].start - w[0].start == 60));
        // Kinds are apart; a zero count records nothing.
        assert!(
            activity
                .last_hour_at(ActivityKind::Pushes, t0 + 90)
                .iter()
                .all(|m| m.counts.is_empty())
        );
        assert_eq!(
            activity.last_hour_at(ActivityKind::Deliveries, t0 + 90)[59].counts,
            [("failed", 3)]
        );

        // 59 minutes on, the first minute is the oldest shown; at 60 it is gone.
        let later = activity.last_hour_at(ActivityKind::Syncs, t0 + 59 * 60);
        assert_eq!((later[0].start, later[0].total()), (t0, 4));
        let gone = activity.last_hour_at(ActivityKind::Syncs, t0 + 60 * 60);
        assert_eq!(gone[0].start, t0 + 60);
        assert_eq!(gone.iter().map(ActivityMinute::total).sum::<u64>(), 4);
        // A new minute reusing the old minute's slot starts from zero.
        activity.record_at(ActivityKind::Syncs, "success", 1, t0 + 60 * 60 + 1);
        let reused = activity.last_hour_at(ActivityKind::Syncs, t0 + 60 * 60 + 1);
        assert_eq!(reused[59].counts, [("success", 1)]);
        assert_eq!(reused.iter().map(ActivityMinute::total).sum::<u64>(), 5);
    }

    #[test]
    fn counting_helpers_feed_both_the_counters_and_the_activity() {
        let metrics = Metrics::new();
        metrics.count_sync(SyncMode::Full, "success");
        metrics.count_outbox_pushes(OutboxOutcome::DeadLettered, 2);
        metrics.count_outbox_pushes(OutboxOutcome::Pushed, 0);
        metrics.count_webhook_deliveries("delivered", 3);
        metrics.count_webhook_deliveries("failed", 0);
        let text = metrics.render();
        for sample in [
            "calsync_syncs_total{mode=\"full\",outcome=\"success\"} 1\n",
            "calsync_outbox_pushes_total{outcome=\"dead_lettered\"} 2\n",
            "calsync_outbox_pushes_total{outcome=\"pushed\"} 0\n",
            "calsync_webhook_deliveries_total{outcome=\"delivered\"} 3\n",
        ] {
            assert!(text.contains(sample), "missing {sample:?} in\n{text}");
        }
        assert!(!text.contains("outcome=\"failed\""), "{text}");
        let last = |kind| {
            metrics
                .activity
                .last_hour(kind)
                .iter()
                .flat_map(|m| m.counts.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(last(ActivityKind::Syncs), [("success", 1)]);
        assert_eq!(last(ActivityKind::Pushes), [("dead_lettered", 2)]);
        assert_eq!(last(ActivityKind::Deliveries), [("delivered", 3)]);
    }

    #[test]
    fn updates_from_many_threads_all_count() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        metrics
                            .google_retries
                            .get_or_create(&GoogleOpLabels { op: "get" })
                            .inc();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(
            metrics
                .render()
                .contains("calsync_google_retries_total{op=\"get\"} 4000\n")
        );
    }
}
