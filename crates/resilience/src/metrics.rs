//! In-process metrics rendered in the Prometheus text format. Small on
//! purpose: counters, gauges and fixed-bucket histograms keyed by a static
//! name and a few label pairs, behind one mutex (updates are a map lookup
//! and an add; contention is negligible beside the I/O each one measures).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Every metric calsync exports: its name, type and help line. Recording a
/// name not listed here still works; it is rendered without a HELP line.
pub const CATALOG: &[(&str, Kind, &str)] = &[
    (
        "calsync_http_requests_total",
        Kind::Counter,
        "HTTP requests served, by route template, method and status.",
    ),
    (
        "calsync_http_request_duration_seconds",
        Kind::Histogram,
        "HTTP request latency, by route template.",
    ),
    (
        "calsync_webhook_notifications_total",
        Kind::Counter,
        "Push notifications received, by source (calendar, drive) and outcome.",
    ),
    (
        "calsync_syncs_total",
        Kind::Counter,
        "Calendar syncs run, by mode (full, incremental) and outcome.",
    ),
    (
        "calsync_sync_duration_seconds",
        Kind::Histogram,
        "Calendar sync duration, by mode.",
    ),
    (
        "calsync_google_calls_total",
        Kind::Counter,
        "Calls to the Google Calendar API, by operation and outcome.",
    ),
    (
        "calsync_google_retries_total",
        Kind::Counter,
        "Retries of Google Calendar API calls after a transient error, by operation.",
    ),
    (
        "calsync_outbox_pushes_total",
        Kind::Counter,
        "Outbox rows pushed to Google, by outcome (pushed, retrying, dead_lettered).",
    ),
    (
        "calsync_outbox_pending",
        Kind::Gauge,
        "Outbox rows waiting to be pushed (read from the database at scrape time).",
    ),
    (
        "calsync_outbox_dead_letters",
        Kind::Gauge,
        "Outbox rows given up on (read from the database at scrape time).",
    ),
    (
        "calsync_job_runs_total",
        Kind::Counter,
        "Scheduled job runs, by job and outcome.",
    ),
];

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The process's metrics. Share it as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves counts, not invariants: keep going.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn increment(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], by: u64) {
        *self
            .registry()
            .counters
            .entry((name, labels(pairs)))
            .or_default() += by;
    }

    pub fn set_gauge(&self, name: &'static str, pairs: &[(&'static str, &str)], value: f64) {
        self.registry().gauges.insert((name, labels(pairs)), value);
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut registry = self.registry();
        let histogram = registry
            .histograms
            .entry((name, labels(pairs)))
            .or_default();
        for (count, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A counter's current value (0 if never incremented), for tests.
    pub fn counter(&self, name: &'static str, pairs: &[(&'static str, &str)]) -> u64 {
        self.registry()
            .counters
            .get(&(name, labels(pairs)))
            .copied()
            .unwrap_or(0)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let registry = self.registry();
        let mut families: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for ((name, pairs), value) in &registry.counters {
            families
                .entry(name)
                .or_default()
                .push(format!("{name}{} {value}", render_labels(pairs, None)));
        }
        for ((name, pairs), value) in &registry.gauges {
            families
                .entry(name)
                .or_default()
                .push(format!("{name}{} {value}", render_labels(pairs, None)));
        }
        for ((name, pairs), histogram) in &registry.histograms {
            let lines = families.entry(name).or_default();
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let le = bound.to_string();
                lines.push(format!(
                    "{name}_bucket{} {count}",
                    render_labels(pairs, Some(&le))
                ));
            }
            lines.push(format!(
                "{name}_bucket{} {}",
                render_labels(pairs, Some("+Inf")),
                histogram.count
            ));
            lines.push(format!(
                "{name}_sum{} {}",
                render_labels(pairs, None),
                histogram.sum
            ));
            lines.push(format!(
                "{name}_count{} {}",
                render_labels(pairs, None),
                histogram.count
            ));
        }
        let mut out = String::new();
        for (name, lines) in families {
            if let Some((_, kind, help)) = CATALOG.iter().find(|(n, _, _)| *n == name) {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            }
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(pairs: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_as_prometheus_text() {
        let metrics = Metrics::new();
        let ok = [("route", "/health/live"), ("status", "200")];
        metrics.increment("calsync_http_requests_total", &ok);
        metrics.increment("calsync_http_requests_total", &ok);
        metrics.increment("calsync_http_requests_total", &[("route", "a\"b")]);
        metrics.set_gauge("calsync_outbox_pending", &[], 7.0);
        metrics.observe(
            "calsync_sync_duration_seconds",
            &[("mode", "full")],
            Duration::from_millis(30),
        );
        assert_eq!(metrics.counter("calsync_http_requests_total", &ok), 2);

        let text = metrics.render();
        assert!(text.contains("# TYPE calsync_http_requests_total counter\n"));
        assert!(
            text.contains("calsync_http_requests_total{route=\"/health/live\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("calsync_http_requests_total{route=\"a\\\"b\"} 1\n"));
        assert!(text.contains("# TYPE calsync_outbox_pending gauge\ncalsync_outbox_pending 7\n"));
        // 30 ms: above the 25 ms bucket, inside the 50 ms one, and cumulative after.
        assert!(
            text.contains("calsync_sync_duration_seconds_bucket{mode=\"full\",le=\"0.025\"} 0\n")
        );
        assert!(
            text.contains("calsync_sync_duration_seconds_bucket{mode=\"full\",le=\"0.05\"} 1\n")
        );
        assert!(
            text.contains("calsync_sync_duration_seconds_bucket{mode=\"full\",le=\"+Inf\"} 1\n")
        );
        assert!(text.contains("calsync_sync_duration_seconds_count{mode=\"full\"} 1\n"));
    }
}
