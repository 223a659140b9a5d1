//! `calsync-lab bench ...`: throughput figures measured on real databases,
//! each result ending in one `key=value` line. One module per benchmark;
//! `fixtures` holds what they share.

pub mod feed;
mod fixtures;
pub mod fleet;
mod freebusy;
mod http;
mod series;
mod store;
mod sync;

use clap::Subcommand;

use crate::error::LabError;
use crate::harness::server_bin::ServerBin;

/// The benchmarks, one subcommand each.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Upsert N calendar-like events (~1 KB each) in pages of 2500 through
    /// the sync path, on embedded SQLite and (with --postgres-url) Postgres;
    /// prints rows/s for the first pass (inserts) and a second (updates).
    Store {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 2500)]
        page_size: usize,
        /// A Postgres database to benchmark too (its tables are created if
        /// missing; use a scratch database).
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Mirror N recurring series (weekly, every other day, monthly;
    /// started over the past year) and expand a week's window over them
    /// --requests times, as `singleEvents=true` does; prints ms per request
    /// (p50/p99), on SQLite and (with --postgres-url) Postgres.
    Series {
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Free/busy and availability from the mirror: N single events and M
    /// recurring series (with exceptions) over C calendars, prefilled
    /// through the sync path; then free/busy of 50 random calendars over 30
    /// days and availability of 10 over 14 days, --requests times each,
    /// ms per request (p50/p99) and the cold first request. SQLite, and
    /// Postgres with --postgres-url (a fresh schema, dropped after).
    Freebusy {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        #[arg(long, default_value_t = 1000)]
        calendars: usize,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// N calendars across P principals (service-account JWTs, Google's
    /// default quotas enforced by the emulator), each added through the
    /// calendars service; times the first full sync of all, then makes
    /// random remote changes at R per minute for --duration-secs and times
    /// each to the mirror. Ends with one `fleet: key=value ...` line
    /// (quota_errors must be 0). SQLite, or Postgres with --postgres-url.
    /// With --replicas N (Postgres): N `calsync serve` processes (the
    /// `calsync` binary, see --server-bin) behind a balancer on a fresh
    /// schema, one SIGKILLed halfway through; fails unless every event
    /// converges and every job tick ran exactly once. With --grants N: N
    /// users each connect their own account (the OAuth flow at the
    /// emulator) and their calendar is managed through that grant; the
    /// line adds the token refreshes (one replica, in this process).
    Fleet {
        #[arg(long, default_value_t = 300)]
        calendars: usize,
        #[arg(long, default_value_t = 10)]
        principals: usize,
        #[arg(long, default_value_t = 600)]
        changes_per_min: u32,
        #[arg(long, default_value_t = 60)]
        duration_secs: u64,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Server processes sharing the Postgres database (1: in this process).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// N connected accounts, one calendar each, instead of --calendars
        /// over --principals.
        #[arg(long, conflicts_with_all = ["calendars", "principals", "replicas"])]
        grants: Option<usize>,
        #[command(flatten)]
        server_bin: ServerBin,
    },
    /// Seed the emulator with N events and full-sync them through the Google
    /// adapter into SQLite and (with --postgres-url) Postgres, printing
    /// events/s beside the store's own rows/s; then run the server and time
    /// change-to-mirror latency (p50/p99) over --changes changes; then a
    /// `calsync serve` process (see --server-bin) full-syncs N events while
    /// its resident memory is sampled.
    Sync {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 1000)]
        changes: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        #[command(flatten)]
        server_bin: ServerBin,
    },
    /// The change feed and webhooks: `calsync serve` (see --server-bin) on
    /// a feed pre-filled in SQL with --feed-rows changes (~1.5 KB each);
    /// remote edits at --changes-per-min for --duration-secs, each timed to
    /// a long-polling reader of GET /calendar/changes and to a webhook
    /// receiver (p50/p99); --reads reads of 1,000 changes from random
    /// cursors and of one entity's changes (p50/p99); a full sync of
    /// --events against the store's ceiling. Figures beside the goals
    /// (feed p99 < 200 ms, webhook p99 < 1 s, read p99 < 50 ms, full sync
    /// at least 0.85 of the ceiling). SQLite, and Postgres with
    /// --postgres-url (a fresh schema, dropped after).
    Feed {
        #[arg(long, default_value_t = 600)]
        changes_per_min: u32,
        #[arg(long, default_value_t = 60)]
        duration_secs: u64,
        /// Changes pre-filled [default: 10000000 on Postgres, 1000000 on SQLite].
        #[arg(long)]
        feed_rows: Option<u64>,
        #[arg(long, default_value_t = 200)]
        reads: usize,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        #[command(flatten)]
        server_bin: ServerBin,
    },
    /// Start `calsync serve` (see --server-bin) on a database seeded with N
    /// events, load `/webhooks/calendar` and `/health/live` with
    /// --concurrency clients for --duration-secs each, then at
    /// --paced-rate requests a second (an open loop, below saturation), then time
    /// `/health/calendar`. SQLite always; Postgres with --postgres-url (a
    /// scratch database: the seed is kept there for re-runs).
    Http {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        #[arg(long, default_value_t = 50)]
        health_samples: usize,
        /// Webhook and /health/live requests a second in the open-loop
        /// phase after the closed-loop one (0 skips it).
        #[arg(long, default_value_t = 5000)]
        paced_rate: u32,
        #[arg(long, env = "CALSYNC_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        #[command(flatten)]
        server_bin: ServerBin,
    },
}

