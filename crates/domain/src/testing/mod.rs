//! In-memory implementations of every port, for unit tests (calsync's own
//! and embedders'). They follow the same contracts as the real adapters:
//! [`MemoryStore`] applies pages atomically and leases like the SQL stores,
//! [`FakeCalendar`] pages, tokens and fails like Google. Both are held to
//! it by tests: calsync-store's contract suite runs on [`MemoryStore`], and
//! the cases in [`provider_contract`] run on [`FakeCalendar`] and on the
//! Google adapter against the emulator.

mod clock;
mod fake_calendar;
mod memory_store;
pub mod provider_contract;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use clock::ManualClock;
pub use fake_calendar::FakeCalendar;
pub use memory_store::MemoryStore;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
