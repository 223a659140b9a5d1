//! End to end: the real server (as `calsync serve` builds it), the emulator
//! and a real database, talking over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod calendars;
mod events_api;
mod fidelity;
mod fuzz;
mod hardening;
mod helpers;
mod mirror_truth;
mod recurrence;
mod replicas;
mod series_fidelity;
mod sync_flow;
