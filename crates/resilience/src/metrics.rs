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