impl Bench {
    /// Runs the benchmark, printing its result lines.
    pub async fn run(self) -> Result<(), LabError> {
        match self {
            Self::Feed {
                changes_per_min,
                duration_secs,
                feed_rows,
                reads,
                events,
                postgres_url,
                server_bin,
            } => {
                feed::FeedBench {
                    changes_per_min: changes_per_min.max(1),
                    duration: std::time::Duration::from_secs(duration_secs.max(1)),
                    feed_rows,
                    reads: reads.max(1),
                    events: events.max(1),
                    postgres_url,
                    server_bin: server_bin.resolve()?,
                }
                .run()
                .await
            }
            Self::Http {
                events,
                concurrency,
                duration_secs,
                health_samples,
                paced_rate,
                postgres_url,
                server_bin,
            } => {
                http::HttpBench {
                    paced_rate,
                    events,
                    concurrency: concurrency.max(1),
                    duration: std::time::Duration::from_secs(duration_secs.max(1)),
                    health_samples: health_samples.max(1),
                    postgres_url,
                    server_bin: server_bin.resolve()?,
                }
                .run()
                .await
            }
            Self::Sync {
                events,
                changes,
                postgres_url,
                server_bin,
            } => {
                sync::run(
                    events,
                    changes,
                    postgres_url.as_deref(),
                    &server_bin.resolve()?,
                )
                .await
            }
            Self::Freebusy {
                events,
                series,
                calendars,
                requests,
                postgres_url,
            } => {
                freebusy::FreeBusyBench {
                    events,
                    series,
                    // Free/busy asks about 50 calendars at a time.
                    calendars: calendars.max(50),
                    requests: requests.max(1),
                    postgres_url,
                }
                .run()
                .await
            }
            Self::Store {
                events,
                page_size,
                postgres_url,
            } => store::run(events, page_size, postgres_url.as_deref()).await,
            Self::Fleet {
                calendars,
                principals,
                changes_per_min,
                duration_secs,
                postgres_url,
                replicas,
                grants,
                server_bin,
            } => fleet::FleetBench {
                calendars: grants.unwrap_or(calendars).max(1),
                principals: principals.max(1),
                changes_per_min,
                duration: std::time::Duration::from_secs(duration_secs.max(1)),
                postgres_url,
                replicas: replicas.max(1),
                server_bin,
                grants: grants.is_some(),
            }
            .run()
            .await
            .map(drop),
            Self::Series {
                series,
                requests,
                postgres_url,
            } => series::run(series, requests, postgres_url.as_deref()).await,
        }
    }
}
