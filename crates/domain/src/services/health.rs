use std::sync::Arc;

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

    /// Never fails: an unreachable database is reported, not returned.
    pub async fn report(&self) -> HealthReport {
        let now = self.clock.now();
        let horizon = crate::later(now, self.thresholds.channel_expiry_warning);
        let stats = self.store.health_stats(horizon).await.ok();
        evaluate(stats, now, &self.thresholds)
    }
}
