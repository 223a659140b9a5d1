//! A clock tests move by hand.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};

use super::lock;
use crate::ports::Clock;

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(start)))
    }

    /// Starts at 2026-01-01T00:00:00Z.
    pub fn fixed() -> Arc<Self> {
        Self::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        )
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = lock(&self.0);
        *now = crate::later(*now, by);
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.0) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}
