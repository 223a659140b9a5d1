//! calsync's domain: the types, pure rules, ports and use cases of a Google
//! Calendar mirror. No I/O and no async runtime: adapters implement the
//! ports in [`ports`], and [`services`] run on whatever executor drives them.

pub mod channel;
pub mod error;
pub mod event;
pub mod health;
pub mod ids;
pub mod outbox;
pub mod ports;
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
