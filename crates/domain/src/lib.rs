//! calsync's domain: the types, pure rules, ports and use cases of a Google
//! Calendar mirror. No I/O and no async runtime: adapters implement the
//! ports in [`ports`], and [`services`] run on whatever executor drives them.

pub mod calendar;
pub mod channel;
pub mod error;
pub mod event;
pub mod feed;
pub mod freebusy;
pub mod grant;
pub mod health;
pub mod ids;
pub mod outbox;
pub mod ports;
pub mod recurrence;
pub mod services;
pub mod sync;
pub mod webhook;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ProviderErrorKind, Result};

use chrono::{DateTime, Utc};

/// `at + duration`, saturating at the end of representable time instead of
/// panicking on absurd configured durations.
pub fn later(at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Leases kept alive while work runs.
pub mod heartbeat {
    use std::future::Future;
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::future::{Either, select};

    use crate::error::{Error, Result};
    use crate::ports::Timer;

    /// How often a lease of `ttl` is renewed: three beats per lifetime, so
    /// one slow or failed beat does not lose it.
    pub fn interval(ttl: Duration) -> Duration {
        (ttl / 3).max(Duration::from_millis(100))
    }

    /// Runs `work` while calling `beat` every `every`. A beat answering
    /// `Ok(false)` (the lease was lost to another worker) abandons the work
    /// with an error; a beat that fails is tried again at the next one.
    /// Without a timer the work runs alone.
    pub async fn run<T, W, B, BF>(
        timer: Option<&Arc<dyn Timer>>,
        every: Duration,
        work: W,
        beat: B,
    ) -> Result<T>
    where
        W: Future<Output = Result<T>>,
        B: Fn() -> BF,
        BF: Future<Output = Result<bool>>,
    {
        let Some(timer) = timer else {
            return work.await;
        };
        let heart = async {
            loop {
                timer.sleep(every).await;
                if let Ok(false) = beat().await {
                    return Error::Storage("lease lost to another worker mid-run".into());
                }
            }
        };
        let (work, heart) = (std::pin::pin!(work), std::pin::pin!(heart));
        match select(work, heart).await {
            Either::Left((result, _)) => result,
            Either::Right((lost, _)) => Err(lost),
        }
    }
}
