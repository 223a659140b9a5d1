//! The chaos battery as CI runs it: `calsync chaos` against each backend
//! (two tests, so they run side by side), about 90 s of chaos with at least
//! five SIGKILLs each. `CALSYNC_CHAOS_SECS` lengthens the run,
//! `CALSYNC_CHAOS_SEED` replays one. The command's output is printed; it
//! names the seed and keeps the logs of a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

mod support;

use std::process::Command;

const DEFAULT_SECS: &str = "90";
const MIN_KILLS: &str = "5";

fn chaos(backend: &str, extra: &[&str]) {
    let secs = std::env::var("CALSYNC_CHAOS_SECS").unwrap_or_else(|_| DEFAULT_SECS.into());
    let mut command = Command::new(env!("CARGO_BIN_EXE_calsync"));
    command
        .args(["chaos", "--backend", backend, "--duration-secs", &secs])
        .args(["--min-kills", MIN_KILLS])
        .args(extra);
    if let Ok(seed) = std::env::var("CALSYNC_CHAOS_SEED") {
        command.args(["--seed", &seed]);
    }
    let output = command.output().expect("calsync chaos runs");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    println!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "calsync chaos --backend {backend} failed ({}); its report is above",
        output.status
    );
}

#[test]
fn chaos_sqlite() {
    chaos("sqlite", &[]);
}

#[test]
fn chaos_postgres() {
    let Some(url) = support::postgres_url("chaos battery on Postgres") else {
        return;
    };
    chaos("postgres", &["--postgres-url", &url]);
}
