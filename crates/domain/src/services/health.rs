use std::sync::Arc;

use crate::error::{Error, Result};
use crate::health::{HealthReport, HealthThresholds, evaluate};
use crate::ports::{Clock, HealthStore};

/// Computes the health report live from the store's aggregates.
#[derive(Clone)]
pub struct HealthService {
    store: Arc<dyn HealthStore>,
    clock: Arc<dyn Clock>,
    thresholds: HealthThresholds,
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
        }
    }

    /// Never fails: an unreachable database is reported in the report, and
    /// the cause is handed back beside it for the caller to log.
    pub async fn report(&self) -> (HealthReport, Option<Error>) {
        let now = self.clock.now();
        let horizon = crate::later(now, self.thresholds.channel_expiry_warning);
        match self.store.health_stats(now, horizon).await {
            Ok(stats) => (evaluate(Some(stats), now, &self.thresholds), None),
            Err(error) => (evaluate(None, now, &self.thresholds), Some(error)),
        }
    }

    /// Readiness: the database answers and its schema is current.
    pub async fn ready(&self) -> Result<()> {
        self.store.check_ready().await
    }
}
