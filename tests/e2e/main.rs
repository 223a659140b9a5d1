//! End to end: the real server (as `calsync serve` builds it), the emulator
//! and a real database, talking over loopback HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

/// Each case on SQLite and on Postgres (`Api::sqlite_with` /
/// `Api::postgres_with`), with the server flags given after `flags:`.
macro_rules! both_backends {
    (flags: $flags:expr; $($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Api::sqlite_with($flags).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(api) = super::Api::postgres_with($flags).await else {
                        return;
                    };
                    super::$case(api).await;
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        both_backends!(flags: &[]; $($case),*);
    };
}

mod browser;
mod browser_smoke;
mod calendars;
mod change_feed;
mod console;
mod deleted_copies;
mod events_api;
mod failed_writes;
mod fidelity;
mod freebusy;
mod fuzz;
mod grants;
mod hardening;
mod helpers;
mod mirror_truth;
mod recurrence;
mod replicas;
mod series_fidelity;
mod sync_flow;
