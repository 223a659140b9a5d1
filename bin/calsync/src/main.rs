//! The calsync command line: parses arguments and hands each command to its
//! module. Behaviour lives in the library crates.

mod bench;
mod chaos;
mod cli;
mod error;
mod harness;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: a full sync decodes pages on several
/// threads, and glibc's per-thread arenas kept what they freed resident, so
/// the server stayed at its peak memory after the sync.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("calsync: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("calsync: {error}");
            ExitCode::FAILURE
        }
    }
}
