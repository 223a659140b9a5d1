//! The chaos battery as CI runs it: `calsync chaos` against each backend
//! (two tests, so they run side by side), about 90 s of chaos with at least
//! five SIGKILLs each. `CALSYNC_CHAOS_SECS` lengthens the run,
//! `CALSYNC_CHAOS_SEED` replays one. The command's output is printed; it
//! names the seed and keeps the logs of a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::process::Command;

use diesel_async::{AsyncConnection, AsyncPgConnection};

const DEFAULT_SECS: &str = "90";
const MIN_KILLS: &str = "5";
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

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
    let url =
        std::env::var("CALSYNC_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let reachable = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(AsyncPgConnection::establish(&url))
        .map(drop);
    if let Err(error) = reachable {
        if std::env::var_os("CI").is_some() {
            panic!("Postgres at {url} is required in CI but unreachable: {error}");
        }
        eprintln!(
            "SKIPPED: chaos battery on Postgres: no server at {url} ({error}); set CALSYNC_TEST_DATABASE_URL"
        );
        return;
    }
    chaos("postgres", &["--postgres-url", &url]);
}
