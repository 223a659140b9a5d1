use std::sync::Arc;

use crate::error::{Error, Result};
use crate::feed::subscription::REPORT_FAILING_AFTER;
use crate::health::HealthIssue;
use crate::health::{HealthReport, HealthThresholds, evaluate};
use crate::ports::{Clock, HealthStore, WebhookStore};

/// Computes the health report live from the store's aggregates.
#[derive(Clone)]
pub struct HealthService {
    store: Arc<dyn HealthStore>,
    clock: Arc<dyn Clock>,
    thresholds: HealthThresholds,
    webhooks: Option<Arc<dyn WebhookStore>>,
}

impl HealthService {
    pub fn new(
        store: Arc<dyn HealthStore>,
        clock: Arc<dyn Clock>,
        thresholds: HealthThresholds,
    ) -> Self {
        Self {
            store,
            clock,
            thresholds,
            webhooks: None,
        }
    }

    /// Also reports webhook subscriptions failing for an hour or more.
    pub fn with_webhooks(mut self, webhooks: Arc<dyn WebhookStore>) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    async fn webhook_issues(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<HealthIssue>> {
        let Some(store) = &self.webhooks else {
            return Ok(Vec::new());
        };
        let mut failing = Vec::new();
        for subscription in store.list_webhooks().await? {
            if let Some(since) = subscription.failing_since
                && now - since >= REPORT_FAILING_AFTER
            {
                failing.push(format!(
                    "{} ({}failing since {})",
                    subscription.id,
                    if subscription.enabled {
                        ""
                    } else {
                        "disabled, "
                    },
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
        }
        Ok(if failing.is_empty() {
            Vec::new()
        } else {
            vec![HealthIssue {
                code: "webhooks_failing",
                message: format!(
                    "{} webhook subscription(s) failing: {}",
                    failing.len(),
                    failing.join(", ")
                ),
            }]
        })
    }

    /// Never fails: an unreachable database is reported in the report, and
    /// the cause is handed back beside it for the caller to log.
    pub async fn report(&self) -> (HealthReport, Option<Error>) {
        let now = self.clock.now();
        let horizon = crate::later(now, self.thresholds.channel_expiry_warning);
        let (mut report, error) = match self.store.health_stats(now, horizon).await {
            Ok(stats) => (evaluate(Some(stats), now, &self.thresholds), None),
            Err(error) => (evaluate(None, now, &self.thresholds), Some(error)),
        };
        if error.is_some() {
            return (report, error);
        }
        match self.webhook_issues(now).await {
            Ok(issues) if issues.is_empty() => (report, None),
            Ok(issues) => {
                report.issues.extend(issues);
                report.status = crate::health::HealthStatus::Degraded;
                (report, None)
            }
            Err(error) => (report, Some(error)),
        }
    }

    /// Readiness: the database answers and its schema is current.
    pub async fn ready(&self) -> Result<()> {
        self.store.check_ready().await
    }
}
