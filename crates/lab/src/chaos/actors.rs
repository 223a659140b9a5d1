//! What runs concurrently during the chaos phase: API writers, the remote
//! changer ("someone edits in Google"), the fault controller, the users
//! who revoke and restore their grants ([`grants`]), and the killer, which SIGKILLs and restarts the server and probes how long the
//! mirror takes to catch up after each restart.

mod faults;
pub mod grants;
mod killer;
mod remote;
mod shared;
mod writer;

pub use faults::faults;
pub use killer::{killer, wait_ready};
pub use remote::{remote, seeded_ids};
pub use shared::*;
pub use writer::writer;
