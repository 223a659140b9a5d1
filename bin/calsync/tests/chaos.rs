//! The chaos battery as CI runs it: `calsync-lab chaos` against each
//! backend (two tests, so they run side by side) with this package's
//! `calsync` binary as the server, about 90 s of chaos with at least five
//! SIGKILLs each. `CALSYNC_CHAOS_SECS` lengthens the run,
//! `CALSYNC_CHAOS_SEED` replays one. The battery's report is printed; it
//! names the seed and keeps the logs of a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use calsync_lab::ServerBin;
use calsync_lab::chaos::{BackendChoice, ChaosArgs};

const DEFAULT_SECS: u64 = 90;
const MIN_KILLS: u32 = 5;

fn chaos(backend: BackendChoice, postgres_url: Option<String>) {
    let duration_secs = std::env::var("CALSYNC_CHAOS_SECS")
        .map(|secs| {
            secs.parse()
                .expect("CALSYNC_CHAOS_SECS is a number of seconds")
        })
        .unwrap_or(DEFAULT_SECS);
    let seed = std::env::var("CALSYNC_CHAOS_SEED")
        .ok()
        .map(|seed| seed.parse().expect("CALSYNC_CHAOS_SEED is a u64"));
    let defaults = ChaosArgs::default();
    let args = ChaosArgs {
        backend,
        postgres_url: postgres_url.unwrap_or(defaults.postgres_url.clone()),
        duration_secs,
        min_kills: MIN_KILLS,
        seed,
        server_bin: ServerBin::at(env!("CARGO_BIN_EXE_calsync")),
        ..defaults
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the battery")
        .block_on(args.run());
    if let Err(error) = outcome {
        panic!("calsync-lab chaos --backend {backend:?} failed: {error}; its report is above");
    }
}

#[test]
fn chaos_sqlite() {
    chaos(BackendChoice::Sqlite, None);
}

#[test]
fn chaos_postgres() {
    let Some(url) = support::postgres_url("chaos battery on Postgres") else {
        return;
    };
    chaos(BackendChoice::Postgres, Some(url));
}
