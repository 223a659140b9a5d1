//! `calsync bench fleet --replicas 3` as CI runs it, small: three server
//! processes on one Postgres schema behind a balancer, one SIGKILLed
//! halfway through the remote changes. The command fails unless every
//! event in Google is mirrored at its etag and every job tick was started
//! by exactly one replica.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::process::Command;

#[test]
fn three_replicas_one_killed_converge_and_run_each_tick_once() {
    let Some(url) = support::postgres_url("fleet replicas") else {
        return;
    };
    let output = Command::new(env!("CARGO_BIN_EXE_calsync"))
        .args(["bench", "fleet", "--replicas", "3", "--postgres-url", &url])
        .args(["--calendars", "30", "--principals", "3"])
        .args(["--changes-per-min", "300", "--duration-secs", "30"])
        .output()
        .expect("calsync bench fleet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    println!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "calsync bench fleet --replicas 3 failed ({}); its report is above",
        output.status
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("fleet: "))
        .expect("a fleet: line");
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from {line}"))
            .to_owned()
    };
    for zero in [
        "quota_errors",
        "failed_writes",
        "failed_syncs",
        "unconverged",
        "duplicate_ticks",
        "missed_ticks",
    ] {
        assert_eq!(field(zero), "0", "{zero} in {line}");
    }
    // The survivors kept the schedule going after the kill.
    assert!(
        field("ticks_after_kill").parse::<u32>().unwrap() >= 1,
        "{line}"
    );
    assert!(field("changes").parse::<u32>().unwrap() >= 100, "{line}");
}
