//! The webhook delivery worker: sends the change feed to the application's
//! webhook subscriptions. Each round claims the subscriptions with changes
//! due (by lease, so replicas share them and a crashed replica's come
//! back) and delivers to each in order; between rounds it waits the poll
//! interval, short so a change reaches receivers in well under a second.

use std::time::{Duration, Instant};

use calsync_domain::services::WebhookService;
use calsync_resilience::Metrics;
use slog::{info, warn};
use std::sync::Arc;
use tokio::task::JoinHandle;

use crate::run_loop::{Backlog, Shutdown, Worker, spawn};

/// Subscriptions claimed per round; delivered to concurrently.
pub const DELIVERY_SUBSCRIPTIONS: u32 = 16;
/// How often the worker looks for new changes.
pub const DELIVERY_POLL: Duration = Duration::from_millis(200);
/// How often the feed-lag gauge is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

pub struct DeliveryWorker {
    pub webhooks: WebhookService,
    pub owner: String,
    pub poll: Duration,
    pub metrics: Arc<Metrics>,
    pub logger: slog::Logger,
    lag_measured: Option<Instant>,
}

#[async_trait::async_trait]
impl Worker for DeliveryWorker {
    async fn round(&mut self) -> Backlog {
        let logger = &self.logger;
        if self.lag_measured.is_none_or(|at| at.elapsed() >= LAG_EVERY) {
            self.lag_measured = Some(Instant::now());
            if let Ok(lag) = self.webhooks.feed_lag().await {
                self.metrics.set_webhook_feed_lag(lag);
            }
        }
        let report = match self
            .webhooks
            .deliver_due(&self.owner, DELIVERY_SUBSCRIPTIONS)
            .await
        {
            Ok(report) => report,
            Err(error) => {
                warn!(logger, "webhook deliveries failed";
                    "action" => "webhook_delivery", "status" => "failed",
                    "error_type" => error.error_type(), "error_message" => error.to_string());
                return Backlog::Empty;
            }
        };
        for (outcome, n) in [
            ("delivered", report.delivered),
            ("failed", report.failed),
            ("disabled", report.disabled),
        ] {
            self.metrics.count_webhook_deliveries(outcome, u64::from(n));
        }
        for lag in &report.lags {
            self.metrics
                .webhook_delivery_lag
                .get_or_create(&[])
                .observe(lag.as_secs_f64());
        }
        for latency in &report.latencies {
            self.metrics
                .webhook_delivery_duration
                .get_or_create(&[])
                .observe(latency.as_secs_f64());
        }
        if report.failed > 0 {
            warn!(logger, "webhook deliveries failed";
                "action" => "webhook_delivery", "status" => "failed",
                "delivered" => report.delivered, "failed" => report.failed,
                "disabled" => report.disabled);
        } else if report.delivered > 0 {
            info!(logger, "webhook deliveries made";
                "action" => "webhook_delivery", "status" => "success",
                "delivered" => report.delivered);
        }
        // A full claim means more subscriptions may be due.
        if report.subscriptions >= DELIVERY_SUBSCRIPTIONS {
            Backlog::More
        } else {
            Backlog::Empty
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.poll).await;
    }
}

/// Starts a [`DeliveryWorker`].
pub fn spawn_delivery_worker(
    webhooks: WebhookService,
    owner: String,
    metrics: Arc<Metrics>,
    logger: slog::Logger,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    spawn(
        DeliveryWorker {
            webhooks,
            owner,
            poll: DELIVERY_POLL,
            metrics,
            logger,
            lag_measured: None,
        },
        shutdown,
    )
}
