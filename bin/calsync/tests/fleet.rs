//! `calsync-lab bench fleet --replicas 3` as CI runs it, small, with this
//! package's `calsync` binary as the replicas: three server processes on
//! one Postgres schema behind a balancer, one SIGKILLed halfway through the
//! remote changes. The bench fails unless every event in Google is
//! mirrored at its etag and every job tick was started by exactly one
//! replica; its `fleet:` line is printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::time::Duration;

use calsync_lab::ServerBin;
use calsync_lab::bench::fleet::{FleetBench, FleetReport};

/// Runs the bench on a runtime of its own; `flags` name it in a failure.
fn run(bench: FleetBench, flags: &str) -> FleetReport {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the fleet")
        .block_on(bench.run())
        .unwrap_or_else(|error| {
            panic!("calsync-lab bench fleet {flags} failed: {error}; its report is above")
        })
}

/// No quota error, failed write or sync, and every event converged.
fn assert_nothing_failed(report: &FleetReport) {
    let totals = report.totals;
    for (name, count) in [
        ("quota_errors", totals.quota_errors),
        ("failed_writes", totals.failed_writes),
        ("failed_syncs", totals.failed_syncs as u64),
        ("unconverged", totals.unconverged as u64),
    ] {
        assert_eq!(count, 0, "{name} in {report:?}");
    }
}

#[test]
fn three_replicas_one_killed_converge_and_run_each_tick_once() {
    let Some(url) = support::postgres_url("fleet replicas") else {
        return;
    };
    let bench = FleetBench {
        calendars: 30,
        principals: 3,
        changes_per_min: 300,
        duration: Duration::from_secs(30),
        postgres_url: Some(url),
        replicas: 3,
        server_bin: ServerBin::at(env!("CARGO_BIN_EXE_calsync")),
        grants: false,
    };
    let report = run(bench, "--replicas 3");
    assert_nothing_failed(&report);
    let ticks = report.ticks.expect("tick counts from the replicas' logs");
    for (name, count) in [
        ("duplicate_ticks", ticks.duplicates),
        ("missed_ticks", ticks.missed),
    ] {
        assert_eq!(count, 0, "{name} in {report:?}");
    }
    // The survivors kept the schedule going after the kill.
    assert!(ticks.after_kill >= 1, "{report:?}");
    assert!(report.changes >= 100, "{report:?}");
}

/// `calsync-lab bench fleet --grants 20`, small: twenty users connect their
/// own accounts through the emulator's OAuth server, their calendars are
/// managed through those grants, and remote changes reach the mirror
/// within Google's quotas, each account refreshing its token once (its
/// first access token) and not again while it is valid.
#[test]
fn calendars_managed_through_grants_converge_with_one_refresh_each() {
    let bench = FleetBench {
        calendars: 20,
        principals: 1,
        changes_per_min: 240,
        duration: Duration::from_secs(10),
        postgres_url: None,
        replicas: 1,
        server_bin: ServerBin::at(env!("CARGO_BIN_EXE_calsync")),
        grants: true,
    };
    let report = run(bench, "--grants 20");
    assert_nothing_failed(&report);
    assert!(report.changes >= 20, "{report:?}");
    assert_eq!(report.token_refreshes, Some(20), "{report:?}");
}
