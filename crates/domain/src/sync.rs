//! Incremental sync: what Google sends (`remote`), the rule that applies it
//! to the mirror (`apply`), and the per-calendar sync state (`state`).

mod apply;
mod remote;
mod state;

#[cfg(test)]
mod tests;

pub use apply::{
    ApplyDecision, PageOutcome, SkipReason, SyncCompletion, SyncPage, SyncRun, beyond_retention,
    decide,
};
pub use remote::{ChangePage, ListRequest, RemoteEvent};
pub use state::{SyncLease, SyncOutcome, SyncState};
